"""nix-base32: golden vectors from real Nix, round trips, and Nix's rejections."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nixoracle import require_nix

from storekit import nixbase32
from storekit.errors import InvalidHash

VECTORS = json.loads((Path(__file__).parent.parent / "data" / "hash_vectors.json").read_text())["hashes"]


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: f"{v['algo']}-{v['hex'][:8]}")
def test_encode_matches_nix(v: dict[str, str]) -> None:
    digest = bytes.fromhex(v["hex"])
    assert nixbase32.encode(digest) == v["base32"]
    assert nixbase32.decode(v["base32"]) == digest


@pytest.mark.parametrize(("size", "length"), [(0, 0), (1, 2), (16, 26), (20, 32), (32, 52), (64, 103)])
def test_lengths(size: int, length: int) -> None:
    assert nixbase32.encoded_length(size) == length
    assert len(nixbase32.encode(bytes(size))) == length
    assert nixbase32.decoded_length(length) == size


@given(st.binary(max_size=100))
def test_round_trip(data: bytes) -> None:
    text = nixbase32.encode(data)
    assert set(text) <= set(nixbase32.ALPHABET)
    assert nixbase32.decode(text) == data


@given(st.text(alphabet=nixbase32.ALPHABET, max_size=60))
def test_decode_is_the_inverse_of_encode(text: str) -> None:
    if nixbase32.is_valid(text):
        assert nixbase32.encode(nixbase32.decode(text)) == text
    else:
        assert len(text) not in {nixbase32.encoded_length(n) for n in range(40)} or text[0] > "1"


@pytest.mark.parametrize("length", [1, 3, 6, 33])
def test_rejects_lengths_no_bytes_encode_to(length: int) -> None:
    with pytest.raises(InvalidHash, match="no byte string has"):
        nixbase32.decode("0" * length)


def test_alphabet_omits_e_o_t_u() -> None:
    assert len(nixbase32.ALPHABET) == 32
    assert not set("eotu") & set(nixbase32.ALPHABET)


@pytest.mark.parametrize("bad", ["e", "o", "t", "u", "A", "-", " ", "é"])
def test_rejects_foreign_characters(bad: str) -> None:
    text = "0" * 51 + bad
    with pytest.raises(InvalidHash, match="invalid character"):
        nixbase32.decode(text)
    assert not nixbase32.is_valid(text)


def test_rejects_bits_beyond_the_last_byte() -> None:
    # 52 characters carry 260 bits; a sha256 has 256, so the first character must be 0 or 1.
    assert nixbase32.decode("1" + "0" * 51)[-1] == 0x80
    with pytest.raises(InvalidHash, match="bits set beyond"):
        nixbase32.decode("2" + "0" * 51)
    with pytest.raises(InvalidHash):
        nixbase32.decode("z" * 26)  # md5: 130 bits for 128


@pytest.mark.interop
@pytest.mark.parametrize(
    ("algo", "text"),
    [
        ("sha256", "1" + "z" * 51),
        ("sha256", "2" + "0" * 51),
        ("md5", "7" + "z" * 25),
        ("md5", "8" + "0" * 25),
    ],
)
def test_high_bit_rule_agrees_with_nix(algo: str, text: str) -> None:
    require_nix()
    proc = subprocess.run(
        ["nix", "--extra-experimental-features", "nix-command", "hash", "to-base16", "--type", algo, text],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode == 0:
        assert nixbase32.decode(text).hex() == proc.stdout.strip()
    else:
        assert "invalid base-32 hash" in proc.stderr
        assert not nixbase32.is_valid(text)


def _nix_reference_encode(data: bytes) -> str:
    """Nix's `printHash32` loop, bit by bit, as the oracle for the integer-based `encode`."""
    out = []
    for n in range(nixbase32.encoded_length(len(data)) - 1, -1, -1):
        b = n * 5
        i, j = b // 8, b % 8
        c = (data[i] >> j) | (data[i + 1] << (8 - j) if i + 1 < len(data) else 0)
        out.append(nixbase32.ALPHABET[c & 0x1F])
    return "".join(out)


@pytest.mark.parametrize("size", range(0, 70))
def test_every_length_encodes_as_nix_does_and_decodes_back(size: int) -> None:
    rng = random.Random(size)
    for _ in range(20):
        data = rng.randbytes(size)
        assert nixbase32.encode(data) == _nix_reference_encode(data)
        assert nixbase32.decode(nixbase32.encode(data)) == data
