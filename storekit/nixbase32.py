"""Nix's base-32: its own alphabet (no e, o, t, u) and its own bit order.

Nix writes the least significant 5-bit group last, reading the bytes as one little-endian integer.
That lets both directions go through Python's big integers instead of a loop over bits (a copy of a
thousand paths encodes and decodes some ten thousand hashes): decoding is `int(…, 32)` of the text
mapped onto Python's base-32 digits; encoding takes the integer ten bits (two characters) at a time
from a table. No `base64` (which imports `re`): `storekit hash path --base32` starts without it.
"""

from __future__ import annotations

from storekit.errors import InvalidHash

ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz"
_DIGITS = frozenset(ALPHABET)
_TO_INT = str.maketrans(ALPHABET, "0123456789abcdefghijklmnopqrstuv")  # int(…, 32)'s digits
_PAIRS = [ALPHABET[i >> 5] + ALPHABET[i & 31] for i in range(1024)]


def encoded_length(size: int) -> int:
    """Characters needed for `size` bytes: 20 -> 32, 32 -> 52, 64 -> 103."""
    return 0 if size == 0 else (size * 8 - 1) // 5 + 1


def decoded_length(length: int) -> int:
    """Bytes a nix-base32 string of `length` characters holds."""
    return length * 5 // 8


def encode(data: bytes) -> str:
    n = encoded_length(len(data))
    if n == 0:
        return ""
    value = int.from_bytes(data, "little")
    head = ALPHABET[value >> (5 * (n - 1))] if n & 1 else ""  # an odd count: the top group alone
    pairs = n & ~1
    return head + "".join(_PAIRS[(value >> (5 * k)) & 1023] for k in range(pairs - 2, -1, -2))


def decode(text: str) -> bytes:
    """Decode `text`, refusing foreign characters and set bits beyond the last byte (as Nix does).

    A length no byte string encodes to (1, 3, 6, … characters) is refused too, so that decoding is
    the exact inverse of encoding.
    """
    size = decoded_length(len(text))
    if encoded_length(size) != len(text):
        raise InvalidHash(f"invalid nix-base32 string '{text}': no byte string has {len(text)} characters")
    if not _DIGITS.issuperset(text):
        bad = next(c for c in text if c not in _DIGITS)
        raise InvalidHash(f"invalid character '{bad}' in nix-base32 string '{text}'")
    value = int(text.translate(_TO_INT), 32) if text else 0
    if value >> (8 * size):
        raise InvalidHash(f"invalid nix-base32 string '{text}': bits set beyond its {size} bytes")
    return value.to_bytes(size, "little")


def is_valid(text: str) -> bool:
    try:
        decode(text)
    except InvalidHash:
        return False
    return True
