"""Provisioning closures for jobs: present in a node's store, then materialised for a job, then released.

A fleet node keeps one local store (the *node store*) that is filled from caches (`fetch`, through
`copy_closure`: substituters in priority order, signatures checked, parallel, progress in bytes). A
job does not use the node store directly: it gets a *job dir* (`materialise`) laid out like a chroot
of the node store (`DIR/<store dir>`, `DIR/<state dir>`), holding only the job's closure and a Nix
database registering exactly those paths. Its files are hard links to the node store's (or reflinks,
or copies, as `LinkMode` says), its directories new and canonical (0555). Real Nix opens it as
`local?store=<store dir>&real=TREE/<store dir>&state=TREE/<state dir>` (TREE: where DIR points),
and a job sees it at the store dir through a read-only bind mount of `DIR/<store dir>`. The tree
is shared by the jobs asking for the same paths (`job_trees`: directories cannot be hard links, and
would otherwise cost each job).

A job sees all of it or none: the tree is built under a temporary name and renamed into place, and
the job dir is a symlink to it, renamed into place too. While the job dir exists, the node store
keeps the closure: the tree's `gcroots/provision/<name>` links point at the roots, and the node
store's `gcroots/auto` holds an indirect root through the job dir to each (as `nix-build`'s
`result` links are held), so removing the job dir by any means drops its roots, and a garbage
collection in the node store (storekit's or Nix's) never takes a path a job is using. `release`
removes the job dir first (the job sees none of it), then its roots, then the tree if unused.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

from storekit.errors import StoreError
from storekit.progress import Progress
from storekit.store.base import Store
from storekit.store.gc import add_root, auto_root
from storekit.store.link import LinkMode
from storekit.store.local import LocalStore
from storekit.store.specs import LocalStoreSpec
from storekit.store.substituters import SignaturePolicy
from storekit.storepath import StorePath
from storekit.transfer.copy import DEFAULT_JOBS, CopyResult, check_store_dirs, copy_closure
from storekit.transfer.job_trees import (
    MANIFEST,
    add_user,
    drop_if_unused,
    ensure_tree,
    job_spec,
    locked,
    prune,
    root_link,
    tree_key,
    trees_dir,
)


@dataclass(frozen=True, slots=True)
class JobTree:
    """A job dir, the store of the tree it points at, the paths it was made for, their closure's size.

    `spec` names the tree by its own path, not through the job dir: Nix refuses a store dir whose
    path goes through a symlink.
    """

    dir: str
    spec: LocalStoreSpec
    paths: tuple[StorePath, ...]
    closure_size: int

    @property
    def uri(self) -> str:
        """How Nix (and storekit) open it where it lies: `local?store=…&state=…&log=…&real=…`."""
        return str(self.spec)


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
    """Make the job dir `into` for the closures of `paths` (valid in `node`), atomically, and root them.

    `into` must not exist (an empty directory, a mount point, is replaced). It becomes a symlink to
    the tree for these paths, built first if no job uses it yet. Nothing is left behind when this
    fails: a half-made tree is deleted, and no root was registered.
    """
    into = os.path.abspath(into)
    _check_target(node, into)
    wanted = tuple(dict.fromkeys(paths))
    for path in wanted:  # kept from now on against a concurrent GC, until the job dir roots them
        node.add_temp_root(path)
    os.makedirs(os.path.dirname(into), exist_ok=True)
    os.makedirs(trees_dir(node), exist_ok=True)
    prune(node)  # trees whose job dirs were deleted by hand: their files would pin deleted paths' data
    tree = os.path.join(trees_dir(node), tree_key(wanted, link))
    with locked(tree):
        size = ensure_tree(node, tree, wanted, link)
        add_user(tree, into)
        _symlink_into_place(tree, into)
    try:
        through_job_dir = job_spec(node.store_dir.path, into)
        for path in wanted:  # the job dir is in place: an indirect root through it to each root link
            add_root(node, path, root_link(through_job_dir, path))
    except BaseException:
        _take_away(node, into, tree, wanted)
        raise
    return JobTree(into, job_spec(node.store_dir.path, tree), wanted, size)


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


def _symlink_into_place(tree: str, into: str) -> None:
    parent, name = os.path.split(into)
    _remove_killed_symlinks(parent, name)
    temp = os.path.join(parent, f".{name}.provision-{os.getpid()}-{os.urandom(4).hex()}")
    os.symlink(tree, temp)
    try:
        if os.path.isdir(into) and not os.path.islink(into):
            os.rmdir(into)  # an empty mount point: a symlink cannot be renamed over a directory
        os.rename(temp, into)
    except BaseException:
        os.unlink(temp)
        raise


def _remove_killed_symlinks(parent: str, name: str) -> None:
    """Delete the temp symlinks of `into` left by provisions killed before their rename (their
    process is gone; a live one's is left alone)."""
    prefix = f".{name}.provision-"
    for entry in os.listdir(parent):
        pid = entry[len(prefix) :].partition("-")[0] if entry.startswith(prefix) else ""
        if pid.isdigit() and not _alive(int(pid)) and os.path.islink(os.path.join(parent, entry)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(parent, entry))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True
    return True


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a job dir's tree says: the node store it belongs to and the paths it was made for."""

    store: str
    paths: tuple[str, ...]


def read_manifest(into: str) -> Manifest:
    """The manifest of the tree behind the job dir `into`; a StoreError when it is not a job dir."""
    file = os.path.join(into, MANIFEST)
    try:
        with open(file, encoding="utf-8") as f:
            data = json.load(f)
        return Manifest(str(data["store"]), tuple(map(str, data["paths"])))
    except FileNotFoundError:
        if not os.path.lexists(into):
            raise StoreError(f"there is no job dir at '{into}' (released already?)") from None
        why = f"'{into}' is not a job dir made by `storekit provision --into` (it has no {MANIFEST})"
        raise StoreError(why) from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreError(f"cannot read the job tree manifest '{file}': {e}") from e


def release(node: LocalStore, into: str) -> Manifest:
    """Take the job dir `into` away at once, drop its roots, and delete its tree if no job uses it.

    Killed half-way, what is left is a tree no job dir points at (the next `provision` or `release`
    deletes it, `prune`) and roots that dangle (any garbage collection drops them).
    """
    into = os.path.abspath(into)
    manifest = read_manifest(into)
    tree = os.readlink(into) if os.path.islink(into) else ""
    if os.path.dirname(tree) != trees_dir(node):
        raise StoreError(f"job dir '{into}' belongs to the node store '{manifest.store}', not '{node.uri}'")
    _take_away(node, into, tree, [node.parse_path(text) for text in manifest.paths])
    prune(node)
    return manifest


def _take_away(node: LocalStore, into: str, tree: str, paths: Sequence[StorePath]) -> None:
    """Remove the job dir `into`, then its roots, then `tree` if no other job dir points at it."""
    spec = job_spec(node.store_dir.path, into)
    with locked(tree):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(into)
        for path in paths:
            link = root_link(spec, path)
            with contextlib.suppress(FileNotFoundError):
                if os.readlink(auto_root(node, link)) == link:
                    os.unlink(auto_root(node, link))
        drop_if_unused(tree)
