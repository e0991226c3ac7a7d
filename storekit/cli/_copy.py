"""What `storekit copy` does, without typer: `run` takes the command line's values as a `CopyRequest`.

The typer command (`storekit.cli.copy`) declares the options and their help and calls `run`; so does
`main` for a plain command line (`storekit.cli._copy_line`), read without importing typer (about
40 ms, a tenth of copying a thousand small paths from a cache: `python -m bench http`).
"""

from __future__ import annotations

from contextlib import ExitStack

from storekit.cli._plain import Request, echo, print_json, show_bytes
from storekit.cli._progress import progress_bar
from storekit.cli._stores import cli_config, opened_store, resolve_path
from storekit.errors import StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from storekit.config import Config
    from storekit.store.base import Store
    from storekit.transfer.copy import CopyResult

#: `CopyRequest`'s fields, in the typer command's order of parameters.
FIELDS = (
    "paths", "from_", "to", "substituters", "sign_key", "trusted_public_keys", "no_check_sigs", "jobs",
    "link", "quiet", "relocate", "as_json", "create_bucket",
)  # fmt: skip


class CopyRequest(Request):
    """The values of a `storekit copy` command line (names and defaults: the typer command's; `link`
    is the `LinkMode`'s value). A plain class, as `BuildRequest` is, for the same start-up."""

    __slots__ = FIELDS

    def __init__(
        self,
        paths: list[str],
        from_: list[str] | None = None,
        to: str | None = None,
        substituters: str | None = None,
        sign_key: list[str] | None = None,
        trusted_public_keys: str | None = None,
        no_check_sigs: bool = False,
        jobs: int = 4,
        link: str = "auto",
        quiet: bool = False,
        relocate: bool = False,
        as_json: bool = False,
        create_bucket: bool = False,
    ) -> None:
        self.paths = paths
        self.from_ = from_
        self.to = to
        self.substituters = substituters
        self.sign_key = sign_key
        self.trusted_public_keys = trusted_public_keys
        self.no_check_sigs = no_check_sigs
        self.jobs = jobs
        self.link = link
        self.quiet = quiet
        self.relocate = relocate
        self.as_json = as_json
        self.create_bucket = create_bucket


def run(r: CopyRequest) -> None:
    """Copy the closures of `r.paths` from the source store(s) to the destination."""
    from storekit.store.binary_cache import read_secret_key
    from storekit.store.link import LinkMode
    from storekit.store.substituters import SignaturePolicy, Substituters, is_untrusted_source
    from storekit.transfer.copy import copy_closure, refuse_default_cache_store_dir

    specs = [*(r.from_ or []), *(r.substituters or "").split()]
    to = r.to
    if not specs and to is None:
        raise StoreError("give --from SRC and/or --to DST (the other defaults to your store)")
    if r.create_bucket:
        if not (to or "").startswith("s3://"):
            raise StoreError("--create-bucket is for an s3://BUCKET?… destination (--to)")
        to = f"{to}{'&' if '?' in (to or '') else '?'}create-bucket=true"
    config = cli_config()
    keys = [read_secret_key(f) for f in (r.sign_key if r.sign_key is not None else config.secret_key_files)]
    with ExitStack() as stack:
        chosen: list[str | None] = [*specs] or [None]  # no source named: your store
        sources, dst = _open_stores(stack, chosen, to, config)
        src: Store = sources[0] if len(sources) == 1 else Substituters(sources)
        if not r.relocate:
            refuse_default_cache_store_dir(src, dst)
        wanted = [resolve_path(src, p) for p in r.paths]
        require = not r.no_check_sigs and (bool(r.trusted_public_keys) or is_untrusted_source(src))
        trusted = [r.trusted_public_keys or "", *config.trusted_public_keys]
        policy = SignaturePolicy.from_text(trusted, require_sigs=require)
        bar = stack.enter_context(progress_bar(r.quiet or r.as_json, desc="copying"))
        if r.relocate and src.store_dir != dst.store_dir:
            from storekit.transfer.relocating import relocating_copy

            result = relocating_copy(src, dst, wanted, policy=policy, progress=bar)
        else:
            result = copy_closure(
                src,
                dst,
                wanted,
                policy=policy,
                sign_keys=keys,
                jobs=r.jobs,
                link=LinkMode(r.link),
                progress=bar,
            )
    _report(result, dst.uri, r.quiet, r.as_json)


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
        print_json(result_json(result, to))
        return
    print_relocated(result)
    if not quiet:
        echo(
            f"copied {_paths(len(result.copied))} ({show_bytes(result.nar_bytes)}) to '{to}'; "
            f"{len(result.already_valid)} already there",
            err=True,
        )


def _paths(n: int) -> str:
    return f"{n} path" if n == 1 else f"{n} paths"


def result_json(result: CopyResult, to: str, **more: object) -> dict[str, object]:
    """`--json`'s document: {to, copied, alreadyValid, narBytes}, then `more` (a command's own keys)
    and, when paths moved, relocated."""
    document: dict[str, object] = {
        "to": to,
        "copied": [str(p) for p in result.copied],
        "alreadyValid": [str(p) for p in result.already_valid],
        "narBytes": result.nar_bytes,
        **more,
    }
    if result.relocated:
        document["relocated"] = relocated_json(result)
    return document


def relocated_json(result: CopyResult) -> dict[str, str]:
    """`{old: new}` for each path asked for, in the order asked."""
    return {str(old): str(new) for old, new in result.relocated}


def print_relocated(result: CopyResult) -> None:
    """`old -> new` on stdout for each path asked for, as `nix-build` prints its outputs: the result,
    so printed even with --quiet (which silences the progress and the summary on stderr)."""
    for old, new in result.relocated:
        echo(f"{old} -> {new}")
