"""`Hash` is written by hand (no `dataclasses` at import) and must behave as the frozen dataclass it was.

The reference is that dataclass, declared here as it was declared in `storekit.hashing`: same name,
same fields, so its repr, equality and hash are what `Hash` must give.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import pickle
import subprocess
import sys

import pytest

from storekit import hashbase, hashing
from storekit.hashing import Base, Hash

DIGEST = hashlib.sha256(b"hello\n").digest()


@dataclasses.dataclass(frozen=True, slots=True)
class _Reference:
    algo: str
    digest: bytes


_Reference.__qualname__ = "Hash"  # the name the dataclass had (its repr prints it)


def test_repr_equality_and_hash_are_the_dataclass_ones() -> None:
    h, ref = Hash("sha256", DIGEST), _Reference("sha256", DIGEST)
    assert repr(h) == repr(ref) == f"Hash(algo='sha256', digest={DIGEST!r})"
    assert hash(h) == hash(ref) == hash(("sha256", DIGEST))
    assert h == Hash("sha256", DIGEST) == Hash(algo="sha256", digest=bytes(DIGEST))
    assert h != Hash("sha256", bytes(32))
    assert h != Hash("blake3", DIGEST)
    assert h != ("sha256", DIGEST)
    assert h != ref  # a dataclass is equal only to its own class, and so is Hash
    assert h.__eq__(("sha256", DIGEST)) is NotImplemented
    assert len({h, Hash("sha256", DIGEST), Hash("sha256", bytes(32))}) == 2
    assert {h: 1}[Hash("sha256", DIGEST)] == 1


def test_it_is_frozen_as_a_dataclass_is() -> None:
    h = Hash("sha256", DIGEST)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'algo'"):
        h.algo = "sha1"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'digest'"):
        del h.digest
    with pytest.raises(dataclasses.FrozenInstanceError):
        h.other = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        h.__dict__  # noqa: B018 (slots: no per-instance dict)
    assert (h.algo, h.digest) == ("sha256", DIGEST)


def test_copies_pickles_and_patterns() -> None:
    h = Hash("md5", bytes(range(16)))
    for twin in (copy.copy(h), copy.deepcopy(h), pickle.loads(pickle.dumps(h))):
        assert twin == h and type(twin) is Hash
    match h:
        case Hash(algo, digest):
            assert (algo, digest) == ("md5", bytes(range(16)))
        case _:
            pytest.fail("Hash(algo, digest) must match positionally, as a dataclass does")


def test_the_digest_size_and_algorithm_are_still_checked() -> None:
    with pytest.raises(ValueError, match="sha256 digest must be 32 bytes, not 31"):
        Hash("sha256", bytes(31))
    with pytest.raises(ValueError, match="unknown hash algorithm 'sha3'"):
        Hash("sha3", bytes(32))


def test_base_is_imported_on_first_use_and_stays_one_class() -> None:
    assert Base is hashbase.Base is hashing.Base
    assert [b.value for b in Base] == ["base16", "base32", "base64", "sri"]
    h = Hash("sha256", DIGEST)
    assert h.format() == h.format(Base.SRI) == h.format(None) == h.sri
    with pytest.raises(AttributeError, match="has no attribute 'Bass'"):
        hashing.Bass  # type: ignore[attr-defined]  # noqa: B018


# --- the digest code: the interpreter's own for small inputs, OpenSSL's (hashlib) for the rest ----------

_PROBE = """
import json, sys
from storekit import hashing
out = []
for algo in ("md5", "sha1", "sha256", "sha512"):
    h = hashing.new_hasher(algo)
    for piece in (b"small ", memoryview(b"input"), bytearray(b"!")):
        h.update(piece)
    out.append(h.finish().digest.hex())
out.append("_hashlib" in sys.modules)
big = hashing.new_hasher("sha256")  # a stream that outgrows the budget moves to OpenSSL on the way
for i in range(5):
    big.update(bytes([i]) * (hashing._BUILTIN_BUDGET // 4))
    out.append("_hashlib" in sys.modules)
out.append(big.finish().digest.hex())
print(json.dumps(out))
"""


def test_small_inputs_do_not_load_openssl_and_big_ones_do() -> None:
    run = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    *small, small_loaded, l0, l1, l2, l3, l4, big = json.loads(run.stdout)
    assert small == [hashlib.new(a, b"small input!").hexdigest() for a in ("md5", "sha1", "sha256", "sha512")]
    assert small_loaded is False
    assert [l0, l1, l2, l3, l4] == [False, False, False, True, True]  # 4 quarters > what the small left
    quarter = hashing._BUILTIN_BUDGET // 4
    assert big == hashlib.sha256(b"".join(bytes([i]) * quarter for i in range(5))).hexdigest()


_BUDGET = """
import json, sys
from storekit import hashing
chunk = hashing._BUILTIN_BUDGET // 2 - 1  # two fit in the per-process budget, a third does not
out = []
for algo in ("md5", "sha1", "sha256"):
    data = algo.encode() * (chunk // len(algo))
    out.append((hashing.Hash.of(data, algo).digest.hex(), "_hashlib" in sys.modules))
print(json.dumps(out))
"""


def test_the_builtin_budget_runs_out() -> None:
    """Small inputs go to the built-in code only up to a budget per process, then to OpenSSL's."""
    run = subprocess.run([sys.executable, "-c", _BUDGET], capture_output=True, text=True, check=True)
    results = json.loads(run.stdout)
    chunk = hashing._BUILTIN_BUDGET // 2 - 1
    expected = [hashlib.new(a, a.encode() * (chunk // len(a))).hexdigest() for a in ("md5", "sha1", "sha256")]
    assert [digest for digest, _ in results] == expected
    assert [loaded for _, loaded in results] == [False, False, True]


_CONCURRENT = """
import json
from storekit import hashing
third = hashing._BUILTIN_BUDGET // 3
hashers = [hashing.new_hasher("sha256") for _ in range(4)]
collecting = []
for i, h in enumerate(hashers):
    h.update(bytes([i]) * third)
    collecting.append([type(x._h) is hashing._Small for x in hashers])
hashers[0].update(b"more")
collecting.append([type(x._h) is hashing._Small for x in hashers])
digests = [h.finish().digest.hex() for h in hashers]
print(json.dumps([collecting, digests]))
"""


def test_inputs_collected_at_once_share_the_budget() -> None:
    """Collected bytes are charged as they come: four inputs of a third each cannot all wait in memory."""
    run = subprocess.run([sys.executable, "-c", _CONCURRENT], capture_output=True, text=True, check=True)
    collecting, digests = json.loads(run.stdout)
    assert collecting == [
        [True, True, True, True],
        [True, True, True, True],
        [True, True, True, True],  # three thirds: the budget is spent, not yet overdrawn
        [True, True, True, False],  # the fourth overdraws it and moves to OpenSSL at once
        [False, True, True, False],  # the others move on their next bytes
    ]
    third = hashing._BUILTIN_BUDGET // 3
    expected = [
        hashlib.sha256(bytes([i]) * third + (b"more" if i == 0 else b"")).hexdigest() for i in range(4)
    ]
    assert digests == expected
