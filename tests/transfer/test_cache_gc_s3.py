"""`cache gc` on an `s3://` cache in a real S3 server (Ceph's radosgw, tests/s3_server.py): the same
deletions as on the same cache in a directory, consistent after each one, and a stopped run converges."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from gc_cache import STORE_DIR, FakeCache, random_cache
from s3_server import RadosGW

from storekit.store.binary_cache import BinaryCacheStore
from storekit.store.cache_files import DirectoryFiles
from storekit.store.open import open_store
from storekit.store.specs import parse_store_spec
from storekit.transfer.cache_gc import cache_files_for, collect_cache_garbage, read_snapshot
from storekit.transfer.cache_gc_plan import Deletion, integrity_problems


@pytest.fixture
def s3(radosgw: RadosGW, monkeypatch: pytest.MonkeyPatch) -> Iterator[RadosGW]:
    """The gateway, with its credentials in this process's environment (boto3's default chain)."""
    for key, value in radosgw.env({}).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield radosgw


def client(gw: RadosGW) -> Any:
    return boto3.client("s3", endpoint_url=gw.endpoint, region_name="us-east-1")


def bucket_from(gw: RadosGW, cache: FakeCache) -> str:
    """A new bucket holding exactly the directory cache's files, under the same names."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    c = client(gw)
    c.create_bucket(Bucket=name)
    for f in sorted(cache.files()):
        c.put_object(Bucket=name, Key=f, Body=(cache.root / f).read_bytes())
    return name


def keys(gw: RadosGW, bucket: str) -> set[str]:
    pages = client(gw).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"] for page in pages for o in page.get("Contents", ())}


def s3_cache(gw: RadosGW, bucket: str) -> BinaryCacheStore:
    store = open_store(parse_store_spec(gw.spec(bucket, STORE_DIR.path)))
    assert isinstance(store, BinaryCacheStore)
    return store


def test_s3_gc_deletes_what_a_directory_gc_deletes_consistently(s3: RadosGW, tmp_path: Path) -> None:
    cache, keep = random_cache(tmp_path / "dir", 21)
    bucket = bucket_from(s3, cache)
    files = cache_files_for(s3_cache(s3, bucket).transport)
    assert type(files).__name__ == "S3Files"

    dry = collect_cache_garbage(files, STORE_DIR, keep, dry_run=True)
    assert keys(s3, bucket) == cache.files() and dry.deleted

    def check(d: Deletion) -> None:
        assert d.name not in keys(s3, bucket)
        assert integrity_problems(read_snapshot(files, STORE_DIR)) == [], f"after deleting {d.name}"

    result = collect_cache_garbage(files, STORE_DIR, keep, on_deleted=check)
    directory = collect_cache_garbage(DirectoryFiles(str(cache.root)), STORE_DIR, keep)
    names = [d.name for d in result.deleted]
    assert names == [d.name for d in directory.deleted] == [d.name for d in dry.deleted]
    assert keys(s3, bucket) == cache.files()


def test_s3_gc_stopped_midway_converges_and_the_cli_runs_on_s3(s3: RadosGW, tmp_path: Path) -> None:
    cache, keep = random_cache(tmp_path / "dir", 22)
    bucket = bucket_from(s3, cache)
    files = cache_files_for(s3_cache(s3, bucket).transport)
    kept = len(collect_cache_garbage(DirectoryFiles(str(cache.root)), STORE_DIR, keep).plan.kept)

    class Stop(Exception):
        pass

    def stop(d: Deletion, seen: list[str] = []) -> None:  # noqa: B006
        seen.append(d.name)
        if len(seen) == 7:
            raise Stop

    with pytest.raises(Stop):
        collect_cache_garbage(files, STORE_DIR, keep, on_deleted=stop)
    assert integrity_problems(read_snapshot(files, STORE_DIR)) == []
    url = s3.spec(bucket, STORE_DIR.path)
    keeps = [a for p in keep for a in ("--keep", str(p))]
    argv = [sys.executable, "-m", "storekit", "cache", "gc", url, *keeps]
    proc = subprocess.run(argv, capture_output=True, text=True, env=s3.env(), check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith(f"; {kept} store paths kept")
    assert keys(s3, bucket) == cache.files()


def test_s3_push_during_the_collection_is_reported(s3: RadosGW, tmp_path: Path) -> None:
    cache = FakeCache(tmp_path / "dir")
    keep = cache.add("keep")
    old = cache.add("old")
    bucket = bucket_from(s3, cache)
    files = cache_files_for(s3_cache(s3, bucket).transport)
    late = FakeCache(tmp_path / "late").add("late", (old,))
    body = (tmp_path / "late" / f"{late.hash_part}.narinfo").read_bytes()

    def push_meanwhile(d: Deletion, done: list[str] = []) -> None:  # noqa: B006
        if not done:
            done.append(d.name)
            client(s3).put_object(Bucket=bucket, Key=f"{late.hash_part}.narinfo", Body=body)

    result = collect_cache_garbage(files, STORE_DIR, [keep], on_deleted=push_meanwhile)
    assert any(w.startswith(f"'{late.base_name}' was added to the cache during") for w in result.warnings)
