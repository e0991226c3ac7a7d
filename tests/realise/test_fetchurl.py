"""`builtin:fetchurl` where storekit goes beyond or guards more than the oracle test shows: `urls` mirrors,
failures that name the URL, what `file://` may read, proxies. Compared with real Nix in
tests/interop/test_fetchurl_interop.py.
"""

from __future__ import annotations

import io
import lzma
import os
from pathlib import Path

import pytest
from build_fixtures import instantiate, open_store, storekit
from fetch_server import serve

from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import BuildError
from storekit.hashing import Hash
from storekit.nar.fs import dump_path, hash_path
from storekit.nar.restore import restore
from storekit.realise import fetchurl
from storekit.realise.outputs import Streamed
from storekit.realise.sandbox import SandboxPath
from storekit.storepath import FileIngestionMethod

CONTENT = b"mirrored\n"


def recipe(tmp: Path, url: str, urls: list[str], content_hash: str) -> Path:
    file = tmp / "fetch.toml"
    file.write_text(
        'name = "file.txt"\nbuilder = "builtin:fetchurl"\nsystem = "builtin"\n'
        f'[env]\nurl = "{url}"\nurls = "{" ".join(urls)}"\n'
        f'[fixed-output]\nhash = "{content_hash}"\n'
    )
    return file


def test_urls_are_tried_after_url(tmp_path: Path) -> None:
    srv = tmp_path / "srv"
    srv.mkdir()
    (srv / "file.txt").write_bytes(CONTENT)
    store = open_store(tmp_path)
    with serve(srv) as (base, hits):
        file = recipe(
            tmp_path,
            f"{base}/gone",
            [f"{base}/gone", f"{base}/also-gone", f"{base}/file.txt"],
            Hash.of(CONTENT).sri,
        )
        drv = instantiate(store, file)
        (out,) = storekit("build", str(drv), "--store", str(tmp_path / "store")).stdout.split()
    assert Path(out).read_bytes() == CONTENT
    assert hits == ["/gone", "/also-gone", "/file.txt"]  # `url` once, then the mirrors in order


def test_every_failure_is_named(tmp_path: Path) -> None:
    srv = tmp_path / "srv"
    srv.mkdir()
    store = open_store(tmp_path)
    with serve(srv) as (base, _hits):
        file = recipe(tmp_path, f"{base}/a", [f"{base}/b", "ftp://example.invalid/c"], Hash.of(CONTENT).sri)
        drv = instantiate(store, file)
        failed = storekit("build", str(drv), "--store", str(tmp_path / "store"), check=False)
    assert failed.returncode == 1
    assert f"unable to download '{base}/a': HTTP error 404" in failed.stderr
    assert f"unable to download '{base}/b': HTTP error 404" in failed.stderr
    assert "fetches only http, https and file URLs" in failed.stderr
    assert not [p for p in os.listdir(tmp_path / "store") if p.endswith("-file.txt")]


def test_file_view_stays_inside_its_mounts(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "ok").write_text("ok")
    (shared / "escape").symlink_to("/etc/passwd")
    view = fetchurl.file_view(True, [], [SandboxPath("/srv", str(shared))])
    assert view.resolve("/srv/ok") == str(shared / "ok")
    assert view.resolve("/srv/../srv/ok") == str(shared / "ok")
    assert view.resolve("/srv/escape") is None  # a symlink out of the mount
    assert view.resolve("/etc/passwd") is None
    assert view.resolve("/srvx/ok") is None
    assert fetchurl.file_view(False, [], []).resolve("/etc/passwd") == "/etc/passwd"  # --no-sandbox


def fetch_drv(**env: str) -> Derivation:
    out = DerivationOutput.fixed(FileIngestionMethod.FLAT, Hash.of(b""), "/s/abc-x")
    return Derivation(
        outputs={"out": out}, builder=fetchurl.BUILDER, system="builtin", env={"name": "x", **env}
    )


def test_proxies_only_when_listed_in_impure_env_vars() -> None:
    host = {"http_proxy": "http://proxy:3128", "no_proxy": "127.0.0.1", "HOME": "/root"}
    job = fetchurl.Fetch.of(fetch_drv(url="http://a/b", impureEnvVars="http_proxy no_proxy"), "x", host)
    assert job.proxies == {"http_proxy": "http://proxy:3128", "no_proxy": "127.0.0.1"}
    assert fetchurl.Fetch.of(fetch_drv(url="http://a/b"), "x", host).proxies == {}
    with pytest.raises(BuildError, match="attribute 'url' missing"):
        fetchurl.Fetch.of(fetch_drv(), "x", host)


