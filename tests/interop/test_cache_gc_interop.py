"""`storekit cache gc` on caches real Nix 2.8 wrote (`nix copy --to file://…`), checked by real Nix:
every kept closure still substitutes (`nix copy --from`, `nix-store --realise` with the cache as a
substituter) into a fresh store, during a run killed halfway and after; deleted paths fail cleanly;
realisations of content-addressed derivations go with their outputs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cache_helpers import build_closure, fresh_nix_store, nix_on
from nixoracle import NixStore

from storekit.storepath import StoreDir, StorePath

pytestmark = pytest.mark.interop

#: A path with the same contents as closure "a"'s `dep` (so the same NAR file) under another name.
TWIN_NIX = """derivation { name = "twin"; builder = "/bin/sh"; system = builtins.currentSystem;
                           args = ["-c" "echo dep-a > $out"]; }"""

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


def storekit(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "storekit", *args], capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"storekit {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def nix_cache(nix_store: NixStore, tmp: Path) -> tuple[str, Path, StorePath, StorePath, str]:
    """A cache Nix wrote with closures a (kept) and b (deleted) and `twin`, sharing a NAR with a's dep."""
    top_a, top_b = build_closure(nix_store, "a"), build_closure(nix_store, "b")
    twin = nix_store.text("nix-build", "--no-out-link", "-E", TWIN_NIX)
    cache = tmp / "cache"
    url = f"file://{cache}?write-nar-listing=true&compression=xz"
    nix_store.run("nix", "copy", "--to", url, str(top_a), str(top_b), twin)
    return f"file://{cache}?store={nix_store.store_dir}", cache, top_a, top_b, twin


def closure_of(nix_store: NixStore, path: StorePath) -> list[str]:
    return nix_store.text("nix-store", "--query", "--requisites", str(path)).split()


def substitutes(
    nix_store: NixStore, cache_url: str, where: Path, path: StorePath
) -> subprocess.CompletedProcess[str]:
    """`nix copy --from` the cache into a fresh store (whose files are under `where`)."""
    fresh = fresh_nix_store(where, nix_store.store_dir)
    return nix_on(nix_store, fresh, "nix", "copy", "--from", cache_url, str(path), check=False)


def _path_of(cache: Path, hash_part: str) -> str:
    text = (cache / f"{hash_part}.narinfo").read_text()
    return next(line[11:] for line in text.splitlines() if line.startswith("StorePath: "))


def nix_store_path(path: str) -> StorePath:
    base = os.path.basename(path)
    return StorePath(StoreDir(os.path.dirname(path)), base[:32], base[33:])


def narinfo_url(cache: Path, base_name: str) -> str:
    text = (cache / f"{base_name[:32]}.narinfo").read_text()
    return next(line[5:] for line in text.splitlines() if line.startswith("URL: "))


def test_kept_closures_substitute_and_deleted_ones_fail_cleanly(nix_store: NixStore, tmp_path: Path) -> None:
    url, cache, top_a, top_b, twin = nix_cache(nix_store, tmp_path)
    kept = closure_of(nix_store, top_a)
    gone = set(closure_of(nix_store, top_b)) | {twin}
    shared = narinfo_url(cache, os.path.basename(twin))
    assert shared in {narinfo_url(cache, os.path.basename(p)) for p in kept}

    dry = storekit("cache", "gc", url, "--keep", str(top_a), "--dry-run")
    assert f"would delete {os.path.basename(twin)[:32]}.narinfo (" in dry.stdout
    assert "4 store paths (" in dry.stdout and "would be deleted" in dry.stdout
    assert {os.path.basename(p)[:32] + ".narinfo" for p in gone} <= set(os.listdir(cache))

    run = storekit("cache", "gc", url, "--keep", str(top_a))
    assert "4 store paths (" in run.stdout and "3 store paths kept" in run.stdout
    left = set(os.listdir(cache))
    assert {os.path.basename(p)[:32] + ".narinfo" for p in kept} <= left
    assert not {os.path.basename(p)[:32] + ".narinfo" for p in gone} & left
    assert not {os.path.basename(p)[:32] + ".ls" for p in gone} & left
    assert (cache / shared).is_file()  # twin's narinfo went, the NAR it shares with a's dep stayed

    assert substitutes(nix_store, url, tmp_path / "s1", top_a).returncode == 0
    fresh = fresh_nix_store(tmp_path / "s2", nix_store.store_dir)
    nix_on(nix_store, fresh, "nix-store", "--realise", str(top_a), "--option", "substituters", url)
    verified = nix_on(nix_store, fresh, "nix-store", "--verify", "--check-contents")
    assert verified.returncode == 0
    assert sorted(
        nix_on(nix_store, fresh, "nix-store", "--query", "--requisites", str(top_a)).stdout.split()
    ) == sorted(kept)

    failed = substitutes(nix_store, url, tmp_path / "s3", top_b)
    assert failed.returncode != 0
    # Nix's clean refusal, naming the path, rather than a missing NAR or reference midway
    assert f"path '{top_b}' is required, but there is no substituter" in failed.stderr, failed.stderr


