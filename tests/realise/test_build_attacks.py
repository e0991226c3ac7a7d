"""Builders that fight back, and local users who wait for them: the sandbox holes Nix has fixed.

Each test is modelled on one of Nix's advisories and was run first against the code before the fix,
where it failed (said per test). Builders are a small static C program (tests/data/fdpass.c) or
busybox; the second local user is `nobody`, a helper run through setpriv (those tests need root).

- CVE-2024-27297 (GHSA-2ffj-w4mj-pg37): a fixed-output builder hands a writable fd of its output to a
  host process over an abstract unix socket; the output is registered, then changed through the fd.
- CVE-2025-46416: the same between two fixed-output builds running at once (-j2).
- CVE-2025-46415, CVE-2025-52991/52992/52993: the builder makes its build directory world-writable;
  another user then writes into it, or swaps a directory for a symlink while storekit deletes it.
- a `kill -9`ed `storekit build` leaves its build directories behind for ever.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from build_fixtures import REPO, goals, instantiate, open_store, write_recipe

from storekit.errors import BuildError, SandboxError
from storekit.hashing import Hash
from storekit.nar.fs import hash_path
from storekit.realise.driver import build as build_all
from storekit.realise.logs import read_log
from storekit.realise.runner import BuildOptions, build_derivation
from storekit.store.local import LocalStore
from storekit.storepath import StorePath

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def needs_root() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to run a second local user (nobody) with setpriv")


@pytest.fixture(scope="module")
def fdpass(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/data/fdpass.c, compiled statically (it runs in the sandbox with no libraries)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the attacking builder")
    out = tmp_path_factory.mktemp("fdpass") / "fdpass"
    cmd = ["gcc", "-static", "-O2", "-o", str(out), str(REPO / "tests/data/fdpass.c")]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        pytest.skip(f"cannot build a static C program here: {run.stderr[-300:]}")
    return out


def fdpass_recipe(tmp: Path, fdpass: Path, name: str, args: list[str], fixed: bytes | None) -> Path:
    """A recipe running fdpass; `fixed`: the content of a flat fixed output."""
    tools = tmp / "tools"
    if not tools.exists():
        tools.mkdir()
        shutil.copy(fdpass, tools / "fdpass")
    lines = [
        f'name = "{name}"',
        'builder = "${inputs.tools}/fdpass"',
        "args = [" + ", ".join(json.dumps(a) for a in args) + "]",
        "[inputs]",
        'tools = { path = "tools" }',
    ]
    if fixed is not None:
        lines += ["[fixed-output]", f'hash = "{Hash.of(fixed).sri}"', 'mode = "flat"']
    recipe = tmp / f"{name}.toml"
    recipe.write_text("\n".join(lines) + "\n")
    return recipe


def build_one(store: LocalStore, recipe: Path, options: BuildOptions | None = None) -> StorePath:
    result = None
    for goal in goals(store, instantiate(store, recipe)):
        result = build_derivation(store, goal, options or BuildOptions())
    assert result is not None
    return result.outputs["out"]


def intact(store: LocalStore, path: StorePath, content: bytes) -> bool:
    """The path still holds `content` and still hashes to what was registered."""
    real = store.real_path(path)
    nar_hash, _ = hash_path(real)
    return Path(real).read_bytes() == content and nar_hash == store.query_path_info(path).nar_hash


@contextlib.contextmanager
def fd_catcher(sock: socket.socket) -> Iterator[list[int]]:
    """Accept connections on a listening socket and keep every fd they send, until the block ends."""
    got: list[int] = []
    stop = threading.Event()
    sock.settimeout(0.1)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    _, fds, _, _ = socket.recv_fds(conn, 1, 4)
                    got.extend(fds)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        stop.set()
        thread.join()


# --- fds of outputs over unix sockets -------------------------------------------------------------


def test_a_fixed_output_builder_cannot_hand_its_output_to_a_host_process(
    tmp_path: Path, fdpass: Path
) -> None:
    """CVE-2024-27297. Before the fix the fd arrived (the builder shared the host's network namespace,
    abstract sockets included) and writing through it changed the registered path: this failed."""
    name = f"storekit-attack-{uuid.uuid4().hex}"
    content = b"the real download\n"
    recipe = fdpass_recipe(tmp_path, fdpass, "fetched", ["send", name, content.decode()], content)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock, open_store(tmp_path / "s") as store:
        sock.bind("\0" + name)
        sock.listen(4)
        with fd_catcher(sock) as got:
            out = build_one(store, recipe)
        for fd in got:
            os.pwrite(fd, b"EVIL", 0)
            os.close(fd)
        assert got == [], "a host process received an fd from a fixed-output builder"
        assert intact(store, out, content)


def test_two_fixed_output_builds_cannot_reach_each_other(tmp_path: Path, fdpass: Path) -> None:
    """CVE-2025-46416: with -j2 one fixed-output builder hands its output's fd to the other, which
    overwrites the output after it was registered. Before the fix the sender's path read EVIL."""
    name = f"storekit-attack-{uuid.uuid4().hex}"
    mine, theirs = b"sender's download\n", b"receiver's download\n"
    sender = fdpass_recipe(tmp_path, fdpass, "sender", ["send", name, mine.decode()], mine)
    receiver = fdpass_recipe(tmp_path, fdpass, "receiver", ["recv", name, theirs.decode()], theirs)
    with open_store(tmp_path / "s") as store:
        targets = [(instantiate(store, r), None) for r in (receiver, sender)]
        plan, report = build_all(store, targets, BuildOptions(), jobs=2)
        assert report.error() is None
        out = next(p for g in plan.todo for p in g.outputs.values() if p.name == "sender")
        assert intact(store, out, mine)


