"""What a short command imports: `storekit --version`, a plain `storekit hash path|file` line, and a plain
`storekit build` line.

Their start-up is most of what they cost (the start-up row of `python -m bench startup` compares them
with Nix), and each module below costs a millisecond or more to import: `typer`/`click` (the CLI
framework), `dataclasses` (which imports inspect, ast and dis), `typing`, `re`, `base64` (imports
`re`), `enum`, and `hashlib`, whose import initialises OpenSSL. None of them is needed to hash a small
file, so none may come back unnoticed. A build needs more (dataclasses, sqlite, subprocess …), but
not the CLI framework, nor what only some builds use (`BUILD_HEAVY`): each is imported where a build
uses it. Timing is the benchmark's job; this checks the cause.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from build_fixtures import instantiate, open_store, write_recipe

HEAVY = {
    "typer",
    "click",
    "rich",
    "dataclasses",
    "inspect",
    "ast",
    "typing",
    "re",
    "base64",
    "enum",
    "hashlib",
    "_hashlib",
    "json",
    "pathlib",
    "threading",
    "storekit.cli._app",
    "storekit.hashbase",
}

#: Not imported by a plain build of an input-addressed derivation without substituters or remote builders:
#: typer (`storekit.cli._build_line` parses the line), downloads (`builtin:fetchurl`: urllib, http.client,
#: email, ssl), substitution (the transfer layer, zstandard, signatures, narinfo), remote builders (ssh,
#: the serve protocol), content-addressed outputs and realisations, a fixed output's network (pasta),
#: tqdm (stderr is not a terminal here), `platform`, `concurrent.futures` (with `logging`), `json`
#: (structured attrs only), and `tempfile` and `shutil` (which import `bz2`, `lzma`, `fnmatch` and
#: `random`: build dirs are made by `storekit.tempdirs`, programs found by `storekit.programs`).
BUILD_HEAVY = {
    "typer",
    "click",
    "rich",
    "tqdm",
    "storekit.cli._app",
    "storekit.cli._options",
    "storekit.cli.build",
    "urllib.request",
    "http.client",
    "email",
    "ssl",
    "platform",
    "zstandard",
    "storekit.transfer.copy",
    "storekit.store.substituters",
    "storekit.signing",
    "storekit.remote.builders",
    "storekit.remote.store",
    "storekit.realise.hook",
    "storekit.realise.ca_outputs",
    "storekit.realise.network",
    "storekit.wire.values",
    "storekit.realise.fetchurl",
    "storekit.narinfo",
    "concurrent.futures",
    "logging",
    "json",
    "tempfile",
    "shutil",
    "lzma",
    "fnmatch",
    "random",
}

#: Runs `main` with the given arguments and prints what it imported that was not imported before.
PROBE = """
import sys
before = set(sys.modules)
try:
    from storekit.cli import main
    main(sys.argv[1:])
finally:
    sys.stdout.flush()
    print("imported:", *sorted(set(sys.modules) - before), file=sys.stderr)
