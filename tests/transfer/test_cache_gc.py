"""`collect_cache_garbage` on cache directories: consistent after every single deletion, stopped or
killed after any number of deletions a rerun converges to the same cache, dry runs, locks, refusals."""

from __future__ import annotations

import fcntl
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from gc_cache import STORE_DIR, FakeCache, random_cache

from storekit.errors import StoreError
from storekit.store import cache_files
from storekit.store.cache_files import LOCK_FILE, DirectoryFiles
from storekit.store.transport import HttpTransport
from storekit.storepath import StorePath
from storekit.transfer.cache_gc import cache_files_for, collect_cache_garbage, read_snapshot
from storekit.transfer.cache_gc_plan import Deletion, closure


class Stop(Exception):
    pass


def gc(cache: FakeCache, keep: list[StorePath], **kw: object):  # type: ignore[no-untyped-def]
    return collect_cache_garbage(DirectoryFiles(str(cache.root)), STORE_DIR, keep, **kw)  # type: ignore[arg-type]


def kept_closure_files(cache: FakeCache, keep: list[StorePath]) -> set[str]:
    snap = read_snapshot(DirectoryFiles(str(cache.root)), STORE_DIR)
    hashes = closure(snap, [p.hash_part for p in keep])
    return {f"{h}.narinfo" for h in hashes} | {snap.paths[h].url for h in hashes}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_consistent_after_every_single_deletion(tmp_path: Path, seed: int) -> None:
    cache, keep = random_cache(tmp_path / "cache", seed)
    assert cache.problems() == []
    needed = kept_closure_files(cache, keep)
    seen: list[str] = []

    def check(d: Deletion) -> None:
        seen.append(d.name)
        assert not (tmp_path / "cache" / d.name).exists()
        assert cache.problems() == [], f"after deleting {d.name}"
        assert needed <= cache.files()

    result = gc(cache, keep, on_deleted=check)
    assert seen == [d.name for d in result.deleted] and len(seen) > 10
    assert {d.kind for d in result.deleted} >= {"narinfo", "nar", "realisation", "log"}
    left = cache.files()
    assert needed <= left
    # what is left is exactly the kept closures, their listings, links and logs, and nix-cache-info
    assert {n for n in left if n.endswith(".narinfo")} == {n for n in needed if n.endswith(".narinfo")}
    assert {n for n in left if n.startswith("nar/")} == {n for n in needed if n.startswith("nar/")}
    assert "nix-cache-info" in left
    assert gc(cache, keep).deleted == ()  # a second run finds nothing more


def test_a_run_stopped_after_any_number_of_deletions_converges(tmp_path: Path) -> None:
    cache, keep = random_cache(tmp_path / "full", 7)
    pristine = tmp_path / "pristine"
    shutil.copytree(cache.root, pristine)
    total = len(gc(cache, keep).deleted)
    expected = cache.files()
    for k in range(total):
        shutil.rmtree(tmp_path / "run", ignore_errors=True)
        shutil.copytree(pristine, tmp_path / "run")
        run = FakeCache.__new__(FakeCache)
        run.root = tmp_path / "run"

        def stop_after(d: Deletion, counter: list[int] = [0], k: int = k) -> None:  # noqa: B006
            counter[0] += 1
            if counter[0] > k:
                raise Stop

        with pytest.raises(Stop):
            gc(run, keep, on_deleted=stop_after)
        assert run.problems() == []
        gc(run, keep)
        assert run.files() == expected, f"stopped after {k + 1} deletions"


KILLER = """
import os, signal, sys
from storekit.store.cache_files import DirectoryFiles
from storekit.storepath import StoreDir
from storekit.transfer.cache_gc import collect_cache_garbage
root, store_dir, after, *keep = sys.argv[1:]
sd = StoreDir(store_dir)
count = [0]
def hook(d):
    count[0] += 1
    if count[0] == int(after):
        os.kill(os.getpid(), signal.SIGKILL)
collect_cache_garbage(DirectoryFiles(root), sd, [sd.parse_path(p) for p in keep], on_deleted=hook)
"""


