"""`storekit store sign`: sign paths already in a store, like `nix store sign` (registered in `store`)."""

from __future__ import annotations

from typing import Annotated

import typer

from storekit.cli._options import PathsArgument, StoreOption, opened_store, resolve_path


def sign(
    paths: PathsArgument,
    key_file: Annotated[
        list[str],
        typer.Option(
            "--key-file",
            "-k",
            metavar="FILE",
            help="Secret key file (`storekit key generate`, `nix key generate-secret`); repeatable.",
            show_default=False,
        ),
    ],
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Sign the closures too.")] = False,
    store: StoreOption = None,
) -> None:
    """Sign paths already in a store (a local store or a binary cache), like `nix store sign`."""
    from storekit.store.binary_cache import read_secret_key
    from storekit.store.signatures import sign_paths

    keys = [read_secret_key(f) for f in key_file]
    with opened_store(store) as s:
        wanted = {resolve_path(s, p) for p in paths}
        if recursive:
            wanted = s.closure(wanted)
        added = sign_paths(s, wanted, keys)
    typer.echo(f"added {added} signature{'' if added == 1 else 's'}", err=True)
