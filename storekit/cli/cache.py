"""`storekit cache`: serve a store as an HTTP binary cache; show what a cache says about itself; collect
its garbage."""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from storekit.cli._options import (
    StoreOption,
    TrustedKeysOption,
    cli_config,
    cli_store_dir,
    open_cli_store,
    opened_store,
    parse_size,
    print_json,
    read_input,
    resolve_path,
    show_bytes,
)
from storekit.errors import StoreError, StorekitError
from storekit.relocate.plan import Mode
from storekit.store.base import Store

if TYPE_CHECKING:
    from storekit.signing import SecretKey
    from storekit.transfer.cache_gc import GcResult
    from storekit.transfer.relocating import RelocatingStore

NAME = "cache"
HELP = "Serve a store as an HTTP binary cache; inspect binary caches; delete what no kept closure needs."
app = typer.Typer(no_args_is_help=True)


@app.command("serve")
def serve(
    store: StoreOption = None,
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port (0: pick a free one).")] = 5000,
    host: Annotated[str, typer.Option("--host", help="Address to bind (default: this machine only).")] = (
        "127.0.0.1"
    ),
    compression: Annotated[
        str | None,
        typer.Option(
            "--compression", help="NAR compression: none, xz or zstd (made on the fly).", show_default="none"
        ),
    ] = None,
    sign_key: Annotated[
        str | None, typer.Option("--sign-key", help="Secret key file: sign narinfos as they are served.")
    ] = None,
    priority: Annotated[int, typer.Option("--priority", help="Priority advertised in nix-cache-info.")] = 30,
    relocate_from: Annotated[
        str | None,
        typer.Option(
            "--relocate-from",
            help="A store or cache with another store dir (in the forms --store takes): serve its paths "
            "relocated into --store's store dir (see --relocate-mode).",
            show_default=False,
        ),
    ] = None,
    relocate_mode: Annotated[
        Mode,
        typer.Option(
            "--relocate-mode",
            help="keep-hash: same hash parts, relocated on a client's first request (clients must trust "
            "--sign-key); content-addressed: new names, trusted by Nix without signatures, relocated "
            "at start-up (--relocate) or through GET /relocate/<old hash part>.",
        ),
    ] = Mode.KEEP_HASH,
    relocate: Annotated[
        list[str] | None,
        typer.Option(
            "--relocate",
            help="With --relocate-from: an upstream path whose closure to relocate before serving "
            "(repeatable); prints 'old -> new' for each.",
            show_default=False,
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="Where content-addressed mode remembers old -> new names across restarts. "
            "Default: $XDG_CACHE_HOME/storekit/relocate-serve.",
            show_default=False,
        ),
    ] = None,
    upstream: Annotated[
        list[str] | None,
        typer.Option(
            "--upstream",
            metavar="URL",
            help="Serve a pull-through cache of this binary cache (http(s)://, file:// or s3://; repeatable, "
            "asked in the order given, the next when one fails) instead of --store; needs --cache-dir.",
            show_default=False,
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            metavar="DIR",
            help="With --upstream: the directory holding what was fetched (a file:// binary cache).",
            show_default=False,
        ),
    ] = None,
    max_size: Annotated[
        str | None,
        typer.Option(
            "--max-size",
            metavar="SIZE",
            help="With --upstream: evict least recently used paths to keep --cache-dir under this size "
            "(bytes, or a number with K, M, G or T).",
            show_default=False,
        ),
    ] = None,
    trusted_public_keys: TrustedKeysOption = None,
    no_check_sigs: Annotated[
        bool,
        typer.Option("--no-check-sigs", help="With --upstream: accept paths without a trusted signature."),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, help="With --upstream: seconds an upstream may stay silent."),
    ] = 30.0,
    log_requests: Annotated[
        bool, typer.Option("--log-requests", help="Log one line per request on stderr.")
    ] = False,
) -> None:
    """Serve a store (or, with --upstream, a pull-through cache) over HTTP as a Nix binary cache.

    Runs until interrupted (Ctrl-C).
    """
    from storekit.store.binary_cache import read_secret_key
    from storekit.transfer.serve import CacheServer

    keys = [read_secret_key(sign_key)] if sign_key else []
    if upstream or cache_dir is not None:
        if store is not None or relocate_from is not None or compression is not None:
            raise StoreError(
                "--upstream serves a pull-through cache: "
                "it takes no --store, --relocate-from or --compression"
            )
        if not upstream or cache_dir is None:
            raise StoreError("a pull-through cache needs both --upstream URL and --cache-dir DIR")
        pull = PullOptions(
            upstream,
            cache_dir,
            parse_size(max_size) if max_size else None,
            trusted_public_keys,
            no_check_sigs,
            timeout,
        )
        return _serve_pull_through(pull, host, port, priority, keys, log_requests)
    if max_size is not None:
        raise StoreError("--max-size is for a pull-through cache (--upstream … --cache-dir …)")
    opened: Store = open_cli_store(store)
    try:
        relocator = None
        if relocate_from is not None:
            opened = relocating = _relocating(opened, relocate_from, relocate_mode, state_dir)
            _relocate_at_start(relocating, relocate or [])
            relocator = relocating.relocate_hash_part
        elif relocate:
            raise StoreError("--relocate needs --relocate-from (the store the paths come from)")
        server = CacheServer(
            opened,
            host,
            port,
            compression=compression or "none",
            secret_keys=keys,
            priority=priority,
            relocator=relocator,
            log=_log,
            access_log=log_requests,
        )
        with server:
            typer.echo(f"serving '{opened.uri}' as a binary cache at {server.url}")
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
    finally:
        opened.close()


