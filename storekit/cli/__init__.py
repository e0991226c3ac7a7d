"""The `storekit` command: typer groups, one module each, and the one error boundary.

Commands parse their arguments, call one workflow or core function, and print. Every `StorekitError`
that escapes a command becomes `error: <message>` on stderr and exit status 1; `--debug` (anywhere on
the command line) adds the traceback. Other exceptions are bugs and keep theirs.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from storekit import __version__
from storekit.errors import StorekitError

#: Command name -> (module, attribute). A `typer.Typer` attribute is a group, a function a single command.
#: Modules are imported only when their command runs (or for `--help`), so `storekit hash path` does not
#: pay for importing the builder, the caches and the ELF editor: startup is most of a short command's time.
COMMANDS: dict[str, tuple[str, str]] = {
    "hash": ("storekit.cli.hash", "app"),
    "nar": ("storekit.cli.nar", "app"),
    "path": ("storekit.cli.path", "app"),
    "drv": ("storekit.cli.drv", "app"),
    "key": ("storekit.cli.key", "app"),
    "store": ("storekit.cli.store", "app"),
    "copy": ("storekit.cli.copy", "copy"),
    "cache": ("storekit.cli.cache", "app"),
    "build": ("storekit.cli.build", "command"),
    "log": ("storekit.cli.log", "command"),
    "run": ("storekit.cli.run", "command"),
    "relocate": ("storekit.cli.relocate", "relocate_command"),
    "elf": ("storekit.cli.elf", "app"),
    "patchelf": ("storekit.cli.patchelf", "command"),
    "bootstrap": ("storekit.cli.bootstrap", "app"),
    "template": ("storekit.cli.template", "app"),
    "nix-conf": ("storekit.cli.nixconf", "nix_conf"),
}


def load_command(name: str) -> Any:
    """Import the module behind `name` and turn its typer group or function into a click command."""
    module_name, attribute = COMMANDS[name]
    module = importlib.import_module(module_name)
    target: Any = getattr(module, attribute)
    help_text: str | None = getattr(module, "HELP", None)
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)
        command.name = name
        if help_text:
            command.help = help_text
        return command
    single = typer.Typer(add_completion=False)  # completion is the root's (`storekit --show-completion`)
    settings = getattr(module, "CONTEXT_SETTINGS", None)  # e.g. raw arguments (`storekit patchelf`)
    single.command(name, help=help_text, context_settings=settings, add_help_option=settings is None)(target)
    return typer.main.get_command(single)


class _LazyGroup(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

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


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["patchelf"]:  # patchelf's own command line: its arguments are not click's
        from storekit.cli.patchelf import main as patchelf_main

        sys.exit(patchelf_main(args[1:]))
    # `--debug` is taken anywhere before `--` (click would accept it only before the command name)
    options = args[: args.index("--")] if "--" in args else args
    debug = "--debug" in options
    if debug:
        args = [a for a in options if a != "--debug"] + args[len(options) :]
    try:
        app(args=args, prog_name="storekit")
    except StorekitError as e:
        if debug:
            traceback.print_exc()
        message = str(e)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
