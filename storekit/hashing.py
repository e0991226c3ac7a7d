"""Hashes as Nix prints and parses them: base16, nix-base32, base64 and SRI, with or without `algo:`.

A `Hash` is a value: an algorithm and a digest. Parsing accepts every form Nix accepts (the encoding is
told by the length), printing picks one. `compress` is Nix's XOR-folding used for store-path hash parts.
"""

from __future__ import annotations

import binascii
import sys

from storekit.errors import InvalidHash

# `typing` only for the type checker: `storekit hash path` imports this module, and its start-up (not
# the hashing) is most of what a short command costs; `dataclasses`, `base64` and `re` stay out too
# (tests/cli/test_cli_fast_imports.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn, Protocol

    from storekit.hashbase import Base as Base

ALGORITHMS: dict[str, int] = {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}
"""The algorithms every Nix knows, with their digest sizes; text naming another is refused."""
NEWER_ALGORITHMS: dict[str, int] = {"blake3": 32}
"""Nix >= 2.27's: computed and printed always, parsed from text only when asked (`blake3=True`),
so what storekit reads by default is what Nix 2.8 reads."""
SIZES = {**ALGORITHMS, **NEWER_ALGORITHMS}


if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """`Base`, imported on first use (`storekit.hashbase` says why). The type checker sees the
        import above instead, so that a misspelt name from this module stays an error there."""
        if name == "Base":
            from storekit.hashbase import Base

            return Base
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Hash:
    """An algorithm and a digest: a frozen value, equal and hashed by both (as a frozen dataclass would be).

    Written by hand rather than with `dataclasses`, whose import (inspect, ast, dis, re) costs more than
    the rest of `storekit hash path`'s start-up.
    """

    __slots__ = ("_algo", "_digest")
    __match_args__ = ("algo", "digest")
    _algo: str
    _digest: bytes

    def __init__(self, algo: str, digest: bytes) -> None:
        size = SIZES.get(algo)
        if size is None:
            raise InvalidHash(f"unknown hash algorithm '{algo}' (known: {', '.join(SIZES)})")
        if len(digest) != size:
            raise InvalidHash(f"{algo} digest must be {size} bytes, not {len(digest)}")
        _set(self, "_algo", algo)
        _set(self, "_digest", digest)

    @property
    def algo(self) -> str:
        return self._algo

    @property
    def digest(self) -> bytes:
        return self._digest

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, Hash):
            return NotImplemented
        return self._algo == other._algo and self._digest == other._digest

    def __hash__(self) -> int:
        return hash((self._algo, self._digest))

    def __repr__(self) -> str:
        return f"{self.__class__.__qualname__}(algo={self._algo!r}, digest={self._digest!r})"

    def __reduce__(self) -> tuple[type[Hash], tuple[str, bytes]]:
        """Copies and pickles are rebuilt through `__init__` (attribute assignment is refused)."""
        return self.__class__, (self._algo, self._digest)

    if not TYPE_CHECKING:  # the type checker sees read-only properties; unknown attributes stay errors

        def __setattr__(self, name: str, value: object) -> NoReturn:
            _frozen(f"cannot assign to field {name!r}")

        def __delattr__(self, name: str) -> NoReturn:
            _frozen(f"cannot delete field {name!r}")

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
        import storekit.nixbase32  # here: `storekit hash path` prints SRI, and starts faster without it

        return storekit.nixbase32.encode(self._digest)

    @property
    def base64(self) -> str:
        return binascii.b2a_base64(self._digest, newline=False).decode("ascii")

    @property
    def sri(self) -> str:
        return f"{self.algo}-{self.base64}"

    def format(self, base: Base | None = None, *, prefix: bool = True) -> str:
        """Print in `base` (None: SRI); `prefix` adds `algo:` (ignored for SRI, which always names its
        algorithm)."""
        name = "sri" if base is None else base.value
        if name == "sri":
            return self.sri
        body = self.base16 if name == "base16" else self.nix32 if name == "base32" else self.base64
        return f"{self.algo}:{body}" if prefix else body

    def __str__(self) -> str:
        """`algo:nix32`, the form narinfo files and the store database (as hex) use most."""
        return f"{self.algo}:{self.nix32}"