@dataclass(frozen=True, slots=True)
class PullOptions:
    upstreams: list[str]
    cache_dir: Path
    max_size: int | None
    trusted_public_keys: str | None
    no_check_sigs: bool
    timeout: float


def _serve_pull_through(
    options: PullOptions, host: str, port: int, priority: int, keys: list[SecretKey], access_log: bool
) -> None:
    """`cache serve --upstream …`: see storekit/transfer/pull_through.py."""
    from storekit.store.substituters import SignaturePolicy
    from storekit.transfer.cache_dir import CacheDir
    from storekit.transfer.pull_through import PullThrough, PullThroughServer
    from storekit.transfer.upstream import Upstream

    store_dir = cli_store_dir(_pull_store_dir(options))
    trusted = [options.trusted_public_keys or "", *cli_config().trusted_public_keys]
    policy = SignaturePolicy.from_text(trusted, require_sigs=not options.no_check_sigs)
    cache = CacheDir(
        str(options.cache_dir), store_dir, max_size=options.max_size, priority=priority, log=_log
    )
    try:
        upstreams = [Upstream(u, store_dir, timeout=options.timeout) for u in options.upstreams]
        pull = PullThrough(cache, upstreams, policy, secret_keys=keys, log=_log)
        server = PullThroughServer(pull, host, port, log=_log, access_log=access_log)
    except BaseException:
        cache.close()
        raise
    with server:  # closes the cache dir too
        names = ", ".join(f"'{u.uri}'" for u in upstreams)
        typer.echo(f"serving a pull-through cache of {names} in '{cache.root}' at {server.url}")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


def _pull_store_dir(options: PullOptions) -> str:
    """An upstream's `?store=`, else the cache dir's nix-cache-info, else the first upstream that says."""
    from storekit.transfer.cache_dir import cached_store_dir
    from storekit.transfer.upstream import open_transport, upstream_store_dir

    for spec in options.upstreams:
        explicit = open_transport(spec)[1]
        if explicit is not None:
            return explicit
    found = cached_store_dir(str(options.cache_dir)) if options.cache_dir.is_dir() else None
    for spec in options.upstreams:
        if found is not None:
            return found
        try:
            found = upstream_store_dir(spec, options.timeout)
        except StorekitError as e:
            _log(f"upstream '{spec}': {e}")
    if found is None:
        raise StoreError(
            "cannot tell the store dir of the pull-through cache: no upstream's nix-cache-info says it; "
            "add it to an upstream's URL (?store=/nix/store)"
        )
    return found


def _log(message: str) -> None:
    typer.echo(message, err=True)


def _relocating(backing: Store, upstream_spec: str, mode: Mode, state_dir: Path | None) -> RelocatingStore:
    """`backing` filled with `upstream_spec`'s paths, relocated in `mode`."""
    from storekit.transfer.relocating import RelocatingStore
    from storekit.transfer.relocation_index import RelocationIndex

    upstream = open_cli_store(upstream_spec)
    try:
        index = None
        if mode is Mode.CONTENT_ADDRESSED:
            key = hashlib.sha256(f"{upstream.uri}\0{backing.uri}".encode()).hexdigest()[:32]
            index = RelocationIndex((state_dir or _default_state_dir()) / f"{key}.json")
        return RelocatingStore(backing, upstream, mode=mode, index=index, log=_log)
    except BaseException:
        upstream.close()
        raise