def test_an_fd_kept_past_the_build_cannot_change_the_registered_output(tmp_path: Path, fdpass: Path) -> None:
    """Whoever holds an fd of what the builder wrote (here: the host, through a socket in /build) holds
    the builder's inode, never the store's: outputs are copied into fresh inodes before hashing. Before
    the fix outputs were renamed into the store, and writing through the fd changed the store path."""
    content = b"built\n"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    recipe = fdpass_recipe(tmp_path, fdpass, "held", ["listen", "/build/sock", content.decode()], None)
    got: list[int] = []
    done = threading.Event()

    def grab() -> None:
        while not done.is_set():
            for sock_path in [*tmp.glob("*/sock"), *tmp.glob("*/*/sock")]:
                with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
                    parent = os.open(sock_path.parent, os.O_PATH)  # a unix socket path is short
                    try:
                        s.connect(f"/proc/self/fd/{parent}/sock")
                    finally:
                        os.close(parent)
                    _, fds, _, _ = socket.recv_fds(s, 1, 4)
                    got.extend(fds)
                if got:
                    return
            time.sleep(0.02)

    thread = threading.Thread(target=grab, daemon=True)
    thread.start()
    with open_store(tmp_path / "s") as store:
        try:
            out = build_one(store, recipe, BuildOptions(tmp_dir=str(tmp)))
        finally:
            done.set()
            thread.join()
        log = read_log(store.spec.log_dir, store.query_path_info(out).deriver)  # type: ignore[arg-type]
        assert len(got) == 1, log  # the host did get an fd of the file the builder wrote
        os.pwrite(got[0], b"EVIL", 0)
        os.close(got[0])
        assert intact(store, out, content)


