"""How a NAR file gets into a bucket: spooled until its name is known, or streamed by parts to it.

A NAR file's key is its file hash. For a compressed NAR that hash is known only at the end, so the
bytes are spooled (memory, then a temp file) and uploaded once named. An uncompressed NAR's file
hash is its NAR hash, which the narinfo-to-be already states: its parts go up while the NAR is still
being read, a few in flight, and the multipart upload is completed only in `publish`, after the
caller has checked the NAR's hash and size; until then nothing is visible in the bucket, and a
discarded upload is aborted. Either way an object already at that key is not uploaded again.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from storekit.store.transport import PendingFile

#: The transport an upload writes through (`storekit.store.s3.S3Transport`, which imports this module).
S3Transport = Any

SPOOL_IN_MEMORY = 8 << 20
PARTS_IN_FLIGHT = 8  # per upload: bounds its memory to this many parts


class SpooledUpload(PendingFile):
    """A NAR file being written whose name (its hash) is known only when it is complete."""

    def __init__(self, transport: S3Transport) -> None:  # no super(): nothing is made on disk here
        self._transport = transport
        self.file = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)  # type: ignore[assignment]  # noqa: SIM115
        self.published = False

    def publish(self, name: str) -> None:
        """Upload to `name` unless an object is already there: names are content hashes (Nix's rule)."""
        size = self.file.tell()
        self.file.seek(0)
        if not self._transport.exists(name):
            self._transport.upload(name, self.file, size)
        self.published = True

    def discard(self) -> None:
        self.file.close()


class StreamedUpload(PendingFile):
    """A NAR file whose name is known up front, uploaded part by part as it is written."""

    def __init__(self, transport: S3Transport, name: str, pool: ThreadPoolExecutor) -> None:  # no super()
        self._transport, self._name, self._pool = transport, name, pool
        self._part_size = transport.spec.buffer_size
        self._buffer = bytearray()
        self._skip = transport.exists(name)  # already there: read the NAR through, upload nothing
        self._upload_id: str | None = None
        self._parts: list[Future[dict[str, Any]]] = []
        self._slots = threading.BoundedSemaphore(PARTS_IN_FLIGHT)
        self.published = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._skip:
            return
        self._buffer += data
        while len(self._buffer) >= self._part_size and self._transport.spec.multipart:
            part = bytes(self._buffer[: self._part_size])
            del self._buffer[: self._part_size]
            self._send(part)

    def _send(self, part: bytes) -> None:
        if self._upload_id is None:
            start = self._transport.client.create_multipart_upload
            kind = "application/x-nix-nar"
            started = self._transport.call(
                "start upload", self._name, start, Key=self._name, ContentType=kind
            )
            self._upload_id = started["UploadId"]
        for done in [f for f in self._parts if f.done()]:
            done.result()  # a failed part fails the write now, not at the end
        self._slots.acquire()
        number = len(self._parts) + 1
        future = self._pool.submit(self._upload_part, number, part)
        future.add_done_callback(lambda _: self._slots.release())
        self._parts.append(future)

    def _upload_part(self, number: int, data: bytes) -> dict[str, Any]:
        response = self._transport.call(
            f"upload part {number}", self._name, self._transport.client.upload_part,
            Key=self._name, UploadId=self._upload_id, PartNumber=number, Body=data,
        )  # fmt: skip
        return {"PartNumber": number, "ETag": response["ETag"]}

    def publish(self, name: str) -> None:
        """Complete the upload (the NAR checked out), or put a NAR smaller than one part in one PUT."""
        assert name == self._name, f"{name} was announced as {self._name}"
        if not self._skip:
            if self._upload_id is None:
                self._transport.upload(name, io.BytesIO(self._buffer), len(self._buffer))
            else:
                if self._buffer:
                    self._send(bytes(self._buffer))
                parts = [f.result() for f in self._parts]
                complete = self._transport.client.complete_multipart_upload
                self._transport.call("complete upload", name, complete, Key=name,
                                     UploadId=self._upload_id, MultipartUpload={"Parts": parts})  # fmt: skip
                self._transport.added(name)
        self.published = True

    def discard(self) -> None:
        """Abort an upload that was not published: its parts are dropped, nothing became visible."""
        for future in self._parts:
            future.cancel()
        if self._upload_id is not None and not self.published:
            for future in self._parts:
                with contextlib.suppress(Exception):
                    future.result()
            with contextlib.suppress(Exception):
                self._transport.client.abort_multipart_upload(
                    Bucket=self._transport.bucket, Key=self._name, UploadId=self._upload_id
                )
        self._buffer = bytearray()
