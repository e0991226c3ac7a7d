"""The `storekit` command: typer groups, one module each, and the one error boundary.

Commands parse their arguments, call one workflow or core function, and print. Every `StorekitError`
that escapes a command becomes `error: <message>` on stderr and exit status 1; `--debug` (anywhere on
the command line) adds the traceback. Other exceptions are bugs and keep theirs.
"""

from __future__ import annotations

import sys
import traceback
from typing import Annotated

import typer

from storekit import __version__
from storekit.cli import drv, elf, hash, key, nar, path, store
from storekit.errors import StorekitError

app = typer.Typer(
    name="storekit",
    help="Nix-style stores under any prefix, byte-compatible with real Nix.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for _module in (hash, nar, path, drv, key, elf, store):
    app.add_typer(_module.app, name=_module.NAME, help=_module.HELP)


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
    try:
        app(args=args, prog_name="storekit")
    except StorekitError as e:
        if "--debug" in args:
            traceback.print_exc()
        message = str(e)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
