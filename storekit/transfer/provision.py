"""Provisioning closures for jobs: present in a node's store, then materialised per job, then released.

A fleet node keeps one local store (the *node store*) that is filled from caches (`fetch`, through
`copy_closure`: substituters in priority order, signatures checked, parallel, progress in bytes). A
job does not use the node store directly: it gets a *job tree* of its own (`materialise`), a
directory laid out like a chroot of the node store (`DIR/<store dir>`, `DIR/<state dir>`), holding
only the job's closure and a Nix database registering exactly those paths. Its files are hard links
to the node store's (or reflinks, or copies, as `LinkMode` says), so twenty jobs of the same closure
cost twenty sets of directories and databases, not twenty copies of the data; directories are new
and canonical (0555). Real Nix opens it as `local?store=<store dir>&real=DIR/<store dir>&state=…`,
and a job sees it at the store dir through a bind mount of `DIR/<store dir>`.

A job sees all of its tree or none: it is built beside `DIR` under a temporary name and renamed into
place. While it exists, the node store keeps the closure: the tree's own `gcroots/provision/<name>`
links point at the roots, and the node store's `gcroots/auto` holds an indirect root to each (as
`nix-build`'s `result` links are held), so deleting the tree by any means drops the roots, and a
garbage collection in the node store (storekit's or Nix's) never takes a path a job is using.
`release` renames the tree away first (the job sees none of it), drops the roots, then deletes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from storekit.errors import StoreError
from storekit.fdtree import remove_tree
from storekit.progress import Progress
from storekit.store.base import Store
from storekit.store.gc import add_root, auto_root
from storekit.store.link import LinkMode, link_tree
from storekit.store.local import LocalStore
from storekit.store.specs import LocalStoreSpec, local_spec_for
from storekit.store.substituters import SignaturePolicy
from storekit.storepath import StorePath
from storekit.transfer.copy import DEFAULT_JOBS, CopyResult, check_store_dirs, copy_closure

#: The file at the top of a job tree saying what it holds and which node store roots it.
MANIFEST = ".storekit-provision.json"
ROOTS_DIR = os.path.join("gcroots", "provision")


@dataclass(frozen=True, slots=True)
class JobTree:
    """A materialised job tree: where it is, the store it is, and the paths it was made for."""

    dir: str
    spec: LocalStoreSpec
    paths: tuple[StorePath, ...]
    closure_size: int

    @property
    def uri(self) -> str:
        """How Nix (and storekit) open it where it lies: `local?store=…&state=…&log=…&real=…`."""
        return str(self.spec)


def job_spec(store_dir: str, top: str) -> LocalStoreSpec:
    """The store of a job tree at `top`: the node's store dir, everything else under `top` as in a chroot."""
    usual = local_spec_for(store_dir)
    return local_spec_for(
        store_dir,
        state_dir=top + usual.state_dir,
        log_dir=top + usual.log_dir,
        real_dir=top + store_dir,
    )


def fetch(
    src: Store | None,
    node: LocalStore,
    paths: Sequence[StorePath],
    *,
    policy: SignaturePolicy | None = None,
    jobs: int = DEFAULT_JOBS,
    link: LinkMode = LinkMode.AUTO,
    relocate: bool = False,
    progress: Progress | None = None,
) -> tuple[CopyResult, tuple[StorePath, ...]]:
    """Make the closures of `paths` present in `node` (from `src`, or already there); keep them alive.

    Returns what the copy did and the paths in the node store (their new names when relocated). The
    paths are temp roots of this process from before their validity is checked (Nix's order), so a
    concurrent garbage collection cannot take them before a job tree roots them.
    """
    if src is not None and src.store_dir != node.store_dir:
        if not relocate:
            check_store_dirs(src, node)  # raises, suggesting --relocate
        from storekit.transfer.relocating import relocating_copy

        assert policy is not None, "a relocating copy checks signatures as the source presents them"
        result = relocating_copy(src, node, paths, policy=policy, progress=progress)
        present = tuple(new for _, new in result.relocated)
        for path in present:
            node.add_temp_root(path)
        return result, present
    for path in paths:
        node.add_temp_root(path)
    if src is None:
        for path in paths:
            node.query_path_info(path)  # PathNotValid, naming the store, if the node lacks one
        return CopyResult(already_valid=tuple(sorted(node.closure(paths)))), tuple(paths)
    result = copy_closure(src, node, paths, policy=policy, jobs=jobs, link=link, progress=progress)
    return result, tuple(paths)


