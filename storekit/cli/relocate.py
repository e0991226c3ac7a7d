"""`storekit relocate`: move closures to a store with another store dir, rewriting them to live there.

Prints the new path of each PATH, one a line, in order. Warnings (long `#!` lines, places rewritten
under `--allow-unsafe`) go to stderr; refusals name every file and offset and add nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Annotated, Any

import typer

from storekit.cli._options import DEFAULT_STORE, STORE_FORMS, ToOption, cli_config, opened_store, resolve_path
from storekit.errors import StoreError
from storekit.relocate import Mode, Progress, relocate
from storekit.storepath import StorePath

NAME = "relocate"
HELP = (
    "Move closures to a store with another store dir, rewriting references (keep-hash or content-addressed)."
)


def relocate_command(
    paths: Annotated[list[str], typer.Argument(help="Store paths of SRC to relocate (with their closures).")],
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help=f"Source store ({STORE_FORMS}); its store dir is the old one. Default: {DEFAULT_STORE}.",
            show_default=False,
        ),
    ] = None,
    to: ToOption = None,
    mode: Annotated[
        Mode,
        typer.Option(
            "--mode",
            help="keep-hash: same hash part and name under the new store dir; content-addressed: "
            "Nix's make-content-addressed names, trusted by `nix store verify` without signatures.",
        ),
    ] = Mode.KEEP_HASH,
    allow_unsafe: Annotated[
        bool,
        typer.Option(
            "--allow-unsafe",
            help="Rewrite places that would have to grow inside binary data anyway (may break those files).",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Copy the closures of PATHs from SRC into DST, rewritten for DST's store dir; print the new paths."""
    if from_ is None and to is None:
        raise StoreError("give --from SRC and/or --to DST (the other defaults to your store)")
    config = cli_config()
    with ExitStack() as stack:
        src = stack.enter_context(opened_store(from_, config))
        dst = stack.enter_context(opened_store(to, config))
        wanted = [resolve_path(src, p) for p in paths]
        bar = stack.enter_context(_progress_bar(quiet))
        result = relocate(src, dst, wanted, mode=mode, allow_unsafe=allow_unsafe, progress=bar)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for p in wanted:
        typer.echo(str(result.paths[p]))


@contextmanager
def _progress_bar(quiet: bool) -> Iterator[Progress | None]:
    """A tqdm bar on stderr, only on a terminal."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    bars: list[Any] = []

    def update(path: StorePath, done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="B", unit_scale=True, desc="relocating", file=sys.stderr))
        bars[0].update(done - bars[0].n)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()
