"""Store dirs and store paths: Nix 2.8's name rules and messages, parsing, and path making."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nixoracle import require_nix

from storekit.errors import InvalidStorePath
from storekit.hashing import Hash
from storekit.storepath import (
    FileIngestionMethod,
    StoreDir,
    StorePath,
    check_name,
    output_path_name,
)

DATA = json.loads((Path(__file__).parent.parent / "data" / "hash_vectors.json").read_text())
HELLO_NAR_SHA256 = "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13"
SD = StoreDir("/opt/store")
GOOD = "al5gckvcqrz30g8abxr567nk6cch8y93"


def test_source_path_of_hello_matches_nix() -> None:
    # NIX-FORMATS.md: `hello\n` added under /opt/store by real Nix.
    path = SD.make_source_path("hello.txt", Hash("sha256", bytes.fromhex(HELLO_NAR_SHA256)))
    assert str(path) == f"/opt/store/{GOOD}-hello.txt"


@pytest.mark.parametrize("v", DATA["fixed"], ids=lambda v: f"{v['algo']}-{v['recursive']}-{v['hex'][:6]}")
def test_fixed_output_paths_match_nix(v: dict[str, object]) -> None:
    method = FileIngestionMethod.RECURSIVE if v["recursive"] else FileIngestionMethod.FLAT
    h = Hash(str(v["algo"]), bytes.fromhex(str(v["hex"])))
    assert str(StoreDir(DATA["store_dir"]).make_fixed_output_path("pkg-1.0", method, h)) == v["path"]


def test_fixed_output_with_references_only_when_recursive_sha256() -> None:
    h = Hash.of(b"x")
    ref = SD.parse_path(f"/opt/store/{GOOD}-hello.txt")
    with_ref = SD.make_fixed_output_path("a", FileIngestionMethod.RECURSIVE, h, [ref])
    assert with_ref != SD.make_fixed_output_path("a", FileIngestionMethod.RECURSIVE, h)
    with pytest.raises(InvalidStorePath, match="cannot have references"):
        SD.make_fixed_output_path("a", FileIngestionMethod.FLAT, h, [ref])
    with pytest.raises(InvalidStorePath, match="cannot have references"):
        SD.make_fixed_output_path("a", FileIngestionMethod.RECURSIVE, Hash.of(b"x", "sha1"), self_ref=True)


def test_store_dir_must_be_canonical() -> None:
    for bad in ("opt/store", "/opt/store/", "/opt//store", "/opt/./store", "/"):
        with pytest.raises(InvalidStorePath):
            StoreDir(bad)
    assert str(StoreDir()) == "/nix/store"


def test_parse_path_round_trip() -> None:
    p = SD.parse_path(f"/opt/store/{GOOD}-hello.txt")
    assert p == StorePath("/opt/store", GOOD, "hello.txt")
    assert str(p) == f"/opt/store/{GOOD}-hello.txt"
    assert p.base_name == f"{GOOD}-hello.txt"
    assert not p.is_derivation and SD.parse_base_name(f"{GOOD}-x.drv").is_derivation
    assert SD.parse_path(f"/opt/store/{GOOD}-hello.txt/") == p  # canonicalised, like Nix


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (f"/opt/other/{GOOD}-a", "is not in the Nix store"),
        (f"/opt/store/{GOOD}-a/bin", "is not in the Nix store"),
        (f"/opt/store/{GOOD}", "is too short to be a valid store path"),
        (f"/opt/store/{GOOD[:-1]}e-a", "contains illegal base-32 character 'e'"),
        (f"/opt/store/{GOOD[:-1]}-a", "contains illegal base-32 character '-'"),
        (f"/opt/store/{GOOD}-", "has an empty name"),
        (f"/opt/store/{GOOD}-a b", "contains illegal character ' '"),
        (f"/opt/store/{GOOD}-" + "x" * 212, "has a name longer than 211 characters"),
        (f"/opt/store/{GOOD}Xa", "lacks the '-'"),
    ],
)
def test_parse_path_rejections(path: str, message: str) -> None:
    with pytest.raises(InvalidStorePath, match=message):
        SD.parse_path(path)
    assert not SD.is_store_path(path)


def test_to_store_path_splits_off_the_rest() -> None:
    p, rest = SD.to_store_path(f"/opt/store/{GOOD}-hello/bin/../bin/sh")
    assert (str(p), rest) == (f"/opt/store/{GOOD}-hello", "/bin/sh")
    assert SD.to_store_path(f"/opt/store/{GOOD}-hello")[1] == ""
    with pytest.raises(InvalidStorePath, match="is not in the Nix store"):
        SD.to_store_path("/opt/storex/a")


@given(st.text(alphabet="abcXYZ019+-._?=", min_size=1, max_size=211))
def test_every_legal_name_is_accepted(name: str) -> None:
    check_name(name)
    assert SD.parse_base_name(f"{GOOD}-{name}").name == name


@given(
    st.text(min_size=1, max_size=20).filter(
        lambda s: any(not (c.isascii() and (c.isalnum() or c in "+-._?=")) for c in s)
    )
)
def test_names_with_other_characters_are_refused(name: str) -> None:
    with pytest.raises(InvalidStorePath, match="contains illegal character"):
        check_name(name)


def test_output_path_names() -> None:
    assert output_path_name("hello-2.12", "out") == "hello-2.12"
    assert output_path_name("hello-2.12", "dev") == "hello-2.12-dev"


# --- live oracle: messages exactly as Nix 2.8 prints them ------------------------------------------------


@pytest.fixture(scope="module")
def opt_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real-Nix store with logical store dir /opt/store whose files and state live in a temp dir."""
    require_nix()
    root = tmp_path_factory.mktemp("opt")
    return f"local?store=/opt/store&real={root}/store&state={root}/state&log={root}/log"


