"""`storekit drv show|print|check`, run as a user would, on real Nix's golden derivations."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent.parent / "data" / "derivations"
REPO = Path(__file__).parent.parent.parent
ROOTS: dict[str, str] = json.loads((DATA / "roots.json").read_text())


def storekit(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "storekit", *args], input=input, capture_output=True, env=env, check=False
    )


def golden(name: str) -> Path:
    return DATA / "store" / Path(ROOTS[name]).name


@pytest.fixture
def store_copy(tmp_path: Path) -> Path:
    """The golden .drv files in a directory of their own (the CLI infers the store dir from it)."""
    copy = tmp_path / "store"
    shutil.copytree(DATA / "store", copy)
    return copy


def test_show_recursive_is_nix_output() -> None:
    roots = [str(golden(n)) for n in ROOTS]
    proc = storekit("drv", "show", "--store-dir", "/opt/store", "-r", *roots)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == (DATA / "show.json").read_bytes()


def test_show_infers_the_store_dir_from_the_parent(store_copy: Path) -> None:
    file = store_copy / golden("simple").name
    proc = storekit("drv", "show", str(file))
    assert proc.returncode == 0, proc.stderr.decode()
    (key,) = json.loads(proc.stdout)
    assert key == str(file)


def test_print_gives_back_the_drv_file(tmp_path: Path) -> None:
    file = golden("escapes")
    shown = tmp_path / "escapes.json"
    shown.write_bytes(storekit("drv", "show", "--store-dir", "/opt/store", str(file)).stdout)
    proc = storekit("drv", "print", str(shown))
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == file.read_bytes()
    assert storekit("drv", "print", "-", input=shown.read_bytes()).stdout == file.read_bytes()


def test_print_needs_a_choice_among_several() -> None:
    proc = storekit("drv", "print", str(DATA / "show.json"))
    assert proc.returncode == 1
    assert b"choose one with --drv" in proc.stderr
    proc = storekit("drv", "print", str(DATA / "show.json"), "--drv", ROOTS["twins"])
    assert proc.stdout == golden("twins").read_bytes()


def test_check_passes_on_nix_drvs() -> None:
    files = [str(f) for f in sorted((DATA / "store").glob("*.drv"))]
    proc = storekit("drv", "check", "--store-dir", "/opt/store", *files)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().count(": ok\n") == len(files)


def test_check_fails_on_a_tampered_copy(tmp_path: Path) -> None:
    store = tmp_path / "opt-store"
    shutil.copytree(DATA / "store", store)
    target = store / golden("chain2").name
    target.write_bytes(target.read_bytes().replace(b'("name","chain2")', b'("name","chain2"),("x","y")'))
    proc = storekit("drv", "check", "--store-dir", "/opt/store", str(target))
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert err.startswith("error: derivation does not match")
    assert err.count("\n") == 1  # one line, no traceback
    assert "output 'out' is" in err and "environment variable 'out'" in err and "own path" in err


def test_check_reads_inputs_from_the_same_directory(tmp_path: Path) -> None:
    lonely = tmp_path / golden("chain3").name
    shutil.copy(golden("chain3"), lonely)
    proc = storekit("drv", "check", "--store-dir", "/opt/store", str(lonely))
    assert proc.returncode == 1
    assert b"cannot read" in proc.stderr and b"chain2.drv" in proc.stderr


def test_parse_error_is_one_error_with_a_caret(tmp_path: Path) -> None:
    bad = tmp_path / "x.drv"
    bad.write_bytes(golden("simple").read_bytes()[:-5])
    proc = storekit("drv", "show", str(bad))
    assert proc.returncode == 1
    lines = proc.stderr.decode().splitlines()
    assert lines[0].startswith(f"error: {bad}: ")
    assert "~" in lines[2]
    assert "Traceback" not in proc.stderr.decode()
