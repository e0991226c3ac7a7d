"""A `storekit provision --into` killed (SIGKILL) while it builds a job tree leaves that tree's
temp dir behind; the next provision of the node store deletes it, whether it builds the same tree
or another one. The kill is real: the process is stopped at a known point (the tree built under its
temp name, not yet renamed) by a wrapper that then sleeps, and killed there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for
from storekit.storepath import StorePath
from storekit.transfer.job_trees import MANIFEST, trees_dir
from storekit.transfer.provision import materialise

STOP_AFTER_BUILD = """
import os, sys, time
from storekit.transfer import job_trees
real = job_trees._build
def build(node, paths, top, link):
    size = real(node, paths, top, link)
    with open(os.environ["BUILT"], "w") as f:
        f.write(top)
    time.sleep(600)
    return size
job_trees._build = build
from storekit.cli import main
main(sys.argv[1:])
"""


STOP_AT_SYMLINK = """
import os, sys, time
real = os.symlink
def symlink(src, dst, *args, **kwargs):
    real(src, dst, *args, **kwargs)
    if ".provision-" in os.path.basename(dst):
        with open(os.environ["BUILT"], "w") as f:
            f.write(str(dst))
        time.sleep(600)
os.symlink = symlink
from storekit.cli import main
main(sys.argv[1:])
"""


def node_store(root: Path) -> tuple[str, LocalStore, list[StorePath]]:
    spec = local_spec_for(
        str(root / "nix" / "store"),
        state_dir=str(root / "var" / "nix"),
        log_dir=str(root / "var" / "log"),
        real_dir=str(root / "real"),
    )
    store = LocalStore(spec)
    dep = store.add_text("dep", b"dep\n", [])
    tops = [store.add_text(f"top-{i}", f"uses {dep}\n".encode(), [dep]) for i in range(2)]
    return str(spec), store, tops


def killed_mid_build(
    tmp_path: Path, uri: str, top: StorePath, into: Path, script: str = STOP_AFTER_BUILD
) -> str:
    """Run `storekit provision TOP --to URI --into INTO`, kill it once its tree is built under its
    temp name (or, with `STOP_AT_SYMLINK`, once the job dir's temp symlink is made); that temp name."""
    built = tmp_path / "built"
    env = dict(os.environ, BUILT=str(built))
    argv = [sys.executable, "-c", script, "provision", str(top), "--to", uri, "--into", str(into)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not built.exists() or not built.read_text():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the provision never got to building its tree"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
    temp = built.read_text()
    built.unlink()
    return temp


def leftovers(store: LocalStore) -> list[str]:
    return [n for n in os.listdir(trees_dir(store)) if n.startswith(".")]


def test_a_rerun_of_a_killed_provision_removes_its_temp_dir(tmp_path: Path) -> None:
    uri, store, (top, _) = node_store(tmp_path / "node")
    jobs = tmp_path / "jobs"
    temp = killed_mid_build(tmp_path, uri, top, jobs / "a")
    assert os.path.isdir(temp) and os.path.basename(temp) in leftovers(store)
    assert not os.path.lexists(jobs / "a")
    tree = materialise(store, [top], str(jobs / "a"))
    assert (jobs / "a" / MANIFEST).is_file() and tree.closure_size == 2
    assert leftovers(store) == [] and not os.path.lexists(temp)


def test_a_provision_of_other_paths_removes_it_too(tmp_path: Path) -> None:
    uri, store, (top, other) = node_store(tmp_path / "node")
    jobs = tmp_path / "jobs"
    temp = killed_mid_build(tmp_path, uri, top, jobs / "a")
    assert os.path.isdir(temp)
    materialise(store, [other], str(jobs / "b"))
    assert leftovers(store) == [] and not os.path.lexists(temp)
    assert not os.path.lexists(jobs / "a") and (jobs / "b" / MANIFEST).is_file()


def test_a_job_dir_symlink_left_by_a_kill_goes_with_the_next_provision_of_that_dir(tmp_path: Path) -> None:
    uri, store, (top, _) = node_store(tmp_path / "node")
    jobs = tmp_path / "jobs"
    temp = killed_mid_build(tmp_path, uri, top, jobs / "a", STOP_AT_SYMLINK)
    assert os.path.islink(temp) and not os.path.lexists(jobs / "a")
    materialise(store, [top], str(jobs / "a"))
    assert os.listdir(jobs) == ["a"] and (jobs / "a" / MANIFEST).is_file()
