"""Keys, signatures and binary-cache files against real Nix 2.8 (store dir not /nix/store).

- keys from `nix key generate-secret` work in storekit, and storekit's keys in `nix key`;
- `nix store sign` signatures verify with storekit's fingerprint, and storekit signs identically;
- every `.narinfo` and `nix-cache-info` that `nix copy --to file://…` writes parses and prints back
  byte for byte;
- Nix accepts a path from a cache whose narinfo carries a storekit signature (`require-sigs`), and
  refuses it when the signing key is not trusted.
"""

from __future__ import annotations

import json
import lzma
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from nixoracle import NixStore
from typer.testing import CliRunner

from storekit.cli import app
from storekit.hashing import Hash
from storekit.narinfo import NarInfo, NixCacheInfo, fingerprint
from storekit.signing import PublicKey, SecretKey, verify
from storekit.storepath import StoreDir

pytestmark = pytest.mark.interop
REPO = Path(__file__).parent.parent.parent

CLOSURE = """
let
  greeting = builtins.toFile "greeting" "hello from a text path";
  src = builtins.path { path = ./src; name = "src"; };
in derivation {
  name = "signed-thing";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  args = ["-c" "mkdir $out; echo ${greeting} > $out/greeting; ln -s ${src} $out/src; echo $out > $out/self"];
}
"""


def build(nix_store: NixStore) -> str:
    (nix_store.root / "src").mkdir()
    (nix_store.root / "src" / "data").write_bytes(bytes(range(256)) * 40)
    (nix_store.root / "closure.nix").write_text(CLOSURE)
    return nix_store.text("nix-build", "--no-out-link", str(nix_store.root / "closure.nix"))


def nix_key(nix_store: NixStore, *args: str, input: bytes | None = None) -> str:
    return nix_store.run("nix", "key", *args, input=input, store_flag=False).decode()


# --- keys ----------------------------------------------------------------------------------------------


def test_keys_are_interchangeable_with_nix_key(nix_store: NixStore) -> None:
    nix_secret = nix_key(nix_store, "generate-secret", "--key-name", "nix-made-1")
    nix_public = nix_key(nix_store, "convert-secret-to-public", input=nix_secret.encode())
    assert str(SecretKey.parse(nix_secret).public_key()) == nix_public

    runner = CliRunner()
    ours = runner.invoke(app, ["key", "generate", "storekit-made-1"]).stdout
    assert ours.startswith("storekit-made-1:") and not ours.endswith("\n")
    assert runner.invoke(app, ["key", "public"], input=nix_secret).stdout == nix_public
    ours_public = runner.invoke(app, ["key", "public"], input=ours).stdout
    assert nix_key(nix_store, "convert-secret-to-public", input=ours.encode()) == ours_public


def test_key_cli_errors_are_one_line() -> None:
    argv = [sys.executable, "-m", "storekit", "key", "public"]
    proc = subprocess.run(argv, input="nonsense", capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 1
    # the input is not echoed: it is meant to be a secret
    assert proc.stderr == (
        "error: stdin does not hold a secret key in Nix's 'name:base64' form "
        "(as `storekit key generate` or `nix key generate-secret` write it)\n"
    )


# --- signatures on a real store --------------------------------------------------------------------------


def test_nix_store_sign_verifies_with_our_fingerprint(nix_store: NixStore, tmp_path: Path) -> None:
    out = build(nix_store)
    secret_file = tmp_path / "key.sec"
    secret_file.write_text(nix_key(nix_store, "generate-secret", "--key-name", "real-store-1"))
    nix_store.run("nix", "store", "sign", "--key-file", str(secret_file), "--recursive", out)
    secret = SecretKey.parse(secret_file.read_text())
    infos = json.loads(nix_store.run("nix", "path-info", "--json", "--recursive", out))
    assert len(infos) == 3
    for info in infos:
        fp = fingerprint(info["path"], Hash.parse(info["narHash"]), info["narSize"], info["references"])
        (sig,) = info["signatures"]
        assert verify(fp, sig, [secret.public_key()])
        assert secret.sign(fp) == sig  # ed25519 is deterministic: the very same bytes
        assert not verify(fp.replace(";1;", ";2;", 1) + "x", sig, [secret.public_key()])


# --- binary cache files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["xz", "none"])
def test_cache_files_nix_writes_round_trip(nix_store: NixStore, tmp_path: Path, compression: str) -> None:
    out = build(nix_store)
    secret_file = tmp_path / "key.sec"
    secret_file.write_text(nix_key(nix_store, "generate-secret", "--key-name", "cache-1"))
    nix_store.run("nix", "store", "sign", "--key-file", str(secret_file), "--recursive", out)
    cache = tmp_path / "cache"
    nix_store.run(
        "nix", "copy", "--to", f"file://{cache}?compression={compression}&store={nix_store.store_dir}", out
    )
    info_text = (cache / "nix-cache-info").read_text()
    assert NixCacheInfo.parse(info_text).to_text() == info_text
    assert NixCacheInfo.parse(info_text).store_dir == nix_store.store_dir
    sd = StoreDir(nix_store.store_dir)
    public = SecretKey.parse(secret_file.read_text()).public_key()
    files = sorted(cache.glob("*.narinfo"))
    assert len(files) == 3
    for file in files:
        text = file.read_text()
        info = NarInfo.parse(text, sd, file.name)
        assert info.to_text() == text
        assert info.compression == compression
        nar_file = (cache / info.url).read_bytes()
        assert info.file_hash == Hash.of(nar_file) and info.file_size == len(nar_file)
        nar = lzma.decompress(nar_file) if compression == "xz" else nar_file
        assert info.nar_hash == Hash.of(nar) and info.nar_size == len(nar)
        assert verify(info.fingerprint(), info.sigs[0], [public])


def test_nix_accepts_a_storekit_signature(nix_store: NixStore, tmp_path: Path) -> None:
    out = build(nix_store)
    cache = tmp_path / "cache"
    cache_uri = f"file://{cache}?compression=none&store={nix_store.store_dir}"
    nix_store.run("nix", "copy", "--to", cache_uri, out)
    sd = StoreDir(nix_store.store_dir)
    ours = SecretKey.generate("storekit-cache-1")
    for file in cache.glob("*.narinfo"):
        info = NarInfo.parse(file.read_text(), sd, file.name)
        assert not info.sigs
        file.write_text(replace(info, sigs=(ours.sign(info.fingerprint()),)).to_text())
    nix_store.run("nix-store", "--delete", out)

    def copy_back(trusted: PublicKey) -> subprocess.CompletedProcess[bytes]:
        argv = ["nix", "--store", nix_store.uri, "copy", "--from", cache_uri, out]
        argv += ["--option", "require-sigs", "true", "--option", "trusted-public-keys", str(trusted)]
        return subprocess.run(argv, capture_output=True, env=nix_store.env(), check=False)

    refused = copy_back(SecretKey.generate("storekit-cache-1").public_key())
    assert refused.returncode != 0
    assert re.search(rb"lacks a valid signature", refused.stderr), refused.stderr
    accepted = copy_back(ours.public_key())
    assert accepted.returncode == 0, accepted.stderr.decode()
    assert nix_store.text("nix-store", "--check-validity", "--print-invalid", out) == ""
    (sig,) = json.loads(nix_store.run("nix", "path-info", "--json", out))[0]["signatures"]
    assert sig.startswith("storekit-cache-1:")