_set = object.__setattr__


def _frozen(message: str) -> NoReturn:
    """Raise what a frozen dataclass raises (imported only here, on the error path)."""
    from dataclasses import FrozenInstanceError

    raise FrozenInstanceError(message)


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
    import storekit.nixbase32 as nixbase32  # here, as in `Hash.nix32`

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
    data = binascii.a2b_base64(body[:full]) if full else b""
    rest = body[full:]
    if len(rest) >= 2:
        data += binascii.a2b_base64(rest + "=" * (4 - len(rest)))
    return data


if TYPE_CHECKING:
    from collections.abc import Callable

    class _Digest(Protocol):
        def update(self, data: bytes | bytearray | memoryview, /) -> object: ...
        def digest(self) -> bytes: ...


#: The interpreter's own digest modules, by algorithm (Python 3.12 merged `_sha256` and `_sha512`).
_SHA2 = sys.version_info >= (3, 12)
_BUILTIN = {
    "sha256": "_sha2" if _SHA2 else "_sha256",
    "sha512": "_sha2" if _SHA2 else "_sha512",
    "sha1": "_sha1",
    "md5": "_md5",
}
_BUILTIN_BUDGET = 64 << 10
"""Bytes a process may hash with those before it loads `hashlib` (`_builtin_left`: what remains).

`hashlib` initialises OpenSSL on import, about 3 ms, more than `storekit hash path` of a small file costs
otherwise; the built-in code hashes a few kilobytes in microseconds but runs 5-20x slower than OpenSSL
on big inputs, so it only takes inputs that turn out to be small, up to this many bytes per process: a
short command never loads OpenSSL, and a long-running one loses at most a millisecond before it does."""
_builtin_left = _BUILTIN_BUDGET


def _new(algo: str) -> _Digest:
    if algo == "blake3":
        import blake3  # the reference implementation's binding; hashlib has no BLAKE3

        return blake3.blake3()
    if _builtin_left > 0 and "_hashlib" not in sys.modules and _builtin(algo) is not None:
        return _Small(algo)
    import hashlib

    return hashlib.new(algo)


def _builtin(algo: str) -> Callable[[bytes | bytearray], _Digest] | None:
    """The built-in constructor for `algo`, if this Python has one (a build may leave them out)."""
    name = _BUILTIN.get(algo)
    if name is None:
        return None
    try:
        module = __import__(name)
    except ImportError:
        return None
    constructor: Callable[[bytes | bytearray], _Digest] = getattr(module, algo)
    return constructor


class _Small:
    """The bytes of an input that may stay small, collected until that is known (see `_builtin_left`).

    What is collected is charged to the process's budget as it comes, so all the inputs being
    collected at once hold at most that much memory. `_Hasher` replaces this by OpenSSL's hasher
    (`settle`) once the budget is spent; otherwise `digest` hashes it with the interpreter's own code.
    """

    __slots__ = ("algo", "data")

    def __init__(self, algo: str) -> None:
        self.algo = algo
        self.data = bytearray()

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        global _builtin_left
        before = len(self.data)
        self.data += data
        _builtin_left -= len(self.data) - before

    def settle(self) -> _Digest:
        """This, while the budget lasts; else `hashlib`'s hasher, fed what came so far."""
        if _builtin_left >= 0:
            return self
        import hashlib

        h = hashlib.new(self.algo)
        h.update(self.data)
        return h

    def digest(self) -> bytes:
        builtin = _builtin(self.algo)
        assert builtin is not None  # `_new` checked
        return builtin(self.data).digest()


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
        h = self._h
        h.update(data)
        if type(h) is _Small:
            self._h = h.settle()

    def update_and_digest(self, data: bytes) -> bytes:
        self.update(data)
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
