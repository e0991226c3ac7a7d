"""Nix's base-32: its own alphabet (no e, o, t, u) and its own bit order.

Nix writes the least significant 5-bit group last, reading the bytes as one little-endian integer.
That lets both directions go through Python's big integers instead of a loop over bits.
"""

from __future__ import annotations

from storekit.errors import InvalidHash

ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz"
_CHARS = frozenset(ALPHABET)
_AS_PYTHON_DIGITS = str.maketrans(ALPHABET, "0123456789abcdefghijklmnopqrstuv")


def encoded_length(size: int) -> int:
    """Characters needed for `size` bytes: 20 -> 32, 32 -> 52, 64 -> 103."""
    return 0 if size == 0 else (size * 8 - 1) // 5 + 1


def decoded_length(length: int) -> int:
    """Bytes a nix-base32 string of `length` characters holds."""
    return length * 5 // 8


def encode(data: bytes) -> str:
    value = int.from_bytes(data, "little")
    n = encoded_length(len(data))
    return "".join(ALPHABET[(value >> (5 * k)) & 31] for k in range(n - 1, -1, -1))


def decode(text: str) -> bytes:
    """Decode `text`, refusing foreign characters and set bits beyond the last byte (as Nix does).

    A length no byte string encodes to (1, 3, 6, … characters) is refused too, so that decoding is
    the exact inverse of encoding.
    """
    size = decoded_length(len(text))
    if encoded_length(size) != len(text):
        raise InvalidHash(f"invalid nix-base32 string '{text}': no byte string has {len(text)} characters")
    if not _CHARS.issuperset(text):
        c = next(c for c in text if c not in _CHARS)
        raise InvalidHash(f"invalid character '{c}' in nix-base32 string '{text}'")
    # the digits, most significant first, are those of a base-32 number in Python's digits 0-9a-v
    value = int(text.translate(_AS_PYTHON_DIGITS), 32) if text else 0
    if value >> (8 * size):
        raise InvalidHash(f"invalid nix-base32 string '{text}': bits set beyond its {size} bytes")
    return value.to_bytes(size, "little")


def is_valid(text: str) -> bool:
    try:
        decode(text)
    except InvalidHash:
        return False
    return True
