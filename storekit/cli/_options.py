"""What the command groups share: how a store is named and opened, how paths are named, how data prints.

Every command that works on a store takes `--store` (`copy`: `--from`/`--to`) with the same help text
and resolves it the same way, through `storekit.config.choose_store`: the option, `$STOREKIT_STORE`,
the config file's `store`, then the embedded default. A store set in the config file is therefore the
one every command uses, not only `nix-conf`.

Nothing heavy is imported here at module level: shell completion imports the command modules, and a
completion must answer in a blink.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, BinaryIO

import typer

# Naming and opening stores: typer-free, in `_stores` (`storekit build` runs without typer), taken from here
from storekit.cli._plain import print_json as print_json
from storekit.cli._plain import show_bytes as show_bytes
from storekit.cli._stores import cli_config as cli_config
from storekit.cli._stores import cli_store_dir as cli_store_dir
from storekit.cli._stores import local_store as local_store
from storekit.cli._stores import open_cli_store as open_cli_store
from storekit.cli._stores import opened_store as opened_store
from storekit.cli._stores import require_local as require_local
from storekit.cli._stores import resolve_path as resolve_path
from storekit.cli._stores import store_spec as store_spec
from storekit.errors import FileSystemError, StorekitError

STORE_FORMS = (
    "a store dir (/opt/store) or a URI (local?store=…&real=…, overlay?lower=…&upper=…, "
    "file:///dir?store=…, http(s)://host/…?store=…)"
)
DEFAULT_STORE = "$STOREKIT_STORE, else `store` in the config file, else ~/.local/share/storekit/store"
STORE_HELP = f"The store: {STORE_FORMS}. Default: {DEFAULT_STORE}."


# --- completion (cheap: one directory listing, no store opened) ----------------------------------------


def complete_store_path(ctx: typer.Context, incomplete: str) -> list[str]:
    """The store paths that start with what was typed, once it starts with the store dir.

    Listed from the store's real dir, so paths of a rootless store (`local?store=/opt/store&real=…`,
    whose files are not at /opt/store) complete too, and `.links`, locks and staging dirs do not show.
    Anything else (`result`, `./x.drv`, a path inside a store path) is left to the shell's own file
    completion, which typer installs as the fallback.
    """
    value = ctx.params.get("store")
    sources = ctx.params.get("from_")
    if value is None and isinstance(sources, list) and sources:
        value = sources[0]
    try:
        from storekit.store.specs import LocalStoreSpec

        spec = store_spec(value if isinstance(value, str) else None)
        if not isinstance(spec, LocalStoreSpec) or not incomplete.startswith(spec.store_dir):
            return []
        if "/" in incomplete[len(spec.store_dir) + 1 :]:
            return []
        names = os.listdir(spec.real_dir)
    except (StorekitError, OSError):
        return []
    found = (
        f"{spec.store_dir}/{n}" for n in names if len(n) > 33 and n[32] == "-" and not n.endswith(".lock")
    )
    return sorted(p for p in found if p.startswith(incomplete))


# --- options ------------------------------------------------------------------------------------------

StoreOption = Annotated[str | None, typer.Option("--store", help=STORE_HELP, show_default=False)]
FromOption = Annotated[
    list[str] | None,
    typer.Option(
        "--from",
        help=f"Source store ({STORE_FORMS}); repeat for substituters in priority order. "
        f"Default: {DEFAULT_STORE}.",
        show_default=False,
    ),
]
ToOption = Annotated[
    str | None,
    typer.Option("--to", help=f"Destination store, in the forms --from takes. Default: {DEFAULT_STORE}."),
]
PathsArgument = Annotated[
    list[str],
    typer.Argument(
        help="Store paths (or paths in them, or links to them).",
        autocompletion=complete_store_path,
        show_default=False,
    ),
]
PathArgument = Annotated[
    str,
    typer.Argument(
        help="A store path (or a path in it, or a link to it).",
        autocompletion=complete_store_path,
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (one document) instead of text.")]
KeepFailedOption = Annotated[
    bool,
    typer.Option("--keep-failed", "-K", help="Keep a failed build's directory (its path is printed)."),
]
TrustedKeysOption = Annotated[
    str | None,
    typer.Option(
        "--trusted-public-keys",
        help="'name:base64 …': keys whose signatures to accept, besides the config file's.",
    ),
]
NoCheckSigsOption = Annotated[
    bool, typer.Option("--no-check-sigs", help="Accept paths without a trusted signature.")
]


# --- input and output ---------------------------------------------------------------------------------


@contextmanager
def input_stream(file: str) -> Iterator[BinaryIO]:
    """`file` opened for reading, or stdin for '-'; a file that cannot be opened is a user error."""
    if file == "-":
        yield sys.stdin.buffer
        return
    try:
        f = open(file, "rb")  # noqa: SIM115 - closed below, after the caller is done
    except OSError as e:
        raise FileSystemError(file, f"cannot read '{file}': {e.strerror or e}") from e
    with f:
        yield f


def read_input(file: str) -> bytes:
    """The bytes of `file`, or of stdin for '-'."""
    with input_stream(file) as f:
        try:
            return f.read()
        except OSError as e:  # e.g. a directory
            raise FileSystemError(file, f"cannot read '{file}': {e.strerror or e}") from e


@contextmanager
def output_stream(file: str) -> Iterator[BinaryIO]:
    """`file` opened for writing; a file that cannot be created is a user error."""
    try:
        f = open(file, "wb")  # noqa: SIM115 - closed below, after the caller is done
    except OSError as e:
        raise FileSystemError(file, f"cannot write '{file}': {e.strerror or e}") from e
    with f:
        yield f


_SIZE_SUFFIXES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """A byte count as Nix takes one (`--max-freed 1G`): digits, then optionally K, M, G or T (x1024)."""
    digits, unit = (text[:-1], text[-1].upper()) if text[-1:].upper() in _SIZE_SUFFIXES else (text, "")
    if not digits.isdigit():
        raise typer.BadParameter(f"'{text}' is not a size: give bytes, or a number with K, M, G or T")
    return int(digits) * _SIZE_SUFFIXES.get(unit, 1)
