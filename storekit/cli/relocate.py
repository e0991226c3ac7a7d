"""`storekit relocate`: move closures to a store with another store dir, rewriting them to live there.

Prints the new path of each PATH, one a line, in order. Warnings (long `#!` lines, places rewritten
under `--allow-unsafe`) go to stderr; refusals name every file and offset and add nothing.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Annotated

import typer

from storekit.cli._options import DEFAULT_STORE, STORE_FORMS, ToOption, cli_config, opened_store, resolve_path
from storekit.cli._progress import progress_bar
from storekit.errors import StoreError
from storekit.relocate import Mode, relocate

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
        bar = stack.enter_context(progress_bar(quiet, desc="relocating"))
        result = relocate(src, dst, wanted, mode=mode, allow_unsafe=allow_unsafe, progress=bar)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for p in wanted:
        typer.echo(str(result.paths[p]))
