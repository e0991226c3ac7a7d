"""One build at a time: outputs checked, canonicalised, registered atomically; failures leave only a log."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import pytest
from build_fixtures import goals, instantiate, open_store, write_recipe

from storekit.errors import BuildError, HashMismatch, SandboxError
from storekit.hashing import Hash
from storekit.realise.builddir import build_dir
from storekit.realise.logs import log_path, read_log
from storekit.realise.runner import BuildOptions, build_derivation
from storekit.store.deferred import deferred_deletions
from storekit.store.local import LocalStore
from storekit.storepath import StorePath

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


def build_all(store: LocalStore, recipe: Path, **options: object) -> dict[str, StorePath]:
    result = None
    for goal in goals(store, instantiate(store, recipe)):
        result = build_derivation(store, goal, BuildOptions(**options))  # type: ignore[arg-type]
    assert result is not None
    return dict(result.outputs)


def nothing_registered(store: LocalStore, path: StorePath) -> bool:
    return not store.is_valid_path(path) and not os.path.lexists(store.real_path(path))


def test_references_are_the_inputs_and_outputs_found_in_the_files(tmp_path: Path) -> None:
    write_recipe(tmp_path, "used", "echo used > $out")
    write_recipe(tmp_path, "unused", "echo unused > $out")
    top = write_recipe(
        tmp_path,
        "top",
        "mkdir $out $doc; echo ${inputs.used} > $out/ref; echo $out > $out/self; echo $out > $doc/back",
        inputs={"used": "used.toml", "unused": "unused.toml"},
        outputs=["out", "doc"],
    )
    with open_store(tmp_path / "s") as store:
        outs = build_all(store, top)
        info = store.query_path_info(outs["out"])
        names = {p.name for p in info.references}
        assert names == {"used", "top"}  # itself; not busybox nor "unused": they are not in the files
        doc = store.query_path_info(outs["doc"])
        assert doc.references == {outs["out"]}
        assert info.deriver is not None and info.deriver.name == "top.drv" and info.ultimate


def test_outputs_are_canonical(tmp_path: Path) -> None:
    script = "mkdir -p $out/d; echo x > $out/d/f; $builder chmod 4777 $out/d/f; $builder chmod 777 $out/d"
    with open_store(tmp_path / "s") as store:
        out = build_all(store, write_recipe(tmp_path, "perms", script))["out"]
        f = os.lstat(Path(store.real_path(out)) / "d" / "f")
        assert stat.S_IMODE(f.st_mode) == 0o555 and f.st_mtime == 1  # setuid gone, read-only, mtime 1
        assert stat.S_IMODE(os.lstat(Path(store.real_path(out)) / "d").st_mode) == 0o555


def test_failed_build_registers_nothing_and_keeps_its_log(tmp_path: Path) -> None:
    script = "mkdir $out; echo some output; echo the error >&2; exit 3"
    with open_store(tmp_path / "s") as store:
        (goal,) = goals(store, instantiate(store, write_recipe(tmp_path, "broken", script)))
        with pytest.raises(BuildError, match="exited with code 3") as e:
            build_derivation(store, goal, BuildOptions())
        assert "the error" in e.value.log_tail
        assert nothing_registered(store, goal.outputs["out"])
        assert read_log(store.spec.log_dir, goal.drv_path) == b"some output\nthe error\n"  # raw pty: no CRs
        assert log_path(store.spec.log_dir, goal.drv_path).endswith(".bz2")
        assert not [n for n in os.listdir(store.real_dir) if n.startswith(".storekit-tmp")]


def test_keep_failed_keeps_the_build_directory_of_a_failure_only(tmp_path: Path) -> None:
    """Like `nix-build -K`: the failed build's /build stays for a look, its path in the error."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    script = 'echo half done > partial; [ -n "$ok" ] || exit 4; echo fine > $out'
    with open_store(tmp_path / "s") as store:
        (goal,) = goals(store, instantiate(store, write_recipe(tmp_path, "kept", script)))
        with pytest.raises(BuildError, match="exited with code 4") as e:
            build_derivation(store, goal, BuildOptions(keep_failed=True, tmp_dir=str(tmp)))
        (kept,) = os.listdir(tmp)  # private (0700); /build is its `build` (see test_build_attacks.py)
        assert f"build directory kept: {tmp / kept / 'build'})" in str(e.value)
        assert (tmp / kept / "build" / "partial").read_text() == "half done\n"
        assert nothing_registered(store, goal.outputs["out"])
        with pytest.raises(BuildError) as again:
            build_derivation(store, goal, BuildOptions(tmp_dir=str(tmp)))
        assert "directory kept" not in str(again.value) and os.listdir(tmp) == [kept]  # none left