def test_other_builtins_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    file = tmp_path / "env.toml"
    file.write_text('name = "env"\nbuilder = "builtin:buildenv"\nsystem = "builtin"\n')
    drv = instantiate(store, file)
    failed = storekit("build", str(drv), "--store", str(tmp_path / "store"), check=False)
    assert "built-in builder 'builtin:buildenv' is not supported (only builtin:fetchurl is)" in failed.stderr


def unpack_recipe(tmp: Path, url: str, content_hash: str) -> Path:
    file = tmp / "unpack.toml"
    file.write_text(
        'name = "tree"\nbuilder = "builtin:fetchurl"\nsystem = "builtin"\n'
        f'[env]\nurl = "{url}"\nunpack = "1"\n'
        f'[fixed-output]\nhash = "{content_hash}"\nmode = "recursive"\n'
    )
    return file


def a_tree(root: Path) -> Path:
    tree = root / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file").write_bytes(os.urandom(300_000))
    (tree / "run").write_bytes(b"#!/bin/sh\n")
    (tree / "run").chmod(0o755)
    (tree / "link").symlink_to("sub/file")
    return tree


def test_teed_restore_hashes_the_nar_it_restores(tmp_path: Path) -> None:
    """The NAR hash taken from the stream is the hash of what it restored, and the references found
    in it are those in the files."""
    tree = a_tree(tmp_path)
    (tree / "mentions").write_bytes(b"see " + b"x" * 32 + b" here")
    nar = b"".join(dump_path(tree))
    nar_hash, size = hash_path(tree)
    scan = {"x" * 32: None, "y" * 32: None}
    streamed = fetchurl._Teed(io.BytesIO(nar), scan).restore(restore, str(tmp_path / "a"))
    assert streamed == Streamed(nar_hash, size, frozenset({"x" * 32}))
    assert hash_path(tmp_path / "a") == (nar_hash, size)


def test_unpacked_output_is_registered_with_its_own_hash(tmp_path: Path) -> None:
    tree = a_tree(tmp_path)
    srv = tmp_path / "srv"
    srv.mkdir()
    nar = b"".join(dump_path(tree))
    (srv / "tree.nar.xz").write_bytes(lzma.compress(nar))
    (srv / "junk.nar.xz").write_bytes(lzma.compress(nar + b"junk after the NAR"))
    nar_hash, size = hash_path(tree)
    store = open_store(tmp_path)
    with serve(srv) as (base, _hits):
        drv = instantiate(store, unpack_recipe(tmp_path, f"{base}/tree.nar.xz", nar_hash.sri))
        (out,) = storekit("build", str(drv), "--store", str(tmp_path / "store")).stdout.split()
        junk = instantiate(store, unpack_recipe(tmp_path, f"{base}/junk.nar.xz", Hash.of(b"other").sri))
        failed = storekit("build", str(junk), "--store", str(tmp_path / "store"), check=False)
    assert hash_path(out) == (nar_hash, size)
    with open_store(tmp_path) as s:
        info = s.query_path_info(s.store_dir.parse_path(out))
    assert (info.nar_hash, info.nar_size, info.references) == (nar_hash, size, frozenset())
    assert "trailing data after the end of the NAR" in failed.stderr


def test_unpacked_output_with_another_hash_is_refused_with_both(tmp_path: Path) -> None:
    tree = a_tree(tmp_path)
    srv = tmp_path / "srv"
    srv.mkdir()
    (srv / "tree.nar.xz").write_bytes(lzma.compress(b"".join(dump_path(tree))))
    promised = Hash.of(b"something else")
    store = open_store(tmp_path)
    with serve(srv) as (base, _hits):
        drv = instantiate(store, unpack_recipe(tmp_path, f"{base}/tree.nar.xz", promised.sri))
        failed = storekit("build", str(drv), "--store", str(tmp_path / "store"), check=False)
    assert failed.returncode == 1
    got = hash_path(tree)[0]
    assert "hash mismatch" in failed.stderr
    assert promised.sri in failed.stderr and got.sri in failed.stderr