def children_named(*names: str) -> list[str]:
    """Processes whose parent is this one, by command name (pasta must not outlive its build)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            stat_line = Path(f"/proc/{pid}/stat").read_text()
            comm = stat_line[stat_line.index("(") + 1 : stat_line.rindex(")")]
            ppid = int(stat_line[stat_line.rindex(")") + 2 :].split()[1])
            if ppid == os.getpid() and comm in names:
                found.append(f"{pid} {comm}")
    return found


def test_pasta_is_stopped_with_its_build(tmp_path: Path) -> None:
    expected = Hash.of(b"fetched\n").sri
    recipe = write_recipe(tmp_path, "quiet", "echo fetched > $out", fixed=(expected, "flat"))
    with open_store(tmp_path / "s") as store:
        build_one(store, recipe)
    assert children_named("pasta", "setpriv") == []


def test_without_pasta_a_fixed_output_build_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storekit.realise import network

    monkeypatch.setattr(network, "which", lambda name, path=None: None)
    monkeypatch.setattr(network, "PASTA_FALLBACK", str(tmp_path / "no-pasta"))
    expected = Hash.of(b"x\n").sri
    recipe = write_recipe(tmp_path, "nonet", "echo x > $out", fixed=(expected, "flat"))
    with open_store(tmp_path / "s") as store:
        with pytest.raises(SandboxError) as e:
            build_one(store, recipe)
        (goal,) = [g for g in goals(store, instantiate(store, recipe)) if g.name == "nonet"]
        assert not store.is_valid_path(goal.outputs["out"])
    assert "apt-get install -y passt" in str(e.value) and "\n" not in str(e.value)


def test_a_fixed_output_symlink_to_a_host_file_is_not_copied_in(tmp_path: Path) -> None:
    """GHSA-g3g9-5vj6-r3gj's shape: `$out -> /host/secret`, promising the secret's hash. Copying by
    following the symlink would register the host's file; the copy keeps the symlink, which a flat
    fixed output may not be. (A guard for the copy: the rename before it did not follow either.)"""
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    recipe = write_recipe(
        tmp_path, "leak", f"$builder ln -s {secret} $out", fixed=(Hash.of(b"host secret\n").sri, "flat")
    )
    with open_store(tmp_path / "s") as store:
        with pytest.raises(BuildError, match="non-executable regular file"):
            build_one(store, recipe)
        assert not [p for p in store.query_all_valid_paths() if p.name == "leak"]


# --- the build directory and a second local user ------------------------------------------------------


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A fresh directory like /tmp (mode 1777, reachable by every user) for build directories."""
    path = Path(tempfile.mkdtemp(prefix="storekit-shared-tmp-", dir="/tmp"))
    path.chmod(0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def as_nobody(script: str, *args: str) -> subprocess.Popen[str]:
    """Run a Python script as the unprivileged user nobody (the system's Python, no storekit)."""
    argv = [*NOBODY, "/usr/bin/python3", "-c", script, *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


INTRUDER = """
import os, sys, time
tmp = sys.argv[1]
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    for name in os.listdir(tmp):
        for where in (os.path.join(tmp, name), os.path.join(tmp, name, "build")):
            try:
                with open(os.path.join(where, "owned"), "x") as f:
                    f.write("nobody was here")
                print(where)
                sys.exit(0)
            except OSError:
                pass
    time.sleep(0.02)
"""


def test_a_world_writable_build_dir_is_not_open_to_other_users(tmp_path: Path, shared_tmp: Path) -> None:
    """CVE-2025-46415: the builder may `chmod 777 /build`, but /build lives inside a 0700 directory it
    cannot change. Before the fix nobody wrote into the build dir, and the builder saw its file."""
    needs_root()
    script = (
        "chmod 777 /build; i=0; while [ ! -e /build/owned ] && [ $i -lt 60 ]; do sleep 0.1; i=$((i+1)); done;"
        " if [ -e /build/owned ]; then echo owned > $out; else echo alone > $out; fi"
    )
    intruder = as_nobody(INTRUDER, str(shared_tmp))
    with open_store(tmp_path / "s") as store:
        out = build_one(store, write_recipe(tmp_path, "open", script), BuildOptions(tmp_dir=str(shared_tmp)))
        seen = Path(store.real_path(out)).read_text()
    intruder.kill()
    stdout, _ = intruder.communicate()
    assert stdout == "" and seen == "alone\n"


SWAPPER = """
import os, sys, time
tmp, victim, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + 20
build = None
while build is None and time.monotonic() < deadline:
    for name in os.listdir(tmp):
        for where in (os.path.join(tmp, name), os.path.join(tmp, name, "build")):
            if os.access(where, os.W_OK | os.X_OK) and os.path.exists(os.path.join(where, "go")):
                build = where
    time.sleep(0.01)
if build is None:
    sys.exit(0)
d = os.path.join(build, "d")
os.mkdir(d)
for i in range(count):
    open(os.path.join(d, "f%05d" % i), "w").close()
open(os.path.join(build, "ready"), "w").close()
print("tree made")
while time.monotonic() < deadline:  # once storekit deletes inside d, swap d for a symlink to the victim
    try:
        if len(os.listdir(d)) < count:
            os.rename(d, d + ".old")
            os.symlink(victim, d)
            print("swapped")
            break
    except OSError:
        pass
"""


def test_deleting_a_build_dir_does_not_follow_a_swapped_symlink(tmp_path: Path, shared_tmp: Path) -> None:
    """CVE-2025-52991/52992: nobody fills the world-writable build dir and, while storekit deletes it,
    swaps a directory for a symlink to a directory of storekit's user. Before the fix the deletion
    followed it: 2,998 of the victim's 3,000 files were deleted (and the build failed, ENOTEMPTY)."""
    needs_root()
    count = 3000
    victim = tmp_path / "victim"
    victim.mkdir()
    for i in range(count):
        (victim / f"f{i:05d}").write_text("precious\n")
    script = (
        "chmod 777 /build; touch /build/go; i=0;"
        " while [ ! -e /build/ready ] && [ $i -lt 60 ]; do sleep 0.1; i=$((i+1)); done; echo done > $out"
    )
    swapper = as_nobody(SWAPPER, str(shared_tmp), str(victim), str(count))
    with open_store(tmp_path / "s") as store:
        build_one(store, write_recipe(tmp_path, "swap", script), BuildOptions(tmp_dir=str(shared_tmp)))
    swapper.kill()  # the deletion is over once the build returned
    swapper.communicate()
    assert len(os.listdir(victim)) == count


# --- kill -9 -----------------------------------------------------------------------------------------


def storekit_env(tmp: Path, store: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "STOREKIT_STORE": store, "TMPDIR": str(tmp)}


def wait_for(tmp: Path, name: str, proc: subprocess.Popen[bytes]) -> Path:
    """The build dir (the top one in `tmp`) of the build of `name`, once its builder has started."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for top in tmp.glob(f"storekit-build-{name}-*"):
            if (top / "started").exists() or (top / "build" / "started").exists():
                return top
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"the build of {name} did not start")


@pytest.mark.parametrize("reclaim", [["build", "quick.toml"], ["store", "gc"]])
def test_build_dirs_of_a_killed_build_are_reclaimed(tmp_path: Path, reclaim: list[str]) -> None:
    """`kill -9` of `storekit build` leaves its build dir; the next `storekit build` (or `store gc`)
    removes it, and leaves a live build's alone. Before the fix the leftover stayed for ever."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with open_store(tmp_path / "s") as store:
        spec = str(store.spec)
    env = storekit_env(tmp, spec)
    write_recipe(tmp_path, "quick", "echo quick > $out")
    procs = []
    try:
        tops = []
        for n in (1, 2):  # two slow builds: the first is killed, the second still runs
            write_recipe(tmp_path, f"slow{n}", f"touch /build/started; sleep 60; echo {n} > $out")
            cmd = [sys.executable, "-m", "storekit", "build", "-q", f"slow{n}.toml"]
            procs.append(
                subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            )
            tops.append(wait_for(tmp, f"slow{n}", procs[-1]))
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait()
        assert tops[0].exists()  # the killed build's directory is left over
        run = subprocess.run(
            [sys.executable, "-m", "storekit", *reclaim],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr
        assert not tops[0].exists() and tops[1].exists()
    finally:
        for proc in procs:
            proc.kill()
            proc.communicate()


def test_a_build_dir_of_another_layout_is_never_reclaimed(tmp_path: Path) -> None:
    """An older storekit's `storekit-build-*` directory (0700, unlocked, no marker) may hold a build
    still running under that version: reclaiming once deleted a live LFS build's tree."""
    from storekit.realise.builddir import OWN_MARK, reclaim

    old = tmp_path / "storekit-build-binutils-pass1-2.40-abcd1234"
    (old / "src").mkdir(parents=True)
    old.chmod(0o700)
    ours = tmp_path / "storekit-build-hello-efgh5678"
    (ours / "build").mkdir(parents=True)
    (ours / OWN_MARK).touch()
    ours.chmod(0o700)
    assert reclaim(str(tmp_path)) == 1
    assert (old / "src").is_dir() and not ours.exists()
