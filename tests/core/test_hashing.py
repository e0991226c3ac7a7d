"""Hash parsing and printing: golden vectors from real Nix, and live comparisons with `nix hash to-*`."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from nixoracle import require_nix

from storekit.errors import InvalidHash
from storekit.hashing import ALGORITHMS, Base, Hash, base64_decode, compress, new_hasher

VECTORS = json.loads((Path(__file__).parent.parent / "data" / "hash_vectors.json").read_text())["hashes"]
NIX_HASH = ["nix", "--extra-experimental-features", "nix-command", "hash"]


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: f"{v['algo']}-{v['hex'][:8]}")
def test_prints_every_base_like_nix(v: dict[str, str]) -> None:
    h = Hash(v["algo"], bytes.fromhex(v["hex"]))
    assert h.format(Base.BASE16, prefix=False) == v["base16"]
    assert h.format(Base.NIX32, prefix=False) == v["base32"]
    assert h.format(Base.BASE64, prefix=False) == v["base64"]
    assert h.format(Base.SRI) == h.sri == v["sri"]
    assert h.format(Base.NIX32) == str(h) == f"{v['algo']}:{v['base32']}"


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: f"{v['algo']}-{v['hex'][:8]}")
def test_parses_every_form_nix_accepts(v: dict[str, str]) -> None:
    algo = v["algo"]
    expected = Hash(algo, bytes.fromhex(v["hex"]))
    bare = [v["base16"], v["base16"].upper(), v["base32"], v["base64"]]
    for body in bare:
        assert Hash.parse(body, algo) == expected
        assert Hash.parse(f"{algo}:{body}") == expected
        assert Hash.parse(f"{algo}:{body}", algo) == expected
    assert Hash.parse(v["sri"]) == expected
    assert Hash.parse(v["sri"], algo) == expected
    assert Hash.parse(v["sri"].rstrip("=")) == expected  # Nix needs no padding in SRI


def test_type_must_be_known_and_agree() -> None:
    h = VECTORS[-1]  # a sha512
    with pytest.raises(InvalidHash, match="does not include a type"):
        Hash.parse(h["base32"])
    with pytest.raises(InvalidHash, match="should have type 'sha256'"):
        Hash.parse(f"sha512:{h['base32']}", "sha256")
    with pytest.raises(InvalidHash, match="should have type 'sha256'"):
        Hash.parse(h["sri"], "sha256")
    with pytest.raises(InvalidHash, match="unknown hash algorithm 'sha3'"):
        Hash.parse(f"sha3:{h['base16']}")
    with pytest.raises(InvalidHash, match="unknown hash algorithm"):
        Hash.parse(h["base16"], "blake3")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sha256:" + "g" * 64, "invalid base-16 hash"),
        ("sha256:" + "0" * 63 + " ", "invalid base-16 hash"),
        ("sha256:" + "e" * 52, "invalid base-32 hash"),
        ("sha256:" + "z" * 52, "invalid base-32 hash"),
        ("sha256:" + "0" * 51, "wrong length for hash type 'sha256'"),
        ("sha256-AAAA", "invalid SRI hash"),
        ("sha256-" + "A" * 42 + "!", "invalid character in Base64"),
        ("md5:" + "A" * 23 + "_", "invalid character in Base64"),
    ],
)
def test_rejections(text: str, message: str) -> None:
    with pytest.raises(InvalidHash, match=message):
        Hash.parse(text)


def test_digest_size_is_checked() -> None:
    with pytest.raises(InvalidHash, match="must be 32 bytes"):
        Hash("sha256", bytes(20))
    with pytest.raises(InvalidHash, match="unknown hash algorithm"):
        Hash("crc32", bytes(4))


def test_of_and_hasher() -> None:
    assert Hash.of(b"hello\n").base16 == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    hasher = new_hasher("sha1")
    for part in (b"hel", b"lo\n"):
        hasher.update(part)
    assert hasher.finish() == Hash.of(b"hello\n", "sha1")
    with pytest.raises(InvalidHash):
        new_hasher("sha3")


def test_compress_folds_by_xor() -> None:
    digest = bytes(range(32))
    folded = compress(digest)
    assert len(folded) == 20
    assert folded[0] == 0 ^ 20 and folded[11] == 11 ^ 31 and folded[12] == 12 and folded[19] == 19


def test_base64_decode_is_lenient_like_nix() -> None:
    assert base64_decode("aGVsbG8=") == b"hello"
    assert base64_decode("aGVsbG8") == b"hello"
    assert base64_decode("aGVs\nbG8=\n") == b"hello"
    assert base64_decode("aGVsbG8=garbage after padding") == b"hello"
    with pytest.raises(InvalidHash, match="invalid character"):
        base64_decode("aGVs bG8=")


# --- live oracle -----------------------------------------------------------------------------------


def _nix_hash(*args: str) -> subprocess.CompletedProcess[str]:
    require_nix()
    return subprocess.run([*NIX_HASH, *args], capture_output=True, text=True, check=False)


@pytest.mark.interop
@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_random_digests_against_nix(algo: str) -> None:
    """60 random digests per algorithm, each converted by Nix from each of our printed forms."""
    rng = random.Random(f"storekit-{algo}")
    hashes = [Hash(algo, rng.randbytes(ALGORITHMS[algo])) for _ in range(60)]
    for source in (Base.BASE16, Base.NIX32, Base.BASE64, Base.SRI):
        inputs = [h.format(source) for h in hashes]
        for target, command in ((Base.BASE16, "to-base16"), (Base.NIX32, "to-base32"), (Base.SRI, "to-sri")):
            proc = _nix_hash(command, "--type", algo, *inputs)
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout.split() == [h.format(target, prefix=False) for h in hashes]
        assert [Hash.parse(t) for t in inputs] == hashes


@pytest.mark.interop
@pytest.mark.parametrize(
    "text",
    [
        "sha256:" + "0" * 63,
        "sha256:" + "g" * 64,
        "sha256:" + "2" + "0" * 51,
        "sha256:" + "u" * 52,
        "sha256-AAAA",
        "sha256-" + "A" * 43,
        "sha3-" + "A" * 43,
        "md5:" + "8" + "z" * 25,
        "sha1:" + "A" * 27 + "=",
        "sha1:" + "A" * 27 + "B",
        "sha512:" + "0" * 103,
    ],
)
def test_accepts_and_rejects_what_nix_does(text: str) -> None:
    proc = _nix_hash("to-base16", text)
    try:
        ours: str | None = Hash.parse(text).base16
    except InvalidHash:
        ours = None
    assert ours == (proc.stdout.strip() if proc.returncode == 0 else None), proc.stderr
