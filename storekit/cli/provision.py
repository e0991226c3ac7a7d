"""`storekit provision`: a closure onto a node's store, and into a job's own read-only tree.

What nix-sidecar does for Kubernetes nodes, for any store dir: `--to` is the node store (local), `--from`
the caches to fill it from (substituters in priority order, signatures checked as `storekit copy`
does). `--into DIR` then gives one job its tree: only its closure, hard-linked from the node store,
appearing at once, and rooted in the node store until `--release DIR`. `--run COMMAND` does all three
around one job: the tree is made, COMMAND runs with it mounted read-only at the store dir (bubblewrap),
and the tree is released when COMMAND exits, whatever its status.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import ExitStack
from typing import TYPE_CHECKING, Annotated

import typer

from storekit.cli._copy import print_relocated, result_json
from storekit.cli._options import (
    STORE_FORMS,
    NoCheckSigsOption,
    TrustedKeysOption,
    cli_config,
    complete_store_path,
    opened_store,
    print_json,
    require_local,
    resolve_path,
    show_bytes,
)
from storekit.cli._progress import progress_bar
from storekit.errors import StoreError, StorekitError
from storekit.store.link import LinkMode

if TYPE_CHECKING:
    from storekit.transfer.copy import CopyResult
    from storekit.transfer.provision import JobTree

NAME = "provision"
HELP = "Make closures present in a node's store and give each job a read-only tree of them."


def provision(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Store paths whose closures to provision.",
            autocompletion=complete_store_path,
            show_default=False,
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="The node store (a local store). Default: your store.", show_default=False),
    ] = None,
    from_: Annotated[
        list[str] | None,
        typer.Option(
            "--from",
            help=f"A cache or store to fetch from ({STORE_FORMS}); repeat for substituters in priority "
            "order. Default: none (the paths must be in the node store).",
            show_default=False,
        ),
    ] = None,
    into: Annotated[
        str | None,
        typer.Option(
            "--into",
            help="Materialise the closures as a job tree at DIR (hard links into the node store, "
            "rooted there until --release DIR).",
            metavar="DIR",
        ),
    ] = None,
    release: Annotated[
        str | None,
        typer.Option(
            "--release", help="Remove the job tree DIR and drop its roots in the node store.", metavar="DIR"
        ),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="With --into: run COMMAND (with sh -c) where the job tree is mounted read-only at the "
            "store dir, then release the tree; exits with COMMAND's status.",
            metavar="COMMAND",
        ),
    ] = None,
    trusted_public_keys: TrustedKeysOption = None,
    no_check_sigs: NoCheckSigsOption = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parallel transfers.")] = 4,
    link: Annotated[
        LinkMode,
        typer.Option(
            "--link",
            help="Into the node store: auto (hard links), reflink, copy, stream; job trees: hard links "
            "(auto), reflinks, or copies.",
        ),
    ] = LinkMode.AUTO,
    relocate: Annotated[
        bool,
        typer.Option(
            "--relocate", help="A source of another store dir: relocate the closures into the node's."
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print what was copied and provisioned (with into, store) as JSON."),
    ] = False,
) -> None:
    """Provision the closures of PATHs in the node store (--to), from caches (--from), for a job (--into)."""
    if release is not None:
        if paths or from_ or into or run:
            raise StoreError("--release DIR takes no PATH, --from, --into or --run")
        _release(to, release, quiet, as_json)
        return
    if not paths:
        raise StoreError("give the store paths to provision (or --release DIR)")
    if run is not None and into is None:
        raise StoreError("--run needs --into DIR: the job tree to run COMMAND with")
    status = _provision(paths, to, from_, into, run, trusted_public_keys, no_check_sigs, jobs, link,
                        relocate, quiet, as_json)  # fmt: skip
    if status:
        raise typer.Exit(status)


def _provision(
    paths: list[str],
    to: str | None,
    from_: list[str] | None,
    into: str | None,
    run: str | None,
    trusted_public_keys: str | None,
    no_check_sigs: bool,
    jobs: int,
    link: LinkMode,
    relocate: bool,
    quiet: bool,
    as_json: bool,
) -> int:
    from storekit.store.base import Store
    from storekit.store.substituters import SignaturePolicy, Substituters, is_untrusted_source
    from storekit.transfer.provision import fetch, materialise

    config = cli_config()
    with ExitStack() as stack:
        node = require_local(stack.enter_context(opened_store(to, config)), "provision --to")
        sources = [stack.enter_context(opened_store(s, config)) for s in from_ or []]
        src: Store | None = None
        if sources:
            src = sources[0] if len(sources) == 1 else Substituters(sources)
        wanted = [resolve_path(src or node, p) for p in paths]
        require = not no_check_sigs and (bool(trusted_public_keys) or is_untrusted_source(src or node))
        trusted = [trusted_public_keys or "", *config.trusted_public_keys]
        policy = SignaturePolicy.from_text(trusted, require_sigs=require)
        with progress_bar(quiet or as_json, desc="provisioning") as bar:
            result, present = fetch(
                src, node, wanted, policy=policy, jobs=jobs, link=link, relocate=relocate, progress=bar
            )
        tree = materialise(node, present, into, link=link) if into is not None else None
        _report(result, present, node.uri, tree, quiet, as_json)
        if tree is None or run is None:
            return 0
        try:
            return _run_job(tree, run)
        finally:
            from storekit.transfer.provision import release

            release(node, tree.dir)


def _report(
    result: CopyResult, present: tuple[object, ...], to: str, tree: JobTree | None, quiet: bool, as_json: bool
) -> None:
    if as_json:
        document = result_json(result, to, paths=[str(p) for p in present])
        if tree is not None:
            document |= {"into": tree.dir, "store": tree.uri, "closureSize": tree.closure_size}
        print_json(document)
        return
    print_relocated(result)
    if quiet:
        return
    n = len(result.copied)
    typer.echo(
        f"copied {n} path{'' if n == 1 else 's'} ({show_bytes(result.nar_bytes)}) to '{to}'; "
        f"{len(result.already_valid)} already there",
        err=True,
    )
    if tree is not None:
        k = tree.closure_size
        typer.echo(
            f"provisioned {k} path{'' if k == 1 else 's'} into '{tree.dir}': store '{tree.uri}'", err=True
        )


def _release(to: str | None, into: str, quiet: bool, as_json: bool) -> None:
    from storekit.transfer.provision import read_manifest, release

    store = to if to is not None else read_manifest(os.path.abspath(into)).store
    with opened_store(store) as opened:
        node = require_local(opened, "provision --release")
        manifest = release(node, into)
    if as_json:
        print_json({"released": os.path.abspath(into), "store": node.uri, "paths": list(manifest.paths)})
    elif not quiet:
        n = len(manifest.paths)
        typer.echo(f"released '{os.path.abspath(into)}' ({n} root{'' if n == 1 else 's'} dropped)", err=True)


def _run_job(tree: JobTree, command: str) -> int:
    """COMMAND in a mount namespace where the job tree's store is, read-only, at the store dir.

    Only the job's closure is there; the rest of the host is where it always is. The job is told
    its store in $STOREKIT_STORE and $NIX_REMOTE (the store dir as seen inside, state in the tree).
    """
    from storekit.realise.runner import find_bwrap
    from storekit.realise.store_view import view_args

    store_dir, real_dir = tree.spec.store_dir, tree.spec.real_dir
    if os.path.isdir(store_dir):  # the usual node: mount the tree over the node's own store dir
        view = [
            "--unshare-user",
            "--die-with-parent",
            "--dev-bind",
            "/",
            "/",
            "--ro-bind",
            real_dir,
            store_dir,
        ]
    else:  # a store dir only the namespace has: the host mirrored around it, as `storekit run` does
        view = view_args(store_dir, real_dir, _listdir)
        assert view[-3:] == ["--bind", real_dir, store_dir]
        view[-3] = "--ro-bind"
    inside = f"local?store={store_dir}&state={tree.spec.state_dir}&log={tree.spec.log_dir}"
    env = dict(os.environ, STOREKIT_STORE=inside, NIX_REMOTE=inside)
    argv = [find_bwrap(), *view, "--chdir", os.getcwd(), "--", "/bin/sh", "-c", command]
    sys.stdout.flush()
    try:
        return subprocess.run(argv, env=env, check=False).returncode
    except OSError as e:
        raise StorekitError(f"cannot run '{argv[0]}': {e.strerror}") from e


def _listdir(path: str) -> list[tuple[str, str | None]]:
    try:
        with os.scandir(path) as entries:
            return [(e.name, os.readlink(e.path) if e.is_symlink() else None) for e in entries]
    except (FileNotFoundError, NotADirectoryError):
        return []