"""


def _imported(*args: str) -> tuple[str, set[str]]:
    run = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=False)
    return run.stdout, set(run.stderr.rpartition("imported:")[2].split())


@pytest.mark.parametrize(
    "args",
    [
        ["hash", "path", "{f}"],
        ["hash", "path", "--type", "sha1", "--base32", "{d}"],
        ["hash", "file", "--base16", "{f}"],
        ["hash", "file", "--type=md5", "--base64", "{f}", "{f}"],
        ["hash", "path", "--type", "sha512", "--sri", "{f}"],
    ],
)
def test_a_plain_hash_line_imports_nothing_heavy(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("hello\n")
    (tmp_path / "d" / "x").write_bytes(bytes(40_000))
    out, imported = _imported(*(a.format(f=tmp_path / "d" / "f", d=tmp_path / "d") for a in args))
    assert out.strip()  # it did hash
    assert "storekit.nar.fs" in imported  # the probe sees what the command imports
    # the directory walker and nix-base32 only where the line asks for them
    allowed = {"storekit.fdtree"} if args[-1] == "{d}" else set()
    allowed |= {"storekit.nixbase32"} if "--base32" in args else set()
    assert imported & (HEAVY | {"storekit.fdtree", "storekit.nixbase32"}) == allowed


def test_version_imports_only_the_command_table() -> None:
    out, imported = _imported("--version")
    assert out.startswith("storekit ")
    assert {m for m in imported if m.startswith("storekit")} == {
        "storekit",
        "storekit.cli",
        "storekit.cli._commands",
    }
    assert imported & HEAVY == set()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")
def test_a_plain_build_line_imports_no_typer_and_nothing_it_does_not_use(tmp_path: Path) -> None:
    with open_store(tmp_path / "s") as store:
        dep = write_recipe(tmp_path, "dep", "echo dep > $out")
        drv = instantiate(store, write_recipe(tmp_path, "top", "cat $d > $out", inputs={"d": "dep.toml"}))
        spec = str(store.spec)
    out, imported = _imported("build", str(drv), "--store", spec, "-q", "--no-out-link", "-j", "2")
    assert out.strip().endswith("-top") and dep.exists()  # it did build
    assert "storekit.realise.runner" in imported  # the probe sees what the command imports
    assert imported & BUILD_HEAVY == set()


def test_the_probe_sees_heavy_imports(tmp_path: Path) -> None:
    """The checks above can fail: what a line that needs more imports is reported."""
    (tmp_path / "f").write_text("hello\n")
    out, imported = _imported("hash", "path", "--json", str(tmp_path / "f"))
    assert '"hash": "sha256-' in out
    assert "json" in imported  # the JSON output needs it, and only that output
    out, imported = _imported("hash", "path", "--help")  # not a plain line: typer answers
    assert "Usage:" in out
    assert {"typer", "storekit.cli._app"} <= imported
    out, imported = _imported("build", "--help")
    assert "Usage:" in out
    assert {"typer", "storekit.cli._app", "storekit.cli.build"} <= imported


#: Not imported by a build whose outputs are all valid (`storekit.realise.valid` answers it): the
#: planner, the scheduler, the builder and its sandbox, and what only they use; nor `dataclasses`,
#: `typing`, `re`, `enum` (`storepath`'s constants are `storekit.frozen.Constant`s), `signal` (SIGTERM
#: is Ctrl-C only for a build), `urllib.parse` (a plain store spec's query is split and joined),
#: OpenSSL (the GC root's name is hashed by Python's own SHA-1), `threading` (a local store's locks are
#: `_thread`'s; the background deletions' thread starts only in a run of builds) or the `sqlite3`
#: package, whose date adapters import `datetime` (`storekit.store.sqlite`).
BUILT_HEAVY = (
    BUILD_HEAVY
    | HEAVY
    | {
        "storekit.realise.driver",
        "storekit.realise.plan",
        "storekit.realise.scheduler",
        "storekit.realise.runner",
        "storekit.realise.sandbox",
        "storekit.cli._progress",
        "tempfile",
        "pathlib",
        "urllib.request",
        "urllib.parse",
        "signal",
        "socket",
        "sqlite3",
        "sqlite3.dbapi2",
        "datetime",
    }
)


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")
def test_a_build_of_what_is_built_imports_no_build_machinery(tmp_path: Path) -> None:
    with open_store(tmp_path / "s") as store:
        recipe = write_recipe(tmp_path, "top", "echo top > $out")
        drv = instantiate(store, recipe)
        spec = str(store.spec)
    out, imported = _imported("build", str(drv), "--store", spec, "-q", "--no-out-link")
    assert out.strip().endswith("-top") and "storekit.realise.runner" in imported  # built: the whole way
    out_again, imported = _imported("build", str(drv), "--store", spec, "-o", str(tmp_path / "result"))
    assert out_again == out and os.readlink(tmp_path / "result") == out.strip()
    assert "storekit.realise.valid" in imported  # the probe sees what the command imports
    assert imported & BUILT_HEAVY == set()
    out_again, imported = _imported("build", str(recipe), "--store", spec, "--no-out-link")
    assert out_again == out and "storekit.realise.recipe" in imported  # a recipe: instantiated first
    machinery = {m for m in BUILT_HEAVY if m.startswith("storekit.")}
    assert imported & machinery == set()


def test_a_plain_copy_line_imports_no_typer(tmp_path: Path) -> None:
    """`storekit copy` of a plain line (`cli._copy_line`) between two local stores: no CLI framework."""
    with open_store(tmp_path / "s") as store:
        path = store.add_text("hello", b"hello\n", [])
        spec = str(store.spec)
    dst = f"local?store={store.store_dir.path}&state={tmp_path / 'd' / 'var'}&real={tmp_path / 'd' / 'store'}"
    out, imported = _imported("copy", "--from", spec, "--to", dst, str(path), "--json")
    assert '"copied"' in out and "storekit.cli._copy" in imported  # it did copy; the probe sees it
    assert imported & {"typer", "click", "rich", "storekit.cli._app", "storekit.cli._options"} == set()