def _default_state_dir() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache_home, "storekit", "relocate-serve")


def _relocate_at_start(store: RelocatingStore, paths: list[str]) -> None:
    """Relocate the closures of `paths` before serving; print `old -> new` so the user learns the names."""
    olds = [store.upstream.parse_path(p) for p in paths]
    for old, new in store.relocate_paths(olds).items():
        typer.echo(f"{old} -> {new}")
    for warning in store.warnings:
        _log(f"warning: {warning}")


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


@app.command("gc")
def gc(
    uri: Annotated[
        str,
        typer.Argument(
            help="The cache: file:///dir?store=…, s3://bucket?…, or a cache directory (a cache server's "
            "--cache-dir; its store dir is read from its nix-cache-info)."
        ),
    ],
    keep: Annotated[
        list[str] | None,
        typer.Option("--keep", help="A store path whose closure to keep (repeatable).", show_default=False),
    ] = None,
    keep_from: Annotated[
        str | None,
        typer.Option(
            "--keep-from",
            help="A file of store paths whose closures to keep, one a line ('-': stdin), such as "
            "`nix-store --query --requisites` prints.",
            show_default=False,
        ),
    ] = None,
    keep_since: Annotated[
        str | None,
        typer.Option(
            "--keep-since",
            help="Also keep the closures of paths whose narinfo or NAR was written within this duration "
            "(30d, 12h, 1w2d …), and any file that recent.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be deleted, with sizes; delete nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or per-file lines.")] = False,
) -> None:
    """Delete the narinfos and NARs of a binary cache that no kept closure needs."""
    from storekit.cli._progress import progress_bar
    from storekit.store.binary_cache import BinaryCacheStore
    from storekit.transfer.cache_gc import cache_files_for, collect_cache_garbage, parse_duration

    named = list(keep or [])
    if keep_from is not None:
        named += read_input(keep_from).decode("utf-8", "replace").split()
    if not named and keep_since is None:
        raise StoreError(
            "no path to keep: give --keep PATH, --keep-from FILE (not empty) or --keep-since DURATION; "
            "without them, everything would go"
        )
    since = None if keep_since is None else parse_duration(keep_since)
    with opened_store(_cache_uri(uri)) as cache:
        if not isinstance(cache, BinaryCacheStore):
            raise StoreError(f"'{cache.uri}' is not a binary cache")
        paths = [resolve_path(cache, p) for p in named]
        files = cache_files_for(cache.transport)
        with progress_bar(quiet or as_json or dry_run, desc="deleting") as bar:
            result = collect_cache_garbage(files, cache.store_dir, paths, keep_since=since,
                                           dry_run=dry_run, progress=bar)  # fmt: skip
    for warning in result.warnings:
        _log(f"warning: {warning}")
    _gc_report(result, quiet, as_json)


def _cache_uri(uri: str) -> str:
    """A cache directory as a `file://` URL for the store dir its `nix-cache-info` names; URLs as given."""
    from storekit.narinfo import NixCacheInfo
    from storekit.store.specs import FileCacheSpec

    if "://" in uri or not os.path.isfile(os.path.join(uri, "nix-cache-info")):
        return uri
    with open(os.path.join(uri, "nix-cache-info"), encoding="utf-8", errors="replace") as f:
        info = NixCacheInfo.parse(f.read(), os.path.join(uri, "nix-cache-info"))
    return str(FileCacheSpec(os.path.abspath(uri), info.store_dir or "/nix/store"))


def _gc_report(result: GcResult, quiet: bool, as_json: bool) -> None:
    if as_json:
        files = [{"name": d.name, "size": d.size, "kind": d.kind} for d in result.deleted]
        paths = [d.path for d in result.deleted if d.kind == "narinfo"]
        print_json({"dryRun": result.dry_run, "kept": len(result.plan.kept), "paths": paths,
                    "files": files, "bytesFreed": result.bytes_freed})  # fmt: skip
        return
    if not quiet:
        for d in result.deleted:
            if result.dry_run:
                typer.echo(f"would delete {d.name} ({d.size} bytes)")
            else:
                _log(f"deleted '{d.name}'")
    count = sum(d.kind == "narinfo" for d in result.deleted)
    verb, freed = ("would be deleted", "would be freed") if result.dry_run else ("deleted", "freed")
    typer.echo(
        f"{_plural(count, 'store path')} ({_plural(len(result.deleted), 'file')}) {verb}, "
        f"{show_bytes(result.bytes_freed)} {freed}; {_plural(len(result.plan.kept), 'store path')} kept"
    )


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
