"""Plain command lines read without typer, and run as typer's standalone mode would end them.

Importing typer (with click) and building storekit's commands costs about 40 ms, more than a
`storekit build` of something built, and a tenth of copying a thousand small paths. So `main`
hands the commands scripts run most (`build`: `_build_line`, `copy`: `_copy_line`) to a parser of
their own when the line is plain: the command name, positional arguments, and options from the
command's table, each spelt `--name VALUE`, `--name=VALUE`, `-x VALUE` or `-xVALUE`, with values
that need no conversion rules (digits for numbers, nothing that starts with `-`). Anything else
(`--help`, an unknown or misspelt option, `--`, `-kq`, `-j -1`) gets None, and typer, which owns
the messages. Each command's test checks that its table is the typer command's options.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # no `typing` at run time: every plain line starts here
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

#: Kinds of values: a flag, a string, a list of strings (repeatable), digits (`int0`: >= 0, `int1`:
#: >= 1), a non-negative decimal number.
FLAG, TEXT, TEXTS, INT0, INT1, SECONDS = "flag", "text", "texts", "int0", "int1", "seconds"


class Request:
    """The values of one command line (a subclass per command: `BuildRequest`, `CopyRequest`), its
    fields in `__slots__`. A plain class, not a dataclass: every plain line makes one before anything
    else, and `dataclasses` (with inspect, ast, dis) costs it more than the rest of its start-up.
    Equal by value, shown with its values; not hashable (lists inside)."""

    __slots__ = ()

    def _fields(self) -> tuple[str, ...]:
        return self.__slots__  # a subclass's: its fields, in its command's order

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields())

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, Request):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields())
        return f"{self.__class__.__name__}({shown})"


def parse(args: list[str], options: Mapping[str, tuple[str, str]]) -> tuple[dict[str, Any], list[str]] | None:
    """The option values (by destination) and positional arguments of `args` (after the command
    name), for a table of `options` (spelling -> (destination, kind)); None when it is not plain."""
    values: dict[str, Any] = {}
    positional: list[str] = []
    rest = iter(args)
    for arg in rest:
        if not arg.startswith("-"):
            if not arg:
                return None
            positional.append(arg)
            continue
        name, value = _split(arg)
        spec = options.get(name)
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
    return values, positional


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


def run_like_typer(command: Callable[[], None]) -> None:
    """`command()`, ending as typer's standalone mode ends a command: Ctrl-C (or SIGTERM, which `main`
    makes one) exits 130 without a message, end of input prints `Aborted!`, a closed stdout exits 1."""
    import errno

    try:
        command()
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


def echo(text: str, *, err: bool = False) -> None:
    """One line on stdout (or stderr), flushed, as `typer.echo` prints it: escape sequences are
    left out when the stream is not a terminal."""
    stream = sys.stderr if err else sys.stdout
    if "\x1b" in text and not stream.isatty():
        import re

        text = re.sub(r"\x1b\[[;?0-9]*[a-zA-Z]", "", text)
    stream.write(text + "\n")
    stream.flush()


def print_json(value: object) -> None:
    """storekit's own JSON: one indented document on stdout, newline-terminated.

    Commands that mirror a Nix command's JSON (`store info`, `build`, `nar ls`, `drv show`) print
    Nix's exact bytes instead.
    """
    import json

    echo(json.dumps(value, indent=2, ensure_ascii=False))


def show_bytes(n: int) -> str:
    """Nix's `showBytes`."""
    return f"{n / (1024 * 1024):.2f} MiB"
