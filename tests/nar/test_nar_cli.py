"""`storekit nar` and `storekit hash` through the CLI: streams, flag order, and the error boundary."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from nar_trees import MALFORMED, materialize
from typer.testing import CliRunner

from storekit.cli import app
from storekit.hashing import Hash
from storekit.nar.writer import Dir, File, Link, to_bytes

REPO = Path(__file__).resolve().parent.parent.parent
TREE = Dir({b"a": File(b"hello\n"), b"x": File(b"#!/bin/sh\n", True), b"l": Link(b"a")})


def run(*args: str, input: bytes | None = None) -> bytes:
    result = CliRunner().invoke(app, list(args), input=input)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout_bytes


def test_dump_then_restore(tmp_path: Path) -> None:
    materialize(TREE, tmp_path / "t")
    nar = run("nar", "dump", str(tmp_path / "t"))
    assert nar == to_bytes(TREE)
    run("nar", "restore", str(tmp_path / "r"), input=nar)
    assert run("nar", "dump", str(tmp_path / "r")) == nar


def test_hash_flags_last_base_wins(tmp_path: Path) -> None:
    materialize(TREE, tmp_path / "t")
    h = Hash("sha1", hashlib.sha1(to_bytes(TREE)).digest())
    out = run("hash", "path", "--base16", "--type", "sha1", "--base32", str(tmp_path / "t"))
    assert out == (h.nix32 + "\n").encode()
    out = run(
        "hash", "path", "--base32", "--type", "sha1", "--base16", str(tmp_path / "t"), str(tmp_path / "t")
    )
    assert out == (h.base16 + "\n").encode() * 2
    assert run("hash", "file", str(tmp_path / "t" / "a")) == (Hash.of(b"hello\n").sri + "\n").encode()


def test_ls_and_cat(tmp_path: Path) -> None:
    (tmp_path / "t.nar").write_bytes(to_bytes(TREE))
    assert run("nar", "ls", str(tmp_path / "t.nar")) == b"./a\n./l\n./x\n"
    assert run("nar", "ls", "--json", str(tmp_path / "t.nar"), "/l") == b'{"type":"symlink","target":"a"}'
    assert run("nar", "cat", str(tmp_path / "t.nar"), "/x") == b"#!/bin/sh\n"


def test_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    nar, offset = MALFORMED["dotdot"]()
    proc = subprocess.run(
        [sys.executable, "-m", "storekit", "nar", "restore", str(tmp_path / "r")],
        input=nar,
        capture_output=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 1
    why = "('.' and '..' are not allowed)"
    assert proc.stderr.decode().splitlines() == [
        f"error: NAR contains invalid file name '..' {why} (at NAR byte offset {offset})"
    ]
    assert not (tmp_path / "r").exists()
    proc = subprocess.run(
        [sys.executable, "-m", "storekit", "hash", "path", str(tmp_path / "missing")],
        capture_output=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 1
    assert (
        proc.stderr.decode()
        == f"error: getting status of '{tmp_path / 'missing'}': No such file or directory\n"
    )