@pytest.mark.parametrize("after", [1, 5, 17])
def test_sigkilled_run_leaves_a_consistent_cache_and_a_rerun_converges(tmp_path: Path, after: int) -> None:
    cache, keep = random_cache(tmp_path / "cache", 11)
    twin = FakeCache.__new__(FakeCache)
    twin.root = tmp_path / "twin"
    shutil.copytree(cache.root, twin.root)
    gc(twin, keep)
    argv = [sys.executable, "-c", KILLER, str(cache.root), STORE_DIR.path, str(after), *map(str, keep)]
    proc = subprocess.run(argv, capture_output=True, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert cache.problems() == []
    assert cache.files() != twin.files()
    gc(cache, keep)
    assert cache.files() == twin.files()


def test_keep_since_keeps_recent_paths_and_their_closures(tmp_path: Path) -> None:
    cache = FakeCache(tmp_path / "cache")
    dep = cache.add("dep")
    old = cache.add("old", (dep,))
    other = cache.add("other")
    keep = cache.add("keep")
    cache.age_all(7 * 86400)
    new = cache.add("new", (dep,))  # written now
    (tmp_path / "cache" / "nar" / "0inflight.nar").write_bytes(b"an upload whose narinfo is coming")
    result = gc(cache, [keep], keep_since=86400.0)
    assert set(result.plan.paths) == {old.base_name, other.base_name}
    left = cache.files()
    for p in (dep, new, keep):
        assert f"{p.hash_part}.narinfo" in left and cache.url_of(p) in left
    assert "nar/0inflight.nar" in left
    assert cache.problems() == []


def test_dry_run_deletes_nothing_and_lists_what_a_run_deletes(tmp_path: Path) -> None:
    cache, keep = random_cache(tmp_path / "cache", 5)
    before = {n: (tmp_path / "cache" / n).read_bytes() for n in cache.files()}
    dry = gc(cache, keep, dry_run=True)
    assert {n: (tmp_path / "cache" / n).read_bytes() for n in cache.files()} == before
    assert dry.dry_run and dry.bytes_freed > 0
    real = gc(cache, keep)
    assert [d.name for d in real.deleted] == [d.name for d in dry.deleted]
    assert real.bytes_freed == dry.bytes_freed == sum(len(before[d.name]) for d in real.deleted)


def test_a_path_to_keep_missing_from_the_cache_deletes_nothing(tmp_path: Path) -> None:
    cache, keep = random_cache(tmp_path / "cache", 3)
    before = cache.files()
    typo = StorePath(STORE_DIR, keep[0].hash_part, "not-the-name")
    with pytest.raises(StoreError, match=r"has no narinfo for .*not-the-name.*nothing was deleted"):
        gc(cache, [keep[1], typo])
    assert cache.files() == before


def test_a_corrupt_narinfo_deletes_nothing(tmp_path: Path) -> None:
    cache, keep = random_cache(tmp_path / "cache", 3)
    bad = next(n for n in cache.files() if n.endswith(".narinfo"))
    (tmp_path / "cache" / bad).write_text("StorePath: nonsense\n")
    before = cache.files()
    with pytest.raises(StoreError, match=f"narinfo '{bad}' is unreadable.*nothing was deleted"):
        gc(cache, keep)
    assert cache.files() == before


def test_a_held_lock_makes_gc_wait_then_give_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, keep = random_cache(tmp_path / "cache", 3)
    (tmp_path / "cache" / LOCK_FILE).parent.mkdir(exist_ok=True)
    (tmp_path / "cache" / LOCK_FILE).write_bytes(b"")
    before = cache.files()
    monkeypatch.setattr(cache_files, "LOCK_TIMEOUT_S", 0.3)
    with open(tmp_path / "cache" / LOCK_FILE, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(StoreError, match=r"stayed locked by another process.*nothing was deleted"):
            gc(cache, keep)
        assert cache.files() == before
    assert gc(cache, keep).deleted  # released: it runs
    assert (tmp_path / "cache" / LOCK_FILE).exists()


def test_the_lock_is_held_while_deleting(tmp_path: Path) -> None:
    cache, keep = random_cache(tmp_path / "cache", 3)
    (tmp_path / "cache" / LOCK_FILE).parent.mkdir(exist_ok=True)
    (tmp_path / "cache" / LOCK_FILE).write_bytes(b"")
    states: list[bool] = []

    def probe(d: Deletion) -> None:
        with open(tmp_path / "cache" / LOCK_FILE, "rb") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                states.append(False)
            except BlockingIOError:
                states.append(True)

    gc(cache, keep, on_deleted=probe)
    assert states and all(states)


def test_a_symlinked_subdirectory_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("not the cache's")
    cache = FakeCache(tmp_path / "cache")
    keep = cache.add("keep")
    (tmp_path / "cache" / "log").symlink_to(outside)
    gc(cache, [keep])
    assert (outside / "precious").read_text() == "not the cache's"


def test_an_http_cache_cannot_be_collected() -> None:
    with pytest.raises(StoreError, match="cannot be listed or deleted from over its protocol"):
        cache_files_for(HttpTransport("http://127.0.0.1:9/cache"))


def test_a_push_during_the_collection_that_needs_a_deleted_path_is_reported(tmp_path: Path) -> None:
    cache = FakeCache(tmp_path / "cache")
    keep = cache.add("keep")
    old = cache.add("old")
    pushed: list[StorePath] = []

    def push_meanwhile(d: Deletion) -> None:  # a writer without the lock, checking `old` just before
        if not pushed:
            pushed.append(cache.add("late", (old,)))

    result = gc(cache, [keep], on_deleted=push_meanwhile)
    assert [w for w in result.warnings if "late" in w] == [
        f"'{pushed[0].base_name}' was added to the cache during the collection and needs "
        f"{old.hash_part}.narinfo, deleted meanwhile: copy its closure to the cache again"
    ]
    assert gc(cache, [keep]).warnings  # the next run sees the broken narinfo too
