"""`storekit nar`: Write, read, list and restore Nix archives (NAR)."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Annotated

import typer

from storekit.errors import FileSystemError, InvalidValue
from storekit.nar.fs import dump_path, restore
from storekit.nar.listing import cat, ls

NAME = "nar"
HELP = "Write, read, list and restore Nix archives (NAR)."
app = typer.Typer(no_args_is_help=True)

NarFile = Annotated[Path, typer.Argument(help="The NAR file to read.", show_default=False)]


@app.command("dump")
def dump_command(
    path: Annotated[Path, typer.Argument(help="File, directory or symlink to archive.")],
) -> None:
    """Write the NAR serialisation of PATH to standard output (like `nix-store --dump`)."""
    out = sys.stdout.buffer
    for chunk in dump_path(path):
        out.write(chunk)
    out.flush()


@app.command("restore")
def restore_command(dest: Annotated[Path, typer.Argument(help="Where to restore; must not exist.")]) -> None:
    """Restore the NAR read from standard input at DEST (like `nix-store --restore`)."""
    restore(sys.stdin.buffer, dest)


@app.command("ls")
def ls_command(
    nar: NarFile,
    path: Annotated[str, typer.Argument(help="Path inside the NAR ('/' is its root).")] = "/",
    recursive: Annotated[
        bool, typer.Option("--recursive", "-R", help="List subdirectories recursively.")
    ] = False,
    long: Annotated[bool, typer.Option("--long", "-l", help="Show type, size and link target.")] = False,
    directory: Annotated[
        bool, typer.Option("--directory", "-d", help="Show directories rather than their contents.")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON, as `nix nar ls --json` does.")] = False,
) -> None:
    """Show what is at PATH in a NAR file (like `nix nar ls`)."""
    if json and directory:
        raise InvalidValue("'--directory' is useless with '--json'")
    with _open(nar) as stream:
        listing = ls(stream, path, recursive)
    out = sys.stdout.buffer
    out.write(listing.json() if json else listing.text(long=long, directory=directory))
    out.flush()


@app.command("cat")
def cat_command(
    nar: NarFile,
    path: Annotated[str, typer.Argument(help="Path of a regular file inside the NAR.", show_default=False)],
) -> None:
    """Print the contents of the file at PATH in a NAR file (like `nix nar cat`)."""
    out = sys.stdout.buffer
    with _open(nar) as stream:
        for chunk in cat(stream, path):
            out.write(chunk)
    out.flush()


def _open(path: Path) -> io.BufferedReader:
    try:
        return path.open("rb")
    except OSError as e:
        raise FileSystemError(str(path), f"opening NAR file '{path}': {e.strerror}") from e