def materialise(
    node: LocalStore, paths: Sequence[StorePath], into: str, *, link: LinkMode = LinkMode.AUTO
) -> JobTree:
    """Make the job tree `into` for the closures of `paths` (valid in `node`), atomically, and root them.

    `into` must not exist (or be an empty directory, which the rename replaces). Nothing is left
    behind when this fails: the half-made tree is deleted and no root was registered.
    """
    into = os.path.abspath(into)
    _check_target(node, into)
    wanted = tuple(dict.fromkeys(paths))
    parent, name = os.path.split(into)
    os.makedirs(parent, exist_ok=True)
    temp = tempfile.mkdtemp(prefix=f".{name}.provision-", dir=parent)
    spec = job_spec(node.store_dir.path, into)
    try:
        closure = _build(node, wanted, temp, spec, link)
        os.chmod(temp, 0o755)  # mkdtemp's 0700 would hide the tree from a job's unprivileged user
        os.rename(temp, into)
    except BaseException:
        remove_tree(temp)
        raise
    for path in wanted:  # the tree is in place: an indirect root to each of its root links
        add_root(node, path, root_link(spec, path))
    return JobTree(into, spec, wanted, closure)


def root_link(spec: LocalStoreSpec, path: StorePath) -> str:
    """The job tree's own root for `path`, which the node store's indirect root points at."""
    return os.path.join(spec.state_dir, ROOTS_DIR, path.base_name)


def _check_target(node: LocalStore, into: str) -> None:
    for d in (node.store_dir.path, node.real_dir, node.state_dir):
        if into == d or into.startswith(d + "/") or d.startswith(into + "/"):
            raise StoreError(f"cannot provision into '{into}': it overlaps the node store's '{d}'")
    empty_dir = os.path.isdir(into) and not os.path.islink(into) and not os.listdir(into)
    if os.path.lexists(into) and not empty_dir:
        raise StoreError(
            f"cannot provision into '{into}': it exists; release it first "
            f"(storekit provision --release {into})"
        )


def _build(
    node: LocalStore, paths: tuple[StorePath, ...], top: str, final: LocalStoreSpec, link: LinkMode
) -> int:
    """Fill the tree at `top` (files linked from `node`), register the closure, write roots and manifest."""
    spec = job_spec(node.store_dir.path, top)
    closure = node.closure(paths)
    infos = [node.query_path_info(p) for p in sorted(closure)]
    os.makedirs(spec.real_dir)
    for info in infos:
        link_tree(node.real_path(info.path), os.path.join(spec.real_dir, info.path.base_name), link)
    with LocalStore(spec) as job:
        assert isinstance(job, LocalStore)
        job.register_valid_paths(infos)  # also makes the new directories canonical (0555, mtime 1)
    roots = os.path.join(spec.state_dir, ROOTS_DIR)
    os.makedirs(roots)
    for path in paths:
        os.symlink(str(path), os.path.join(roots, path.base_name))
    manifest = {
        "version": 1,
        "store": node.uri,
        "jobStore": str(final),
        "paths": [str(p) for p in paths],
        "roots": [root_link(final, p) for p in paths],
    }
    with open(os.path.join(top, MANIFEST), "x", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.chmod(spec.real_dir, 0o555)
    return len(closure)


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a job tree's manifest says: the node store that roots it, and the root links."""

    store: str
    job_store: str
    paths: tuple[str, ...]
    roots: tuple[str, ...]


def read_manifest(into: str) -> Manifest:
    """The manifest of the job tree `into`; a StoreError when `into` is not one `materialise` made."""
    file = os.path.join(into, MANIFEST)
    try:
        with open(file, encoding="utf-8") as f:
            data = json.load(f)
        return Manifest(
            str(data["store"]),
            str(data["jobStore"]),
            tuple(map(str, data["paths"])),
            tuple(map(str, data["roots"])),
        )
    except FileNotFoundError:
        if not os.path.lexists(into):
            raise StoreError(f"there is no job tree at '{into}' (released already?)") from None
        why = f"'{into}' is not a job tree made by `storekit provision --into` (it has no {MANIFEST})"
        raise StoreError(why) from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreError(f"cannot read the job tree manifest '{file}': {e}") from e


def release(node: LocalStore, into: str) -> Manifest:
    """Take the job tree `into` away: renamed out of sight first, then its roots dropped, then deleted.

    Killed half-way, what is left is a renamed tree whose roots are dangling (any garbage collection
    drops them) or already gone; the job never sees a partial tree.
    """
    into = os.path.abspath(into)
    manifest = read_manifest(into)
    if manifest.store != node.uri:
        raise StoreError(f"job tree '{into}' is rooted in '{manifest.store}', not in '{node.uri}'")
    parent, name = os.path.split(into)
    gone = os.path.join(parent, f".{name}.release-{os.getpid()}-{os.urandom(4).hex()}")
    os.rename(into, gone)
    for link in manifest.roots:
        auto = auto_root(node, link)
        with contextlib.suppress(FileNotFoundError):
            if os.readlink(auto) == link:
                os.unlink(auto)
    remove_tree(gone)
    return manifest
