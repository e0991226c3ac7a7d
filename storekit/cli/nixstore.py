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

from storekit.cli._options import StoreOption, TrustedKeysOption, cli_config, opened_store

if TYPE_CHECKING:
    from storekit.realise.runner import BuildOptions
    from storekit.remote.server import ServeSession

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
    substituters: Annotated[
        str | None,
        typer.Option(
            "--substituters",
            help="Space-separated stores to substitute from, when the client asks. Default: the config's.",
        ),
    ] = None,
    trusted_public_keys: TrustedKeysOption = None,
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
        with contextlib.ExitStack() as stack:
            s = stack.enter_context(opened_store(store))
            stdin = stack.enter_context(os.fdopen(os.dup(0), "rb"))
            log = os.fdopen(os.dup(2), "wb", buffering=0)
            session = ServeSession(s, stdin, proto_out, write_allowed=write, build_options=options, log=log)
            _add_substituters(session, stack, substituters, trusted_public_keys)
            session.run()
    finally:
        # the client may be gone: what is left in the buffer goes nowhere, and that is no new error
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proto_out.close()


def _build_options(timeout: float | None, cores: int | None) -> BuildOptions:
    from storekit.realise.runner import BuildOptions

    return BuildOptions(timeout=timeout, cores=cores or os.cpu_count() or 1, host_env=dict(os.environ))


def _add_substituters(
    session: ServeSession, stack: contextlib.ExitStack, specs: str | None, keys: str | None
) -> None:
    """The stores `QueryValidPaths` may substitute from, and whose signatures to believe (as
    `storekit build` decides: a binary cache needs a signature by a trusted key)."""
    from storekit.store.substituters import SignaturePolicy, Substituters, is_untrusted_source

    config = cli_config()
    names = (specs if specs is not None else " ".join(config.substituters)).split()
    if not names:
        return
    union = Substituters([stack.enter_context(opened_store(n, config)) for n in names])
    session.substituters = union
    trusted = [keys or "", *config.trusted_public_keys]
    session.policy = SignaturePolicy.from_text(trusted, require_sigs=is_untrusted_source(union))
