"""`storekit copy`: copy closures between stores (local, overlay, `file://` and `http(s)://` caches).

Like `nix copy`: the closure of each path is copied, paths the destination has are skipped, and paths
from a binary cache need a signature by a trusted key unless `--no-check-sigs`. Several `--from` (or
`--substituters "A B"`) form a substituter list: each path comes from the first that has it. The
`trusted-public-keys` of the config file are trusted too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from storekit.cli.store import open_cli_store, resolve_path, show_bytes
from storekit.errors import StoreError
from storekit.store.base import Store
from storekit.store.link import LinkMode

if TYPE_CHECKING:
    from storekit.store.copy import CopyEvent

NAME = "copy"
HELP = "Copy closures between stores and binary caches (like `nix copy`)."


def copy(
    paths: Annotated[list[str], typer.Argument(help="Store paths to copy (with their closures).")],
    from_: Annotated[
        list[str] | None,
        typer.Option("--from", help="Source store spec; repeat for substituters in priority order."),
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Destination store spec.")] = None,
    substituters: Annotated[
        str | None, typer.Option("--substituters", help="Space-separated source store specs, in order.")
    ] = None,
    sign_key: Annotated[
        list[str] | None, typer.Option("--sign-key", help="Secret key file: sign the copied paths.")
    ] = None,
    trusted_public_keys: Annotated[
        str | None,
        typer.Option("--trusted-public-keys", help="'name:base64 …': keys whose signatures to accept."),
    ] = None,
    no_check_sigs: Annotated[
        bool, typer.Option("--no-check-sigs", help="Accept paths without a trusted signature.")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parallel transfers.")] = 4,
    link: Annotated[
        LinkMode,
        typer.Option("--link", help="Between local stores: auto (hard links), reflink, copy, stream."),
    ] = LinkMode.AUTO,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    relocate: Annotated[
        bool,
        typer.Option(
            "--relocate",
            help="When the store dirs differ, rewrite the closure for the destination's "
            "(content-addressed names, trusted without signatures).",
        ),
    ] = False,
) -> None:
    """Copy the closures of PATHs from the source store(s) to the destination."""
    from storekit.config import load_config
    from storekit.store.binary_cache import read_secret_key
    from storekit.store.copy import copy_closure
    from storekit.store.substituters import SignaturePolicy, Substituters, is_untrusted_source

    specs = [*(from_ or []), *(substituters or "").split()]
    if not specs and to is None:
        raise StoreError("give --from SRC and/or --to DST (the other defaults to your store)")
    keys = [read_secret_key(f) for f in sign_key or []]
    with ExitStack() as stack:
        sources = [stack.enter_context(_opened(s)) for s in specs] or [stack.enter_context(_opened(None))]
        src: Store = sources[0] if len(sources) == 1 else Substituters(sources)
        dst = stack.enter_context(_opened(to))
        wanted = [resolve_path(src, p) for p in paths]
        require = not no_check_sigs and (bool(trusted_public_keys) or is_untrusted_source(src))
        trusted = [trusted_public_keys or "", *load_config(os.environ).trusted_public_keys]
        policy = SignaturePolicy.from_text(trusted, require_sigs=require)
        bar = stack.enter_context(_progress_bar(quiet))
        result = copy_closure(
            src,
            dst,
            wanted,
            policy=policy,
            sign_keys=keys,
            jobs=jobs,
            link=link,
            progress=bar,
            relocate=relocate,
        )
    if not quiet:
        typer.echo(
            f"copied {len(result.copied)} paths ({show_bytes(result.nar_bytes)}) to '{dst.uri}'; "
            f"{len(result.already_valid)} already there",
            err=True,
        )


@contextmanager
def _opened(spec: str | None) -> Iterator[Store]:
    store = open_cli_store(spec)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _progress_bar(quiet: bool) -> Iterator[Callable[[CopyEvent], None] | None]:
    """A tqdm bar on stderr (only on a terminal) fed by copy's progress events."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    bars: list[Any] = []  # the bar, made once the first event tells the total

    def update(event: CopyEvent) -> None:
        if not bars:
            bars.append(
                tqdm(total=event.total_bytes, unit="B", unit_scale=True, desc="copying", file=sys.stderr)
            )
        bars[0].set_postfix_str(event.path.name[:40], refresh=False)
        bars[0].update(event.nar_size)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()
