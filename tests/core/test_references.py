"""Reference scanning, same-length rewriting and hash-modulo: properties, and real Nix as the oracle."""

from __future__ import annotations

import json
import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nixoracle import NixStore

from storekit import nixbase32
from storekit.hashing import Hash
from storekit.references import (
    HashModuloSink,
    RefScanSink,
    RewritingSink,
    hash_modulo,
    rewrite_hash_parts,
    rewrite_stream,
    scan_references,
)
from storekit.storepath import FileIngestionMethod, StoreDir

hash_parts = st.text(alphabet=nixbase32.ALPHABET, min_size=32, max_size=32)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@st.composite
def stream_with_hashes(draw: st.DrawFn) -> tuple[bytes, list[str], list[int]]:
    """Random bytes with some candidate hash parts planted (some not), and random chunk cuts."""
    candidates = draw(st.lists(hash_parts, min_size=1, max_size=20, unique=True))
    pieces = draw(
        st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(candidates).map(str.encode)), max_size=12)
    )
    cuts = draw(st.lists(st.integers(min_value=0, max_value=10_000), max_size=8))
    return b"".join(pieces), candidates, cuts


@given(stream_with_hashes())
def test_scan_finds_exactly_the_substrings_whatever_the_chunking(
    case: tuple[bytes, list[str], list[int]],
) -> None:
    data, candidates, cuts = case
    expected = {h for h in candidates if h.encode() in data}
    assert scan_references([data], candidates) == expected
    assert scan_references(split(data, cuts), candidates) == expected
    assert scan_references((data[i : i + 1] for i in range(len(data))), candidates) == expected


def test_scan_finds_a_hash_split_across_chunks_in_long_base32_runs() -> None:
    rng = random.Random(7)
    parts = ["".join(rng.choice(nixbase32.ALPHABET) for _ in range(32)) for _ in range(50)]
    # A long run of base-32 letters around the hash, as in text: windows must slide over it all.
    data = b"x" * 1000 + parts[17].encode() + b"abc" * 300 + b"/store/" + parts[42].encode() + b"-name\0"
    for cut in range(990, 1040):
        sink = RefScanSink(parts)
        sink(data[:cut])
        sink(data[cut:])
        assert sink.found == {parts[17], parts[42]}
    assert scan_references([data], parts[:10]) == set()


def test_scan_with_no_candidates_or_no_data() -> None:
    assert scan_references([b"abc"], []) == set()
    assert scan_references([], ["0" * 32]) == set()
    assert scan_references([b"", b"0" * 16, b"", b"0" * 16], ["0" * 32]) == {"0" * 32}


@st.composite
def stream_with_rewrites(draw: st.DrawFn) -> tuple[bytes, dict[str, str], list[int]]:
    olds = draw(st.lists(hash_parts, min_size=1, max_size=4, unique=True))
    news = draw(st.lists(hash_parts, min_size=len(olds), max_size=len(olds)))
    pieces = draw(
        st.lists(st.one_of(st.binary(max_size=50), st.sampled_from(olds).map(str.encode)), max_size=10)
    )
    cuts = draw(st.lists(st.integers(min_value=0, max_value=10_000), max_size=8))
    return b"".join(pieces), dict(zip(olds, news, strict=True)), cuts


def reference_rewrite(data: bytes, mapping: dict[str, str]) -> tuple[bytes, list[int]]:
    """The definition: leftmost, non-overlapping matches in the original bytes."""
    pattern = re.compile(b"|".join(re.escape(k.encode()) for k in mapping))
    offsets = [m.start() for m in pattern.finditer(data)]
    return pattern.sub(lambda m: mapping[m.group().decode()].encode(), data), offsets


@given(stream_with_rewrites())
def test_rewriting_is_independent_of_chunking(case: tuple[bytes, dict[str, str], list[int]]) -> None:
    data, mapping, cuts = case
    expected, offsets = reference_rewrite(data, mapping)
    assert rewrite_hash_parts(data, mapping) == expected
    assert b"".join(rewrite_stream(split(data, cuts), mapping)) == expected
    sink = RewritingSink({k.encode(): v.encode() for k, v in mapping.items()})
    out = b"".join(sink.feed(c) for c in split(data, cuts)) + sink.flush()
    assert out == expected and len(out) == len(data) == sink.pos
    assert sink.matches == offsets


