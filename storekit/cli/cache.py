"""`storekit cache`: serve a store as an HTTP binary cache; show what a cache says about itself."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from storekit.cli._options import StoreOption, open_cli_store, print_json
from storekit.errors import StoreError
from storekit.store.base import Store

NAME = "cache"
HELP = "Serve a store as an HTTP binary cache; inspect binary caches."
app = typer.Typer(no_args_is_help=True)


@app.command("serve")
def serve(
    store: StoreOption = None,
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port (0: pick a free one).")] = 5000,
    host: Annotated[str, typer.Option("--host", help="Address to bind (default: this machine only).")] = (
        "127.0.0.1"
    ),
    compression: Annotated[str, typer.Option("--compression", help="NAR compression: none or xz.")] = "none",
    sign_key: Annotated[
        str | None, typer.Option("--sign-key", help="Secret key file: sign narinfos as they are served.")
    ] = None,
    priority: Annotated[int, typer.Option("--priority", help="Priority advertised in nix-cache-info.")] = 30,
    relocate_from: Annotated[
        str | None,
        typer.Option(
            "--relocate-from",
            help="A store or cache with another store dir (in the forms --store takes): serve its paths "
            "relocated (keep-hash) into --store's store dir, on first request.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve a store over HTTP as a Nix binary cache until interrupted (Ctrl-C)."""
    from storekit.store.binary_cache import read_secret_key
    from storekit.store.serve import CacheServer

    keys = [read_secret_key(sign_key)] if sign_key else []
    opened: Store = open_cli_store(store)
    try:
        if relocate_from is not None:
            opened = _relocating(opened, relocate_from)
        server = CacheServer(opened, host, port, compression=compression, secret_keys=keys, priority=priority)
        with server:
            typer.echo(f"serving '{opened.uri}' as a binary cache at {server.url}")
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
    finally:
        opened.close()


def _relocating(backing: Store, upstream_spec: str) -> Store:
    """`backing` filled on demand with `upstream_spec`'s paths, relocated (keep-hash)."""
    from storekit.relocate.substitute import RelocatingStore

    upstream = open_cli_store(upstream_spec)
    try:
        return RelocatingStore(backing, upstream)
    except BaseException:
        upstream.close()
        raise


@app.command("info")
def info(
    uri: Annotated[str, typer.Argument(help="A binary cache: file:///dir?store=… or http(s)://host/….")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {storeDir, wantMassQuery, priority} as JSON.")
    ] = False,
) -> None:
    """Print a binary cache's nix-cache-info (store dir, mass query, priority)."""
    from storekit.store.binary_cache import BinaryCacheStore

    cache = open_cli_store(uri)
    try:
        if not isinstance(cache, BinaryCacheStore):
            raise StoreError(f"'{cache.uri}' is not a binary cache")
        cache_info = cache.cache_info
        if cache_info is None:
            raise StoreError(f"'{cache.uri}' has no nix-cache-info: it is not a binary cache (yet)")
        if as_json:
            fields = {
                "storeDir": cache_info.store_dir,
                "wantMassQuery": cache_info.want_mass_query,
                "priority": cache_info.priority,
            }
            print_json({k: v for k, v in fields.items() if v is not None})
        else:
            typer.echo(cache_info.to_text(), nl=False)
    finally:
        cache.close()
