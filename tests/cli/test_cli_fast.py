"""`storekit hash path|file` answered without typer prints what the typer command prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from storekit.cli import _fast

TYPER = "import sys; from storekit.cli._app import app; app(args=sys.argv[1:], prog_name='storekit')"


def _tree(root: Path) -> Path:
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "f").write_text("hello\n")
    (root / "d" / "sub" / "x").write_bytes(bytes(range(256)) * 40)
    (root / "d" / "sub" / "x").chmod(0o755)
    (root / "d" / "link").symlink_to("f")
    (root / "é n").write_text("unicode name\n")
    return root


LINES = [
    ["hash", "path", "{d}"],
    ["hash", "path", "{d}/f", "{d}/sub/x", "--base32"],
    ["hash", "path", "--type", "sha1", "--base16", "--sri", "{d}"],
    ["hash", "path", "--type=sha512", "--base64", "{d}/sub", "--json"],
    ["hash", "path", "--json", "{root}//é n", "{d}/sub/"],
    ["hash", "file", "{d}/f", "--type", "md5", "--base16"],
    ["hash", "file", "{d}/link", "--base32", "--base64"],
    ["hash", "path", "{d}/missing"],
    ["hash", "path", "--type", "sha3", "{d}/f"],
]


@pytest.mark.parametrize("line", LINES, ids=[" ".join(x[1:]) for x in LINES])
def test_same_bytes_and_status_as_typer(tmp_path: Path, line: list[str]) -> None:
    root = _tree(tmp_path)
    args = [a.format(d=root / "d", root=root) for a in line]
    assert _fast.parse(args) is not None
    fast = subprocess.run([sys.executable, "-m", "storekit", *args], capture_output=True, check=False)
    typer = subprocess.run([sys.executable, "-c", TYPER, *args], capture_output=True, check=False)
    assert fast.stdout == typer.stdout
    assert fast.returncode == (1 if typer.returncode else 0)  # main's error boundary: 1 for errors
    if typer.returncode:
        assert fast.stderr.startswith(b"error: ")


@pytest.mark.parametrize(
    "args",
    [
        ["hash", "path"],
        ["hash", "path", "--help"],
        ["hash", "path", "-h", "x"],
        ["hash", "path", "--bogus", "x"],
        ["hash", "path", "x", "--type"],
        ["hash", "to-sri", "x"],
        ["hash"],
        ["nar", "hash", "x"],
    ],
)
def test_anything_else_goes_to_typer(args: list[str]) -> None:
    assert _fast.parse(args) is None
