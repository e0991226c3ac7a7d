"""`storekit build --builders …` on a real Nix 2.8 builder (`nix-store --serve --write` behind the test
sshd, sandbox off, the same store dir as this side): outputs equal to a local build, the log arriving
as the build runs, `--timeout`, an unreachable builder, `--max-jobs 0`."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from build_fixtures import instantiate, write_recipe
from remote_fixtures import REPO, Far, error_line, make_far, spec_of, storekit, storekit_store
from sshd_server import Sshd

from storekit.errors import RemoteError
from storekit.realise.driver import derivation_reader
from storekit.remote.store import open_ssh_store
from storekit.store.local import LocalStore
from storekit.transfer.copy import copy_closure
from storekit.wire import values as wire

pytestmark = pytest.mark.interop


@pytest.fixture
def sides(sshd: Sshd, tmp_path: Path) -> tuple[Far, LocalStore]:
    store_dir = str(tmp_path / "shared" / "store")
    return make_far(sshd, tmp_path / "far", store_dir), storekit_store(tmp_path / "sk", store_dir)


def chain(tmp: Path) -> Path:
    """one -> two -> three; two says something on stderr, three refers to both."""
    write_recipe(tmp, "one", "echo one > $out")
    write_recipe(
        tmp,
        "two",
        "echo building two, step 1 >&2; mkdir $out; cat ${inputs.d} > $out/copy",
        inputs={"d": "one.toml"},
    )
    return write_recipe(
        tmp, "three", "echo ${inputs.d} ${inputs.e} > $out", inputs={"d": "two.toml", "e": "one.toml"}
    )


def outputs(store: LocalStore, drv: str) -> dict[str, str]:
    """Every output of `drv` and its inputs' outputs, by output path: its NAR hash."""
    read = derivation_reader(store)
    todo, seen, out = [store.parse_path(drv)], set(), {}
    while todo:
        d = todo.pop()
        if d in seen:
            continue
        seen.add(d)
        parsed = read(d)
        for o in parsed.outputs.values():
            out[o.path] = str(store.query_path_info(store.parse_path(o.path)).nar_hash)
        todo += [store.parse_path(p) for p in parsed.input_drvs]
    return out


def builders(far: Far, jobs: int = 1, program: Path | None = None) -> str:
    return f"{far.uri(program)} x86_64-linux - {jobs}"


