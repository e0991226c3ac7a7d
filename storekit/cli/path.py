"""`storekit path`: Compute store paths for a store dir the way Nix does.

Each command prints what real Nix would give in a store whose store dir is `--store-dir` (default
`$NIX_STORE_DIR`, else `/nix/store`, as for Nix itself), without needing such a store to exist.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from storekit.cli._options import cli_store_dir, print_json, read_input
from storekit.errors import InvalidStorePath
from storekit.hashing import ALGORITHMS, Hash
from storekit.storepath import HASH_PART_LEN, FileIngestionMethod, StoreDir, StorePath

NAME = "path"
HELP = "Compute store paths for a store dir the way Nix does."
app = typer.Typer(no_args_is_help=True)

StoreDirOption = Annotated[
    str,
    typer.Option("--store-dir", envvar="NIX_STORE_DIR", help="The store dir the path is for."),
]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json", help="Print {path, storeDir, hashPart, name} as JSON (`source` adds narHash, narSize)."
    ),
]


@app.command("source")
def source(
    path: Annotated[Path, typer.Argument(help="File, directory or symlink to add.")],
    store_dir: StoreDirOption = "/nix/store",
    name: Annotated[str | None, typer.Option(help="Name in the store (default: PATH's base name).")] = None,
    as_json: JsonOption = False,
) -> None:
    """The path `nix-store --add PATH` gives (NAR sha256, no references)."""
    from storekit.nar.fs import hash_path

    nar_hash, size = hash_path(path)
    chosen = name if name is not None else path.absolute().name
    made = cli_store_dir(store_dir).make_source_path(chosen, nar_hash)
    _print(made, as_json, narHash=nar_hash.sri, narSize=size)


@app.command("fixed")
def fixed(
    algo: Annotated[str, typer.Argument(help=f"Hash algorithm: {', '.join(ALGORITHMS)}.")],
    hash: Annotated[str, typer.Argument(help="The hash, in any form Nix accepts.")],
    name: Annotated[str, typer.Argument(help="Name in the store.")],
    store_dir: StoreDirOption = "/nix/store",
    recursive: Annotated[bool, typer.Option(help="The hash is of the NAR, not of flat file bytes.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The path of a fixed output (like `nix-store --print-fixed-path [--recursive] ALGO HASH NAME`)."""
    method = FileIngestionMethod.RECURSIVE if recursive else FileIngestionMethod.FLAT
    content_hash = Hash.parse(hash, algo)
    _print(cli_store_dir(store_dir).make_fixed_output_path(name, method, content_hash), as_json)


@app.command("text")
def text(
    name: Annotated[str, typer.Argument(help="Name in the store.")],
    file: Annotated[str, typer.Argument(help="File holding the contents ('-' for stdin).")],
    store_dir: StoreDirOption = "/nix/store",
    ref: Annotated[
        list[str] | None, typer.Option("--ref", help="A store path the text refers to (repeatable).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The path of `builtins.toFile NAME contents` (references come from the string's context)."""
    sd = cli_store_dir(store_dir)
    contents = read_input(file)
    refs = [sd.parse_path(r) for r in ref or []]
    _print(sd.make_text_path(name, Hash.of(contents), refs), as_json)


def _print(path: StorePath, as_json: bool, **extra: object) -> None:
    if as_json:
        fields: dict[str, object] = {**_fields(path, "")}
        del fields["rest"]
        print_json({**fields, **extra})
    else:
        typer.echo(path)


@app.command("parse")
def parse(
    path: Annotated[str, typer.Argument(help="A store path, or a path inside one.")],
    store_dir: Annotated[
        str | None, typer.Option("--store-dir", help="Store dir (default: guessed from PATH).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {path, storeDir, hashPart, name, rest} as JSON.")
    ] = False,
) -> None:
    """Split a store path into its store dir, hash part and name."""
    sd = cli_store_dir(store_dir) if store_dir is not None else _guess_store_dir(path)
    store_path, rest = sd.to_store_path(path)
    if as_json:
        print_json(_fields(store_path, rest))
        return
    typer.echo(f"store dir: {store_path.store_dir}")
    typer.echo(f"hash part: {store_path.hash_part}")
    typer.echo(f"name: {store_path.name}")
    if rest:
        typer.echo(f"inside: {rest}")


def _fields(store_path: StorePath, rest: str) -> dict[str, str]:
    return {
        "path": str(store_path),
        "storeDir": store_path.store_dir.path,
        "hashPart": store_path.hash_part,
        "name": store_path.name,
        "rest": rest,
    }


def _guess_store_dir(path: str) -> StoreDir:
    """The directory above the first component shaped like `<32 chars>-…`; parsing then checks it."""
    parts = os.path.normpath(path).split("/")
    for i, part in enumerate(parts):
        if i > 1 and len(part) > HASH_PART_LEN and part[HASH_PART_LEN] == "-":
            return StoreDir("/".join(parts[:i]))
    raise InvalidStorePath(f"no store path found in '{path}'; name its store dir with --store-dir")
