"""Regenerate the golden vectors of storekit's core values from real Nix 2.8.

    python tests/data/make_core_vectors.py

Writes, next to this script:
- `hash_vectors.json`: digests of each algorithm printed by `nix hash to-base16/to-base32/to-base64/
  to-sri`, and fixed-output paths from `nix-store --print-fixed-path` under a non-default store dir;
- `narinfo/`: the `nix-cache-info` and `.narinfo` files of a real Nix-written binary cache for
  store dir `/tmp/storekit-golden/store` holding a closure of three paths (a `nix-store --add`ed
  file, a `toFile` referring to it, a derivation output referring to that), all signed by
  `nix store sign` with the Nix-generated key in `narinfo/nix-key.sec` / `.pub`, so that the
  narinfo and signature tests run without Nix.

Only the digests' *inputs* are chosen here; every printed result comes from Nix.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
ALGOS = {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}
STORE_DIR = "/opt/store"
GOLDEN_ROOT = Path("/tmp/storekit-golden")
CONFIG = "experimental-features = nix-command\nsandbox = false\nbuild-users-group =\nsubstituters =\n"


def digests(size: int) -> list[bytes]:
    """Edge digests (all zero, all ones, one bit each end) and a few derived from fixed seeds."""
    fixed = [bytes(size), b"\xff" * size, b"\x01" + bytes(size - 1), bytes(size - 1) + b"\x80"]
    derived = [hashlib.sha512(f"storekit-{size}-{i}".encode()).digest()[:size] for i in range(8)]
    return fixed + derived


def nix(*args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["nix", *args], check=True, capture_output=True, text=True, env=env or nix_env()
    ).stdout


def nix_env(**extra: str) -> dict[str, str]:
    """Every Nix call gets its store, state, logs and home under GOLDEN_ROOT, never the host's."""
    env = dict(
        os.environ,
        NIX_CONFIG=CONFIG,
        NIX_STORE_DIR=str(GOLDEN_ROOT / "store"),
        NIX_STATE_DIR=str(GOLDEN_ROOT / "state"),
        NIX_LOG_DIR=str(GOLDEN_ROOT / "log"),
        HOME=str(GOLDEN_ROOT / "home"),
    )
    env.update(extra)
    return env


def opt_store_uri() -> str:
    """A store whose logical dir is STORE_DIR but whose files and state live under GOLDEN_ROOT."""
    root = GOLDEN_ROOT / "opt"
    return f"local?store={STORE_DIR}&real={root / 'store'}&state={root / 'state'}&log={root / 'log'}"


def hash_vectors() -> dict[str, object]:
    hashes = []
    for algo, size in ALGOS.items():
        hexes = [d.hex() for d in digests(size)]
        printed = {
            base: nix("hash", f"to-{base}", "--type", algo, *hexes).split()
            for base in ("base16", "base32", "base64", "sri")
        }
        for i, h in enumerate(hexes):
            hashes.append({"algo": algo, "hex": h, **{b: printed[b][i] for b in printed}})
    fixed = []
    for entry in hashes[::3]:
        for recursive in (False, True):
            flags = ["--recursive"] if recursive else []
            argv = ["nix-store", "--store", opt_store_uri(), "--print-fixed-path", *flags]
            argv += [entry["algo"], entry["base32"], "pkg-1.0"]
            out = subprocess.run(argv, check=True, capture_output=True, text=True, env=nix_env()).stdout
            fixed.append(
                {**{k: entry[k] for k in ("algo", "hex")}, "recursive": recursive, "path": out.strip()}
            )
    return {"nix": nix("--version").strip(), "store_dir": STORE_DIR, "hashes": hashes, "fixed": fixed}


def narinfo_vectors(out: Path) -> None:
    """A real cache: one path added with `nix-store --add`, one `toFile` referring to it, signed."""
    store = GOLDEN_ROOT / "store"
    uri = f"local?store={store}&state={GOLDEN_ROOT / 'state'}&log={GOLDEN_ROOT / 'log'}"
    env = nix_env()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "hello.txt"
        src.write_text("hello\n")
        added = subprocess.run(
            ["nix-store", "--store", uri, "--add", str(src)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout.strip()
    greeting = f'builtins.toFile "greeting" "see ${{builtins.storePath "{added}"}}"'
    expr = (
        f'derivation {{ name = "built"; system = builtins.currentSystem; builder = "/bin/sh";'
        f' args = ["-c" "echo ${{{greeting}}} > $out"]; }}'
    )
    built = subprocess.run(
        ["nix-build", "--store", uri, "--no-out-link", "-E", expr],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()
    secret = nix("key", "generate-secret", "--key-name", "golden-1", env=env)
    public = subprocess.run(
        ["nix", "key", "convert-secret-to-public"],
        input=secret,
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    (out / "nix-key.sec").write_text(secret)
    (out / "nix-key.pub").write_text(public)
    nix("store", "sign", "--store", uri, "--key-file", str(out / "nix-key.sec"), "-r", built, env=env)
    cache = GOLDEN_ROOT / "cache"
    nix("copy", "--store", uri, "--to", f"file://{cache}?compression=xz&store={store}", built, env=env)
    for f in [*sorted(cache.glob("*.narinfo")), cache / "nix-cache-info"]:
        shutil.copy(f, out / f.name)
    _rmtree(GOLDEN_ROOT)


def _rmtree(path: Path) -> None:
    """Remove a Nix store tree: its directories are read-only."""
    if path.exists():
        subprocess.run(["chmod", "-R", "u+w", str(path)], check=True)
        shutil.rmtree(path)


def main() -> None:
    _rmtree(GOLDEN_ROOT)
    (HERE / "hash_vectors.json").write_text(json.dumps(hash_vectors(), indent=1) + "\n")
    narinfo_vectors(HERE / "narinfo")


if __name__ == "__main__":
    main()
