"""`storekit provision`: closures into a node store, per-job trees real Nix verifies as stores, GC roots held
while a tree lives, trees made all at once, `--run`, and relocation printing where paths went.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cache_helpers import build_closure, nix_key, nix_on, open_nix_store, side_spec, side_store
from nixoracle import NixStore

from storekit.cli import main
from storekit.fdtree import remove_tree
from storekit.progress import ProgressEvent
from storekit.store.link import LinkMode
from storekit.store.local import LocalStore
from storekit.store.open import open_store
from storekit.store.specs import local_spec_for
from storekit.storepath import StorePath
from storekit.transfer import job_trees, provision
from storekit.transfer.copy import copy_closure
from storekit.transfer.provision import MANIFEST, fetch, job_spec, materialise

pytestmark = pytest.mark.interop

#: The issue's goal: 20 jobs of a 1 GiB closure grow the disk by less than 1%, so each job's tree may
#: add at most 1% of 1 GiB / 20 of its own (directories, database, links), whatever the closure's size.
METADATA_BUDGET = (1 << 30) // 100 // 20


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`storekit ARGS` in-process through the real error boundary; (exit status, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def node_uri(tmp_path: Path, store_dir: str) -> str:
    return str(side_spec(tmp_path / "node", store_dir))


def closure_of(nix_store: NixStore, top: StorePath) -> set[StorePath]:
    with open_nix_store(nix_store) as src:
        return src.closure([top])


def trees_left(state_dir: Path | str) -> list[str]:
    """The trees (and their records) in a node store's state dir; lock files do not count."""
    top = os.path.join(state_dir, "provision")
    return [n for n in os.listdir(top) if not n.endswith(".lock")] if os.path.isdir(top) else []


def auto_roots(gcroots_dir: str) -> list[str]:
    auto = os.path.join(gcroots_dir, "auto")
    return os.listdir(auto) if os.path.isdir(auto) else []


def files_below(root: str) -> dict[str, os.stat_result]:
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = os.lstat(path)
    return found


def test_a_job_tree_from_a_signed_cache_is_a_store_nix_verifies(  # type: ignore[no-untyped-def]
    nix_store: NixStore, tmp_path: Path, capsys
) -> None:
    top = build_closure(nix_store)
    key, public = nix_key(nix_store, tmp_path, "provision-1")
    cache = f"file://{tmp_path / 'cache'}?store={nix_store.store_dir}"
    with open_nix_store(nix_store) as src, open_store(f"{cache}&secret-key={key}") as dst:
        copy_closure(src, dst, [top])
    node = node_uri(tmp_path, nix_store.store_dir)
    job = tmp_path / "jobs" / "a"
    code, out, err = run(capsys, "provision", str(top), "--from", cache, "--to", node, "--into", str(job))
    assert code == 1 and "lacks a valid signature" in err and not job.exists()
    argv = ["provision", str(top), "--from", cache, "--to", node, "--into", str(job), "--json"]
    code, out, err = run(capsys, *argv, "--trusted-public-keys", public)
    assert code == 0, err
    doc = json.loads(out)
    closure = closure_of(nix_store, top)
    spec = job_spec(nix_store.store_dir, os.readlink(job))  # the job dir points at its tree
    assert doc["paths"] == [str(top)] and doc["into"] == str(job) and doc["store"] == str(spec)
    assert os.path.samefile(os.path.join(str(job) + nix_store.store_dir), spec.real_dir)
    assert sorted(doc["copied"]) == sorted(map(str, closure)) and doc["closureSize"] == 3
    # real Nix opens the tree as a store: exactly the closure, contents checked
    nix_on(nix_store, doc["store"], "nix-store", "--verify", "--check-contents")
    listed = nix_on(nix_store, doc["store"], "nix-store", "-qR", str(top)).stdout.split()
    assert sorted(listed) == sorted(map(str, closure))
    assert sorted(os.listdir(spec.real_dir)) == sorted([".links", *(p.base_name for p in closure)])
    # hard links into the node store; new directories read-only
    with LocalStore(side_spec(tmp_path / "node", nix_store.store_dir)) as node_store:
        for path in closure:
            ours = files_below(os.path.join(spec.real_dir, path.base_name))
            theirs = files_below(node_store.real_path(path))
            assert ours.keys() == theirs.keys()
            for name, st in ours.items():
                if os.path.isdir(os.path.join(spec.real_dir, path.base_name, name)):
                    assert st.st_mode & 0o777 == 0o555
                elif not os.path.islink(os.path.join(spec.real_dir, path.base_name, name)):
                    assert (st.st_dev, st.st_ino) == (theirs[name].st_dev, theirs[name].st_ino)
    assert os.stat(spec.real_dir).st_mode & 0o777 == 0o555


