"""Hashes as Nix prints and parses them: base16, nix-base32, base64 and SRI, with or without `algo:`.

A `Hash` is a value: an algorithm and a digest. Parsing accepts every form Nix accepts (the encoding is
told by the length), printing picks one. `compress` is Nix's XOR-folding used for store-path hash parts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from enum import Enum

from storekit import nixbase32
from storekit.errors import InvalidHash

ALGORITHMS: dict[str, int] = {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}

class Base(Enum):
    """The encodings Nix knows, named as `nix hash` names them."""

    BASE16 = "base16"
    NIX32 = "base32"
    BASE64 = "base64"
    SRI = "sri"


@dataclass(frozen=True, slots=True)
class Hash:
    algo: str
    digest: bytes

    def __post_init__(self) -> None:
        size = ALGORITHMS.get(self.algo)
        if size is None:
            raise InvalidHash(f"unknown hash algorithm '{self.algo}' (known: {', '.join(ALGORITHMS)})")
        if len(self.digest) != size:
            raise InvalidHash(f"{self.algo} digest must be {size} bytes, not {len(self.digest)}")

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def of(cls, data: bytes, algo: str = "sha256") -> Hash:
        return cls(algo, new_hasher(algo).update_and_digest(data))

    @classmethod
    def parse(cls, text: str, algo: str | None = None) -> Hash:
        """Parse `algo:digest`, SRI `algo-base64`, or a bare digest when `algo` is given.

        Like Nix's `Hash::parseAny`: a given `algo` must agree with one written in the string.
        """
        written: str | None = None
        body = text
        if ":" in text:
            written, body = text.split(":", 1)
        elif "-" in text and text.split("-", 1)[0] in ALGORITHMS:
            written, body = text.split("-", 1)
            if algo is not None and written != algo:
                raise InvalidHash(f"hash '{text}' should have type '{algo}'")
            return cls(written, _decode_base64(text, body, written))
        if written is not None:
            if written not in ALGORITHMS:
                raise InvalidHash(f"unknown hash algorithm '{written}' in '{text}'")
            if algo is not None and written != algo:
                raise InvalidHash(f"hash '{text}' should have type '{algo}'")
            algo = written
        if algo is None:
            raise InvalidHash(f"hash '{text}' does not include a type, nor is the type otherwise known")
        if algo not in ALGORITHMS:
            raise InvalidHash(f"unknown hash algorithm '{algo}'")
        return cls(algo, _decode_body(text, body, algo))

    # --- printing ------------------------------------------------------------------------------

    @property
    def base16(self) -> str:
        return self.digest.hex()

    @property
    def nix32(self) -> str:
        return nixbase32.encode(self.digest)

    @property
    def base64(self) -> str:
        return base64.b64encode(self.digest).decode("ascii")

    @property
    def sri(self) -> str:
        return f"{self.algo}-{self.base64}"

    def format(self, base: Base = Base.SRI, *, prefix: bool = True) -> str:
        """Print in `base`; `prefix` adds `algo:` (ignored for SRI, which always names its algorithm)."""
        if base is Base.SRI:
            return self.sri
        body = {Base.BASE16: self.base16, Base.NIX32: self.nix32, Base.BASE64: self.base64}[base]
        return f"{self.algo}:{body}" if prefix else body

    def __str__(self) -> str:
        """`algo:nix32`, the form narinfo files and the store database (as hex) use most."""
        return f"{self.algo}:{self.nix32}"


def _decode_body(text: str, body: str, algo: str) -> bytes:
    size = ALGORITHMS[algo]
    if len(body) == 2 * size:
        try:
            return bytes.fromhex(body)
        except ValueError:
            raise InvalidHash(f"invalid base-16 hash '{text}'") from None
    if len(body) == nixbase32.encoded_length(size):
        try:
            return nixbase32.decode(body)
        except InvalidHash as e:
            raise InvalidHash(f"invalid nix-base32 hash '{text}': {e}") from None
    if len(body) == 4 * ((size + 2) // 3):
        return _decode_base64(text, body, algo)
    raise InvalidHash(f"hash '{text}' has wrong length for hash type '{algo}'")


def _decode_base64(text: str, body: str, algo: str) -> bytes:
    try:
        digest = base64.b64decode(body, validate=True)
    except binascii.Error:
        raise InvalidHash(f"invalid base-64 hash '{text}'") from None
    if len(digest) != ALGORITHMS[algo]:
        raise InvalidHash(f"hash '{text}' has wrong length for hash type '{algo}'")
    return digest


class _Hasher:
    """A thin wrapper so callers name algorithms the way Nix does."""

    __slots__ = ("_h", "algo")

    def __init__(self, algo: str) -> None:
        if algo not in ALGORITHMS:
            raise InvalidHash(f"unknown hash algorithm '{algo}' (known: {', '.join(ALGORITHMS)})")
        self.algo = algo
        self._h = hashlib.new(algo)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)

    def update_and_digest(self, data: bytes) -> bytes:
        self._h.update(data)
        return self._h.digest()

    def finish(self) -> Hash:
        return Hash(self.algo, self._h.digest())


def new_hasher(algo: str = "sha256") -> _Hasher:
    return _Hasher(algo)


def compress(digest: bytes, size: int = 20) -> bytes:
    """Nix's `compressHash`: XOR-fold `digest` into `size` bytes (32 -> 20 for store-path hash parts)."""
    out = bytearray(size)
    for i, b in enumerate(digest):
        out[i % size] ^= b
    return bytes(out)
