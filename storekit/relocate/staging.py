"""Staging areas: where relocated paths wait, written and hashed, until the whole closure passed.

A local destination stages in a staging directory inside its store dir (so a commit is a rename,
and `storekit copy`'s atomicity rules hold); any other store gets spooled NARs, handed to
`add_from_nar` at commit. Both offer the NAR way in (`stage`: a rewritten NAR stream restored or
spooled as it is produced, hashed on a thread), and the local one also the file way (`stage_tree`).
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from storekit.bytestreams import RawReader
from storekit.errors import NarFormatError
from storekit.hashing import Hash, new_hasher
from storekit.nar.reader import NarReader
from storekit.nar.writer import write_events
from storekit.references import HashModuloSink, RewritingSink
from storekit.relocate.rules import Blocker, Rules
from storekit.relocate.stream import PathReport, RelPath, rewrite_events
from storekit.relocate.tree import stage_tree
from storekit.store.base import Store, ValidPathInfo
from storekit.store.link import LinkMode, local_source_path
from storekit.storepath import StorePath

_BATCH = 1 << 16


def stage_nar(
    staging: Staging, nar: Iterable[bytes], rules: Rules, own: bytes | None, report: PathReport
) -> tuple[str | None, Hash, int]:
    """The NAR way: read, rewrite and stage at once, hashing (modulo `own`, if given) on a thread.

    Returns where it was staged (None when the rewritten NAR broke, a blocker says why), the hash
    and the NAR's size.
    """
    source = NarReader(_Stream(nar))
    hasher = _InThread(HashModuloSink(own.decode()) if own is not None else _PlainHash())
    chunks = _tee(write_events(rewrite_events(source, rules, own, report)), hasher.feed)
    handle: str | None = None
    try:
        handle = staging.stage(chunks)
    except NarFormatError as e:
        if not report.blockers:
            raise
        report.blockers.append(Blocker("", 0, f"the rewritten archive is invalid: {e}"))
    finally:
        digest, size = hasher.finish()
    return handle, digest, size


class _Sink(Protocol):
    def feed(self, data: bytes) -> None: ...
    def finish(self) -> tuple[Hash, int]: ...


class _InThread:
    """Feed a hash sink on another thread: hashlib releases the GIL, so hashing overlaps the
    rewriting and writing done on this one (a 1 GB path hashes in about a second)."""

    def __init__(self, sink: _Sink) -> None:
        self._sink = sink
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=32)
        self._error: BaseException | None = None
        self._small: list[bytes] = []
        self._small_size = 0
        self._thread = threading.Thread(target=self._run, name="relocate-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while (data := self._queue.get()) is not None:
                self._sink.feed(data)
        except BaseException as e:  # handed back to the caller by finish()
            self._error = e
            while self._queue.get() is not None:
                pass

    def feed(self, data: bytes) -> None:
        # small pieces (NAR headers) are batched: each hand-over may cost a GIL switch
        if len(data) < _BATCH:
            self._small.append(data)
            self._small_size += len(data)
            if self._small_size < _BATCH:
                return
            data = b"".join(self._small)
        elif self._small:
            self._queue.put(b"".join(self._small))
        self._small.clear()
        self._small_size = 0
        self._queue.put(data)

    def finish(self) -> tuple[Hash, int]:
        if self._small:
            self._queue.put(b"".join(self._small))
            self._small.clear()
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._sink.finish()


class _Stream(RawReader):
    """A readable stream over byte chunks that copies a chunk only when a read takes part of it."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            rest = [self._buf[self._pos :], *self._chunks]
            self._buf, self._pos = b"", 0
            return b"".join(rest)
        while self._pos >= len(self._buf):
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._buf, self._pos = chunk, 0
        start = self._pos
        end = min(len(self._buf), start + size)
        self._pos = end
        return self._buf if start == 0 and end == len(self._buf) else self._buf[start:end]

    def fill(self, buffer: memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _PlainHash:
    def __init__(self) -> None:
        self._hasher = new_hasher("sha256")
        self._size = 0

    def feed(self, data: bytes) -> None:
        self._hasher.update(data)
        self._size += len(data)

    def finish(self) -> tuple[Hash, int]:
        return self._hasher.finish(), self._size


def _tee(chunks: Iterable[bytes], sink: Callable[[bytes], None]) -> Iterator[bytes]:
    for chunk in chunks:
        sink(chunk)
        yield chunk


class Staging(Protocol):
    def local_source(self, src: Store, path: StorePath) -> str | None: ...
    def stage(self, chunks: Iterator[bytes]) -> str: ...
    def stage_tree(
        self, real: str, rules: Rules, own: bytes | None, report: PathReport
    ) -> tuple[str, Hash, int]: ...
    def replace_own_hash(self, handle: str, report: PathReport, old: bytes, new: bytes) -> None: ...
    def nar_hash(self, handle: str) -> tuple[Hash, int]: ...
    def commit(self, info: ValidPathInfo, handle: str) -> None: ...


@contextlib.contextmanager
def staging_for(dst: Store, link: LinkMode) -> Iterator[Staging]:
    from storekit.store.local import LocalStore

    if isinstance(dst, LocalStore):
        with dst.staging() as stage:
            yield _LocalStaging(dst, stage, link)
    else:
        with tempfile.TemporaryDirectory(prefix="storekit-relocate-") as tmp:
            yield _SpoolStaging(dst, tmp)


class _LocalStaging:
    """Stage in a staging directory of the destination's store dir; commit renames into place."""

    def __init__(self, store: object, stage: str, link: LinkMode) -> None:
        from storekit.store.local import LocalStore

        assert isinstance(store, LocalStore)
        self.store = store
        self.stage_dir = stage
        self.link = link
        self.count = 0

    def _target(self) -> str:
        self.count += 1
        holder = os.path.join(self.stage_dir, str(self.count))
        os.mkdir(holder)
        return os.path.join(holder, "x")

    def local_source(self, src: Store, path: StorePath) -> str | None:
        return None if self.link is LinkMode.STREAM else local_source_path(src, path)

    def stage(self, chunks: Iterator[bytes]) -> str:
        from storekit.nar.fs import restore

        target = self._target()
        restore(_Stream(chunks), target)
        return target

    def stage_tree(
        self, real: str, rules: Rules, own: bytes | None, report: PathReport
    ) -> tuple[str, Hash, int]:
        target = self._target()
        digest, size = stage_tree(real, target, rules, own, report, link=self.link is LinkMode.AUTO)
        return target, digest, size

    def replace_own_hash(self, handle: str, report: PathReport, old: bytes, new: bytes) -> None:
        for rel, offsets in report.own_hits.items():
            fd = os.open(_join(handle, rel), os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                for offset in offsets:
                    os.pwrite(fd, new, offset)
            finally:
                os.close(fd)
        for rel, target in report.own_links.items():
            link = _join(handle, rel)
            os.unlink(link)
            os.symlink(target.replace(old, new), link)

    def nar_hash(self, handle: str) -> tuple[Hash, int]:
        from storekit.nar.fs import hash_path

        return hash_path(handle)

    def commit(self, info: ValidPathInfo, handle: str) -> None:
        self.store.add_temp_root(info.path)
        self.store.install_staged(info, handle)


class _SpoolStaging:
    """Spool each rewritten NAR to a temporary file; commit hands it to `add_from_nar`."""

    def __init__(self, store: Store, tmp: str) -> None:
        self.store = store
        self.tmp = tmp
        self.count = 0

    def local_source(self, src: Store, path: StorePath) -> str | None:
        return None

    def stage_tree(
        self, real: str, rules: Rules, own: bytes | None, report: PathReport
    ) -> tuple[str, Hash, int]:
        raise NotImplementedError  # local_source() is None: never called

    def stage(self, chunks: Iterator[bytes]) -> str:
        self.count += 1
        spool = os.path.join(self.tmp, f"{self.count}.nar")
        with open(spool, "xb") as f:
            for chunk in chunks:
                f.write(chunk)
        return spool

    def replace_own_hash(self, handle: str, report: PathReport, old: bytes, new: bytes) -> None:
        if not report.own_hits and not report.own_links:
            return
        sink = RewritingSink({old: new})
        with open(handle, "rb") as f, open(handle + ".new", "xb") as out:
            while chunk := f.read(1 << 20):
                out.write(sink.feed(chunk))
            out.write(sink.flush())
        os.replace(handle + ".new", handle)

    def nar_hash(self, handle: str) -> tuple[Hash, int]:
        hasher = _PlainHash()
        with open(handle, "rb") as f:
            while chunk := f.read(1 << 20):
                hasher.feed(chunk)
        return hasher.finish()

    def commit(self, info: ValidPathInfo, handle: str) -> None:
        with open(handle, "rb") as f:
            self.store.add_from_nar(info, f)


def _join(root: str, rel: RelPath) -> str:
    return os.fsdecode(os.path.join(os.fsencode(root), *rel)) if rel else root