@pytest.mark.parametrize("after", [2, 6])
def test_killed_midway_nix_still_substitutes_and_a_rerun_converges(
    nix_store: NixStore, tmp_path: Path, after: int
) -> None:
    url, cache, top_a, top_b, _ = nix_cache(nix_store, tmp_path)
    (cache / ".storekit").mkdir()
    (cache / ".storekit" / "lock").write_bytes(b"")  # as a cache server's --cache-dir has
    argv = [sys.executable, "-c", KILLER, str(cache), nix_store.store_dir, str(after), str(top_a)]
    assert subprocess.run(argv, capture_output=True, check=False).returncode == -signal.SIGKILL
    assert substitutes(nix_store, url, tmp_path / "mid", top_a).returncode == 0
    # every narinfo the killed run left, kept or not, is still whole: Nix substitutes its closure
    paths = [_path_of(cache, n[:32]) for n in os.listdir(cache) if n.endswith(".narinfo")]
    assert len(paths) > 3
    for i, p in enumerate(paths):
        assert substitutes(nix_store, url, tmp_path / f"left{i}", nix_store_path(p)).returncode == 0, p
    # the cache directory itself, as a cache server's --cache-dir is named: the store dir comes from it
    rerun = storekit("cache", "gc", str(cache), "--keep", str(top_a))
    assert "3 store paths kept" in rerun.stdout
    assert storekit("cache", "gc", str(cache), "--keep", str(top_a)).stdout.startswith(
        "0 store paths (0 files)"
    )
    assert substitutes(nix_store, url, tmp_path / "after", top_a).returncode == 0
    assert substitutes(nix_store, url, tmp_path / "gone", top_b).returncode != 0


def test_refusals_are_errors_and_delete_nothing(nix_store: NixStore, tmp_path: Path) -> None:
    url, cache, _, _, _ = nix_cache(nix_store, tmp_path)
    before = sorted(os.listdir(cache))
    missing = f"{nix_store.store_dir}/{'0' * 32}-absent"
    proc = storekit("cache", "gc", url, "--keep", missing, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "nothing was deleted" in proc.stderr
    proc = storekit("cache", "gc", url, check=False)
    assert proc.returncode == 1 and "no path to keep" in proc.stderr
    proc = storekit("cache", "gc", url, "--keep-since", "3 days", check=False)
    assert proc.returncode == 1 and "not a duration" in proc.stderr
    assert sorted(os.listdir(cache)) == before
    assert storekit("cache", "gc", url, "--keep-since", "1d").stdout.startswith("0 store paths (0 files)")


CA_NIX = """let mk = n: derivation { name = "ca-${n}"; builder = "/bin/sh"; system = builtins.currentSystem;
  __contentAddressed = true; outputHashMode = "recursive"; outputHashAlgo = "sha256";
  args = ["-c" "echo ${n} > $out"]; };
in { a = mk "a"; b = mk "b"; }"""


def test_realisations_of_ca_derivations_follow_their_outputs(nix_store: NixStore, tmp_path: Path) -> None:
    """Nix 2.8 with ca-derivations writes `realisations/*.doi`; Nix then substitutes a kept CA output by
    its derivation (through the realisation) and cannot for a deleted one."""
    env = nix_store.env()
    env["NIX_CONFIG"] += "\nexperimental-features = nix-command flakes ca-derivations"
    (tmp_path / "ca.nix").write_text(CA_NIX)

    def nix(*args: str, store: str = nix_store.uri) -> subprocess.CompletedProcess[str]:
        argv = [args[0], "--store", store, *args[1:]]
        return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, check=False)

    outs = {n: nix("nix-build", "--no-out-link", "ca.nix", "-A", n).stdout.strip() for n in "ab"}
    cache = tmp_path / "cache"
    assert nix("nix", "copy", "--to", f"file://{cache}", "-f", "ca.nix", "a", "b").returncode == 0
    assert len(os.listdir(cache / "realisations")) == 2
    url = f"file://{cache}?store={nix_store.store_dir}"
    storekit("cache", "gc", url, "--keep", outs["a"])
    (left,) = os.listdir(cache / "realisations")
    assert os.path.basename(outs["a"]) in (cache / "realisations" / left).read_text()

    fresh = fresh_nix_store(tmp_path / "fresh", nix_store.store_dir)
    no_build = ("--max-jobs", "0", "--option", "substituters", url)
    got = nix("nix-build", "--no-out-link", "ca.nix", "-A", "a", *no_build, store=fresh)
    assert got.returncode == 0 and got.stdout.strip() == outs["a"], got.stderr
    refused = nix("nix-build", "--no-out-link", "ca.nix", "-A", "b", *no_build, store=fresh)
    assert refused.returncode != 0 and "unable to start any build" in refused.stderr, refused.stderr
