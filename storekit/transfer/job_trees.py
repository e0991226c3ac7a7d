"""The trees behind job directories: one per set of root paths, shared by every job that asks for it.

A job tree's files are hard links, but its directories cannot be: each costs a block (4 KiB on ext4)
per job, and a real closure has a few directories per MiB (Debian's /usr/lib: 2.6), so trees of
their own for twenty jobs of one closure would add about twenty percent of it. The trees are
immutable, so jobs asking for the same paths share one: it lives in the node store's state dir,
`<state>/provision/<key>` (on the store's file system, so its files can be hard links), and each job
directory is a symlink to it, made atomically (a symlink renamed into place).

Who uses a tree is recorded beside it, `<key>.jobs/<hash of the job dir>` -> the job dir, and
checked under `<key>.lock`: a tree is deleted once no job dir that points at it remains (released,
or deleted by hand; `prune` finds those). Building holds the lock, so two jobs asking for the same
paths at once get one tree, built once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Sequence

from storekit import nixbase32
from storekit.fdtree import remove_tree
from storekit.store.link import LinkMode, link_tree
from storekit.store.local import LocalStore
from storekit.store.lock import lock_fd, open_lock_file
from storekit.store.specs import LocalStoreSpec, local_spec_for
from storekit.storepath import StorePath
from storekit.tempdirs import make_temp_dir

#: The file at the top of a tree saying what it holds and which node store it belongs to.
MANIFEST = ".storekit-provision.json"
#: Inside a tree's state dir: a link to each root path, which the node's indirect roots point at.
ROOTS_DIR = os.path.join("gcroots", "provision")


def job_spec(store_dir: str, top: str) -> LocalStoreSpec:
    """The store of a tree at `top`: the node's store dir, everything else under `top` as in a chroot."""
    usual = local_spec_for(store_dir)
    return local_spec_for(
        store_dir,
        state_dir=top + usual.state_dir,
        log_dir=top + usual.log_dir,
        real_dir=top + store_dir,
    )


def root_link(spec: LocalStoreSpec, path: StorePath) -> str:
    """A tree's own root for `path` (seen through `spec`), which the node's indirect root points at."""
    return os.path.join(spec.state_dir, ROOTS_DIR, path.base_name)


def trees_dir(node: LocalStore) -> str:
    return os.path.join(node.state_dir, "provision")


def tree_key(paths: Sequence[StorePath], link: LinkMode) -> str:
    """The name of the tree for these root paths made this way (same paths, same tree)."""
    text = "\n".join(sorted(map(str, set(paths)))) + f"\n{link.value}"
    return nixbase32.encode(hashlib.sha256(text.encode()).digest()[:20])


@contextlib.contextmanager
def locked(tree: str, *, wait: bool = True) -> Iterator[bool]:
    """Hold `<tree>.lock` exclusively; yields False (holding nothing) if not waiting and it is taken."""
    fd = open_lock_file(tree + ".lock")
    try:
        yield lock_fd(fd, exclusive=True, wait=wait)
    finally:
        os.close(fd)


def ensure_tree(node: LocalStore, tree: str, paths: tuple[StorePath, ...], link: LinkMode) -> int:
    """Build `tree` for the closures of `paths` unless it is there (caller holds its lock); its size."""
    with contextlib.suppress(FileNotFoundError), open(os.path.join(tree, MANIFEST), encoding="utf-8") as f:
        return int(json.load(f)["closureSize"])
    parent = os.path.dirname(tree)
    if os.path.lexists(tree):  # a tree without its manifest: a leftover of a killed delete
        remove_tree(tree)
    _remove_killed_builds(tree)
    temp = make_temp_dir(parent, _building_prefix(tree))
    try:
        size = _build(node, paths, temp, link)
        os.chmod(temp, 0o755)  # mkdtemp's 0700 would hide the tree from a job's unprivileged user
        os.rename(temp, tree)
    except BaseException:
        remove_tree(temp)
        raise
    return size


def _building_prefix(tree: str) -> str:
    """Where `tree` is built before it is renamed into place: `.<key>-<random>` beside it."""
    return f".{os.path.basename(tree)}-"


def _remove_killed_builds(tree: str) -> None:
    """Delete what a builder of `tree` killed mid-build left (the caller holds `<tree>.lock`, so no
    live process is building it: a builder holds that lock until its tree is renamed into place)."""
    parent, prefix = os.path.dirname(tree), _building_prefix(tree)
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(parent):
            if name.startswith(prefix):
                remove_tree(os.path.join(parent, name))


def _build(node: LocalStore, paths: tuple[StorePath, ...], top: str, link: LinkMode) -> int:
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
    os.makedirs(os.path.join(spec.state_dir, ROOTS_DIR))
    for path in paths:
        os.symlink(str(path), root_link(spec, path))
    manifest = {"version": 1, "store": node.uri, "paths": list(map(str, paths)), "closureSize": len(closure)}
    with open(os.path.join(top, MANIFEST), "x", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.chmod(spec.real_dir, 0o555)
    return len(closure)


# --- who uses a tree -----------------------------------------------------------------------------------


def _users_dir(tree: str) -> str:
    return tree + ".jobs"


def add_user(tree: str, job_dir: str) -> None:
    users = _users_dir(tree)
    os.makedirs(users, exist_ok=True)
    link = os.path.join(users, nixbase32.encode(hashlib.sha1(job_dir.encode()).digest()))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(link)
    os.symlink(job_dir, link)


def live_users(tree: str) -> list[str]:
    """The job dirs still pointing at `tree`; records of the others (deleted by hand) are dropped."""
    users = _users_dir(tree)
    try:
        names = sorted(os.listdir(users))
    except FileNotFoundError:
        return []
    live = []
    for name in names:
        record = os.path.join(users, name)
        job_dir = os.readlink(record)
        try:
            points_here = os.readlink(job_dir) == tree
        except OSError:
            points_here = False
        if points_here:
            live.append(job_dir)
        else:
            os.unlink(record)
    return live


def drop_if_unused(tree: str) -> bool:
    """Delete `tree` (caller holds its lock) when no job dir points at it; True if deleted."""
    if live_users(tree):
        return False
    if os.path.lexists(tree):
        gone = f"{tree}.deleting-{os.getpid()}-{os.urandom(4).hex()}"
        os.rename(tree, gone)  # out of sight at once; the deletion itself takes a while
        remove_tree(gone)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(_users_dir(tree))
    return True


def prune(node: LocalStore) -> int:
    """Delete the trees no job dir points at any more (skipping those in use right now); how many."""
    top = trees_dir(node)
    try:
        entries = sorted(os.listdir(top))
    except FileNotFoundError:
        return 0
    for name in entries:
        if ".deleting-" in name:  # a deletion that was killed half-way: nothing points there
            remove_tree(os.path.join(top, name))
    building = {n[1:].partition("-")[0] for n in entries if n.startswith(".") and "-" in n}
    for key in sorted(building):  # builds killed half-way (a live builder holds the lock: skipped)
        with locked(os.path.join(top, key), wait=False) as mine:
            if mine:
                _remove_killed_builds(os.path.join(top, key))
    names = [n for n in entries if not n.startswith(".") and "." not in n]
    dropped = 0
    for name in names:
        tree = os.path.join(top, name)
        with locked(tree, wait=False) as mine:
            if mine and drop_if_unused(tree):
                dropped += 1
    return dropped