def test_a_chain_built_remotely_equals_a_local_build(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    far, store = sides
    drv = str(instantiate(store, chain(tmp_path)))
    run = storekit(
        sshd,
        "build",
        drv,
        "--store",
        spec_of(store),
        "--builders",
        builders(far),
        "--max-jobs",
        "0",
        "-L",
        "--no-out-link",
    )
    assert "two> building two, step 1" in run.stderr  # the far side's build log, relayed
    remote = outputs(store, drv)
    for path in remote:  # built there: the far store has them too
        assert far.valid(path)
    here = storekit_store(tmp_path / "here", store.store_dir.path)
    local_drv = str(instantiate(here, tmp_path / "three.toml"))
    assert local_drv == drv
    storekit(sshd, "build", drv, "--store", spec_of(here), "--no-out-link")
    assert outputs(here, drv) == remote
    log = storekit(
        sshd,
        "log",
        next(p for p in store.query_all_valid_paths() if p.name == "two.drv").__str__(),
        "--store",
        spec_of(store),
    )
    assert "building two, step 1" in log.stdout


def test_a_hanging_builder_is_cut_off_by_timeout(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    far, store = sides
    drv = str(instantiate(store, write_recipe(tmp_path, "hang", "echo started; sleep 600")))
    run = storekit(
        sshd,
        "build",
        drv,
        "--store",
        spec_of(store),
        "--builders",
        builders(far),
        "--max-jobs",
        "0",
        "--timeout",
        "2",
        check=False,
        timeout=300,
    )
    assert run.returncode == 1
    assert "(TimedOut)" in error_line(run) and "timed out after 2 seconds" in error_line(run)
    assert "started" in run.stderr  # the log tail


def test_an_unreachable_builder_falls_back_to_local_said_once(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    far, store = sides
    for i in range(3):
        write_recipe(tmp_path, f"leaf{i}", f"echo leaf {i} > $out")
    top = write_recipe(
        tmp_path,
        "top",
        "cat ${inputs.a} ${inputs.b} ${inputs.c} > $out",
        inputs={"a": "leaf0.toml", "b": "leaf1.toml", "c": "leaf2.toml"},
    )
    drv = str(instantiate(store, top))
    gone = builders(far, 2, program=Path("/nonexistent/nix-store"))
    run = storekit(
        sshd, "build", drv, "--store", spec_of(store), "--builders", gone, "--max-jobs", "0", "--no-out-link"
    )
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning: cannot build on")]
    assert len(warnings) == 1, run.stderr
    assert "/nonexistent/nix-store" in warnings[0]
    assert (
        Path(
            store.real_path(store.parse_path(run.stdout.strip())),
        ).read_text()
        == "leaf 0\nleaf 1\nleaf 2\n"
    )


def test_max_jobs_0_without_a_fitting_builder_is_refused(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    far, store = sides
    drv = str(instantiate(store, write_recipe(tmp_path, "x", "echo x > $out")))
    run = storekit(
        sshd,
        "build",
        drv,
        "--store",
        spec_of(store),
        "--builders",
        f"{far.uri()} aarch64-linux",
        "--max-jobs",
        "0",
        check=False,
    )
    assert "unable to start any build" in error_line(run) or "unable to start any build" in run.stderr


def test_builders_from_a_machines_file(sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path) -> None:
    far, store = sides
    machines = tmp_path / "machines"
    machines.write_text(f"# the farm\n{builders(far, 2)}\n")
    drv = str(instantiate(store, write_recipe(tmp_path, "y", "echo y > $out")))
    run = storekit(
        sshd,
        "build",
        drv,
        "--store",
        spec_of(store),
        "--builders",
        f"@{machines}",
        "--max-jobs",
        "0",
        "--no-out-link",
    )
    assert far.valid(run.stdout.strip())


def test_an_output_whose_nar_hash_differs_is_refused_naming_both(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    far, store = sides
    recipe = write_recipe(tmp_path, "victim", "echo genuine output > $out")
    drv = str(instantiate(store, recipe))
    machine = ["--builders", builders(far), "--max-jobs", "0", "--no-out-link"]
    out = storekit(sshd, "build", drv, "--store", spec_of(store), *machine).stdout.strip()
    genuine = store.query_path_info(store.parse_path(out)).nar_hash
    Path(out).chmod(0o644)  # the far store's copy (same store dir, real dir = store dir) is damaged
    Path(out).write_text("forged output!!\n")
    fresh = storekit_store(tmp_path / "fresh", store.store_dir.path)
    assert str(instantiate(fresh, recipe)) == drv
    run = storekit(sshd, "build", drv, "--store", spec_of(fresh), *machine, check=False)
    line = error_line(run)
    assert str(genuine) in line and line.count("sha256:") >= 2, line
    assert not fresh.is_valid_path(fresh.parse_path(out))


def test_the_log_reaches_the_client_while_the_build_runs(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    """The builder waits for a file that the test creates only once it has read the builder's first
    line on the client: the build can only finish if the log arrives while it runs."""
    far, store = sides
    go = tmp_path / "go"
    script = f"echo waiting for the go; while [ ! -e {go} ]; do $builder sleep 0.1; done; echo done > $out"
    drv = str(instantiate(store, write_recipe(tmp_path, "live", script)))
    argv = ["build", drv, "--store", spec_of(store), "--builders", builders(far), "--max-jobs", "0"]
    env = {**sshd.env(), "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, "-m", "storekit", *argv, "-L", "--no-out-link", "--timeout", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    ) as proc:  # fmt: skip
        assert proc.stderr is not None
        seen = [proc.stderr.readline()]
        while seen[-1] and "waiting for the go" not in seen[-1]:
            seen.append(proc.stderr.readline())
        go.touch()
        out, _ = proc.communicate(timeout=300)
    assert seen[-1] == "live> waiting for the go\n", seen
    assert proc.returncode == 0
    assert Path(store.real_path(store.parse_path(out.strip()))).read_text() == "done\n"


def test_build_paths_builds_derivations_valid_on_the_far_side(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    """`BuildPaths` (the far side reads the `.drv` closure it was sent), and its failure."""
    far, store = sides
    write_recipe(tmp_path, "base", "echo base > $out")
    top = instantiate(
        store, write_recipe(tmp_path, "top", "cat ${inputs.d} > $out", inputs={"d": "base.toml"})
    )
    bad = instantiate(store, write_recipe(tmp_path, "bad", "echo no; exit 1"))
    remote = open_ssh_store(far.uri(), store.store_dir, shlex.join(sshd.ssh_options()))
    with remote:
        copy_closure(store, remote, [top, bad])
        remote.build_paths([f"{top}!out"], wire.BuildOptions(0, 0))
        out = derivation_reader(store)(top).outputs["out"].path
        assert far.valid(out) and Path(out).read_text() == "base\n"
        with pytest.raises(RemoteError, match=r"building on .* failed .*bad\.drv"):
            remote.build_paths([f"{bad}!out"], wire.BuildOptions(0, 0))


def test_a_machine_runs_as_many_builds_at_once_as_its_slots(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    """Two slots: two builders that each wait for the other to start can only finish side by side.
    One slot: builders that refuse to run beside another (a lock dir) all succeed, one at a time."""
    far, store = sides
    meet, lock = tmp_path / "meet", tmp_path / "lock"
    meet.mkdir()
    pair = [
        instantiate(store, write_recipe(tmp_path, f"pair{me}", (
            f"$builder touch {meet}/{me}; while [ ! -e {meet}/{other} ]; do $builder sleep 0.1; done; "
            f"echo {me} > $out"
        )))
        for me, other in (("a", "b"), ("b", "a"))
    ]  # fmt: skip
    alone = [
        instantiate(store, write_recipe(tmp_path, f"alone{i}", (
            f"$builder mkdir {lock}; $builder sleep 0.5; $builder rmdir {lock}; echo {i} > $out"
        )))
        for i in range(3)
    ]  # fmt: skip
    common = ["--store", spec_of(store), "--max-jobs", "0", "--no-out-link", "--timeout", "60"]
    storekit(sshd, "build", *map(str, pair), *common, "--builders", builders(far, 2))
    storekit(sshd, "build", *map(str, alone), *common, "--builders", builders(far, 1))


FROZEN = """
import os, struct, sys, time
sys.stdin.buffer.read(16)
os.write(1, struct.pack("<QQ", 0x5452EECB, 0x207))
os.read(0, 65536)  # the store-dir probe: no path of it is valid here
os.write(1, struct.pack("<Q", 0))
time.sleep(600)  # then never answers again, whatever the build timeout it was given
"""


def test_a_far_side_that_ignores_the_timeout_is_cut_off(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    far, store = sides
    script = tmp_path / "frozen.py"
    script.write_text(FROZEN)
    frozen = far.wrapped(f"exec python3 {script}")
    drv_path = instantiate(store, write_recipe(tmp_path, "x", "echo x > $out"))
    drv = derivation_reader(store)(drv_path)
    remote = open_ssh_store(far.uri(frozen), store.store_dir, shlex.join(sshd.ssh_options()))
    with remote, pytest.raises(RemoteError, match=r"no result 1 s past --timeout 1; cut off"):
        remote.build_derivation(drv_path, drv, wire.BuildOptions(0, 1), timeout=1, grace=1)


def test_the_machine_key_columns_reach_ssh(sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path) -> None:
    """An ssh config that names neither the client key nor the known hosts: the login works only
    through the machine's SSH-KEY column (`-i`) and HOST-KEY column (a known-hosts file of its own)."""
    far, store = sides
    bare = tmp_path / "ssh_config"
    lines = [line for line in sshd.ssh_config.read_text().splitlines() if "IdentityFile" not in line]
    bare.write_text("".join(f"{line}\n" for line in lines if "KnownHosts" not in line))
    bare.write_text(bare.read_text() + "  UserKnownHostsFile /dev/null\n")
    env = {**sshd.env(), "NIX_SSHOPTS": f"-F {bare}", "PYTHONPATH": str(REPO)}

    def build(name: str, key: str) -> subprocess.CompletedProcess[str]:
        drv = str(instantiate(store, write_recipe(tmp_path, name, f"echo {name} > $out")))
        machine = f"{far.uri()} x86_64-linux {key} 1 1 - - {sshd.base64_host_key()}"
        argv = [
            "build",
            drv,
            "--store",
            spec_of(store),
            "--no-out-link",
            "--builders",
            machine,
            "--max-jobs",
            "0",
        ]
        return subprocess.run(
            [sys.executable, "-m", "storekit", *argv], capture_output=True, text=True, env=env, cwd=tmp_path
        )

    done = build("keyed", str(sshd.client_key))
    assert done.returncode == 0, done.stderr
    assert far.valid(done.stdout.strip())
    # without the key column the machine cannot be reached (and it falls back to this machine)
    keyless = build("keyless", "-")
    assert "warning: cannot build on" in keyless.stderr and "Permission denied" in keyless.stderr


def test_max_jobs_0_needs_builders(sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path) -> None:
    _, store = sides
    drv = str(instantiate(store, write_recipe(tmp_path, "z", "echo z > $out")))
    run = storekit(sshd, "build", drv, "--store", spec_of(store), "--max-jobs", "0", check=False)
    assert (
        error_line(run)
        == "error: --max-jobs 0 builds nothing on this machine: name remote ones with --builders"
    )