def test_rewriting_holds_back_only_a_partial_match() -> None:
    old, new = "a" * 32, "b" * 32
    sink = RewritingSink({old.encode(): new.encode()})
    assert sink.feed(b"0123456789" + b"a" * 20) == b""  # 30 bytes: all could start a match
    assert sink.feed(b"aa") == b"0"  # 31 bytes held back
    assert sink.feed(b"a" * 10 + b"!") == b"123456789" + b"b" * 32
    assert sink.flush() == b"!"
    assert sink.matches == [10]


def test_rewriting_refuses_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="same length"):
        RewritingSink({b"abc": b"abcd"})
    assert rewrite_hash_parts(b"unchanged", {}) == b"unchanged"


@given(stream_with_rewrites())
def test_hash_modulo_matches_its_definition(case: tuple[bytes, dict[str, str], list[int]]) -> None:
    data, mapping, cuts = case
    modulus = next(iter(mapping))
    zeroed, offsets = reference_rewrite(data, {modulus: "\0" * 32})
    expected = Hash.of(zeroed + b"".join(f"|{o}".encode() for o in offsets))
    sink = HashModuloSink(modulus)
    for chunk in split(data, cuts):
        sink(chunk)
    assert sink.finish() == (expected, len(data))
    assert hash_modulo([data], modulus) == expected


def test_hash_modulo_differs_from_zeros_already_there() -> None:
    modulus = "0" * 31 + "1"
    assert hash_modulo([modulus.encode()], modulus) != hash_modulo([b"\0" * 32], modulus)


# --- real Nix --------------------------------------------------------------------------------------------

SELF_REF_DRV = """
let dep = builtins.toFile "dep" "some dependency";
in derivation {
  name = "selfref";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  args = ["-c" ''
    mkdir -p $out/bin
    echo "self: $out, dep: ${dep}" > $out/bin/info
    ln -s $out/bin/info $out/link
    printf 'a\\0%s\\0b' "$out" > $out/binary
  ''];
}
"""


@pytest.mark.interop
def test_references_and_make_content_addressed_agree_with_nix(nix_store: NixStore) -> None:
    """Nix's own scan (the path's references) and `nix store make-content-addressed` as oracles."""
    expr = nix_store.root / "selfref.nix"
    expr.write_text(SELF_REF_DRV)
    out = nix_store.text("nix-build", "--no-out-link", str(expr))
    sd = StoreDir(nix_store.store_dir)
    path = sd.parse_path(out)
    nar = nix_store.run("nix-store", "--dump", out)
    info = json.loads(nix_store.run("nix", "path-info", "--json", out))[0]
    candidates = [sd.parse_path(r).hash_part for r in info["references"]] + [path.hash_part, "0" * 32]
    found = scan_references(split(nar, [5, 100, 333]), candidates)
    assert {sd.parse_path(r).hash_part for r in info["references"]} == found
    assert path.hash_part in found

    # make-content-addressed rewrites the whole closure, dependencies first: each path's NAR gets
    # its references' new paths, then is hashed modulo its own old hash part.
    rewrites = json.loads(nix_store.run("nix", "store", "make-content-addressed", "--json", out))["rewrites"]
    new_of: dict[str, str] = {}
    for old in [*sorted(r for r in info["references"] if r != out), out]:
        old_path = sd.parse_path(old)
        old_info = json.loads(nix_store.run("nix", "path-info", "--json", old))[0]
        refs = [sd.parse_path(new_of.get(r, r)) for r in old_info["references"] if r != old]
        mapping = {sd.parse_path(r).hash_part: sd.parse_path(n).hash_part for r, n in new_of.items()}
        nar = rewrite_hash_parts(nix_store.run("nix-store", "--dump", old), mapping)
        modulo = hash_modulo(split(nar, [64, 4096]), old_path.hash_part)
        is_self = old in old_info["references"]
        new = sd.make_fixed_output_path(
            old_path.name, FileIngestionMethod.RECURSIVE, modulo, refs, self_ref=is_self
        )
        new_nar = rewrite_hash_parts(nar, {old_path.hash_part: new.hash_part})
        assert new_nar == nix_store.run("nix-store", "--dump", str(new))
        new_of[old] = str(new)
    assert new_of[out] == rewrites[out]
    new_info = json.loads(nix_store.run("nix", "path-info", "--json", new_of[out]))[0]
    assert sorted(new_info["references"]) == sorted(new_of.values())
