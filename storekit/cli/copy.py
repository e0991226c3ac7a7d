"""`storekit copy`: copy closures between stores (local, overlay, `file://`, `http(s)://` and `s3://`
caches, and `ssh://` machines running `nix-store --serve`).

Like `nix copy`: the closure of each path is copied, paths the destination has are skipped, and paths
from a binary cache need a signature by a trusted key unless `--no-check-sigs`. Several `--from` (or
`--substituters "A B"`) form a substituter list: each path comes from the first that has it. The
config file's `trusted-public-keys` are trusted too, and its `secret-key-files` sign the copied paths
unless `--sign-key` names other keys. The config's `substituters` are not a default source: `copy`
reads from the store it is told to (or your store), never from the network behind the user's back.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING, Annotated

import typer

from storekit.cli._options import (
    FromOption,
    NoCheckSigsOption,
    PathsArgument,
    ToOption,
    TrustedKeysOption,
    cli_config,
    opened_store,
    print_json,
    resolve_path,
    show_bytes,
)
from storekit.cli._progress import progress_bar
from storekit.errors import StoreError
from storekit.store.base import Store
from storekit.store.link import LinkMode

if TYPE_CHECKING:
    from storekit.config import Config
    from storekit.transfer.copy import CopyResult

NAME = "copy"
HELP = "Copy closures between stores and binary caches (like `nix copy`)."


def copy(
    paths: PathsArgument,
    from_: FromOption = None,
    to: ToOption = None,
    substituters: Annotated[
        str | None,
        typer.Option(
            "--substituters", help="Space-separated source stores, in priority order (like --from)."
        ),
    ] = None,
    sign_key: Annotated[
        list[str] | None,
        typer.Option(
            "--sign-key",
            help="Secret key file: sign the copied paths (repeatable). "
            "Default: the config file's secret-key-files.",
        ),
    ] = None,
    trusted_public_keys: TrustedKeysOption = None,
    no_check_sigs: NoCheckSigsOption = False,
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
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print {to, copied, alreadyValid, narBytes} (and relocated: {old: new}) as JSON."
        ),
    ] = False,
    create_bucket: Annotated[
        bool, typer.Option("--create-bucket", help="An s3:// destination whose bucket is missing: create it.")
    ] = False,
) -> None:
    """Copy the closures of PATHs from the source store(s) to the destination."""
    from storekit.store.binary_cache import read_secret_key
    from storekit.store.substituters import SignaturePolicy, Substituters, is_untrusted_source
    from storekit.transfer.copy import copy_closure, refuse_default_cache_store_dir

    specs = [*(from_ or []), *(substituters or "").split()]
    if not specs and to is None:
        raise StoreError("give --from SRC and/or --to DST (the other defaults to your store)")
    if create_bucket:
        if not (to or "").startswith("s3://"):
            raise StoreError("--create-bucket is for an s3://BUCKET?… destination (--to)")
        to = f"{to}{'&' if '?' in (to or '') else '?'}create-bucket=true"
    config = cli_config()
    keys = [read_secret_key(f) for f in (sign_key if sign_key is not None else config.secret_key_files)]
    with ExitStack() as stack:
        chosen: list[str | None] = [*specs] or [None]  # no source named: your store
        sources, dst = _open_stores(stack, chosen, to, config)
        src: Store = sources[0] if len(sources) == 1 else Substituters(sources)
        if not relocate:
            refuse_default_cache_store_dir(src, dst)
        wanted = [resolve_path(src, p) for p in paths]
        require = not no_check_sigs and (bool(trusted_public_keys) or is_untrusted_source(src))
        trusted = [trusted_public_keys or "", *config.trusted_public_keys]
        policy = SignaturePolicy.from_text(trusted, require_sigs=require)
        bar = stack.enter_context(progress_bar(quiet or as_json, desc="copying"))
        if relocate and src.store_dir != dst.store_dir:
            from storekit.transfer.relocating import relocating_copy

            result = relocating_copy(src, dst, wanted, policy=policy, progress=bar)
        else:
            result = copy_closure(
                src, dst, wanted, policy=policy, sign_keys=keys, jobs=jobs, link=link, progress=bar
            )
    _report(result, dst.uri, quiet, as_json)


def _open_stores(
    stack: ExitStack, chosen: list[str | None], to: str | None, config: Config
) -> tuple[list[Store], Store]:
    """The sources and the destination; an `ssh://` one without `?store=` takes the store dir of the
    first other store (the far side must have the same store dir as the store it trades with)."""

    def is_ssh(spec: str | None) -> bool:
        return spec is not None and spec.startswith("ssh://")

    opened: dict[int, Store] = {}
    everything = [*chosen, to]
    for i, spec in enumerate(everything):
        if not is_ssh(spec):
            opened[i] = stack.enter_context(opened_store(spec, config))
    counterpart = next(iter(opened.values()), None)
    ssh_dir = counterpart.store_dir if counterpart is not None else None
    for i, spec in enumerate(everything):
        if is_ssh(spec):
            opened[i] = stack.enter_context(opened_store(spec, config, ssh_dir=ssh_dir))
    stores = [opened[i] for i in range(len(everything))]
    return stores[:-1], stores[-1]


def _report(result: CopyResult, to: str, quiet: bool, as_json: bool) -> None:
    if as_json:
        document: dict[str, object] = {
            "to": to,
            "copied": [str(p) for p in result.copied],
            "alreadyValid": [str(p) for p in result.already_valid],
            "narBytes": result.nar_bytes,
        }
        if result.relocated:
            document["relocated"] = relocated_json(result)
        print_json(document)
        return
    print_relocated(result)
    if not quiet:
        typer.echo(
            f"copied {_paths(len(result.copied))} ({show_bytes(result.nar_bytes)}) to '{to}'; "
            f"{len(result.already_valid)} already there",
            err=True,
        )


def _paths(n: int) -> str:
    return f"{n} path" if n == 1 else f"{n} paths"


def relocated_json(result: CopyResult) -> dict[str, str]:
    """`{old: new}` for each path asked for, in the order asked."""
    return {str(old): str(new) for old, new in result.relocated}


def print_relocated(result: CopyResult) -> None:
    """`old -> new` on stdout for each path asked for, as `nix-build` prints its outputs: the result,
    so printed even with --quiet (which silences the progress and the summary on stderr)."""
    for old, new in result.relocated:
        typer.echo(f"{old} -> {new}")
