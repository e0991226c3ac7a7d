"""Behaving as a chosen Nix version: store path names with a leading `.`, and BLAKE3.

The setting is `nix-version` in the config file or `$STOREKIT_NIX_VERSION`; without it storekit
follows the strictest rule. Real Nix 2.8 is the oracle for the paths a name gives; the BLAKE3
digests are the reference implementation's published test vectors.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storekit.errors import InvalidHash, StoreError
from storekit.hashing import Hash
from storekit.nar.fs import dump_path, hash_path
from storekit.nixversion import STRICTEST, NixVersion, rules_for
from storekit.store.base import ValidPathInfo
from storekit.store.local import LocalStore
from storekit.store.specs import parse_store_spec
from storekit.storepath import FileIngestionMethod, NameRule, StoreDir

REPO = Path(__file__).parent.parent.parent
SHA256_OF_HELLO = "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13"
BLAKE3_EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"  # BLAKE3's test vector


def storekit(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "STOREKIT_NIX_VERSION"}
    full |= {"PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "storekit", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        check=False,
    )


def one_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_versions_parse_and_order() -> None:
    assert NixVersion.parse("2.28.3") == NixVersion(2, 28) > NixVersion.parse("2.8")
    assert NixVersion.parse("nix-2.21pre20240101") == NixVersion(2, 21)
    assert rules_for(None) == STRICTEST and STRICTEST.name_rule is NameRule.STRICT and not STRICTEST.blake3
    assert rules_for("2.20").name_rule is NameRule.STRICT and rules_for("2.21").name_rule is NameRule.NIX_2_21
    assert not rules_for("2.26").blake3 and rules_for("2.27").blake3


@pytest.mark.parametrize("version", [None, "2.8", "2.21", "2.28"])
@pytest.mark.parametrize("name", [".", "..", ".-x", "..-x"])
def test_dot_names_are_refused_in_every_mode(tmp_path: Path, version: str | None, name: str) -> None:
    env = {"STOREKIT_NIX_VERSION": version} if version else {}
    (tmp_path / "f").write_text("hello\n")
    proc = storekit(
        "store", "add", "--store", str(tmp_path / "store"), "--name", name, str(tmp_path / "f"), env=env
    )
    assert f"name '{name}' is not valid" in one_error(proc)
    if version:  # computing a path follows the version named (without one: Nix 2.8, below)
        proc = storekit(
            "path", "fixed", "--store-dir", "/opt/store", "sha256", SHA256_OF_HELLO, name, env=env
        )
        assert f"name '{name}' is not valid" in one_error(proc)


@pytest.mark.interop
def test_leading_dot_names_follow_the_version(tmp_path: Path) -> None:
    args = ("path", "fixed", "--store-dir", "/opt/store", "sha256", SHA256_OF_HELLO, ".hidden")
    nix = subprocess.run(
        ["nix-store", "--print-fixed-path", "sha256", SHA256_OF_HELLO, ".hidden"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NIX_STORE_DIR": "/opt/store", "NIX_STATE_DIR": str(tmp_path / "nix")},  # any user
    )
    assert storekit(*args).stdout == nix.stdout  # computing only: Nix 2.8's arithmetic and names
    assert "only Nix >= 2.21" in one_error(storekit(*args, env={"STOREKIT_NIX_VERSION": "2.20"}))
    allowed = storekit(*args, env={"STOREKIT_NIX_VERSION": "2.21"})
    assert allowed.returncode == 0 and allowed.stdout == nix.stdout, allowed.stderr
    config = tmp_path / "config" / "storekit" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('nix-version = "2.20"\n')
    assert "only Nix >= 2.21" in one_error(storekit(*args, env={"XDG_CONFIG_HOME": str(tmp_path / "config")}))
    config.write_text('nix-version = "2.24"\n')
    assert storekit(*args, env={"XDG_CONFIG_HOME": str(tmp_path / "config")}).stdout == nix.stdout
    config.write_text('nix-version = "latest"\n')
    assert "nix-version" in one_error(storekit(*args, env={"XDG_CONFIG_HOME": str(tmp_path / "config")}))


def test_store_add_follows_the_version(tmp_path: Path) -> None:
    (tmp_path / ".profile").write_text("hello\n")
    store = str(tmp_path / "store")
    assert "'.profile'" in one_error(storekit("store", "add", "--store", store, str(tmp_path / ".profile")))
    added = storekit(
        "store", "add", "--store", store, str(tmp_path / ".profile"), env={"STOREKIT_NIX_VERSION": "2.21"}
    )
    assert added.returncode == 0 and added.stdout.strip().endswith("-.profile"), added.stderr


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ([], "blake3-" + Hash("blake3", bytes.fromhex(BLAKE3_EMPTY)).base64),
        (["--base16"], BLAKE3_EMPTY),
        (["--base32"], Hash("blake3", bytes.fromhex(BLAKE3_EMPTY)).nix32),
    ],
)
def test_hash_file_blake3(tmp_path: Path, flag: list[str], expected: str) -> None:
    (tmp_path / "empty").write_bytes(b"")
    proc = storekit("hash", "file", "--type", "blake3", *flag, str(tmp_path / "empty"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


def test_hash_path_blake3_hashes_the_nar(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("hello\n")
    proc = storekit("hash", "path", "--type", "blake3", "--base16", str(tmp_path / "f"))
    nar = b"".join(dump_path(tmp_path / "f"))
    assert proc.stdout.strip() == Hash.of(nar, "blake3").base16


def test_blake3_text_is_read_only_when_asked() -> None:
    text = f"blake3:{BLAKE3_EMPTY}"
    with pytest.raises(InvalidHash, match="unknown hash algorithm 'blake3'"):
        Hash.parse(text)  # as Nix 2.8 reads it
    assert Hash.parse(text, blake3=True).base16 == BLAKE3_EMPTY


def _blake3_info(tmp_path: Path, sd: StoreDir) -> tuple[ValidPathInfo, bytes]:
    (tmp_path / "content").write_text("hello\n")
    nar = b"".join(dump_path(tmp_path / "content"))
    b3, _ = hash_path(tmp_path / "content", "blake3")
    path = sd.make_fixed_output_path("content", FileIngestionMethod.RECURSIVE, b3)
    return ValidPathInfo(path, Hash.of(nar), len(nar), ca=f"fixed:r:{b3}"), nar


@pytest.mark.parametrize("version", [None, "2.8", "2.26"])
def test_stores_of_older_nix_refuse_blake3(tmp_path: Path, version: str | None) -> None:
    with LocalStore(parse_store_spec(str(tmp_path / "store"))) as store:  # type: ignore[arg-type]
        store.behave_as(rules_for(version))
        info, nar = _blake3_info(tmp_path, store.store_dir)
        with pytest.raises(StoreError, match=r"BLAKE3, which only Nix >= 2\.27 reads"):
            store.add_from_nar(info, io.BytesIO(nar))
        assert not store.is_valid_path(info.path)


def test_stores_of_nix_2_27_accept_blake3(tmp_path: Path) -> None:
    with LocalStore(parse_store_spec(str(tmp_path / "store"))) as store:  # type: ignore[arg-type]
        store.behave_as(rules_for("2.27"))
        info, nar = _blake3_info(tmp_path, store.store_dir)
        store.add_from_nar(info, io.BytesIO(nar))
        assert store.query_path_info(info.path).ca == info.ca