def _nix_store(uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NIX_CONFIG="experimental-features = nix-command")
    argv = ["nix-store", "--store", uri, *args]
    proc = subprocess.run(argv, capture_output=True, env=env, check=False)
    # Nix names the first byte of a multi-byte character, which is not UTF-8 on its own.
    out, err = (b.decode(errors="replace") for b in (proc.stdout, proc.stderr))
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _nix_error(uri: str, *args: str) -> str:
    proc = _nix_store(uri, *args)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr.strip().removeprefix("error: ")


@pytest.mark.interop
@pytest.mark.parametrize("name", ["a b", "", "x" * 212, "semi;colon", "star*", "caf\u00e9"], ids=repr)
def test_bad_name_messages_match_nix(opt_store: str, name: str) -> None:
    nix = _nix_error(opt_store, "--print-fixed-path", "sha256", HELLO_NAR_SHA256, name)
    with pytest.raises(InvalidStorePath) as e:
        SD.make_fixed_output_path(name, FileIngestionMethod.FLAT, Hash.parse(HELLO_NAR_SHA256, "sha256"))
    if name.isascii():
        assert str(e.value) == nix
    else:  # Nix names the first byte of the UTF-8 sequence, we name the character
        assert str(e.value).split(" contains")[0] == nix.split(" contains")[0]


@pytest.mark.interop
@settings(max_examples=20, deadline=None)
@given(name=st.text(alphabet="abcXYZ019+-._?=", min_size=1, max_size=40).filter(lambda n: n[0] != "-"))
def test_good_names_make_the_same_path_as_nix(opt_store: str, name: str) -> None:
    proc = _nix_store(opt_store, "--print-fixed-path", "--recursive", "sha256", HELLO_NAR_SHA256, name)
    ours = SD.make_source_path(name, Hash.parse(HELLO_NAR_SHA256, "sha256"))
    assert str(ours) == proc.stdout.strip(), proc.stderr


@pytest.mark.interop
@pytest.mark.parametrize(
    "base",
    [f"{GOOD[:-1]}e-a", f"{GOOD[:-1]}-a", f"{GOOD}-", f"{GOOD}-a b", GOOD, f"{GOOD}-" + "y" * 212],
)
def test_parse_messages_match_nix(opt_store: str, base: str) -> None:
    nix = _nix_error(opt_store, "--query", "--hash", f"/opt/store/{base}")
    with pytest.raises(InvalidStorePath) as e:
        SD.parse_path(f"/opt/store/{base}")
    assert str(e.value) == nix
