"""storekit as a user installs it: a wheel in an empty virtual environment, with only what it declares.

A test suite that runs in an environment holding more than the project declares passes for the wrong
reason (storekit once imported click, which only the machine's site-packages provided). This test builds
the wheel, installs it into a fresh venv made from the base interpreter, and runs the installed
`storekit` there: every command group answers `--help`, and a NAR round trip works.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from storekit.cli import COMMANDS

REPO = Path(__file__).resolve().parents[1]


def _run(*argv: str | Path, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    return subprocess.run([str(a) for a in argv], input=input, capture_output=True, env=env, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the storekit wheel and its declared runtime dependencies, nothing else."""
    root = tmp_path_factory.mktemp("install")
    wheels = root / "wheels"
    built = _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, REPO)
    assert built.returncode == 0, built.stderr.decode()
    (wheel,) = wheels.glob("storekit-*.whl")
    venv = root / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    made = _run(base, "-m", "venv", venv)
    assert made.returncode == 0, made.stderr.decode()
    pip = _run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)
    assert pip.returncode == 0, pip.stderr.decode()
    return venv


def test_the_venv_holds_no_development_package(installed: Path) -> None:
    listed = _run(installed / "bin" / "python", "-m", "pip", "list", "--format=freeze")
    names = {line.split("==")[0].lower() for line in listed.stdout.decode().splitlines()}
    assert "storekit" in names
    assert not names & {"pytest", "hypothesis", "pyelftools", "mypy", "click"}


def test_version_and_every_group_help(installed: Path) -> None:
    storekit = installed / "bin" / "storekit"
    version = _run(storekit, "--version")
    assert version.returncode == 0, version.stderr.decode()
    assert version.stdout.decode().startswith("storekit ")
    top = _run(storekit, "--help")
    assert top.returncode == 0, top.stderr.decode()
    for name in COMMANDS:
        assert name in top.stdout.decode()
        shown = _run(storekit, name, "--help")
        assert shown.returncode == 0, f"storekit {name} --help: {shown.stderr.decode()}"
        assert b"Traceback" not in shown.stdout + shown.stderr
        # patchelf's help is patchelf's own, on stderr as patchelf prints it
        assert b"Usage:" in shown.stdout or (name == "patchelf" and b"syntax: patchelf" in shown.stderr)


def test_nar_round_trip_through_the_installed_command(installed: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "hello").write_text("#!/bin/sh\necho hello\n")
    (tree / "bin" / "hello").chmod(0o755)
    (tree / "link").symlink_to("bin/hello")
    storekit = installed / "bin" / "storekit"
    dumped = _run(storekit, "nar", "dump", tree)
    assert dumped.returncode == 0, dumped.stderr.decode()
    assert dumped.stdout.startswith(b"\x0d\x00\x00\x00\x00\x00\x00\x00nix-archive-1")
    restored = _run(storekit, "nar", "restore", tmp_path / "copy", input=dumped.stdout)
    assert restored.returncode == 0, restored.stderr.decode()
    assert os.readlink(tmp_path / "copy" / "link") == "bin/hello"
    assert (tmp_path / "copy" / "bin" / "hello").read_text() == "#!/bin/sh\necho hello\n"
    assert os.access(tmp_path / "copy" / "bin" / "hello", os.X_OK)
    again = _run(storekit, "nar", "dump", tmp_path / "copy")
    assert again.stdout == dumped.stdout
