"""`storekit hash path|file` against `nix hash path|file` (Nix 2.8): every algorithm, every base.

The CLI output is compared as bytes, including several paths at once and the last base flag winning.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nar_trees import materialize, trees
from nixoracle import NixStore, make_nix_store
from typer.testing import CliRunner

from storekit.cli import app
from storekit.hashing import ALGORITHMS
from storekit.nar.writer import Dir, File, Link, Node

pytestmark = pytest.mark.interop

BASES = [
    [],
    ["--base16"],
    ["--base32"],
    ["--base64"],
    ["--sri"],
    ["--base16", "--base64"],
    ["--sri", "--base32"],
]

TREE = Dir(
    {
        b"big": File(bytes(range(256)) * 20_000),
        b"x": File(b"#!/bin/sh\n", executable=True),
        b"l": Link(b"big"),
        b"e": Dir(),
        "ünï".encode(): File(b""),
    }
)


@pytest.fixture(scope="module")
def nix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NixStore]:
    yield make_nix_store(tmp_path_factory.mktemp("hash"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree") / "t"
    materialize(TREE, root)
    return root


def nix_hash(nix: NixStore, *args: str) -> bytes:
    return nix.run("nix", "hash", *args, store_flag=False)


def ours(*args: str) -> bytes:
    result = CliRunner().invoke(app, ["hash", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout_bytes


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
@pytest.mark.parametrize("base", BASES, ids=" ".join)
def test_hash_path_matches_nix(nix: NixStore, tree: Path, algo: str, base: list[str]) -> None:
    args = ["path", "--type", algo, *base, str(tree), str(tree / "l"), str(tree / "e"), str(tree / "x")]
    assert ours(*args) == nix_hash(nix, *args)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
@pytest.mark.parametrize("base", BASES, ids=" ".join)
def test_hash_file_matches_nix(nix: NixStore, tree: Path, algo: str, base: list[str]) -> None:
    args = ["file", "--type", algo, *base, str(tree / "big"), str(tree / "l"), str(tree / "ünï")]
    assert ours(*args) == nix_hash(nix, *args)


@settings(max_examples=15, deadline=None)
@given(node=trees, algo=st.sampled_from(sorted(ALGORITHMS)), base=st.sampled_from(BASES))
def test_generated_trees_hash_like_nix(nix: NixStore, node: Node, algo: str, base: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        materialize(node, Path(tmp) / "t")
        args = ["path", "--type", algo, *base, str(Path(tmp) / "t")]
        assert ours(*args) == nix_hash(nix, *args)


def test_errors_are_refused_like_nix(nix: NixStore, tree: Path) -> None:
    for args in (
        ["path", str(tree / "missing")],
        ["file", str(tree / "e")],
        ["path", "--type", "sha3", str(tree)],
    ):
        proc = subprocess.run(["nix", "hash", *args], capture_output=True, env=nix.env(), check=False)
        result = CliRunner().invoke(app, ["hash", *args])
        assert proc.returncode == 1 and result.exit_code != 0, args
