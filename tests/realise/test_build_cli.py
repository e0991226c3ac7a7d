"""`storekit build`, `storekit log`, `storekit run`, `storekit drv instantiate` as a user runs them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from build_fixtures import absent_store_dir, instantiate, open_store, storekit, write_recipe

from storekit.errors import SandboxError
from storekit.realise import runner
from storekit.realise.driver import derivation_reader
from storekit.realise.logs import log_path
from storekit.store.open import open_store as open_spec

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


def spec_of(root: Path, store_dir: str | None = None) -> str:
    with open_store(root, store_dir) as store:
        return str(store.spec)


def graph(tmp: Path) -> dict[str, Path]:
    """ok1 -> broken -> after (a chain whose middle fails) and a separate `other`."""
    return {
        "ok1": write_recipe(tmp, "ok1", "echo ok1 > $out"),
        "broken": write_recipe(tmp, "broken", "echo about to fail; exit 1", inputs={"d": "ok1.toml"}),
        "after": write_recipe(tmp, "after", "echo ${inputs.d} > $out", inputs={"d": "broken.toml"}),
        "other": write_recipe(tmp, "other", "echo other > $out"),
    }


def drvs(spec: str, recipes: dict[str, Path]) -> dict[str, str]:
    """Instantiate in-process (the CLI command itself is tested once, below)."""
    with open_spec(spec) as store:
        return {k: str(instantiate(store, v)) for k, v in recipes.items()}  # type: ignore[arg-type]


def valid(spec: str, drv: str) -> bool:
    """Are all outputs of `drv` valid in the store?"""
    with open_spec(spec) as store:
        d = derivation_reader(store)(store.parse_path(drv))  # type: ignore[arg-type]
        return all(store.is_valid_path(store.parse_path(o.path)) for o in d.outputs.values())


def test_failure_in_the_middle_of_a_graph(tmp_path: Path) -> None:
    spec = spec_of(tmp_path / "s")
    d = drvs(spec, graph(tmp_path))
    run = storekit("build", d["after"], d["other"], "--store", spec, check=False)
    assert run.returncode == 1
    assert "about to fail" in run.stderr and d["broken"] in run.stderr
    assert valid(spec, d["ok1"]) and not valid(spec, d["broken"]) and not valid(spec, d["after"])
    # the failed build keeps its log
    assert storekit("log", d["broken"], "--store", spec).stdout == "about to fail\n"


def test_keep_going(tmp_path: Path) -> None:
    spec = spec_of(tmp_path / "s")
    d = drvs(spec, graph(tmp_path))
    run = storekit("build", d["after"], d["other"], "--store", spec, "--keep-going", "-j", "2", check=False)
    assert run.returncode == 1
    assert "1 build(s) failed, 1 not attempted" in run.stderr
    assert valid(spec, d["other"]) and valid(spec, d["ok1"]) and not valid(spec, d["after"])
    # what was built is printed even though the run failed as a whole
    with open_spec(spec) as store:
        other_out = store.parse_path(run.stdout.strip())
        assert other_out.name == "other"


def test_build_recipe_directly_and_print_outputs(tmp_path: Path) -> None:
    spec = spec_of(tmp_path / "s")
    recipe = write_recipe(tmp_path, "two", "echo a > $out; echo b > $doc", outputs=["out", "doc"])
    outs = storekit("build", str(recipe), "--store", spec).stdout.split()
    assert [os.path.basename(o).split("-", 1)[1] for o in outs] == ["two-doc", "two"]
    drv = storekit("drv", "instantiate", str(recipe), "--store", spec).stdout.strip()
    assert storekit("build", f"{drv}!doc", "--store", spec).stdout.split() == [outs[0]]
    assert storekit("log", outs[1], "--store", spec).stdout == ""


def test_dry_run_builds_nothing(tmp_path: Path) -> None:
    spec = spec_of(tmp_path / "s")
    d = drvs(spec, graph(tmp_path))
    run = storekit("build", d["after"], "--store", spec, "--dry-run")
    assert "these 3 derivations will be built" in run.stderr
    assert not valid(spec, d["ok1"])


def test_rootless_store_under_a_prefix_that_does_not_exist(tmp_path: Path) -> None:
    """A logical store dir under /opt that is not on this machine; files in tmp; `run` sees them there."""
    store_dir = absent_store_dir()
    spec = spec_of(tmp_path / "s", store_dir)
    write_recipe(tmp_path, "lib", "echo 'from the lib' > $out")
    recipe = write_recipe(
        tmp_path,
        "app",
        "mkdir -p $out/bin; printf '#!%s sh\\ncat %s\\n' $builder ${inputs.lib} > $out/bin/app; "
        "$builder chmod +x $out/bin/app",
        inputs={"lib": "lib.toml"},
    )
    (out,) = storekit("build", str(recipe), "--store", spec).stdout.split()
    assert out.startswith(store_dir + "/")
    assert not os.path.exists(os.path.dirname(store_dir))  # nothing was created on the host
    assert (tmp_path / "s" / "store" / os.path.basename(out) / "bin" / "app").exists()
    assert storekit("run", "--store", spec, "--", f"{out}/bin/app").stdout == "from the lib\n"
    assert not os.path.exists(os.path.dirname(store_dir))


def test_run_in_an_ordinary_store_needs_no_namespace(tmp_path: Path) -> None:
    spec = spec_of(tmp_path / "s")
    assert storekit("run", "--store", spec, "--", "echo", "plain").stdout == "plain\n"


def test_substitutes_from_another_store(tmp_path: Path) -> None:
    """Built once in one store; a second store with the same store dir fetches it instead of building."""
    shared = absent_store_dir()
    first, second = spec_of(tmp_path / "first", shared), spec_of(tmp_path / "second", shared)
    recipe = write_recipe(tmp_path, "fetchme", "echo built > $out")
    (out,) = storekit("build", str(recipe), "--store", first).stdout.split()
    run = storekit("build", str(recipe), "--store", second, "--substituters", first)
    assert run.stdout.split() == [out]
    with open_store(tmp_path / "second", shared) as store:
        drv = instantiate(store, recipe)
        assert store.is_valid_path(store.parse_path(out))
        assert not os.path.exists(log_path(store.spec.log_dir, drv))  # fetched, not built


def test_bubblewrap_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "which", lambda name, path=None: None)
    monkeypatch.setattr(runner.os, "access", lambda path, mode: False)
    with pytest.raises(SandboxError, match="apt-get install -y bubblewrap"):
        runner.find_bwrap()


def test_a_failed_substitution_falls_back_to_building(tmp_path: Path) -> None:
    from storekit.realise.driver import Sources, build
    from storekit.realise.runner import BuildOptions
    from storekit.store.substituters import Substituters

    shared = absent_store_dir()
    recipe = write_recipe(tmp_path, "fragile", "echo original > $out")
    with open_store(tmp_path / "cache", shared) as cache:
        (out,) = storekit("build", str(recipe), "--store", str(cache.spec)).stdout.split()
        damaged = Path(cache.real_path(cache.parse_path(out)))
        damaged.chmod(0o644)
        damaged.write_text("damaged\n")  # the cache now serves a NAR that does not match its hash
        with open_store(tmp_path / "mine", shared) as mine:
            drv = instantiate(mine, recipe)
            sources = Sources(Substituters([cache]))
            plan, report = build(mine, [(drv, None)], BuildOptions(), sources=sources)
            assert plan.goals[drv].action.value == "substitute"
            assert report.ok, report.error()
            assert Path(mine.real_path(mine.parse_path(out))).read_text() == "original\n"
            assert os.path.exists(log_path(mine.spec.log_dir, drv))  # it was built here after all


def test_result_links_are_gc_roots_like_nix_build(tmp_path: Path) -> None:
    """`./result`, `result-doc`, `result-2`: each an indirect GC root that `store gc` honours."""
    spec = spec_of(tmp_path / "s")
    two = write_recipe(tmp_path, "two", "echo a > $out; echo b > $doc", outputs=["out", "doc"])
    one = write_recipe(tmp_path, "one", "echo one > $out")
    work = tmp_path / "work"
    work.mkdir()
    outs = storekit("build", str(two), str(one), "--store", spec, cwd=work).stdout.split()
    links = {p.name: os.readlink(p) for p in work.iterdir()}
    assert links == {"result": outs[1], "result-doc": outs[0], "result-2": outs[2]}
    roots = storekit("store", "roots", "--store", spec).stdout.splitlines()
    assert sorted(roots) == sorted(f"{work / name} -> {target}" for name, target in links.items())
    storekit("store", "gc", "--store", spec)
    assert all(valid(spec, d) for d in drvs(spec, {"two": two, "one": one}).values())
    (work / "result-2").unlink()  # the root goes with its link
    gone = storekit("store", "gc", "--store", spec).stderr
    assert f"deleting '{outs[2]}'" in gone and outs[1] not in gone


def test_out_link_and_no_out_link(tmp_path: Path) -> None:
    spec = spec_of(tmp_path / "s")
    recipe = write_recipe(tmp_path, "one", "echo one > $out")
    work = tmp_path / "work"
    work.mkdir()
    (out,) = storekit("build", str(recipe), "--store", spec, "--no-out-link", cwd=work).stdout.split()
    assert list(work.iterdir()) == []
    storekit("build", str(recipe), "--store", spec, "-o", "links/one", cwd=work)
    assert os.readlink(work / "links" / "one") == out
    (work / "taken").write_text("mine\n")  # a file that is not a link is never replaced
    run = storekit("build", str(recipe), "--store", spec, "--out-link", "taken", cwd=work, check=False)
    assert run.returncode == 1 and "already exists and is not a root" in run.stderr
    assert (work / "taken").read_text() == "mine\n"


@pytest.mark.parametrize("sandbox", [True, False])
def test_a_builder_gets_sigint_and_sigquit_at_their_default_action(tmp_path: Path, sandbox: bool) -> None:
    """A shell's background job (`storekit build … &` from a script) starts with SIGINT and SIGQUIT
    ignored; the builder must not inherit that, or test suites that interrupt their own children fail.
    A child of the builder copies its ignored-signal mask (`SigIgn` of /proc/self/status) into the
    output (not the last command: busybox sh would exec it with SIGQUIT ignored by itself)."""
    import signal
    import subprocess
    import sys

    store_dir = None if sandbox else str(tmp_path / "s" / "store")
    spec = spec_of(tmp_path / "s", store_dir)
    recipe = write_recipe(tmp_path, "sigs", "grep SigIgn /proc/self/status > $out; true")
    (d,) = drvs(spec, {"sigs": recipe}).values()
    argv = [sys.executable, "-m", "storekit", "build", d, "--store", spec, "--no-out-link"]
    if not sandbox:
        argv.append("--no-sandbox")

    def ignore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = subprocess.run(argv, capture_output=True, text=True, env=env, preexec_fn=ignore, check=False)
    assert run.returncode == 0, run.stderr
    mask = int(Path(run.stdout.strip().splitlines()[-1]).read_text().split()[1], 16)
    assert mask & (1 << (signal.SIGINT - 1)) == 0
    assert mask & (1 << (signal.SIGQUIT - 1)) == 0
