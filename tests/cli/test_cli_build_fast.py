"""`storekit build` answered without typer (`storekit.cli._build_line`) does what the typer command does.

A plain command line is parsed by `_build_line.parse` and run by `_build.run`, which the typer command
calls too; these check that the parser knows exactly the typer command's options (names, kinds,
defaults), that anything it is unsure of goes to typer, and that real builds through both paths print
the same bytes, exit with the same status and leave the same links.
"""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from build_fixtures import REPO, absent_store_dir, instantiate, open_store, write_recipe

from storekit.cli import _build, _build_line, _plain
from storekit.cli._app import load_command
from storekit.realise.valid import derivation_reader

#: `main` with the plain-line parser turned off: every line goes to typer.
TYPER = (
    "import sys; from storekit.cli import _build_line, main; "
    "_build_line.parse = lambda args: None; main(sys.argv[1:])"
)

KINDS = {_plain.INT0: (int, 0), _plain.INT1: (int, 1), _plain.SECONDS: (float, 0)}


def _options() -> dict[str, Any]:
    params = load_command("build").params
    return {p.name: p for p in params if p.name != "help"}


def test_the_plain_options_are_the_typer_commands() -> None:
    params = _options()
    spellings = {opt: name for name, p in params.items() for opt in (*p.opts, *p.secondary_opts)}
    spellings = {opt: name for opt, name in spellings.items() if opt.startswith("-")}
    assert {opt: dest for opt, (dest, _) in _build_line.OPTIONS.items()} == spellings
    for opt, (dest, kind) in _build_line.OPTIONS.items():
        p = params[dest]
        assert (kind == _plain.FLAG) == bool(p.is_flag), opt
        assert (kind == _plain.TEXTS) == bool(p.multiple), opt
        if kind in KINDS:
            number, minimum = KINDS[kind]
            assert p.type.min == minimum and p.type.max is None, opt
            assert p.type.__class__.__name__ == ("IntRange" if number is int else "FloatRange"), opt
        elif kind != _plain.FLAG:
            assert p.type.name == "str", opt  # typer's name for click's STRING


def test_the_request_has_the_typer_commands_names_and_defaults() -> None:
    params = _options()
    fields = inspect.signature(_build.BuildRequest).parameters
    assert list(fields) == list(params) == list(_build.FIELDS)
    for name, f in fields.items():
        if f.default is not inspect.Parameter.empty:
            assert params[name].default == f.default, name
    assert params["targets"].required and fields["targets"].default is inspect.Parameter.empty


def test_requests_are_equal_by_value_and_show_their_values() -> None:
    a = _build.BuildRequest(["a.drv"], jobs=2, sandbox_path=["/x"])
    assert a == _build.BuildRequest(["a.drv"], jobs=2, sandbox_path=["/x"])
    assert a != _build.BuildRequest(["a.drv"], jobs=3, sandbox_path=["/x"])
    assert a != object()
    assert repr(a).startswith("BuildRequest(targets=['a.drv'], store=None, jobs=2, builders=None,")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (["a.drv"], {}),
        (["a.drv", "b.drv!out,dev", "-j", "2", "-q"], {"jobs": 2, "quiet": True}),
        (["--max-jobs=0", "a.drv", "--builders", "ssh://h x86_64-linux"],
         {"jobs": 0, "builders": "ssh://h x86_64-linux"}),
        (["-j3", "-oout", "a.drv", "--cores", "1", "--timeout", "2.5"],
         {"jobs": 3, "out_link": "out", "cores": 1, "timeout": 2.5}),
        (["a.drv", "--sandbox-path", "/x", "--sandbox-path=/y=/z?"], {"sandbox_path": ["/x", "/y=/z?"]}),
        (["a.drv", "--store", "/s", "--store", "local?store=/é"], {"store": "local?store=/é"}),
        (["a.drv", "-k", "-K", "-L", "--no-sandbox", "--json", "--dry-run", "--check", "--no-out-link"],
         {"keep_going": True, "keep_failed": True, "print_build_logs": True, "no_sandbox": True,
          "as_json": True, "dry_run": True, "check": True, "no_out_link": True}),
        (["a.drv", "--substituters", "", "--trusted-public-keys=k:AAAA", "--no-check-sigs"],
         {"substituters": "", "trusted_public_keys": "k:AAAA", "no_check_sigs": True}),
    ],
)  # fmt: skip
def test_a_plain_line_is_parsed(line: list[str], expected: dict[str, Any]) -> None:
    request = _build_line.parse(["build", *line])
    assert request is not None
    targets = [a for a in line if a.endswith((".drv", ",dev"))]
    assert request == _build.BuildRequest(targets, **expected)