def test_missing_output_is_an_error(tmp_path: Path) -> None:
    with open_store(tmp_path / "s") as store:
        (goal,) = goals(
            store, instantiate(store, write_recipe(tmp_path, "lazy", "true", outputs=["out", "x"]))
        )
        with pytest.raises(BuildError, match="did not produce output path"):
            build_derivation(store, goal, BuildOptions())
        assert nothing_registered(store, goal.outputs["out"])


def test_wrong_fixed_output_hash_is_refused_with_both_hashes(tmp_path: Path) -> None:
    wrong = Hash.of(b"something else").sri
    got = Hash.of(b"actual\n").sri
    recipe = write_recipe(tmp_path, "fod", "echo actual > $out", fixed=(wrong, "flat"))
    with open_store(tmp_path / "s") as store:
        (goal,) = goals(store, instantiate(store, recipe))
        with pytest.raises(HashMismatch) as e:
            build_derivation(store, goal, BuildOptions())
        assert (e.value.expected, e.value.got) == (wrong, got)
        assert wrong in str(e.value) and got in str(e.value)
        assert nothing_registered(store, goal.outputs["out"])


def test_recursive_fixed_output(tmp_path: Path) -> None:
    script = "mkdir $out; echo data > $out/file"
    with open_store(tmp_path / "s") as store:
        probe = build_all(store, write_recipe(tmp_path, "probe", script))["out"]
        nar_hash = store.query_path_info(probe).nar_hash
    recipe = write_recipe(tmp_path, "tree", script, fixed=(nar_hash.sri, "recursive"))
    with open_store(tmp_path / "s2") as store:
        out = build_all(store, recipe)["out"]
        info = store.query_path_info(out)
        assert info.nar_hash == nar_hash and info.ca == f"fixed:r:sha256:{nar_hash.nix32}"
        assert out == store.store_dir.make_source_path("tree", nar_hash)


def test_cycle_between_outputs_is_refused(tmp_path: Path) -> None:
    script = "mkdir $out $dev; echo $dev > $out/d; echo $out > $dev/o"
    with open_store(tmp_path / "s") as store:
        (goal,) = goals(
            store, instantiate(store, write_recipe(tmp_path, "cyc", script, outputs=["out", "dev"]))
        )
        with pytest.raises(BuildError, match="cycle"):
            build_derivation(store, goal, BuildOptions())
        assert nothing_registered(store, goal.outputs["out"])


def test_allowed_references(tmp_path: Path) -> None:
    write_recipe(tmp_path, "dep", "echo dep > $out")
    script = "echo ${inputs.dep} > $out"
    env = {"allowedReferences": ""}
    recipe = write_recipe(tmp_path, "strict", script, inputs={"dep": "dep.toml"}, env=env)
    with open_store(tmp_path / "s") as store, pytest.raises(BuildError, match="allowedReferences"):
        build_all(store, recipe)


