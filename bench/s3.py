"""S3 binary caches against `aws s3 sync` (awscli, from the dev extra) on a real radosgw at 127.0.0.1.

The same files both ways: 1,000 small store paths (1 KiB each) and one 500 MB path (`--quick`: 100
paths and 50 MB). storekit pushes them as a binary cache (`copy --to s3://…&compression=none -j 8`:
NAR + narinfo per path, nix-cache-info) and substitutes them back into an empty local store (`copy
--from s3://…`: narinfos, NARs, hash checks, registration); `aws s3 sync` (10 requests at a time, its
default) uploads the store dir's files and downloads them into an empty directory. Both run as
commands, start-up included, each time into a new bucket or an empty directory. Each row is the
median of `REPEAT` runs: the machine is shared, so single runs vary; the note gives the 1-minute load
average at the end of the row's runs.

Like for like, and what differs: neither side compresses (aws uploads the files' bytes, storekit's
NARs are uncompressed), both sign with SigV4 over kept-alive connections, 8 paths (storekit) and 10
requests (aws) at a time. A binary cache is two objects per path (NAR, then narinfo) where `aws s3
sync` writes one per file, so storekit's push and substitution of small paths cost radosgw twice the
requests; the ratio is what storekit wins back on the client.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench._harness import Row, run_cmd, storekit_argv, storekit_env, work_dir
from storekit.store.canonical import delete_path
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from s3_server import RadosGW, missing_tools

TITLE = "S3 (radosgw, 127.0.0.1): push to and substitute from s3:// vs aws s3 sync"
REPEAT = 3


def run(quick: bool) -> list[Row]:
    if missing_tools():
        print(f"skipped: radosgw is not installed ({', '.join(missing_tools())} missing)")
        return []
    tmp = work_dir("storekit-bench-s3-")
    gateway = RadosGW(tmp / "rgw", memory=12 << 30)
    try:
        gateway.start()
        bench = _Bench(tmp, gateway)
        small = bench.store("small", [bench.small_path(i) for i in range(100 if quick else 1000)])
        big = bench.store("big", [bench.big_path(50 if quick else 500)])
        return [*bench.rows(small, f"{len(small[1])} x 1 KiB paths"), *bench.rows(big, "one big path")]
    finally:
        gateway.stop()


class _Bench:
    def __init__(self, tmp: Path, gateway: RadosGW) -> None:
        self.tmp, self.gw = tmp, gateway
        self.env = storekit_env(gateway.env())
        self.client: Any = None

    def s3(self) -> Any:
        if self.client is None:
            import boto3
            from botocore.config import Config

            self.client = boto3.Session(
                aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
                region_name="us-east-1",
            ).client("s3", endpoint_url=self.gw.endpoint, config=Config(read_timeout=600))
        return self.client

    def small_path(self, i: int) -> Callable[[LocalStore], str]:
        return lambda store: str(store.add_text(f"small-{i}", os.urandom(512).hex().encode(), []))

    def big_path(self, mib: int) -> Callable[[LocalStore], str]:
        def add(store: LocalStore) -> str:
            data = self.tmp / "big.bin"
            with data.open("wb") as f:
                for _ in range(mib // 4):
                    f.write(os.urandom(4 << 20))
            path = str(store.add_path(str(data)))
            data.unlink()
            return path

        return add

    def store(self, name: str, makers: list[Callable[[LocalStore], str]]) -> tuple[str, list[str]]:
        """A local store whose store dir holds exactly the benchmark's paths (what aws syncs)."""
        store_dir = str(self.tmp / name / "store")
        with LocalStore(local_spec_for(store_dir)) as store:
            return store_dir, [make(store) for make in makers]

    def bucket(self) -> str:
        name = f"b-{uuid.uuid4().hex[:12]}"
        self.s3().create_bucket(Bucket=name)
        return name

    def drop(self, bucket: str) -> None:
        """Empty a bucket, so the OSD's RAM holds few copies of the data (memstore)."""
        for page in self.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.s3().delete_objects(Bucket=bucket, Delete={"Objects": keys})

    def spec(self, bucket: str, store_dir: str) -> str:
        return self.gw.spec(bucket, store_dir, compression="none")

    def storekit(self, *args: str) -> None:
        run_cmd([*storekit_argv(), "copy", "-q", "-j", "8", *args], env=self.env)

    def aws(self, source: str, dest: str) -> None:
        argv = ["aws", "s3", "sync", "--quiet", "--endpoint-url", self.gw.endpoint, source, dest]
        run_cmd(argv, env=self.env)

    def rows(self, store: tuple[str, list[str]], what: str) -> list[Row]:
        store_dir, paths = store
        push_sk, push_aws, pull_sk, pull_aws = [], [], [], []
        for _ in range(REPEAT):
            ours, theirs = self.bucket(), self.bucket()
            target = self.tmp / "target"
            dest = f"local?store={store_dir}&state={target}/var/nix&real={target}/store"
            ours_spec = self.spec(ours, store_dir)
            push_sk.append(_timed(partial(self.storekit, "--from", store_dir, "--to", ours_spec, *paths)))
            push_aws.append(_timed(partial(self.aws, store_dir, f"s3://{theirs}")))
            pull_sk.append(_timed(partial(self.storekit, "--from", ours_spec, "--to", dest, *paths)))
            delete_path(str(target))
            pull_aws.append(_timed(partial(self.aws, f"s3://{theirs}", str(target))))
            delete_path(str(target))
            self.drop(ours)
            self.drop(theirs)
        note = f"median of {REPEAT}; {_size(store_dir)}; load {os.getloadavg()[0]:.1f}"
        med = statistics.median
        return [
            Row(f"push {what}", med(push_sk), "aws s3 sync", med(push_aws), note),
            Row(f"substitute {what}", med(pull_sk), "aws s3 sync", med(pull_aws), note),
        ]


def _timed(fn: Callable[[], None]) -> float:
    os.sync()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _size(directory: str) -> str:
    du = subprocess.run(["du", "-sh", "--apparent-size", directory], capture_output=True, text=True)
    return du.stdout.split()[0] if du.returncode == 0 else "?"
