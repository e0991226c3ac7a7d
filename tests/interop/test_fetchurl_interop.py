"""`builtin:fetchurl` against real Nix 2.8: `<nix/fetchurl.nix>` instantiated by real Nix for a store dir
that is not /nix/store, fetching from a server this test starts on 127.0.0.1 (http, https with a
self-signed certificate, an executable file, an unpacked `.nar.xz`, a `file://` URL under a sandbox
path). storekit builds each `.drv`; real Nix realises the same `.drv` in its sandbox in a second
store: same output path, NAR hash, CA. A wrong hash fails under both, and storekit registers nothing.
"""

from __future__ import annotations

import lzma
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from build_oracle import assert_same_infos, instantiate, oracle_uri, realise, run_nix, storekit
from fetch_server import self_signed, serve
from nixoracle import NixStore

from storekit.hashing import Hash
from storekit.nar.fs import dump_path, hash_path

pytestmark = pytest.mark.interop

CONTENT = b"fetched by builtin:fetchurl\n"
TOOL = b"#!/bin/sh\necho tool\n"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "srv"
    root.mkdir()
    (root / "hello.txt").write_bytes(CONTENT)
    (root / "tool.sh").write_bytes(TOOL)
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "run").write_bytes(TOOL)
    (tree / "bin" / "run").chmod(0o755)
    (tree / "README").write_text("a tree\n")
    os.symlink("bin/run", tree / "link")
    (root / "tree.nar.xz").write_bytes(lzma.compress(b"".join(dump_path(tree))))
    return root


@pytest.fixture
def server(files: Path) -> Iterator[str]:
    with serve(files) as (url, _hits):
        yield url


def sri(data: bytes) -> str:
    return Hash.of(data).sri


def nar_sri(path: Path) -> str:
    return hash_path(path)[0].sri


def expression(tmp_path: Path, args: str) -> Path:
    expr = tmp_path / "fetch.nix"
    expr.write_text(f"import <nix/fetchurl.nix> {{ {args} }}\n")
    return expr


def both_build(nix_store: NixStore, expr: Path, *, sandbox_path: str | None = None) -> str:
    drv = instantiate(nix_store, nix_store.uri, expr, "")
    assert instantiate(nix_store, oracle_uri(nix_store), expr, "") == drv
    extra = ("--sandbox-path", sandbox_path) if sandbox_path else ()
    (out,) = storekit("build", drv, "--store", nix_store.uri, *extra).stdout.split()
    options = ("--option", "extra-sandbox-paths", sandbox_path) if sandbox_path else ()
    assert realise(nix_store, oracle_uri(nix_store), drv, options=options).stdout.split() == [out]
    assert_same_infos(nix_store, [out])
    return out


def test_http_flat(nix_store: NixStore, tmp_path: Path, server: str) -> None:
    expr = expression(tmp_path, f'url = "{server}/hello.txt"; hash = "{sri(CONTENT)}";')
    out = both_build(nix_store, expr)
    assert Path(out).read_bytes() == CONTENT and Path(out).name.endswith("-hello.txt")


def test_https_executable(nix_store: NixStore, tmp_path: Path, files: Path) -> None:
    tool = tmp_path / "tool"
    tool.write_bytes(TOOL)
    tool.chmod(0o755)
    with serve(files, tls=self_signed(tmp_path)) as (url, hits):
        expr = expression(tmp_path, f'url = "{url}/tool.sh"; executable = true; hash = "{nar_sri(tool)}";')
        out = both_build(nix_store, expr)
    assert os.access(out, os.X_OK) and hits.count("/tool.sh") == 2  # storekit's and Nix's download


def test_unpack_nar_xz(nix_store: NixStore, tmp_path: Path, server: str) -> None:
    tree = tmp_path / "tree"
    expr = expression(tmp_path, f'url = "{server}/tree.nar.xz"; unpack = true; hash = "{nar_sri(tree)}";')
    out = both_build(nix_store, expr)
    assert os.readlink(Path(out) / "link") == "bin/run"


def test_file_url_sees_only_sandbox_paths(nix_store: NixStore, tmp_path: Path, files: Path) -> None:
    expr = expression(tmp_path, f'url = "file:///srv/hello.txt"; hash = "{sri(CONTENT)}";')
    both_build(nix_store, expr, sandbox_path=f"/srv={files}")
    # a host file outside the sandbox's view is not fetched
    secret = expression(tmp_path, f'url = "file://{files}/hello.txt"; hash = "{sri(CONTENT)}"; name = "x";')
    drv = instantiate(nix_store, nix_store.uri, secret, "")
    failed = storekit("build", drv, "--store", nix_store.uri, check=False)
    assert failed.returncode == 1 and "is not visible in the sandbox" in failed.stderr


def test_wrong_hash_refused_with_both_hashes(nix_store: NixStore, tmp_path: Path, server: str) -> None:
    wrong = sri(b"something else")
    expr = expression(tmp_path, f'url = "{server}/hello.txt"; hash = "{wrong}";')
    drv = instantiate(nix_store, nix_store.uri, expr, "")
    failed = storekit("build", drv, "--store", nix_store.uri, check=False)
    assert failed.returncode == 1
    assert f"specified {wrong}, got {sri(CONTENT)}" in failed.stderr, failed.stderr
    out = run_nix(nix_store, ["nix-store", "--store", nix_store.uri, "-q", "--outputs", drv]).stdout.strip()
    valid = run_nix(nix_store, ["nix-store", "--store", nix_store.uri, "--check-validity", out], check=False)
    assert valid.returncode != 0 and not os.path.lexists(out)  # nothing registered, nothing left
    instantiate(nix_store, oracle_uri(nix_store), expr, "")
    nix = realise(nix_store, oracle_uri(nix_store), drv, check=False)
    assert nix.returncode != 0 and "hash mismatch" in nix.stderr and sri(CONTENT) in nix.stderr
