"""`storekit hash`: Compute hashes of files and paths the way `nix hash` does."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from storekit.cli._fast import render
from storekit.hashing import Base, Hash
from storekit.nar.fs import hash_file, hash_path

NAME = "hash"
HELP = "Compute hashes of files and paths the way `nix hash` does."
app = typer.Typer(no_args_is_help=True)

_BASE_KEY = "storekit.hash.base"


def _base_flag(base: Base) -> typer.models.OptionInfo:
    """A `--base16`-style flag; as in Nix, the last one given wins (callbacks run in command-line order)."""

    def remember(ctx: typer.Context, value: bool) -> bool:
        if value:
            ctx.meta[_BASE_KEY] = base
        return value

    flag = {Base.NIX32: "--base32"}.get(base, f"--{base.value}")
    what = {Base.NIX32: "base-32 (Nix-specific)", Base.SRI: "SRI"}.get(
        base, base.value.replace("base", "base-")
    )
    option: typer.models.OptionInfo = typer.Option(
        flag, callback=remember, help=f"Print the hash in {what} format."
    )
    return option


Base16 = Annotated[bool, _base_flag(Base.BASE16)]
Base32 = Annotated[bool, _base_flag(Base.NIX32)]
Base64 = Annotated[bool, _base_flag(Base.BASE64)]
Sri = Annotated[bool, _base_flag(Base.SRI)]
Algo = Annotated[
    str,
    typer.Option("--type", metavar="HASH-ALGO", help="md5, sha1, sha256, sha512 or blake3 (Nix >= 2.27)."),
]
Paths = Annotated[list[Path], typer.Argument(help="Paths to hash.", show_default=False)]
Json = Annotated[bool, typer.Option("--json", help="Print [{path, hash}] as JSON, in the chosen format.")]


def _print(ctx: typer.Context, paths: list[Path], hashes: list[Hash], as_json: bool) -> None:
    base: Base = ctx.meta.get(_BASE_KEY, Base.SRI)
    shown = [h.format(base, prefix=False) for h in hashes]
    typer.echo(render([str(p) for p in paths], shown, as_json), nl=False)


@app.command("path")
def path_command(
    ctx: typer.Context,
    paths: Paths,
    algo: Algo = "sha256",
    base16: Base16 = False,
    base32: Base32 = False,
    base64: Base64 = False,
    sri: Sri = False,
    as_json: Json = False,
) -> None:
    """Print the hash of the NAR serialisation of each path, like `nix hash path`."""
    _print(ctx, paths, [hash_path(p, algo)[0] for p in paths], as_json)


@app.command("file")
def file_command(
    ctx: typer.Context,
    paths: Paths,
    algo: Algo = "sha256",
    base16: Base16 = False,
    base32: Base32 = False,
    base64: Base64 = False,
    sri: Sri = False,
    as_json: Json = False,
) -> None:
    """Print the hash of each file's contents, like `nix hash file`."""
    _print(ctx, paths, [hash_file(p, algo) for p in paths], as_json)
