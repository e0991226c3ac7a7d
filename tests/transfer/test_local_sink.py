"""Copying many paths into a local store (transfer/local_sink.py, store/install.py): runs of paths
registered in one transaction, a path lock held by another process waited for without holding any
other, and a failure leaving no path valid without its references and no staging leftovers."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from storekit.errors import StorekitError
from storekit.store.local import LocalStore
from storekit.store.lock import path_lock
from storekit.store.open import open_store
from storekit.store.specs import local_spec_for
from storekit.store.substituters import SignaturePolicy
from storekit.storepath import StorePath
from storekit.transfer.copy import copy_closure

STORE_DIR = "/opt/localsink/store"
NO_SIGS = SignaturePolicy(require_sigs=False)


def local(root: Path) -> LocalStore:
    return LocalStore(local_spec_for(STORE_DIR, state_dir=str(root / "var"), real_dir=str(root / "store")))


def chain_cache(tmp_path: Path, count: int = 30) -> tuple[str, list[StorePath]]:
    """A file:// cache of a chain of `count` text paths (each refers to the one before)."""
    paths: list[StorePath] = []
    with local(tmp_path / "src") as src:
        for i in range(count):
            paths.append(src.add_text(f"p{i}", f"path {i}\n".encode(), paths[-1:]))
        uri = f"file://{tmp_path / 'cache'}?store={STORE_DIR}&compression=zstd"
        with open_store(uri) as cache:
            copy_closure(src, cache, [paths[-1]])
    return uri, paths


def test_a_path_locked_by_another_process_is_waited_for(tmp_path: Path) -> None:
    """Path 10 of 30 is locked elsewhere (a flock on its lock file) for a while: the copy waits for it,
    alone, then finishes; every path is valid with its contents, and no staging dir is left."""
    uri, paths = chain_cache(tmp_path)
    dst = local(tmp_path / "dst")
    release = threading.Event()
    held = threading.Event()

    def hold() -> None:
        with path_lock(dst.real_path(paths[10])):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    timer = threading.Timer(0.5, release.set)
    timer.start()
    try:
        with open_store(uri) as src:
            result = copy_closure(src, dst, [paths[-1]], policy=NO_SIGS, jobs=4)
    finally:
        release.set()
        holder.join()
        timer.cancel()
    assert set(result.copied) == set(paths)
    for i, path in enumerate(paths):
        with open(dst.real_path(path), "rb") as f:
            assert f.read() == f"path {i}\n".encode()
        assert oct(os.lstat(dst.real_path(path)).st_mode & 0o777) == "0o444"
    assert sorted(n for n in os.listdir(tmp_path / "dst" / "store") if n != ".links") == sorted(
        p.base_name for p in paths
    )
    dst.close()


def test_a_corrupt_nar_midway_leaves_the_paths_before_it_valid_and_nothing_else(tmp_path: Path) -> None:
    """Path 20's NAR file is damaged: paths 0-19 are valid (their runs committed), 20-29 are not, the
    store dir holds exactly 0-19 and nothing staged."""
    uri, paths = chain_cache(tmp_path)
    with open_store(uri) as cache:
        narinfo = cache.lookup_narinfo(paths[20])  # type: ignore[attr-defined]
    nar = tmp_path / "cache" / narinfo.url
    nar.write_bytes(nar.read_bytes()[:-8] + b"XXXXXXXX")
    dst = local(tmp_path / "dst")
    with open_store(uri) as src, pytest.raises(StorekitError, match=paths[20].hash_part):
        copy_closure(src, dst, [paths[-1]], policy=NO_SIGS, jobs=4)
    assert dst.query_all_valid_paths() == set(paths[:20])
    assert sorted(n for n in os.listdir(tmp_path / "dst" / "store") if n != ".links") == sorted(
        p.base_name for p in paths[:20]
    )
    dst.close()


@pytest.mark.parametrize("leftover", ["file", "empty dir", "tree", "read-only tree"])
@pytest.mark.parametrize("kind", ["file", "dir"])
def test_an_unregistered_leftover_in_the_way_is_replaced(tmp_path: Path, leftover: str, kind: str) -> None:
    """What a killed add left at a path's place (not registered) gives way to the staged tree, whatever
    it is; the installed path has the staged contents and nothing of the leftover stays."""
    from storekit.nar.fs import hash_path
    from storekit.store.base import ValidPathInfo
    from storekit.store.install import Staged, install_staged_batch

    with local(tmp_path / "dst") as dst, dst.staging() as stage:
        tree = os.path.join(stage, "x")
        if kind == "file":
            Path(tree).write_text("new\n")
        else:
            os.mkdir(tree)
            Path(tree, "f").write_text("new\n")
        nar_hash, size = hash_path(tree)
        path = dst.store_dir.make_source_path("leftover-test", nar_hash)
        real = Path(dst.real_path(path))
        if leftover == "file":
            real.write_text("old\n")
        else:
            real.mkdir()
            if leftover != "empty dir":
                (real / "sub").mkdir()
                (real / "sub" / "old").write_text("old\n")
            if leftover == "read-only tree":
                (real / "sub").chmod(0o555)
                real.chmod(0o555)
        info = ValidPathInfo(path=path, nar_hash=nar_hash, nar_size=size)
        assert install_staged_batch(dst, [Staged(info, tree)]) == [True]
        assert dst.is_valid_path(path) and hash_path(str(real)) == (nar_hash, size)
    assert not any(name.endswith("-old") for name in os.listdir(dst.real_dir))


MOVE_AS_USER = """
import os, sys
from storekit.store.install import _move_canonical
root = sys.argv[1]
stage, store = os.path.join(root, "stage"), os.path.join(root, "store")
os.makedirs(os.path.join(stage, "tree", "sub"))
with open(os.path.join(stage, "tree", "sub", "f"), "w") as f:
    f.write("x")
with open(os.path.join(stage, "file"), "w") as f:
    f.write("y")
for p in (os.path.join(stage, "tree", "sub"), os.path.join(stage, "tree"), os.path.join(stage, "file")):
    os.chmod(p, 0o555 if os.path.isdir(p) else 0o444)
os.mkdir(store)
for name in ("tree", "file"):
    _move_canonical(os.path.join(stage, name), os.path.join(store, name))
    print(name, oct(os.lstat(os.path.join(store, name)).st_mode & 0o7777))
"""


def test_read_only_trees_move_into_place_for_a_user_who_is_not_root() -> None:
    """Moving a directory to another parent needs write permission on it (its `..` changes): for a
    user that is not root the rename is refused, and the read-only tree is made writable for the move
    only, then read-only again. A file moves as it is."""
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("needs root to run a second local user (nobody) with setpriv")
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="storekit-move-"))  # pytest's own tmp dir is root's alone
    try:
        os.chown(work, 65534, 65534)
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c"]
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        done = subprocess.run([*argv, MOVE_AS_USER, str(work)], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split("\n")[:2] == ["tree 0o555", "file 0o444"]
        assert (work / "store" / "tree" / "sub" / "f").read_text() == "x"
        assert not (work / "stage" / "tree").exists()
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(work)], check=False)
        shutil.rmtree(work, ignore_errors=True)
