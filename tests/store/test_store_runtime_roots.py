"""Runtime roots: what running processes use survives a GC, as with Nix; once they exit, it goes.

Real processes hold the paths: one runs a program copied into the store (its `exe`), one has a
store file open (an `fd`), one sits in a store directory (its `cwd`), one names a path only in its
environment. Real Nix, collecting the same store, keeps the same paths.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storekit.store.gc import collect_garbage
from storekit.store.local import LocalStore
from storekit.store.runtime_roots import find_runtime_roots, scan, store_path_pattern
from storekit.store.specs import local_spec_for
from tests.nixoracle import NixStore

HASH = "0" * 31 + "1"


def test_scan_finds_store_paths_where_nix_looks_for_them() -> None:
    pattern = store_path_pattern(["/opt/store", "/srv/real/store"])
    environ = f"HOME=/root\0LIB=/opt/store/{HASH}-lib-1.0/lib:/usr/lib\0X=/srv/real/store/{HASH}-x\0".encode()
    # like Nix's regex: a match ends where the base name does
    assert scan(environ, pattern) == {f"/opt/store/{HASH}-lib-1.0", f"/srv/real/store/{HASH}-x"}
    maps = f"7f00-7f01 r-xp 00000000 fe:01 42  /opt/store/{HASH}-libc-2.36/lib/libc.so.6 (deleted)\n"
    assert scan(maps.encode(), pattern) == {f"/opt/store/{HASH}-libc-2.36"}
    assert scan(b"/opt/storex/" + HASH.encode() + b"-no /opt/store/.links/abc", pattern) == set()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    s = LocalStore(local_spec_for(str(tmp_path / "store")))
    yield s
    s.close()


def _hold(store: LocalStore, tmp_path: Path) -> tuple[dict[str, str], list[subprocess.Popen[bytes]]]:
    """Four unrooted paths, each used by a running process in one of the ways Nix checks."""
    prog = tmp_path / "prog"
    (prog / "bin").mkdir(parents=True)
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", prog / "bin" / "sleep")
    d = tmp_path / "dir"
    d.mkdir()
    (d / "f").write_text("a directory to sit in\n")
    paths = {
        "exe": str(store.add_path(str(prog), name="prog")),
        "fd": str(store.add_text("open-file", b"held open\n")),
        "cwd": str(store.add_path(str(d), name="dir")),
        "environ": str(store.add_text("in-env", b"named in an environment\n")),
        "unused": str(store.add_text("unused", b"nobody uses me\n")),
    }
    hold_open = f"import time; f = open({paths['fd']!r}); print('ready', flush=True); time.sleep(600)"
    procs = [
        subprocess.Popen([paths["exe"] + "/bin/sleep", "600"]),
        subprocess.Popen([sys.executable, "-c", hold_open], stdout=subprocess.PIPE),
        subprocess.Popen(["sleep", "600"], cwd=paths["cwd"]),
        subprocess.Popen(["sleep", "600"], env={"SOME_PATH": paths["environ"] + "/share"}),
    ]
    assert procs[1].stdout is not None and procs[1].stdout.readline() == b"ready\n"
    return paths, procs


def test_gc_keeps_what_running_processes_use(store: LocalStore, tmp_path: Path) -> None:
    paths, procs = _hold(store, tmp_path)
    try:
        found = {str(p): where for p, where in find_runtime_roots(store).items()}
        assert {k for k in paths if paths[k] in found} == {"exe", "fd", "cwd", "environ"}
        assert any(w.endswith("/exe") for w in found[paths["exe"]])
        assert any("/fd/" in w for w in found[paths["fd"]])
        result = collect_garbage(store)
        assert result.paths == (paths["unused"],)
        assert all(Path(paths[k]).exists() for k in ("exe", "fd", "cwd", "environ"))
    finally:
        for p in procs:
            p.kill()
            p.wait()
    gone = collect_garbage(store)
    assert sorted(gone.paths) == sorted(paths[k] for k in ("exe", "fd", "cwd", "environ"))


def test_a_store_elsewhere_is_seen_through_its_real_directory(tmp_path: Path) -> None:
    """With `real=`, processes show the real location; the path is still the logical one."""
    spec = local_spec_for(
        "/opt/storekit-test-store", state_dir=str(tmp_path / "var"), real_dir=str(tmp_path / "r")
    )
    store = LocalStore(spec)
    try:
        held = store.add_text("held", b"by a cwd\n")
        d = tmp_path / "d"
        d.mkdir()
        inside = store.add_path(str(d), name="inside")
        proc = subprocess.Popen(["sleep", "600"], cwd=store.real_path(inside))
        try:
            assert inside in find_runtime_roots(store) and held not in find_runtime_roots(store)
            assert collect_garbage(store).paths == (str(held),)
        finally:
            proc.kill()
            proc.wait()
    finally:
        store.close()


def test_nix_keeps_the_same_paths(nix_store: NixStore, tmp_path: Path) -> None:
    """Real Nix's GC on the same store keeps what storekit counts as runtime roots, and drops the rest."""
    store = LocalStore(local_spec_for(nix_store.store_dir, state_dir=str(nix_store.state_dir)))
    try:
        paths, procs = _hold(store, tmp_path)
    finally:
        store.close()  # drops this process's temporary roots, which Nix would honour
    try:
        nix_store.run("nix-store", "--gc")
        assert not Path(paths["unused"]).exists()
        assert all(Path(paths[k]).exists() for k in ("exe", "fd", "cwd", "environ"))
    finally:
        for p in procs:
            p.kill()
            p.wait()
    nix_store.run("nix-store", "--gc")
    assert not any(Path(p).exists() for p in paths.values())
