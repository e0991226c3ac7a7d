"""Several processes on one store: concurrent adds of the same path, and `kill -9` at any moment.

The children are real processes (`python -c …` opening the store by its spec), because the guarantees
are about flocks, renames and SQLite transactions between processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storekit.nar.fs import hash_path
from storekit.store.layout import STAGING_PREFIX
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for
from storekit.store.verify import verify_store

REPO = Path(__file__).parent.parent.parent

CHILD = """
import os, sys, time
from storekit.store.specs import parse_store_spec
from storekit.store.open import open_store
store = open_store(parse_store_spec(sys.argv[1]))
start = sys.argv[3]
while start and not os.path.exists(start):
    pass
print("ready", flush=True)
t = time.monotonic()
path = store.add_path(sys.argv[2])
text = store.add_text("user.txt", str(path).encode(), [path])
print(path, text, time.monotonic() - t, flush=True)
"""


def make_tree(root: Path, files: int = 200, big: int = 2 << 20) -> Path:
    for i in range(files):
        d = root / f"d{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_bytes(f"file {i}\n".encode() * (i + 1))
    (root / "big").write_bytes(os.urandom(big))
    (root / "d0" / "exe").write_bytes(b"#!/bin/sh\n")
    (root / "d0" / "exe").chmod(0o755)
    (root / "link").symlink_to("d0/exe")
    return root


def spawn(spec: str, src: Path, start: str = "") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, spec, str(src), start],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def open_store(root: Path) -> LocalStore:
    return LocalStore(local_spec_for(str(root / "store")))


def test_concurrent_adds_of_the_same_path_both_succeed_with_one_copy(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    spec = str(tmp_path / "s" / "store")
    open_store(tmp_path / "s").close()
    for round_ in range(3):
        go = tmp_path / f"go{round_}"
        children = [spawn(spec, src, str(go)) for _ in range(2)]
        time.sleep(0.3)
        go.touch()
        outputs = [c.communicate(timeout=120) for c in children]
        assert [c.returncode for c in children] == [0, 0], [err for _, err in outputs]
        assert outputs[0][0].splitlines()[1].split()[:2] == outputs[1][0].splitlines()[1].split()[:2]
    with open_store(tmp_path / "s") as store:
        path = store.parse_path(outputs[0][0].splitlines()[1].split()[0])
        assert store.query_path_info(path).nar_hash == hash_path(src)[0]
        assert len(store.query_all_valid_paths()) == 2
        assert sorted(os.listdir(store.real_dir)) == sorted(
            [".links", *(p.base_name for p in store.query_all_valid_paths())]
        )
        assert verify_store(store, check_contents=True).ok


def _calibrate(spec: str, src: Path) -> float:
    """How long the add itself takes (after the child is ready), measured by the child."""
    child = spawn(spec, src)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    return float(out.splitlines()[-1].split()[-1])


def test_kill_9_at_random_moments_leaves_a_store_that_verifies(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", files=400, big=8 << 20)
    spec = str(tmp_path / "s" / "store")
    duration = _calibrate(str(tmp_path / "warm" / "store"), src)
    fractions = [0.1, 0.3, 0.5, 0.7, 0.9]
    killed_midway = 0
    for fraction in fractions:
        child = spawn(spec, src)
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        time.sleep(duration * fraction)
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=60)
        killed_midway += child.returncode == -signal.SIGKILL and not out
        with open_store(tmp_path / "s") as store:
            report = verify_store(store, check_contents=True)
            assert report.ok, (fraction, report.errors)
            assert not [n for n in os.listdir(store.real_dir) if n.startswith(STAGING_PREFIX)]
            for path in store.query_all_valid_paths():
                assert os.path.lexists(store.real_path(path))
            _clear(store)
    assert killed_midway >= 2, "the kills should land while adding"
    child = spawn(spec, src)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    with open_store(tmp_path / "s") as store:
        assert verify_store(store, check_contents=True).ok
        assert store.is_valid_path(store.parse_path(out.splitlines()[-1].split()[0]))


def _clear(store: LocalStore) -> None:
    """Start the next round from an empty store, so every kill interrupts a real add."""
    from storekit.store.gc import collect_garbage

    collect_garbage(store)
    assert store.query_all_valid_paths() == set()


#: (syscall, n): kill the adding process at the n-th call, i.e. while restoring, between the rename
#: into place and the DB commit, in the middle of canonicalising, during the SQLite commit, after it.
CRASH_POINTS = [
    ("mkdirat", 3),
    ("rename", 1),
    ("chmod", 3),
    ("utimensat", 12),
    ("fdatasync", 1),
    ("pwrite64", 2),
    ("unlink", 1),
    ("rename", 2),
    ("fdatasync", 3),
    ("unlink", 3),
]


def spawn_crashing(spec: str, src: Path, syscall: str, n: int) -> subprocess.CompletedProcess[str]:
    """Run the adding child under strace, which kills it with SIGKILL at the `n`-th `syscall`."""
    inject = f"inject={syscall}:signal=KILL:when={n}"
    argv = [
        "strace",
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        f"trace={syscall}",
        "-e",
        inject,
        sys.executable,
        "-c",
        CHILD,
        spec,
        str(src),
        "",
    ]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed (apt-get install strace)")
def test_kill_9_at_each_step_of_an_add(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", files=20, big=1 << 16)
    spec = str(tmp_path / "s" / "store")
    open_store(tmp_path / "s").close()
    half_done = 0  # crashes that left a path in place but unregistered: the window that matters
    for syscall, n in CRASH_POINTS:
        crashed = spawn_crashing(spec, src, syscall, n)
        assert crashed.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), (syscall, n, crashed.stderr)
        with open_store(tmp_path / "s") as store:
            report = verify_store(store, check_contents=True)
            assert report.ok, (syscall, n, report.errors)
            valid = {p.base_name for p in store.query_all_valid_paths()}
            names = [e for e in os.listdir(store.real_dir) if e[0] != "." and not e.endswith(".lock")]
            half_done += any(e not in valid for e in names)
        again = spawn(spec, src)
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, (syscall, n, err)
        with open_store(tmp_path / "s") as store:
            assert verify_store(store, check_contents=True).ok
            assert store.is_valid_path(store.parse_path(out.splitlines()[-1].split()[1]))
            _clear(store)
    assert half_done >= 3