def test_timeout_kills_the_whole_tree(tmp_path: Path) -> None:
    marker = "987654321"
    script = f"($builder sleep {marker} &); $builder sleep {marker} & $builder sleep {marker}"
    with open_store(tmp_path / "s") as store:
        (goal,) = goals(store, instantiate(store, write_recipe(tmp_path, "hang", script)))
        started = time.monotonic()
        with pytest.raises(BuildError, match="timed out after 1 seconds"):
            build_derivation(store, goal, BuildOptions(timeout=1))
        assert time.monotonic() - started < 10
        deadline = time.monotonic() + 5
        while sleepers(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sleepers(marker) == []
        assert nothing_registered(store, goal.outputs["out"])


def sleepers(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline.split(b"\0"):
            found.append(int(pid))
    return found


def test_without_sandbox_the_outputs_are_the_same(tmp_path: Path) -> None:
    script = "mkdir $out; echo hello > $out/f; $builder ln -s f $out/l"
    with open_store(tmp_path / "a") as a, open_store(tmp_path / "b") as b:
        out_a = build_all(a, write_recipe(tmp_path, "same", script))["out"]
        out_b = build_all(b, write_recipe(tmp_path, "same", script), sandbox=False)["out"]
        assert a.query_path_info(out_a).nar_hash == b.query_path_info(out_b).nar_hash


def test_an_output_built_meanwhile_is_not_built_again(tmp_path: Path) -> None:
    with open_store(tmp_path / "s") as store:
        (goal,) = goals(store, instantiate(store, write_recipe(tmp_path, "once", "echo once > $out")))
        first = build_derivation(store, goal, BuildOptions())
        again = build_derivation(store, goal, BuildOptions())
        assert len(first.registered) == 1 and again.registered == ()


def test_a_build_dir_deleted_in_the_background_is_gone_when_the_run_ends(tmp_path: Path) -> None:
    with deferred_deletions():
        with build_dir("demo", str(tmp_path)) as bd:
            (Path(bd.build) / "file").write_text("x")
        assert Path(bd.top).parent == tmp_path
    assert list(tmp_path.iterdir()) == []


def test_recursive_fixed_output_that_names_itself(tmp_path: Path) -> None:
    """Its content hash is the NAR's modulo its own hash part (zeroed, offsets appended), not the NAR's."""
    from storekit.nar.fs import dump_path
    from storekit.references import hash_modulo

    dummy = "0" * 32  # any hash part at the same place zeroes to the same bytes
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "self").write_text(dummy + "\n")
    expected = hash_modulo(dump_path(str(tmp_path / "model")), dummy)
    script = "mkdir $out; basename $out | cut -c1-32 > $out/self"
    recipe = write_recipe(tmp_path, "selfref", script, fixed=(expected.sri, "recursive"))
    with open_store(tmp_path / "s") as store:
        out = build_all(store, recipe)["out"]
        assert (Path(store.real_path(out)) / "self").read_text() == out.hash_part + "\n"
        info = store.query_path_info(out)
        assert info.ca == f"fixed:r:sha256:{expected.nix32}" and info.nar_hash != expected
        assert info.references == frozenset({out})


def test_recursive_fixed_output_with_sha512(tmp_path: Path) -> None:
    from storekit.nar.fs import dump_path

    script = "mkdir $out; echo data > $out/file"
    with open_store(tmp_path / "s") as store:
        probe = build_all(store, write_recipe(tmp_path, "probe", script))["out"]
        expected = Hash.of(b"".join(dump_path(store.real_path(probe))), "sha512")
    recipe = write_recipe(tmp_path, "tree", script, fixed=(expected.sri, "recursive"))
    with open_store(tmp_path / "s2") as store:
        out = build_all(store, recipe)["out"]
        assert store.query_path_info(out).ca == f"fixed:r:sha512:{expected.nix32}"


@pytest.mark.parametrize(
    ("failures", "message", "built"),
    [
        (2, "bwrap: loopback: Failed RTM_NEWADDR: No child processes", True),  # set up again: it builds
        (3, "bwrap: loopback: Failed RTM_NEWADDR: No child processes", False),  # every attempt failed
        (1, "bwrap: Creating new namespace failed: Operation not permitted", False),  # not transient
    ],
)
def test_a_sandbox_whose_loopback_setup_failed_is_set_up_again(
    tmp_path: Path, failures: int, message: str, built: bool
) -> None:
    """bubblewrap failing to configure the new namespace's loopback (its netlink request, now and then
    on a loaded machine) is retried, up to SETUP_ATTEMPTS in all; another setup failure is not."""
    from storekit.realise.runner import SETUP_ATTEMPTS, find_bwrap

    counter = tmp_path / "attempts"
    wrapper = tmp_path / "bwrap"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{counter}" 2>/dev/null || echo 0); echo $((n + 1)) > "{counter}"\n'
        f'if [ "$n" -lt {failures} ]; then echo "{message}" >&2; exit 1; fi\n'
        f'exec {find_bwrap()} "$@"\n'
    )
    wrapper.chmod(0o755)
    recipe = write_recipe(tmp_path, "retried", "echo ok > $out")
    with open_store(tmp_path / "s") as store:
        (goal,) = goals(store, instantiate(store, recipe))
        options = BuildOptions(bwrap=(str(wrapper),))
        if built:
            build_derivation(store, goal, options)
            assert store.is_valid_path(goal.outputs["out"])
        else:
            with pytest.raises(SandboxError, match="the sandbox could not be set up: bwrap: ") as e:
                build_derivation(store, goal, options)
            assert e.value.transient == ("loopback" in message)
            assert nothing_registered(store, goal.outputs["out"])
    expected = failures + 1 if built else (SETUP_ATTEMPTS if "loopback" in message else 1)
    assert int(counter.read_text()) == expected
