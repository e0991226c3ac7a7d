"""`storekit path` against real Nix 2.8 in a store whose store dir is not /nix/store.

Oracles: `nix-store --add` (source paths of generated trees), `nix-store --print-fixed-path`
(fixed outputs, every algorithm, flat and recursive), and `builtins.toFile` with references carried by
string context (text paths).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nixoracle import NixStore, make_nix_store
from typer.testing import CliRunner

from storekit.cli import app
from storekit.hashing import ALGORITHMS, Base, Hash
from storekit.nar.fs import hash_path
from storekit.storepath import StoreDir

pytestmark = pytest.mark.interop
REPO = Path(__file__).parent.parent.parent


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NixStore]:
    """One real store for the whole module, so hypothesis examples can share it."""
    yield make_nix_store(tmp_path_factory.mktemp("paths"))


def storekit(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


# --- source paths: generated trees ---------------------------------------------------------------------

entry_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), min_size=1, max_size=12
).filter(lambda n: n not in (".", "..") and len(os.fsencode(n)) < 200)
files = st.tuples(st.just("file"), st.binary(max_size=3000), st.booleans())
symlinks = st.tuples(st.just("symlink"), st.text(alphabet="abc./-_é", min_size=1, max_size=30))
trees = st.recursive(
    st.one_of(files, symlinks),
    lambda children: st.dictionaries(entry_names, children, max_size=5).map(lambda d: ("dir", d)),
    max_leaves=12,
)
store_names = st.text(alphabet="abcXYZ019+-._?=", min_size=1, max_size=30).filter(
    lambda n: n[0] != "-" and n not in (".", "..")
)


def materialise(node: tuple[object, ...], path: Path) -> None:
    kind = node[0]
    if kind == "file":
        path.write_bytes(node[1])  # type: ignore[arg-type]
        path.chmod(0o755 if node[2] else 0o644)
    elif kind == "symlink":
        path.symlink_to(str(node[1]))
    else:
        path.mkdir()
        for name, child in node[1].items():  # type: ignore[attr-defined]
            materialise(child, path / name)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, name=store_names)
def test_generated_trees_add_to_the_same_path(store: NixStore, tree: tuple[object, ...], name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp) / name
        materialise(tree, top)
        nix = store.text("nix-store", "--add", str(top))
        assert storekit("path", "source", str(top), "--store-dir", store.store_dir) == nix
        assert storekit("path", "source", str(top), "--store-dir", store.store_dir, "--name", "x") == str(
            StoreDir(store.store_dir).make_source_path("x", hash_path(top)[0])
        )


def test_a_few_megabytes_and_an_empty_dir(store: NixStore, tmp_path: Path) -> None:
    top = tmp_path / "big"
    (top / "empty").mkdir(parents=True)
    (top / "blob").write_bytes(random.Random(1).randbytes(5 << 20))
    (top / "run.sh").write_text("#!/bin/sh\n")
    (top / "run.sh").chmod(0o755)
    assert storekit("path", "source", str(top), "--store-dir", store.store_dir) == store.text(
        "nix-store", "--add", str(top)
    )


# --- fixed outputs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", list(ALGORITHMS))
@pytest.mark.parametrize("recursive", [False, True])
def test_print_fixed_path_for_every_algorithm(store: NixStore, algo: str, recursive: bool) -> None:
    rng = random.Random(f"{algo}{recursive}")
    flag = ["--recursive"] if recursive else []
    for base in (Base.BASE16, Base.NIX32, Base.BASE64, Base.SRI):
        h = Hash(algo, rng.randbytes(ALGORITHMS[algo]))
        name = f"fixed-{base.value}.tar.gz"
        nix = store.text("nix-store", "--print-fixed-path", *flag, algo, h.format(base, prefix=False), name)
        ours = storekit("path", "fixed", "--store-dir", store.store_dir, *flag, algo, h.format(base), name)
        assert ours == nix


def test_fixed_store_dir_from_the_environment(store: NixStore) -> None:
    h = Hash.of(b"x")
    env = dict(os.environ, NIX_STORE_DIR=store.store_dir)
    argv = [sys.executable, "-m", "storekit", "path", "fixed", "sha256", h.nix32, "x"]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, check=True).stdout
    assert out.strip() == store.text("nix-store", "--print-fixed-path", "sha256", h.nix32, "x")


def test_errors_are_one_line(store: NixStore) -> None:
    argv = [
        sys.executable,
        "-m",
        "storekit",
        "path",
        "fixed",
        "--store-dir",
        store.store_dir,
        "md5",
        "abc",
        "x",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 1
    assert proc.stderr == "error: hash 'abc' has wrong length for hash type 'md5'\n"


# --- text paths: builtins.toFile with references ---------------------------------------------------------


def nix_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


def test_to_file_with_references(store: NixStore, tmp_path: Path) -> None:
    src = tmp_path / "src.txt"
    src.write_text("a source file\n")
    sd = StoreDir(store.store_dir)
    deps = {
        "d1": ('builtins.toFile "d1" "one"', sd.make_text_path("d1", Hash.of(b"one"))),
        "d2": (f"{src}", sd.make_source_path("src.txt", hash_path(src)[0])),
    }
    d3 = sd.make_text_path("d3", Hash.of(f"uses {deps['d1'][1]}".encode()), [deps["d1"][1]])
    deps["d3"] = ('builtins.toFile "d3" "uses ${d1}"', d3)
    rng = random.Random(3)
    cases = []
    for i in range(25):
        chosen = rng.sample(sorted(deps), rng.randint(0, 3))
        pieces = ["".join(rng.choice('ab\n\t"\\${}é ') for _ in range(rng.randint(0, 20))) for _ in chosen]
        pieces.append("end")
        cases.append((f"case-{i}", chosen, pieces))
    bindings = " ".join(f"{k} = {expr};" for k, (expr, _) in deps.items())
    items = []
    for name, chosen, pieces in cases:
        body = " + ".join([nix_string(p) for p in pieces] + [f'"${{{d}}}"' for d in chosen])
        items.append(f'(builtins.toFile "{name}" ({body}))')
    expr = f"let {bindings} in [ {' '.join(items)} ]"
    nix_paths = json.loads(store.run("nix-instantiate", "--eval", "--strict", "--json", "-E", expr))
    for (name, chosen, pieces), nix in zip(cases, nix_paths, strict=True):
        contents = "".join(pieces) + "".join(str(deps[d][1]) for d in chosen)
        ours = sd.make_text_path(name, Hash.of(contents.encode()), [deps[d][1] for d in chosen])
        assert str(ours) == nix
        file = tmp_path / name
        file.write_text(contents)
        refs = [a for d in chosen for a in ("--ref", str(deps[d][1]))]
        assert storekit("path", "text", "--store-dir", store.store_dir, name, str(file), *refs) == nix


# --- parse ---------------------------------------------------------------------------------------------


def test_parse_a_path_nix_made(store: NixStore, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    added = store.text("nix-store", "--add", str(tmp_path / "f"))
    fields = json.loads(storekit("path", "parse", "--json", added + "/"))
    hash_part = os.path.basename(added)[:32]
    assert fields == {
        "path": added,
        "storeDir": store.store_dir,
        "hashPart": hash_part,
        "name": "f",
        "rest": "",
    }
    text = storekit("path", "parse", "--store-dir", store.store_dir, added + "/sub/file")
    assert text.split("\n") == [
        f"store dir: {store.store_dir}",
        f"hash part: {hash_part}",
        "name: f",
        "inside: /sub/file",
    ]
