"""`storekit cache gc` as a user runs it: paths from a file, stdin or a result symlink, JSON, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gc_cache import FakeCache


def storekit(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "storekit", *args]
    return subprocess.run(argv, capture_output=True, text=True, input=input, check=False)


def small_cache(root: Path) -> tuple[FakeCache, list[str]]:
    cache = FakeCache(root)
    dep = cache.add("dep")
    app = cache.add("app", (dep,))
    cache.add("old", (dep,))
    cache.add("junk")
    return cache, [str(app), str(dep)]


def test_paths_from_a_file_stdin_or_a_symlink_and_json(tmp_path: Path) -> None:
    cache, closure = small_cache(tmp_path / "cache")
    (tmp_path / "keep.txt").write_text("\n".join(closure) + "\n")
    dry = storekit("cache", "gc", cache.uri, "--keep-from", str(tmp_path / "keep.txt"), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["dryRun"] is True and report["kept"] == 2
    assert sorted(report["paths"]) == sorted(cache.paths[n].base_name for n in ("old", "junk"))
    assert report["bytesFreed"] == sum(f["size"] for f in report["files"])
    assert all(f["size"] == (cache.root / f["name"]).stat().st_size for f in report["files"])

    (tmp_path / "result").symlink_to(closure[0])  # as nix-build leaves it
    run = storekit("cache", "gc", cache.uri, "--keep", str(tmp_path / "result"), "--keep-from", "-", input="")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "2 store paths (4 files) deleted, 0.00 MiB freed; 2 store paths kept\n"
    assert sorted(n for n in os.listdir(cache.root) if n.endswith(".narinfo")) == sorted(
        f"{os.path.basename(p)[:32]}.narinfo" for p in closure
    )


def test_refusals(tmp_path: Path) -> None:
    cache, _ = small_cache(tmp_path / "cache")
    (tmp_path / "empty.txt").write_text("")
    before = sorted(os.listdir(cache.root))
    for args, words in [
        (("--keep-from", str(tmp_path / "empty.txt")), "error: no path to keep"),
        (("--keep", "/elsewhere/abc"), "is not in the store dir"),
        (("--keep-since", "1y"), "'1y' is not a duration"),
    ]:
        proc = storekit("cache", "gc", cache.uri, *args)
        assert proc.returncode == 1 and words in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert sorted(os.listdir(cache.root)) == before
