"""narinfo and nix-cache-info: files Nix wrote (tests/data/narinfo) parse and print back byte for byte."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from storekit.errors import NarInfoError
from storekit.hashing import Hash
from storekit.narinfo import NarInfo, NixCacheInfo, fingerprint
from storekit.signing import PublicKey, verify
from storekit.storepath import StoreDir

DATA = Path(__file__).parent.parent / "data" / "narinfo"
SD = StoreDir("/tmp/storekit-golden/store")
FILES = sorted(DATA.glob("*.narinfo"))
BUILT = next(f for f in FILES if "Deriver: " in f.read_text())  # input-addressed: no CA line


def load(name: str) -> NarInfo:
    return NarInfo.parse((DATA / name).read_text(), SD, name)


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.name)
def test_round_trip_of_nix_written_files(file: Path) -> None:
    text = file.read_text()
    info = NarInfo.parse(text, SD, file.name)
    assert info.to_text() == str(info) == text
    assert file.name == f"{info.store_path.hash_part}.narinfo"
    assert info.url == f"nar/{info.file_hash.nix32 if info.file_hash else ''}.nar.xz"


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.name)
def test_nix_signatures_verify_against_our_fingerprint(file: Path) -> None:
    info = NarInfo.parse(file.read_text(), SD)
    key = PublicKey.parse((DATA / "nix-key.pub").read_text())
    assert len(info.sigs) == 1
    assert verify(info.fingerprint(), info.sigs[0], [key])
    tampered = dataclasses.replace(info, nar_size=info.nar_size + 1)
    assert not verify(tampered.fingerprint(), info.sigs[0], [key])


def test_fields_of_a_built_path() -> None:
    info = NarInfo.parse(BUILT.read_text(), SD)
    assert info.store_path.name == "built" and info.compression == "xz"
    assert info.deriver is not None and info.deriver.endswith("-built.drv")
    assert len(info.references) == 1 and info.references[0].endswith("-greeting")
    assert [str(p) for p in info.reference_paths] == [f"{SD}/{info.references[0]}"]
    assert info.ca is None and info.nar_hash.algo == "sha256"
    fp = info.fingerprint()
    assert fp == (
        f"1;{info.store_path};sha256:{info.nar_hash.nix32};{info.nar_size};{SD}/{info.references[0]}"
    )


def test_fingerprint_sorts_and_joins_full_reference_paths() -> None:
    h = Hash.of(b"nar")
    refs = [f"{SD}/{c * 32}-x" for c in "zab"]
    fp = fingerprint(f"{SD}/{'1' * 32}-p", h, 42, refs)
    assert fp.endswith(";42;" + ",".join(sorted(refs)))
    assert fingerprint(f"{SD}/{'1' * 32}-p", h, 42, []).endswith(";42;")
    with pytest.raises(NarInfoError, match="size is not known"):
        fingerprint(f"{SD}/{'1' * 32}-p", h, 0, [])
    with pytest.raises(NarInfoError, match="not sha256"):
        fingerprint(f"{SD}/{'1' * 32}-p", Hash.of(b"nar", "sha512"), 42, [])


def test_defaults_unknown_keys_and_order_of_sigs() -> None:
    info = load(FILES[0].name)
    text = info.to_text()
    extra = text.replace("Compression: xz\n", "").replace("NarSize:", "Future: thing\nNarSize:")
    extra += "Sig: b:x\nSig: a:y\nSig: b:x\n"
    parsed = NarInfo.parse(extra, SD)
    assert parsed.compression == "bzip2"
    assert parsed.sigs == tuple(sorted({*info.sigs, "a:y", "b:x"}))
    assert parsed.to_text().count("Sig: ") == 3
    assert NarInfo.parse(text.replace("Deriver: unknown-deriver\n", ""), SD) == info


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("NarSize: ", "NarSize: x"), "invalid NarSize 'x.*' at line 7"),
        (lambda t: t.replace("FileSize: ", "FileSize: -"), "invalid FileSize"),
        (lambda t: t.replace("NarHash: sha256:", "NarHash: "), "bad hash.*does not include a type"),
        (lambda t: t.replace("NarHash: sha256:", "NarHash: sha256:e"), "bad hash"),
        (lambda t: t.replace("URL: ", "URL"), "expecting 'Key: value' at line 2"),
        (lambda t: t.rstrip("\n"), "expecting '\\\\n'"),
        (
            lambda t: t.replace("StorePath: /tmp/storekit-golden/store", "StorePath: /nix/store"),
            "not in the Nix",
        ),
        (lambda t: "\n".join(ln for ln in t.split("\n") if not ln.startswith("URL")), "URL missing"),
        (lambda t: "\n".join(ln for ln in t.split("\n") if not ln.startswith("NarHash")), "NarHash missing"),
        (lambda t: re.sub("NarSize: [0-9]+", "NarSize: 0", t), "NarSize missing or zero"),
        (lambda t: "References: a\n" + t, "bad store path"),
        (lambda t: t + "CA: fixed:r:sha256:0\n", "bad hash"),
        (lambda t: t + "CA: output:sha256:0\n", "neither"),
    ],
)
def test_malformed_files_name_the_problem(edit: object, message: str) -> None:
    text = BUILT.read_text()
    with pytest.raises(NarInfoError, match=f"NAR info file 'x.narinfo' is corrupt: .*{message}"):
        NarInfo.parse(edit(text), SD, "x.narinfo")  # type: ignore[operator]


def test_extra_references_and_ca_lines() -> None:
    with_refs = next(f for f in FILES if "References: \n" not in f.read_text()).read_text()
    ref_line = next(ln for ln in with_refs.split("\n") if ln.startswith("References"))
    with pytest.raises(NarInfoError, match="extra References"):
        NarInfo.parse(with_refs + ref_line + "\n", SD)
    with_ca = next(f for f in FILES if "CA: " in f.read_text()).read_text()
    ca_line = next(ln for ln in with_ca.split("\n") if ln.startswith("CA"))
    with pytest.raises(NarInfoError, match="extra CA"):
        NarInfo.parse(with_ca + ca_line + "\n", SD)


def test_nix_cache_info_round_trip() -> None:
    text = (DATA / "nix-cache-info").read_text()
    info = NixCacheInfo.parse(text)
    assert info == NixCacheInfo(store_dir=str(SD))
    assert info.to_text() == str(info) == text
    full = NixCacheInfo(store_dir="/opt/store", want_mass_query=True, priority=40)
    assert full.to_text() == "StoreDir: /opt/store\nWantMassQuery: 1\nPriority: 40\n"
    assert NixCacheInfo.parse(full.to_text() + "junk line\nOther: 1\n") == full
    assert NixCacheInfo.parse("WantMassQuery: 0\n").want_mass_query is False
    with pytest.raises(NarInfoError, match="Priority 'high'"):
        NixCacheInfo.parse("Priority: high\n")
