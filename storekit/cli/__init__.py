"""The `storekit` command: typer groups, one module each, and the one error boundary.

Commands parse their arguments, call one workflow or core function, and print. Every `StorekitError`
that escapes a command becomes `error: <message>` on stderr and exit status 1; `--debug` (anywhere on
the command line) adds the traceback. Other exceptions are bugs and keep theirs.
"""

from __future__ import annotations

import sys

from storekit import __version__
from storekit.cli._commands import COMMANDS

__all__ = ["COMMANDS", "main"]


def __getattr__(name: str) -> object:
    """`storekit.cli.app` and `load_command`, imported on first use (see `storekit.cli._app`).

    This module imports nothing but `sys` (not even `typing`): `main` answers `--version` itself.
    """
    if name in ("app", "load_command"):
        from storekit.cli import _app

        return getattr(_app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    if args == ["--version"]:  # answered without typer: a script asking for the version pays no start-up
        print(f"storekit {__version__}")
        return
    from storekit.errors import StorekitError

    try:
        if args[:1] == ["hash"]:  # a plain `hash path|file` line: no typer to import (see _fast)
            from storekit.cli import _fast

            fast = _fast.parse(args)
            if fast is not None:
                _fast.run(fast)
                return
        if args[:1] == ["build"]:  # a plain `build` line: no typer either (see _build_line)
            from storekit.cli import _build_line

            request = _build_line.parse(args)
            if request is not None:
                import gc

                gc.disable()  # until the build's modules are in: `_build.run` freezes them, enables it
                _build_line.run_plain(request)  # SIGTERM as Ctrl-C once there is work (`_signals`)
                return
        if args[:1] == ["copy"]:  # a plain `copy` line: no typer either (see _copy_line)
            from storekit.cli import _copy_line

            copy_request = _copy_line.parse(args)
            if copy_request is not None:
                from storekit.cli._signals import terminate_as_interrupt

                terminate_as_interrupt()
                _copy_line.run_plain(copy_request)
                return
        from storekit.cli._app import app
        from storekit.cli._signals import terminate_as_interrupt

        terminate_as_interrupt()
        app(args=args, prog_name="storekit")
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except StorekitError as e:
        if debug:
            import traceback

            traceback.print_exc()
        message = str(e)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
