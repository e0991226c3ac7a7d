"""A plain `storekit build …` command line read without typer, and run as typer would end it.

`main` hands a `build` line here: `parse` turns a plain one into a `BuildRequest` for
`storekit.cli._build.run`, the function the typer command (`storekit.cli.build`) calls too, so what
the command does is defined once; importing typer and making its command cost about 40 ms, a tenth
of building a chain of 20 derivations. A plain line is the command name, targets and the options in
`OPTIONS`, each spelt `--name VALUE`, `--name=VALUE`, `-x VALUE` or `-xVALUE`, with values that need
no conversion rules: digits for numbers, nothing that starts with `-`. Anything else (`--help`, an
unknown or misspelt option, `--`, `-kq`, `-j -1`, no target) gets None, and typer, which owns the
messages. `tests/cli/test_cli_build_fast.py` checks that `OPTIONS` are the typer command's options.
"""

from __future__ import annotations

import os
import sys

from storekit.cli._build import BuildRequest, echo, run

TYPE_CHECKING = False  # no `typing` at run time: every `storekit build` starts here
if TYPE_CHECKING:
    from typing import Any

#: Kinds of values: a flag, a string, a list of strings (repeatable), digits (`int0`: >= 0, `int1`:
#: >= 1), a non-negative decimal number.
FLAG, TEXT, TEXTS, INT0, INT1, SECONDS = "flag", "text", "texts", "int0", "int1", "seconds"

#: Every spelling of every option of `storekit build`: (BuildRequest field, kind).
OPTIONS: dict[str, tuple[str, str]] = {
    "--store": ("store", TEXT),
    "--jobs": ("jobs", INT0),
    "--max-jobs": ("jobs", INT0),
    "-j": ("jobs", INT0),
    "--builders": ("builders", TEXT),
    "--keep-going": ("keep_going", FLAG),
    "-k": ("keep_going", FLAG),
    "--keep-failed": ("keep_failed", FLAG),
    "-K": ("keep_failed", FLAG),
    "--sandbox-path": ("sandbox_path", TEXTS),
    "--substituters": ("substituters", TEXT),
    "--trusted-public-keys": ("trusted_public_keys", TEXT),
    "--no-check-sigs": ("no_check_sigs", FLAG),
    "--no-sandbox": ("no_sandbox", FLAG),
    "--timeout": ("timeout", SECONDS),
    "--cores": ("cores", INT1),
    "--print-build-logs": ("print_build_logs", FLAG),
    "-L": ("print_build_logs", FLAG),
    "--out-link": ("out_link", TEXT),
    "-o": ("out_link", TEXT),
    "--no-out-link": ("no_out_link", FLAG),
    "--dry-run": ("dry_run", FLAG),
    "--check": ("check", FLAG),
    "--quiet": ("quiet", FLAG),
    "-q": ("quiet", FLAG),
    "--json": ("as_json", FLAG),
}


def parse(args: list[str]) -> BuildRequest | None:
    """The request of a plain `build …` line (`args` after the program name), else None (typer's)."""
    if args[:1] != ["build"]:
        return None
    values: dict[str, Any] = {}
    targets: list[str] = []
    rest = iter(args[1:])
    for arg in rest:
        if not arg.startswith("-"):
            if not arg:
                return None
            targets.append(arg)
            continue
        name, value = _split(arg)
        spec = OPTIONS.get(name)
        if spec is None:
            return None
        dest, kind = spec
        if kind == FLAG:
            if value is not None:
                return None
            values[dest] = True
            continue
        if value is None:
            value = next(rest, None)
        converted = _convert(kind, value)
        if converted is None:
            return None
        values[dest] = [*values.get(dest, []), converted] if kind == TEXTS else converted
    return BuildRequest(targets, **values) if targets else None


def _split(arg: str) -> tuple[str, str | None]:
    """`--name=value` and `-xVALUE` as (name, value); a lone option as (name, None)."""
    if arg.startswith("--"):
        name, eq, value = arg.partition("=")
        return name, value if eq else None
    return arg[:2], arg[2:] or None


def _convert(kind: str, value: str | None) -> object:
    """`value` as `kind` wants it, or None when it takes typer's rules (or its error) to say."""
    if value is None or value.startswith("-"):
        return None
    if kind in (TEXT, TEXTS):
        return value
    if not value.isascii():  # `int()` and `float()` take other digits too; typer's rules decide
        return None
    if kind == SECONDS:
        return float(value) if value.replace(".", "", 1).isdigit() else None
    if not value.isdigit():
        return None
    number = int(value)
    return number if kind == INT0 or number >= 1 else None


def run_plain(request: BuildRequest) -> None:
    """`run`, ending as typer's standalone mode ends a command: Ctrl-C (or SIGTERM, which `main` makes
    one) exits 130 without a message, end of input prints `Aborted!`, a closed stdout exits 1."""
    import errno

    try:
        run(request)
    except KeyboardInterrupt:
        sys.exit(130)
    except EOFError:
        echo("", err=True)
        echo("Aborted!", err=True)
        sys.exit(1)
    except OSError as e:
        if e.errno != errno.EPIPE:
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)  # nothing more to say to a reader that has gone
        os.dup2(devnull, sys.stdout.fileno())
        os.dup2(devnull, sys.stderr.fileno())
        sys.exit(1)
