"""Hashes as Nix prints and parses them: base16, nix-base32, base64 and SRI, with or without `algo:`.

A `Hash` is a value: an algorithm and a digest. Parsing accepts every form Nix accepts (the encoding is
told by the length), printing picks one. `compress` is Nix's XOR-folding used for store-path hash parts.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from storekit import nixbase32
from storekit.errors import InvalidHash

ALGORITHMS: dict[str, int] = {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}
"""The algorithms every Nix knows, with their digest sizes; text naming another is refused."""
NEWER_ALGORITHMS: dict[str, int] = {"blake3": 32}
"""Nix >= 2.27's: computed and printed always, parsed from text only when asked (`blake3=True`),
so what storekit reads by default is what Nix 2.8 reads."""
SIZES = {**ALGORITHMS, **NEWER_ALGORITHMS}


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
        size = SIZES.get(self.algo)
        if size is None:
            raise InvalidHash(f"unknown hash algorithm '{self.algo}' (known: {', '.join(SIZES)})")
        if len(self.digest) != size:
            raise InvalidHash(f"{self.algo} digest must be {size} bytes, not {len(self.digest)}")

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def of(cls, data: bytes, algo: str = "sha256") -> Hash:
        return cls(algo, new_hasher(algo).update_and_digest(data))

    @classmethod
    def parse(cls, text: str, algo: str | None = None, *, blake3: bool = False) -> Hash:
        """Parse `algo:digest`, SRI `algo-base64`, or a bare digest when `algo` is given.

        Like Nix's `Hash::parseAny`: the encoding is told by the length, and a given `algo` must
        agree with one written in the string. Without `algo` this is `Hash::parseAnyPrefixed`.
        `blake3` accepts BLAKE3 too, as Nix >= 2.27 does.
        """
        known = SIZES if blake3 else ALGORITHMS
        written, body, is_sri = _split_algo(text, known)
        if written is None and algo is None:
            raise InvalidHash(
                f"hash '{text}' does not include a type, nor is the type otherwise known from context"
            )
        if written is not None and algo is not None and written != algo:
            raise InvalidHash(f"hash '{text}' should have type '{algo}'")
        chosen = written or algo
        assert chosen is not None
        if chosen not in known:
            raise InvalidHash(f"unknown hash algorithm '{chosen}' (known: {', '.join(known)})")
        return cls(chosen, _decode_body(body, chosen, is_sri))

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


def _split_algo(text: str, known: dict[str, int]) -> tuple[str | None, str, bool]:
    """Split off `algo:` or, failing that, SRI's `algo-`, as Nix does; a named algorithm must exist."""
    for sep in (":", "-"):
        if sep in text:
            written, body = text.split(sep, 1)
            if written not in known:
                raise InvalidHash(f"unknown hash algorithm '{written}' in hash '{text}'")
            return written, body, sep == "-"
    return None, text, False


_HEX = frozenset("0123456789abcdefABCDEF")
_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _decode_body(body: str, algo: str, is_sri: bool) -> bytes:
    size = SIZES[algo]
    if not is_sri and len(body) == 2 * size:
        if not _HEX.issuperset(body):
            raise InvalidHash(f"invalid base-16 hash '{body}'")
        return bytes.fromhex(body)
    if not is_sri and len(body) == nixbase32.encoded_length(size):
        try:
            return nixbase32.decode(body)
        except InvalidHash:
            raise InvalidHash(f"invalid base-32 hash '{body}'") from None
    if is_sri or len(body) == 4 * ((size + 2) // 3):
        digest = base64_decode(body)
        if len(digest) != size:
            raise InvalidHash(f"invalid {'SRI' if is_sri else 'base-64'} hash '{body}'")
        return digest
    raise InvalidHash(f"hash '{body}' has wrong length for hash type '{algo}'")


def base64_decode(text: str) -> bytes:
    """Nix's lenient `base64Decode`: stops at the first `=`, skips newlines, needs no padding.

    Keys, signatures and SRI hashes written by hand or by other tools rely on this leniency.
    """
    body = text.split("=", 1)[0].replace("\n", "")
    bad = next((c for c in body if c not in _BASE64), None)
    if bad is not None:
        raise InvalidHash(f"invalid character in Base64 string: '{bad}'")
    full = len(body) - len(body) % 4
    data = base64.b64decode(body[:full]) if full else b""
    rest = body[full:]
    if len(rest) >= 2:
        data += base64.b64decode(rest + "=" * (4 - len(rest)))
    return data


class _Digest(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> object: ...
    def digest(self) -> bytes: ...


def _new(algo: str) -> _Digest:
    if algo == "blake3":
        import blake3  # the reference implementation's binding; hashlib has no BLAKE3

        return blake3.blake3()
    return hashlib.new(algo)


class _Hasher:
    """A thin wrapper so callers name algorithms the way Nix does."""

    __slots__ = ("_h", "algo")
    _h: _Digest

    def __init__(self, algo: str) -> None:
        if algo not in SIZES:
            raise InvalidHash(f"unknown hash algorithm '{algo}' (known: {', '.join(SIZES)})")
        self.algo = algo
        self._h = _new(algo)

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
