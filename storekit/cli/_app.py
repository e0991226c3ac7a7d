"""The typer side of `storekit`: the root app, lazy loading of command groups, and how help looks.

Kept out of `storekit.cli` so that `storekit --version` (and anything else `main` answers itself)
never imports typer: importing it is most of a short command's start-up time. Command modules are
imported only when their command runs or its help is shown.

Help is click's plain text, never rich's panels: rich costs a tenth of a second to import on every
`--help` and every usage error, and its panels show typer's type names (`<str>`) where a reader wants
the value's name. `_name_metavars` gives every argument and option a metavar named after what it is
(`--store STORE`, `TARGETS...`), once, here, so that no command module has to spell them all.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperGroup

from storekit import __version__
from storekit.cli._commands import COMMANDS

#: Metavars for options whose name alone would not say what they take.
_OPTION_METAVARS = {
    "jobs": "N",
    "cores": "N",
    "timeout": "SECONDS",
    "max_freed": "SIZE",
    "trusted_public_keys": "KEYS",
    "substituters": "STORES",
    "sign_key": "FILE",
    "key_file": "FILE",
    "output": "FILE",
    "from_": "STORE",
    "to": "STORE",
    "relocate_from": "STORE",
    "reference": "PATH",
    "ref": "PATH",
    "relocate": "PATH",
    "sandbox_path": "PATH",
    "state": "DIR",
    "log": "DIR",
    "real": "DIR",
    "state_dir": "DIR",
    "apt_dir": "DIR",
    "mirror": "DIR",
    "priority": "N",
    "host": "ADDRESS",
    "until": "NAME",
}


class _NamedArgument(TyperArgument):
    """An argument shown as its name in capitals (`TARGETS...`, `[FILE]`), as click and Nix show them.

    typer 0.28 writes a required argument as `{targets}...` in the usage line and gives it a type
    column (`<str>`); this keeps the usage line and the help record the same plain name.
    """

    def make_metavar(self, ctx: Any, *, usage: bool = False) -> str:
        name = (self.metavar or (self.name or "").upper()).removesuffix("...")
        if self.nargs != 1:
            name += "..."
        return f"[{name}]" if usage and not self.required else name


def _name_metavars(command: Any) -> None:
    """Plain help for `command` and its subcommands: no rich panels, metavars that name the value."""
    command.rich_markup_mode = None
    for param in command.params:
        if isinstance(param, TyperArgument):
            param.__class__ = _NamedArgument
        elif _shows_type_name(param):
            name = param.name or ""
            param.metavar = _OPTION_METAVARS.get(name, name.upper().rstrip("_").replace("_", "-"))
        elif _is_choice(param):
            param.metavar = "[" + param.make_metavar(ctx=None)[1:-1] + "]"  # click's own `[a|b]`
    for sub in getattr(command, "commands", {}).values():
        _name_metavars(sub)


def _shows_type_name(option: Any) -> bool:
    """Whether typer would show `option`'s value as a type name (`<str>`): not for flags or choices."""
    if getattr(option, "is_flag", False) or getattr(option, "count", False) or option.metavar is not None:
        return False
    metavar: str = option.make_metavar(ctx=None)
    return metavar.startswith("<") and "|" not in metavar


def _is_choice(option: Any) -> bool:
    if getattr(option, "is_flag", False) or option.metavar is not None:
        return False
    metavar: str = option.make_metavar(ctx=None)
    return metavar.startswith("<") and "|" in metavar


def load_command(name: str) -> Any:
    """Import the module behind `name` and turn its typer group or function into a click command."""
    module_name, attribute = COMMANDS[name]
    module = importlib.import_module(module_name)
    target: Any = getattr(module, attribute)
    help_text: str | None = getattr(module, "HELP", None)
    command: Any
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)
        command.name = name
        if help_text:
            command.help = help_text
    else:
        single = typer.Typer(add_completion=False)  # completion is the root's (`storekit --show-completion`)
        settings = getattr(module, "CONTEXT_SETTINGS", None)  # e.g. raw arguments (`storekit patchelf`)
        single.command(name, help=help_text, context_settings=settings, add_help_option=settings is None)(
            target
        )
        command = typer.main.get_command(single)
    _name_metavars(command)
    return command


class _LazyGroup(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """As click's, but a mistyped command is matched against every command, loaded or not."""
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS and not ctx.resilient_parsing:
            matches = difflib.get_close_matches(name, COMMANDS)
            if matches:
                ctx.fail(f"No such command '{name}'. Did you mean {', '.join(map(repr, matches))}?")
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self.commands:
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]


app = typer.Typer(
    name="storekit",
    cls=_LazyGroup,
    help="Nix-style stores under any prefix, byte-compatible with real Nix.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"storekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Nix's model (content-addressed closures, sandboxed builds, binary caches) under any prefix."""