@pytest.mark.parametrize(
    "line",
    [
        [],
        ["--help"],
        ["a.drv", "-h"],
        ["a.drv", "--bogus"],
        ["a.drv", "--jobs"],
        ["a.drv", "-j", "-1"],
        ["a.drv", "-j", "two"],
        ["a.drv", "-j", "²"],
        ["a.drv", "--cores", "0"],
        ["a.drv", "--timeout", "1e3"],
        ["a.drv", "--timeout", "-1"],
        ["a.drv", "--json=yes"],
        ["a.drv", "-kq"],
        ["a.drv", "--out-link", "-x"],
        ["--", "a.drv"],
        ["-", "a.drv"],
        [""],
        ["--jobs", "2"],
    ],
)
def test_anything_else_goes_to_typer(line: list[str]) -> None:
    assert _build_line.parse(["build", *line]) is None


def _run(how: str, cwd: Path, args: list[str]) -> subprocess.CompletedProcess[bytes]:
    argv = [sys.executable, "-m", "storekit"] if how == "plain" else [sys.executable, "-c", TYPER]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([*argv, "build", *args], cwd=cwd, env=env, capture_output=True, check=False)


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")
def test_same_bytes_status_and_links_as_typer(tmp_path: Path) -> None:
    store_dir = absent_store_dir()  # both stores have it, so both see the same .drv and output paths
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    ok = write_recipe(recipes, "ok", "echo ok > $out")
    two = write_recipe(
        recipes, "two", "echo $d > $out; echo dev > $dev", inputs={"d": "ok.toml"}, outputs=["out", "dev"]
    )
    broken = write_recipe(recipes, "broken", "echo about to fail; exit 3", inputs={"d": "ok.toml"})
    late = write_recipe(recipes, "late", "echo late > $out")
    runs: dict[str, list[tuple[int, bytes, bytes]]] = {}
    links: dict[str, dict[str, str]] = {}
    for how in ("plain", "typer"):
        root = tmp_path / how
        with open_store(root, store_dir) as store:
            drvs = {r.stem: str(instantiate(store, r)) for r in (ok, two, broken)}
            spec = str(store.spec)
        cwd = root / "cwd"
        cwd.mkdir()
        lines = [
            [drvs["two"], "--dry-run"],
            [drvs["ok"], "--no-out-link", "-q"],
            [drvs["two"], "--json", "-j2", "--no-out-link"],
            [drvs["two"] + "!dev", drvs["ok"], "-o", "out"],
            [drvs["broken"], "-k", "-q", "--no-out-link"],
            [str(late), "-q"],
            [drvs["ok"], "-j", "0"],
            [store_dir + "/missing.drv", "-q"],
        ]
        runs[how] = []
        for line in lines:
            assert _build_line.parse(["build", *line, "--store", spec]) is not None
            done = _run(how, cwd, [*line, "--store", spec])
            out, err = (text.replace(spec.encode(), b"SPEC") for text in (done.stdout, done.stderr))
            runs[how].append((done.returncode, out, err))
        links[how] = {p.name: os.readlink(p) for p in cwd.iterdir()}
    for i, (plain, typer) in enumerate(zip(runs["plain"], runs["typer"], strict=True)):
        assert plain == typer, f"line {i}"
    statuses = [status for status, _, _ in runs["plain"]]
    assert statuses == [0, 0, 0, 0, 1, 0, 1, 1]  # the lines above did what they should
    assert b"about to fail" in runs["plain"][4][2] and runs["plain"][4][2].startswith(b"error: ")
    assert links["plain"] == links["typer"]
    assert sorted(links["plain"]) == ["out-2", "out-dev", "result"]


