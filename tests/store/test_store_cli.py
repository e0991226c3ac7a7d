"""`storekit store …` end to end, in process, against a local store in a temp dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storekit.cli import app
from storekit.nar.fs import hash_path
from storekit.store.specs import parse_store_spec
from storekit.storepath import StoreDir


def run(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0
    return result.stdout


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "a").write_bytes(b"same\n")
    (tmp_path / "src" / "sub" / "b").write_bytes(b"same\n")
    return tmp_path / "src"


def test_add_info_closure_gc(tmp_path: Path, tree: Path) -> None:
    store = str(tmp_path / "s" / "store")
    out = run("store", "add", "--store", store, str(tree)).strip()
    assert out == str(StoreDir(store).make_source_path("src", hash_path(tree)[0]))
    info = json.loads(run("store", "info", "--json", "-S", "--store", store, out + "/sub/b"))
    assert info[0]["path"] == out and info[0]["closureSize"] == info[0]["narSize"]
    assert info[0]["narHash"] == hash_path(tree)[0].sri
    assert run("store", "closure", "--store", store, out).split() == [out]
    run("store", "add-root", "--store", store, out, str(tmp_path / "result"))
    assert run("store", "closure", "--store", store, str(tmp_path / "result")).split() == [out]
    assert run("store", "optimise", "--store", store).endswith("freed by hard-linking 1 files\n")
    assert "checked 1 paths: ok" in run("store", "verify", "--check-contents", "--store", store)
    assert run("store", "gc", "--store", store).startswith("0 store paths deleted")
    os.unlink(tmp_path / "result")
    assert run("store", "gc", "--dry-run", "--store", store).splitlines()[0] == out


def test_default_store_comes_from_the_environment(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STOREKIT_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no config file: its `store` would win
    out = run("store", "add", str(tree)).strip()
    assert out.startswith(str(tmp_path / "data" / "storekit" / "store") + "/")
    monkeypatch.setenv("STOREKIT_STORE", str(tmp_path / "other" / "store"))
    assert run("store", "add", str(tree)).startswith(str(tmp_path / "other" / "store"))


def test_errors_are_one_line_for_users(tmp_path: Path) -> None:
    store = str(tmp_path / "s" / "store")
    missing = f"{store}/{'0' * 32}-x"
    proc = subprocess.run(
        [sys.executable, "-m", "storekit", "store", "delete", "--store", store, missing],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent.parent,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr == f"error: path '{missing}' is not valid in store '{parse_store_spec(store)}'\n"
    proc = subprocess.run(
        [sys.executable, "-m", "storekit", "store", "info", "--store", "relative/store", "x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 1 and proc.stderr.startswith("error: path 'x' is not in the store dir")


def test_max_freed_takes_sizes_as_nix_does(tmp_path: Path) -> None:
    """`--max-freed 1K` stops after the first path that reaches 1024 bytes freed; a bad size says why."""
    from storekit.cli._options import parse_size

    assert [parse_size(t) for t in ("0", "512", "1K", "1k", "2M", "3G", "1T")] == [
        0, 512, 1024, 1024, 2 << 20, 3 << 30, 1 << 40,
    ]  # fmt: skip
    store = str(tmp_path / "s" / "store")
    for i in range(3):
        (tmp_path / f"f{i}").write_bytes(bytes(2000))
        run("store", "add", "--store", store, str(tmp_path / f"f{i}"))
    freed = json.loads(run("store", "gc", "--max-freed", "1K", "--json", "--store", store))
    assert len(freed["paths"]) == 1 and freed["bytesFreed"] >= 1024
    result = CliRunner().invoke(app, ["store", "gc", "--max-freed", "1x", "--store", store])
    assert result.exit_code == 2 and "'1x' is not a size" in result.output
    assert len(json.loads(run("store", "gc", "--json", "--store", store))["paths"]) == 2
