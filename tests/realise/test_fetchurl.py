"""`builtin:fetchurl` where storekit goes beyond or guards more than the oracle test shows: `urls` mirrors,
failures that name the URL, what `file://` may read, proxies. Compared with real Nix in
tests/interop/test_fetchurl_interop.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from build_fixtures import instantiate, open_store, storekit
from fetch_server import serve

from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import BuildError
from storekit.hashing import Hash
from storekit.realise import fetchurl
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
