"""An S3 bucket's cache files as `CacheFiles`: listed with sizes and dates, deleted a thousand a request.

Loaded only when an `s3://` cache is collected (it needs the bucket's open `S3Transport`). S3 is
strongly consistent (a deleted key is gone for every later request) and has no locks, so `sync` and
`lock` do nothing: a collection and a concurrent push into the same bucket are not coordinated, which
`cache gc --keep-since` covers for pushes younger than the duration.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from storekit.store.cache_files import SUBDIRS, TRACE_DIR, CacheFile
from storekit.store.s3 import S3Error, S3Transport
from storekit.store.transport import name_problem

#: DeleteObjects takes at most this many keys.
DELETE_BATCH = 1000


class S3Files:
    """The cache files of one bucket (see the module docstring)."""

    read_jobs = 16  # a GET is a round trip

    def __init__(self, transport: S3Transport) -> None:
        self.transport = transport
        self.uri = transport.uri

    def list_files(self) -> list[CacheFile]:
        found = []
        t = self.transport
        with t.errors("LIST", ""):
            for page in t.client.get_paginator("list_objects_v2").paginate(Bucket=t.bucket):
                for o in page.get("Contents", ()):
                    if _in_layout(o["Key"]):
                        found.append(CacheFile(o["Key"], int(o["Size"]), o["LastModified"].timestamp()))
        return sorted(found, key=lambda f: f.name)

    def read(self, name: str) -> bytes | None:
        """A file this class just listed: told to the transport, whose listing may be older."""
        self.transport.added(name)
        return self.transport.read(name)

    def delete(self, names: Sequence[str]) -> None:
        t = self.transport
        for start in range(0, len(names), DELETE_BATCH):
            batch = [{"Key": n} for n in names[start : start + DELETE_BATCH]]
            answer = t.call("DELETE", batch[0]["Key"], t.client.delete_objects,
                            Delete={"Objects": batch, "Quiet": True})  # fmt: skip
            errors = answer.get("Errors") or []
            if errors:
                first = errors[0]
                raise S3Error(
                    f"S3 binary cache '{self.uri}': deleting '{first.get('Key')}' failed: "
                    f"{first.get('Code')} {first.get('Message', '')} ({len(errors)} keys not deleted)"
                )

    def sync(self) -> None:
        """Nothing to do: S3 answers a DeleteObjects only once the keys are gone."""

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """S3 has no lock (see the module docstring)."""
        yield


def _in_layout(key: str) -> bool:
    """Whether a key is one of a cache's files, named as a directory cache's would be."""
    if name_problem(key) is not None:
        return False
    parts = key.split("/")
    if len(parts) == 1:
        return True
    if len(parts) == 2:
        return parts[0] in SUBDIRS
    return len(parts) == 3 and parts[0] == TRACE_DIR
