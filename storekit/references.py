"""Finding and rewriting store-path hash parts in byte streams, as Nix does for references.

A store path refers to another exactly when the other's 32-character hash part occurs somewhere in its
NAR (file contents, symlink targets, names). Nix finds them by sliding over runs of nix-base32
characters (references.cc); since a hash part is itself such a run, "occurs as a substring" is the
same test, which lets us search runs found by a regex instead of looping over bytes in Python.

Everything here works on streams of chunks of any size: a hash part split across two chunks is found,
and rewriting holds back just enough bytes to see across the boundary, so results never depend on
where the chunks were cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from storekit import nixbase32
from storekit.hashing import Hash, new_hasher
from storekit.storepath import HASH_PART_LEN

# A hash part can only be in a run of at least 32 nix-base32 characters. Runs are found by mapping
# those characters to 1 and all others to 0 (`bytes.translate`) and searching for 32 ones with
# `bytes.find`: both are C loops, several times faster than a regex character class.
_IS_BASE32 = bytes(1 if chr(b) in nixbase32.ALPHABET else 0 for b in range(256))
_RUN_START = b"\x01" * HASH_PART_LEN
# Below this many candidates, one `bytes.find` each (memchr-fast) beats walking the base-32 runs.
_FEW = 8


class RefScanSink:
    """Nix's `RefScanSink`: feed chunks, then read `found`, the hash parts seen so far."""

    __slots__ = ("_pending", "_tail", "found")

    def __init__(self, hash_parts: Iterable[str]) -> None:
        self._pending: dict[bytes, str] = {h.encode("ascii"): h for h in hash_parts}
        self._tail = b""
        self.found: set[str] = set()

    def __call__(self, data: bytes | bytearray | memoryview) -> None:
        self.feed(data)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending or not data:
            return
        # The tail (the last 31 bytes seen) makes every 32-byte window lie wholly in one buffer.
        buf = self._tail + bytes(data)
        self._search(buf)
        self._tail = buf[-(HASH_PART_LEN - 1) :]

    def _search(self, buf: bytes) -> None:
        if len(self._pending) <= _FEW:
            hits = [h for h in self._pending if h in buf]
        else:
            hits = [w for w in _windows(buf) if w in self._pending]
        for h in hits:
            part = self._pending.pop(h, None)
            if part is not None:
                self.found.add(part)


def _windows(buf: bytes) -> Iterator[bytes]:
    """Every 32-byte window of `buf` made only of nix-base32 characters."""
    marks = buf.translate(_IS_BASE32)
    start = marks.find(_RUN_START)
    while start >= 0:
        end = marks.find(b"\0", start + HASH_PART_LEN)
        end = len(buf) if end < 0 else end
        for i in range(start, end - HASH_PART_LEN + 1):
            yield buf[i : i + HASH_PART_LEN]
        start = marks.find(_RUN_START, end)


def scan_references(chunks: Iterable[bytes], hash_parts: Iterable[str]) -> set[str]:
    """The hash parts among `hash_parts` that occur in the stream `chunks` (e.g. a NAR being dumped)."""
    sink = RefScanSink(hash_parts)
    for chunk in chunks:
        sink.feed(chunk)
    return sink.found


class RewritingSink:
    """Same-length rewriting of strings (hash parts, full store paths) in a stream of chunks.

    `feed` returns the bytes that are final so far and `flush` the rest. Matches are found in the
    original stream, leftmost first and never overlapping, exactly as if the whole stream were one
    string; `matches` holds their offsets, which `HashModuloSink` needs. Equal lengths keep every
    offset in a NAR valid, which is why Nix can rewrite store paths inside binaries.
    """

    __slots__ = ("_keep", "_map", "_pattern", "_prev", "matches", "pos")

    def __init__(self, rewrites: Mapping[bytes, bytes]) -> None:
        lengths = {len(k) for k in rewrites} | {len(v) for v in rewrites.values()}
        if len(lengths) > 1 or 0 in lengths:
            raise ValueError("rewrites must map non-empty strings to strings of one and the same length")
        self._map = dict(rewrites)
        width = lengths.pop() if lengths else 1
        self._keep = width - 1
        import re  # here: every build scans its outputs (`RefScanSink`), few rewrite them (start-up)

        self._pattern = re.compile(b"|".join(re.escape(k) for k in sorted(self._map))) if self._map else None
        self._prev = b""
        self.pos = 0
        self.matches: list[int] = []

    def feed(self, data: bytes | bytearray | memoryview) -> bytes:
        buf = self._prev + data if self._prev else bytes(data)  # bytes(b) is b itself: no copy
        if self._pattern is None:
            self.pos += len(buf)
            self._prev = b""
            return buf
        # Hold back the last width-1 bytes: a match starting there needs bytes not seen yet.
        cut = max(len(buf) - self._keep, 0)
        pieces: list[bytes] = []
        done = 0
        for m in self._pattern.finditer(buf):
            if m.start() >= cut:
                break
            pieces += (buf[done : m.start()], self._map[m.group()])
            done = m.end()
            self.matches.append(self.pos + m.start())
        cut = max(cut, done)
        self._prev = buf[cut:]
        self.pos += cut
        if not pieces:  # the usual case, no match: one copy of the chunk, not four
            return buf[:cut]
        pieces.append(buf[done:cut])
        return b"".join(pieces)

    def flush(self) -> bytes:
        rest, self._prev = self._prev, b""
        self.pos += len(rest)
        return rest


def rewrite_hash_parts(data: bytes, mapping: Mapping[str, str]) -> bytes:
    """Replace every occurrence of each old hash part (key) by its new one (value) in `data`."""
    sink = RewritingSink({k.encode("ascii"): v.encode("ascii") for k, v in mapping.items()})
    return sink.feed(data) + sink.flush()


def rewrite_stream(chunks: Iterable[bytes], mapping: Mapping[str, str]) -> Iterator[bytes]:
    """`rewrite_hash_parts` over a stream: yields rewritten chunks, never holding more than 31 bytes."""
    sink = RewritingSink({k.encode("ascii"): v.encode("ascii") for k, v in mapping.items()})
    for chunk in chunks:
        out = sink.feed(chunk)
        if out:
            yield out
    rest = sink.flush()
    if rest:
        yield rest


class HashModuloSink:
    """Nix's `HashModuloSink`: sha256 of a stream with one hash part (the modulus) zeroed out.

    Each occurrence is replaced by as many NUL bytes, then `|<offset>` is hashed for each occurrence,
    so that a NAR that really contains NULs there does not collide with one that contained the
    modulus. This is the content hash of a self-referencing path (make-content-addressed, CA builds).
    """

    __slots__ = ("_hasher", "_rewriter")

    def __init__(self, modulus: str, algo: str = "sha256") -> None:
        self._hasher = new_hasher(algo)
        raw = modulus.encode("ascii")
        self._rewriter = RewritingSink({raw: bytes(len(raw))})

    def __call__(self, data: bytes | bytearray | memoryview) -> None:
        self.feed(data)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._hasher.update(self._rewriter.feed(data))

    def finish(self) -> tuple[Hash, int]:
        """The hash modulo and the number of bytes fed."""
        self._hasher.update(self._rewriter.flush())
        for offset in self._rewriter.matches:
            self._hasher.update(f"|{offset}".encode())
        return self._hasher.finish(), self._rewriter.pos


def hash_modulo(chunks: Iterable[bytes], modulus: str, algo: str = "sha256") -> Hash:
    """`HashModuloSink` over a whole stream."""
    sink = HashModuloSink(modulus, algo)
    for chunk in chunks:
        sink.feed(chunk)
    return sink.finish()[0]
