"""One NAR stream, two threads: one reads and hashes it, the other restores or writes it.

Reading a file, hashing (sha256 in `hashlib`) and writing files all release the GIL, so running the
producer (source + sha256) on its own thread overlaps the hash with the consumer's writes, which is
most of what separates a Python copy from Nix's C++. Chunks are handed over as they are, never joined
or copied, through a small bounded queue, so memory stays at a few chunks whatever the NAR's size.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator

from storekit.bytestreams import RawReader
from storekit.hashing import Hash, new_hasher

QUEUE_CHUNKS = 8


class HashedPrefetch(RawReader):
    """A readable stream over `chunks`, produced (and sha256-hashed) ahead of the reader on a thread.

    Errors raised by `chunks` (a truncated download, a bad file hash) surface in the reader's `read`.
    `finish()` gives the hash and size once everything was read.
    """

    def __init__(self, chunks: Iterator[bytes], algo: str = "sha256") -> None:
        super().__init__()
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(QUEUE_CHUNKS)
        self._hasher = new_hasher(algo)
        self._size = 0
        self._pending = b""
        self._offset = 0
        self._done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._produce, args=(chunks,), name="nar-prefetch", daemon=True
        )
        self._thread.start()

    def _produce(self, chunks: Iterator[bytes]) -> None:
        try:
            for chunk in chunks:
                if self._stop.is_set():
                    return
                self._hasher.update(chunk)
                self._size += len(chunk)
                self._queue.put(chunk)
            self._queue.put(None)
        except BaseException as e:  # handed to the reader, which raises it
            self._queue.put(e)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _next(self) -> bool:
        """Load the next chunk into `_pending`; False at the end."""
        if self._done:
            return False
        item = self._queue.get()
        if item is None:
            self._done = True
            return False
        if isinstance(item, BaseException):
            self._done = True
            raise item
        self._pending, self._offset = item, 0
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = [self._pending[self._offset :]]
            self._pending = b""
            while self._next():
                parts.append(self._pending)
            self._pending = b""
            return b"".join(parts)
        if self._offset >= len(self._pending) and not self._next():
            return b""
        start = self._offset
        if start == 0 and len(self._pending) <= size:
            self._offset = len(self._pending)
            return self._pending  # the chunk itself, no copy
        self._offset = min(len(self._pending), start + size)
        return self._pending[start : self._offset]

    def fill(self, buffer: memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def finish(self) -> tuple[Hash, int]:
        """The hash and size of the whole stream (call after reading it to the end)."""
        self._thread.join()
        return self._hasher.finish(), self._size

    def close(self) -> None:
        if not self.closed:
            self._stop.set()
            while self._thread.is_alive():  # unblock a producer waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    self._queue.get(timeout=0.05)
        super().close()