def test_a_job_tree_keeps_its_closure_alive_until_released(
    nix_store: NixStore, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    top = build_closure(nix_store)
    closure = closure_of(nix_store, top)
    node = node_uri(tmp_path, nix_store.store_dir)
    jobs = tmp_path / "jobs"
    for name in ("a", "b"):
        argv = [
            "provision",
            "-q",
            str(top),
            "--from",
            nix_store.uri,
            "--to",
            node,
            "--into",
            str(jobs / name),
        ]
        code, _, err = run(capsys, *argv)
        assert code == 0, err

    def valid_in_node() -> set[str]:
        listed = nix_on(
            nix_store, node, "nix-store", "-q", "--requisites", "--include-outputs", str(top), check=False
        )
        return set(listed.stdout.split()) if listed.returncode == 0 else set()

    nix_on(nix_store, node, "nix-store", "--gc")  # real Nix's GC honours the indirect roots
    assert run(capsys, "store", "gc", "--store", node)[0] == 0  # so does storekit's
    assert valid_in_node() == set(map(str, closure))
    code, _, err = run(capsys, "provision", "--release", str(jobs / "a"))
    assert code == 0 and "released" in err and not (jobs / "a").exists()
    nix_on(nix_store, node, "nix-store", "--gc")
    assert valid_in_node() == set(map(str, closure))  # b still holds it
    assert run(capsys, "provision", "--release", str(jobs / "a"))[2].startswith("error: there is no job dir")
    code, _, err = run(capsys, "provision", "--release", str(jobs / "b"), "--to", node)
    assert code == 0, err
    nix_on(nix_store, node, "nix-store", "--gc")
    assert valid_in_node() == set()
    assert os.listdir(jobs) == [] and trees_left(tmp_path / "node" / "var" / "nix") == []
    # a tree deleted without --release drops its roots too (they point into it)
    code, _, err = run(
        capsys, "provision", "-q", str(top), "--from", nix_store.uri, "--to", node, "--into", str(jobs / "c")
    )
    assert code == 0, err
    remove_tree(jobs / "c")
    nix_on(nix_store, node, "nix-store", "--gc")
    assert valid_in_node() == set()


def test_twenty_job_trees_add_metadata_only(nix_store: NixStore, tmp_path: Path) -> None:
    top = build_closure(nix_store)
    with open_nix_store(nix_store) as src, side_store(tmp_path / "node", nix_store.store_dir) as node:
        copy_closure(src, node, [top])
        node_inodes = {(st.st_dev, st.st_ino) for st in files_below(node.real_dir).values()}
        before = {(st.st_dev, st.st_ino) for st in files_below(str(tmp_path / "node")).values()}
        trees = [materialise(node, [top], str(tmp_path / "jobs" / f"job{i}")) for i in range(20)]
    for tree in trees:  # every job sees the whole closure, its files the node store's own inodes
        assert sorted(os.listdir(tree.spec.real_dir)) == sorted(os.listdir(node.real_dir))
        for rel, st in files_below(tree.spec.real_dir).items():
            if stat.S_ISREG(st.st_mode):
                assert (st.st_dev, st.st_ino) in node_inodes, f"{rel} was copied, not linked"
    added, seen = 0, set(before)  # what the disk gained, each new inode counted once (as du does)
    for st in [*files_below(str(tmp_path / "node")).values(), *files_below(str(tmp_path / "jobs")).values()]:
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            added += st.st_blocks * 512
    assert added < METADATA_BUDGET, added


def test_a_tree_appears_whole_or_not_at_all(
    nix_store: NixStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = build_closure(nix_store)
    jobs = tmp_path / "jobs"
    real_link_tree = job_trees.link_tree
    calls: list[str] = []

    def failing_link_tree(src: str, dst: str, mode: object) -> None:
        assert not (jobs / "a").exists()  # nothing visible while it is being built
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_link_tree(src, dst, mode)  # type: ignore[arg-type]

    with open_nix_store(nix_store) as src, side_store(tmp_path / "node", nix_store.store_dir) as node:
        copy_closure(src, node, [top])
        monkeypatch.setattr(job_trees, "link_tree", failing_link_tree)
        with pytest.raises(OSError, match="No space left"):
            materialise(node, [top], str(jobs / "a"))
        assert os.listdir(jobs) == [] and auto_roots(node.gcroots_dir) == []
        assert trees_left(node.state_dir) == []
        monkeypatch.setattr(job_trees, "link_tree", real_link_tree)
        (jobs / "b").mkdir()
        (jobs / "b" / "keep").write_text("mine")
        with pytest.raises(Exception, match="it exists; release it first"):
            materialise(node, [top], str(jobs / "b"))
        assert (jobs / "b" / "keep").read_text() == "mine"
        (jobs / "c").mkdir()  # an empty mount point is replaced
        tree = materialise(node, [top], str(jobs / "c"))
        assert (jobs / "c" / MANIFEST).is_file() and len(auto_roots(node.gcroots_dir)) == 1
        assert tree.closure_size == 3

        def failing_add_root(*args: object) -> str:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(provision, "add_root", failing_add_root)  # the roots fail: no job dir is left
        with pytest.raises(OSError, match="No space left"):
            materialise(node, [top], str(jobs / "d"))
        assert not os.path.lexists(jobs / "d") and len(auto_roots(node.gcroots_dir)) == 1
        assert os.readlink(jobs / "c") in [
            os.path.join(node.state_dir, "provision", t) for t in trees_left(node.state_dir)
        ]
        monkeypatch.undo()
        with pytest.raises(Exception, match="overlaps the node store"):
            materialise(node, [top], os.path.join(node.state_dir, "job"))


def test_a_path_missing_from_the_node_store_is_refused(nix_store: NixStore, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    top = build_closure(nix_store)
    node = node_uri(tmp_path, nix_store.store_dir)
    code, _, err = run(capsys, "provision", str(top), "--to", node, "--into", str(tmp_path / "job"))
    assert code == 1 and f"path '{top}' is not valid" in err and not (tmp_path / "job").exists()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")
def test_run_gives_the_job_only_its_closure_read_only_then_releases(
    nix_store: NixStore, tmp_path: Path
) -> None:
    top = build_closure(nix_store)
    closure = closure_of(nix_store, top)
    node = node_uri(tmp_path, nix_store.store_dir)
    mid = next(p for p in closure if p.name == "mid")
    script = (
        f"ls -A {nix_store.store_dir}; {mid}/bin/run; touch {top}/new 2>/dev/null || echo read-only; exit 7"
    )
    argv = [
        sys.executable,
        "-m",
        "storekit",
        "provision",
        "-q",
        str(top),
        "--from",
        nix_store.uri,
        "--to",
        node,
    ]
    proc = subprocess.run(
        [*argv, "--into", str(tmp_path / "job"), "--run", script], capture_output=True, text=True
    )
    assert proc.returncode == 7, proc.stderr
    lines = proc.stdout.split()
    assert sorted(lines[:-2]) == sorted([".links", *(p.base_name for p in closure)])
    assert lines[-2:] == ["1", "read-only"]  # the closure's own program ran; the store is read-only
    assert not (tmp_path / "job").exists() and trees_left(tmp_path / "node" / "var" / "nix") == []
    assert auto_roots(str(tmp_path / "node" / "var" / "nix" / "gcroots")) == []


def test_provision_and_copy_say_where_relocated_paths_went(
    nix_store: NixStore, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    top = build_closure(nix_store)
    new_dir = str(tmp_path / "opt" / "st")
    code, out, err = run(
        capsys, "copy", "--from", nix_store.uri, "--to", new_dir, "--relocate", "-q", str(top)
    )
    assert code == 0, err
    [line] = out.splitlines()
    old, arrow, new = line.split(" ")
    assert old == str(top) and arrow == "->" and new.startswith(new_dir + "/") and new.endswith("-top")
    with LocalStore(local_spec_for(new_dir)) as dst:
        assert dst.is_valid_path(dst.parse_path(new)) and dst.query_path_info(dst.parse_path(new)).ca
    code, out, err = run(
        capsys, "copy", "--from", nix_store.uri, "--to", new_dir, "--relocate", "--json", str(top)
    )
    assert code == 0, err
    assert json.loads(out)["relocated"] == {str(top): new}
    # provision relocating into a node store of another store dir: the job tree holds the new names
    node = str(tmp_path / "node2" / "store")
    argv = ["provision", str(top), "--from", nix_store.uri, "--to", node, "--relocate"]
    code, out, err = run(capsys, *argv, "--into", str(tmp_path / "job"))
    assert code == 0, err
    [line] = out.splitlines()
    moved = line.split(" -> ")[1]
    assert line.startswith(f"{top} -> {node}/") and moved.endswith("-top")
    manifest = json.loads((tmp_path / "job" / MANIFEST).read_text())
    assert manifest["paths"] == [moved]
    job_store = str(job_spec(node, os.readlink(tmp_path / "job")))
    nix_on(nix_store, job_store, "nix-store", "--verify", "--check-contents")
    assert len(nix_on(nix_store, job_store, "nix-store", "-qR", moved).stdout.split()) == 3


def test_jobs_provisioned_at_once_share_one_tree_built_once(  # type: ignore[no-untyped-def]
    nix_store: NixStore, tmp_path: Path, capsys
) -> None:
    top = build_closure(nix_store)
    node = node_uri(tmp_path, nix_store.store_dir)
    state = tmp_path / "node" / "var" / "nix"
    argv = [
        sys.executable,
        "-m",
        "storekit",
        "provision",
        "-q",
        str(top),
        "--from",
        nix_store.uri,
        "--to",
        node,
    ]
    jobs = [tmp_path / "jobs" / f"j{i}" for i in range(4)]
    procs = [subprocess.Popen([*argv, "--into", str(job)], stderr=subprocess.PIPE, text=True) for job in jobs]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    [tree] = {os.readlink(job) for job in jobs}
    name = os.path.basename(tree)
    assert sorted(trees_left(state)) == [name, f"{name}.jobs"]
    nix_on(nix_store, str(job_spec(nix_store.store_dir, tree)), "nix-store", "--verify", "--check-contents")
    for i, job in enumerate(jobs):
        code, _, err = run(capsys, "provision", "--release", str(job))
        assert code == 0, err
        assert sorted(trees_left(state)) == ([] if i == 3 else [name, f"{name}.jobs"])


def test_fetch_reports_progress_in_bytes(nix_store: NixStore, tmp_path: Path) -> None:
    top = build_closure(nix_store)
    events: list[ProgressEvent] = []
    with open_nix_store(nix_store) as src, side_store(tmp_path / "node", nix_store.store_dir) as node:
        result, present = fetch(src, node, [top], link=LinkMode.STREAM, progress=events.append)
    assert present == (top,) and len(result.copied) == 3
    assert events and all(e.unit == "bytes" and e.activity == "copy" for e in events)
    assert events[-1].done == events[-1].total == result.nar_bytes


def test_provision_over_http_falls_through_the_substituters(  # type: ignore[no-untyped-def]
    nix_store: NixStore, tmp_path: Path, capsys
) -> None:
    """A node filled from `storekit cache serve` over HTTP (signed), after a cache that lacks the paths."""
    top = build_closure(nix_store)
    key_file, public = nix_key(nix_store, tmp_path, "provision-http-1")
    argv = [sys.executable, "-m", "storekit", "cache", "serve", "--store", nix_store.uri, "--port", "0"]
    proc = subprocess.Popen(
        [*argv, "--sign-key", str(key_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert " at http://127.0.0.1:" in line, proc.stderr.read().decode() if proc.stderr else line
        url = f"{line.split(' at ')[1].strip()}?store={nix_store.store_dir}"
        empty = f"file://{tmp_path / 'empty'}?store={nix_store.store_dir}"
        signed = f"{empty}&secret-key={key_file}"
        with open_nix_store(nix_store) as src, open_store(signed) as first:  # a cache with only `dep`
            copy_closure(src, first, [p for p in src.closure([top]) if p.name == "dep"])
        node = node_uri(tmp_path, nix_store.store_dir)
        job = tmp_path / "job"
        wanted = ["provision", str(top), "--from", empty, "--from", url, "--to", node, "--into", str(job)]
        code, out, err = run(capsys, *wanted, "--json")
        assert code == 1 and "lacks a valid signature" in err and not job.exists()
        code, out, err = run(capsys, *wanted, "--trusted-public-keys", public, "--json")
        assert code == 0, err
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    doc = json.loads(out)
    assert len(doc["copied"]) == 3 and doc["paths"] == [str(top)]
    nix_on(nix_store, doc["store"], "nix-store", "--verify", "--check-contents")
    with LocalStore(side_spec(tmp_path / "node", nix_store.store_dir)) as node_store:
        sigs = {p.name: node_store.query_path_info(p).sigs for p in node_store.closure([top])}
    assert all(any(s.startswith("provision-http-1:") for s in sigs[n]) for n in sigs), sigs


def test_a_copied_tree_has_inodes_of_its_own_and_is_a_tree_apart(nix_store: NixStore, tmp_path: Path) -> None:
    """`--link copy` (or reflink, which falls back to a copy where the file system has none)."""
    top = build_closure(nix_store)
    with open_nix_store(nix_store) as src, side_store(tmp_path / "node", nix_store.store_dir) as node:
        copy_closure(src, node, [top])
        node_inodes = {(st.st_dev, st.st_ino) for st in files_below(node.real_dir).values()}
        linked = materialise(node, [top], str(tmp_path / "linked"))
        copied = materialise(node, [top], str(tmp_path / "copied"), link=LinkMode.COPY)
    assert os.readlink(linked.dir) != os.readlink(copied.dir)
    files = {rel: st for rel, st in files_below(copied.spec.real_dir).items() if stat.S_ISREG(st.st_mode)}
    assert files and not any((st.st_dev, st.st_ino) in node_inodes for st in files.values())
    nix_on(nix_store, copied.uri, "nix-store", "--verify", "--check-contents")
