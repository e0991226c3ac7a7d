"""`storekit nix-store --serve [--write] [--store S]`: a storekit store as real Nix's ssh remote.

Nix runs `<remote-program> --serve --write [--store S]` on the far side of an `ssh://` store or a
`--builders` machine; with `remote-program=storekit nix-store` that is this command, speaking Nix's
serve protocol on stdin/stdout (`storekit.remote.server`). Only `--serve` is here: the rest of
`nix-store` is other storekit commands.

stdout carries the protocol and nothing else: before serving, the protocol gets its own copy of fd 1
and fd 1 is pointed at stderr, so a stray print or a child process cannot corrupt the stream; errors
and build logs go to stderr, which ssh carries back to the client.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Annotated

import typer

from storekit.cli._options import StoreOption, opened_store

if TYPE_CHECKING:
    from storekit.realise.runner import BuildOptions

NAME = "nix-store"
HELP = "Serve a store to real Nix over ssh: nix-store --serve [--write] (remote-program=storekit nix-store)."


def command(
    serve: Annotated[
        bool, typer.Option("--serve", help="Speak Nix's serve protocol on stdin/stdout (required).")
    ] = False,
    write: Annotated[
        bool, typer.Option("--write", help="Let the client add paths and build (Nix adds it).")
    ] = False,
    store: StoreOption = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", min=0, help="Kill a build after this many seconds (unless the client sets one)."
        ),
    ] = None,
    cores: Annotated[
        int | None, typer.Option("--cores", min=1, help="NIX_BUILD_CORES (default: all CPUs).")
    ] = None,
) -> None:
    """Serve the store to a Nix client on stdin/stdout (Nix's `nix-store --serve`)."""
    from storekit.errors import StorekitError
    from storekit.remote.server import ServeSession

    if not serve:
        raise StorekitError("storekit nix-store does only --serve (use the other storekit commands)")
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    options = _build_options(timeout, cores)
    try:
        with opened_store(store) as s, os.fdopen(os.dup(0), "rb") as stdin:
            log = os.fdopen(os.dup(2), "wb", buffering=0)
            session = ServeSession(s, stdin, proto_out, write_allowed=write, build_options=options, log=log)
            session.run()
    finally:
        # the client may be gone: what is left in the buffer goes nowhere, and that is no new error
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proto_out.close()


def _build_options(timeout: float | None, cores: int | None) -> BuildOptions:
    from storekit.realise.runner import BuildOptions

    return BuildOptions(timeout=timeout, cores=cores or os.cpu_count() or 1, host_env=dict(os.environ))
