"""`s3://` binary caches against a real S3 server (Ceph's radosgw, tests/s3_server.py) and real Nix 2.8.

Each test uses its own bucket on the session's radosgw. What is proved: parameters as Nix names them;
a pushed closure real Nix substitutes over plain HTTP (public-read bucket policy) with signatures
required, and storekit reads back into a store Nix verifies; multipart for a big NAR and no second
upload of a NAR already there; 404 told apart from 403; resumed downloads; a killed gateway.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cache_helpers import build_closure, fresh_nix_store, nix_key, nix_on, open_nix_store, side_store
from nixoracle import NixStore
from s3_server import RadosGW

from storekit.errors import StoreError
from storekit.store.binary_cache import BinaryCacheStore
from storekit.store.local import LocalStore
from storekit.store.open import open_store
from storekit.store.s3 import S3Error, S3Transport
from storekit.store.specs import local_spec_for, parse_store_spec
from storekit.store.substituters import SignaturePolicy
from storekit.transfer.copy import copy_closure


@pytest.fixture
def s3(radosgw: RadosGW, monkeypatch: pytest.MonkeyPatch) -> Iterator[RadosGW]:
    """The gateway, with its credentials in this process's environment (boto3's default chain)."""
    for key, value in radosgw.env({}).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield radosgw


def client(gw: RadosGW) -> Any:
    return boto3.client("s3", endpoint_url=gw.endpoint, region_name="us-east-1")


def new_bucket(gw: RadosGW, *, create: bool = True) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    if create:
        client(gw).create_bucket(Bucket=name)
    return name


def storekit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "storekit", *args], capture_output=True, text=True, env=env, check=False
    )


def test_nix_parameters_parse_and_print_back() -> None:
    text = (
        "s3://cache-1?region=eu-west-1&endpoint=minio.lan:9000&scheme=http&profile=ci&store=/opt/store"
        "&compression=zstd&narinfo-compression=xz&multipart-upload=false&buffer-size=8388608"
    )
    spec = parse_store_spec(text)
    assert spec.store_dir == "/opt/store"
    assert str(parse_store_spec(str(spec))) == str(spec)
    assert (spec.bucket, spec.region, spec.endpoint_url) == ("cache-1", "eu-west-1", "http://minio.lan:9000")  # type: ignore[union-attr]
    assert (spec.multipart, spec.buffer_size) == (False, 8 << 20)  # type: ignore[union-attr]
    for bad, words in [
        ("s3://b?regoin=x", "unknown parameter(s) regoin"),
        ("s3://b?buffer-size=1024", "buffer-size must be"),
        ("s3://b?narinfo-compression=gzip", "unknown narinfo-compression 'gzip'"),
        ("s3://b/sub", "name one bucket"),
    ]:
        with pytest.raises(StoreError, match=words.replace("(", r"\(").replace(")", r"\)")):
            parse_store_spec(bad)


def test_config_substituters_take_s3_specs(tmp_path: Path) -> None:
    from storekit.config import read_config
    from storekit.errors import ConfigError

    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text('substituters = ["s3://my-cache?endpoint=cache.lan:7480&scheme=http&store=/opt/store"]\n')
    bad.write_text('substituters = ["s3://my-cache?endpiont=cache.lan"]\n')
    assert read_config(str(good)).substituters == (
        "s3://my-cache?endpoint=cache.lan:7480&scheme=http&store=/opt/store",
    )
    with pytest.raises(ConfigError, match="unknown parameter\\(s\\) endpiont"):
        read_config(str(bad))


@pytest.mark.interop
def test_pushed_closure_is_substituted_by_real_nix_over_http_and_read_back(
    s3: RadosGW, nix_store: NixStore, tmp_path: Path
) -> None:
    top = build_closure(nix_store, salt="s3")
    key_file, public = nix_key(nix_store, tmp_path, "s3-test-1")
    bucket = new_bucket(s3)
    spec = s3.spec(bucket, nix_store.store_dir, narinfo_compression="xz") + f"&secret-key={key_file}"
    with open_nix_store(nix_store) as src, open_store(spec) as dst:
        assert copy_closure(src, dst, [top]).copied
    objects = client(s3).list_objects_v2(Bucket=bucket)["Contents"]
    assert "nix-cache-info" in {o["Key"] for o in objects}
    head = client(s3).head_object(Bucket=bucket, Key=f"{top.hash_part}.narinfo")
    assert (head["ContentType"], head["ContentEncoding"]) == ("text/x-nix-narinfo", "xz")

    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
                       "Resource": [f"arn:aws:s3:::{bucket}/*"]}],
    }  # fmt: skip
    client(s3).put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    target = fresh_nix_store(tmp_path / "nix-target", nix_store.store_dir)
    strict = ("--option", "require-sigs", "true", "--option", "trusted-public-keys", public)
    over_http = f"{s3.endpoint}/{bucket}?store={nix_store.store_dir}"
    nix_on(nix_store, target, "nix", "copy", *strict, "--from", over_http, str(top))
    nix_on(nix_store, target, "nix-store", "--verify", "--check-contents")
    nix_on(nix_store, target, "nix", "store", "verify", "--trusted-public-keys", public, "-r", str(top))

    with open_store(spec) as cache, side_store(tmp_path / "back", nix_store.store_dir) as back:
        result = copy_closure(cache, back, [top], policy=SignaturePolicy.from_text(public))
        assert len(result.copied) == 3
    back_uri = fresh_nix_store(tmp_path / "back", nix_store.store_dir)
    nix_on(nix_store, back_uri, "nix-store", "--verify", "--check-contents")
    nix_on(nix_store, back_uri, "nix", "store", "verify", "--trusted-public-keys", public, "-r", str(top))


def big_path(tmp_path: Path, mib: int) -> tuple[LocalStore, Any]:
    store = LocalStore(
        local_spec_for("/opt/store", state_dir=str(tmp_path / "var"), real_dir=str(tmp_path / "st"))
    )
    data = tmp_path / "big.bin"
    with data.open("wb") as f:
        for i in range(mib):
            f.write(os.urandom(1 << 16) * 16 if i % 2 else bytes([i % 251]) * (1 << 20))
    return store, store.add_path(str(data))


def test_a_big_nar_goes_by_parts_and_is_never_uploaded_twice(s3: RadosGW, tmp_path: Path) -> None:
    store, path = big_path(tmp_path, 12)
    bucket = new_bucket(s3)
    spec = s3.spec(bucket, "/opt/store", compression="none", buffer_size=str(5 << 20))
    with store, open_store(spec) as dst:
        copy_closure(store, dst, [path])
        assert isinstance(dst, BinaryCacheStore)
        nar = dst.query_path_info(path) and dst.lookup_narinfo(path).url  # type: ignore[union-attr]
    s3c = client(s3)
    assert s3c.head_object(Bucket=bucket, Key=nar)["ETag"].strip('"').endswith("-3")  # 5 + 5 + 2 MiB
    # Mark the NAR object, drop the narinfo (as a crash between the two would), copy again.
    s3c.copy_object(Bucket=bucket, Key=nar, CopySource={"Bucket": bucket, "Key": nar},
                    Metadata={"mark": "first"}, MetadataDirective="REPLACE")  # fmt: skip
    s3c.delete_object(Bucket=bucket, Key=f"{path.hash_part}.narinfo")
    with store, open_store(spec) as dst:
        assert copy_closure(store, dst, [path]).copied == (path,)
    assert s3c.head_object(Bucket=bucket, Key=nar)["Metadata"] == {"mark": "first"}
    with (
        open_store(spec) as cache,
        LocalStore(
            local_spec_for("/opt/store", state_dir=str(tmp_path / "b-var"), real_dir=str(tmp_path / "b-st"))
        ) as back,
    ):
        copy_closure(cache, back, [path], policy=SignaturePolicy(require_sigs=False))
        assert (tmp_path / "b-st" / path.base_name).read_bytes() == (tmp_path / "big.bin").read_bytes()


def test_missing_is_404_and_forbidden_is_an_error(
    s3: RadosGW, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = new_bucket(s3)
    spec = s3.spec(bucket, "/opt/store")
    with open_store(spec) as cache:
        assert not cache.is_valid_path(cache.parse_path("/opt/store/" + "0" * 32 + "-absent"))
    transport = S3Transport(parse_store_spec(spec))  # type: ignore[arg-type]
    assert transport.read("log/absent") is None and not transport.exists("log/absent")  # GET, HEAD: 404
    client(s3).put_object(Bucket=bucket, Key="nix-cache-info", Body=b"StoreDir: /opt/store\n")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(
        S3Error, match=f"at {s3.endpoint}: GET 'nix-cache-info': SignatureDoesNotMatch \\(HTTP 403\\)"
    ):
        open_store(spec)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    with pytest.raises(S3Error, match="AccessDenied \\(HTTP 403\\)"):  # unsigned, private bucket
        open_store(spec)


def test_wrong_credentials_and_a_missing_bucket_are_one_error_line(s3: RadosGW, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x\n")
    env = s3.env() | {"STOREKIT_STORE": f"local?store=/opt/store&state={tmp_path}/var&real={tmp_path}/st"}
    path = storekit("store", "add", str(tmp_path / "f"), env=env).stdout.strip()
    bucket = new_bucket(s3, create=False)
    to = s3.spec(bucket, "/opt/store")
    missing = storekit("copy", "-q", "--to", to, path, env=env)
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [
        f"error: S3 binary cache '{parse_store_spec(to)}' at {s3.endpoint}: GET 'nix-cache-info': "
        f"NoSuchBucket (HTTP 404); bucket '{bucket}' does not exist there "
        "(storekit copy --create-bucket creates it)"
    ]
    created = storekit("copy", "-q", "--create-bucket", "--to", to, path, env=env)
    assert created.returncode == 0, created.stderr
    assert storekit("cache", "info", to, env=env).stdout == "StoreDir: /opt/store\n"
    wrong = storekit("cache", "info", to, env=env | {"AWS_SECRET_ACCESS_KEY": "wrong"})
    assert wrong.returncode == 1 and len(wrong.stderr.splitlines()) == 1
    assert wrong.stderr.startswith("error: ") and s3.endpoint in wrong.stderr
    assert "SignatureDoesNotMatch (HTTP 403)" in wrong.stderr


def test_a_broken_download_resumes_with_a_range_request(s3: RadosGW) -> None:
    bucket = new_bucket(s3)
    data = os.urandom(3 << 20)
    client(s3).put_object(Bucket=bucket, Key="nar/x.nar", Body=data)
    transport = S3Transport(parse_store_spec(s3.spec(bucket, "/opt/store")))  # type: ignore[arg-type]
    download = transport.open("nar/x.nar", len(data))
    assert download is not None
    stream = download._raw  # type: ignore[attr-defined]
    stream._body = BreaksAfter(stream._body, 1 << 20)
    assert download.read() == data
    assert stream.resumed == 1


class BreaksAfter:
    """A response body whose connection drops after `limit` bytes."""

    def __init__(self, body: Any, limit: int) -> None:
        self.body, self.limit, self.sent = body, limit, 0

    def read(self, n: int) -> bytes:
        if self.sent >= self.limit:
            raise ConnectionResetError("connection reset by peer (test)")
        data = self.body.read(min(n, self.limit - self.sent))
        self.sent += len(data)
        return data  # type: ignore[no-any-return]

    def close(self) -> None:
        self.body.close()


def test_a_gateway_killed_mid_upload_leaves_no_narinfo_without_its_nar(s3: RadosGW, tmp_path: Path) -> None:
    store, big = big_path(tmp_path, 40)
    (tmp_path / "small").write_text(f"refers to {big}\n")
    small = store.add_text("small", f"refers to {big}\n".encode(), [big])
    env = s3.env() | {"STOREKIT_STORE": f"local?store=/opt/store&state={tmp_path}/var&real={tmp_path}/st"}
    bucket = new_bucket(s3)
    to = s3.spec(bucket, "/opt/store", compression="none")
    s3c = client(s3)
    copy = subprocess.Popen(
        [sys.executable, "-m", "storekit", "copy", "-q", "--to", to, str(small)],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    killed = threading.Event()
    while copy.poll() is None and not killed.is_set():
        if s3c.list_multipart_uploads(Bucket=bucket).get("Uploads"):
            s3.kill("client.rgw")
            killed.set()
        time.sleep(0.02)
    _, stderr = copy.communicate(timeout=120)
    s3.restart_gateway()
    assert killed.is_set(), "the upload finished before the gateway could be killed"
    assert copy.returncode == 1 and stderr.startswith("error: ") and s3.endpoint in stderr
    keys = {o["Key"] for o in s3c.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert f"{small.hash_part}.narinfo" not in keys and f"{big.hash_part}.narinfo" not in keys
    rerun = storekit("copy", "-q", "--to", to, str(small), env=env)
    assert rerun.returncode == 0, rerun.stderr
    with open_store(to) as cache:
        for path in (big, small):
            narinfo = cache.lookup_narinfo(path)  # type: ignore[attr-defined]
            assert narinfo is not None
            s3c.head_object(Bucket=bucket, Key=narinfo.url)


def test_cache_serve_serves_an_s3_cache_over_http(s3: RadosGW, tmp_path: Path) -> None:
    from storekit.transfer.serve import CacheServer

    store = LocalStore(
        local_spec_for("/opt/store", state_dir=str(tmp_path / "var"), real_dir=str(tmp_path / "st"))
    )
    dep = store.add_text("dep", b"dep\n", [])
    top = store.add_text("top", f"uses {dep}\n".encode(), [dep])
    spec = s3.spec(new_bucket(s3), "/opt/store", compression="zstd")
    with store, open_store(spec) as cache:
        copy_closure(store, cache, [top])
        server = CacheServer(cache, port=0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            back = LocalStore(
                local_spec_for("/opt/store", state_dir=str(tmp_path / "b"), real_dir=str(tmp_path / "bs"))
            )
            with back, open_store(f"{server.url}?store=/opt/store") as http:
                assert len(copy_closure(http, back, [top]).copied) == 2
        finally:
            server.shutdown()
            server.server_close()
    assert (tmp_path / "bs" / top.base_name).read_text() == f"uses {dep}\n"


def test_a_streamed_nar_that_does_not_match_its_hash_leaves_nothing(s3: RadosGW, tmp_path: Path) -> None:
    from storekit.errors import HashMismatch
    from storekit.hashing import Hash

    store, path = big_path(tmp_path, 12)
    bucket = new_bucket(s3)
    with store, open_store(s3.spec(bucket, "/opt/store", compression="none")) as cache:
        assert isinstance(cache, BinaryCacheStore)
        info = store.query_path_info(path)
        lie = info.replace(nar_hash=Hash("sha256", bytes(32)))
        with pytest.raises(HashMismatch):
            cache.upload_chunks(lie, store.nar_from_path(path))
    assert not client(s3).list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert [o["Key"] for o in client(s3).list_objects_v2(Bucket=bucket).get("Contents", [])] == [
        "nix-cache-info"
    ]