#: `main` with the already-built check turned off: every build takes the whole workflow.
FULL = (
    "import sys; from storekit.cli import _build, main; "
    "_build._valid_already = lambda *args: None; main(sys.argv[1:])"
)


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")
def test_a_build_of_what_is_built_answers_as_the_whole_workflow(tmp_path: Path) -> None:
    """`storekit build` of targets whose outputs are valid (`realise.valid`) prints the same bytes and
    makes the same links as the build workflow, and what is not all valid (an output deleted, one
    output of two deleted) goes on to build it."""
    store_dir = absent_store_dir()
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    ok = write_recipe(recipes, "ok", "echo ok > $out")
    two = write_recipe(
        recipes, "two", "echo $d > $out; echo dev > $dev", inputs={"d": "ok.toml"}, outputs=["out", "dev"]
    )
    runs: dict[str, list[tuple[int, bytes, bytes]]] = {}
    links: dict[str, dict[str, str]] = {}
    for how in ("fast", "full"):
        root = tmp_path / how
        with open_store(root, store_dir) as store:
            drvs = {r.stem: str(instantiate(store, r)) for r in (ok, two)}
            spec = str(store.spec)
        cwd = root / "cwd"
        cwd.mkdir()
        argv = [sys.executable, "-m", "storekit"] if how == "fast" else [sys.executable, "-c", FULL]
        runs[how] = []

        def run(
            *args: str, argv: list[str] = argv, cwd: Path = cwd, spec: str = spec, how: str = how
        ) -> None:
            runs[how].append(_line(argv, cwd, spec, args))

        out_paths = {}
        with open_store(root, store_dir) as store:
            for name in ("ok", "two"):
                read = derivation_reader(store)(store.parse_path(drvs[name]))
                out_paths[name] = {o: v.path for o, v in read.outputs.items()}
        run("build", drvs["two"], "-q", "--no-out-link", "--store", spec)  # builds both
        run("build", drvs["two"], "--store", spec)  # all valid: result, result-dev
        run("build", drvs["two"] + "!dev", drvs["ok"], "-o", "out", "--store", spec)
        run("build", drvs["ok"] + "!out", drvs["ok"], "--json", "-o", "again", "--store", spec)
        run("build", drvs["two"], "--json", "--no-out-link", "--store", spec)
        run("build", drvs["two"] + "!out", "--json", "-q", "--no-out-link", "--store", spec)
        run("build", str(two), "--json", "--no-out-link", "--store", spec)  # a recipe, built
        run("build", drvs["ok"] + "!bogus", "--no-out-link", "--store", spec)
        run("build", store_dir + "/missing.drv", "--store", spec)
        for link in list(cwd.iterdir()):  # what the roots kept is deleted below
            link.unlink()
        run("store", "delete", out_paths["two"]["dev"], "--store", spec)  # one output of two
        run("build", drvs["two"], "--json", "-q", "--store", spec)
        (cwd / "result").unlink()
        (cwd / "result-dev").unlink()
        run("store", "delete", out_paths["two"]["out"], out_paths["two"]["dev"], "--store", spec)
        run("store", "delete", out_paths["ok"]["out"], "--store", spec)  # a deleted output
        run("build", drvs["ok"], "-q", "-o", "late", "--store", spec)
        links[how] = {p.name: os.readlink(p) for p in cwd.iterdir()}
    for i, (fast, full) in enumerate(zip(runs["fast"], runs["full"], strict=True)):
        assert fast == full, f"run {i}"
    statuses = [status for status, _, _ in runs["fast"]]
    assert statuses == [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
    outputs = runs["fast"][1][1].decode().split()
    assert outputs == [out_paths["two"]["dev"], out_paths["two"]["out"]]  # by output name, as nix-build
    assert b'"outputs":{"out":' in runs["fast"][3][1]
    assert runs["fast"][6][1] == runs["fast"][4][1]  # the recipe is the .drv
    assert b"has no output(s) bogus" in runs["fast"][7][2]
    assert links["fast"] == links["full"]
    assert sorted(links["fast"]) == ["late"]


def _line(argv: list[str], cwd: Path, spec: str, args: tuple[str, ...]) -> tuple[int, bytes, bytes]:
    """Status, stdout and stderr of one command line (the store's spec written SPEC)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([*argv, *args], cwd=cwd, env=env, capture_output=True, check=False)
    out, err = (text.replace(spec.encode(), b"SPEC") for text in (done.stdout, done.stderr))
    return done.returncode, out, err
