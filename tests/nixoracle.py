"""Real Nix 2.8 as the oracle: a daemon-less local store under any store dir, in a temp directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

NIX_CONFIG = "\n".join(
    [
        "experimental-features = nix-command flakes",
        "sandbox = false",
        "build-users-group =",
        "substituters =",
        "require-sigs = false",
    ]
)


def nix_available() -> bool:
    return shutil.which("nix") is not None and shutil.which("nix-store") is not None


def require_nix() -> None:
    """Skip without Nix on a developer's machine, but fail in CI, where Nix must be installed."""
    if nix_available():
        return
    if os.environ.get("CI"):
        pytest.fail("real Nix (Debian nix-bin) is required in CI but was not found")
    pytest.skip("real Nix not installed (apt-get install -y nix-bin)")


def _gc_tripped_on_a_deep_cwd(stderr: bytes) -> bool:
    """Nix 2.8's GC root scan gives up when it cannot read a /proc link of *any* process (ENAMETOOLONG).

    configure's getcwd checks (gnulib: m4, sed, grep of the bootstrap test running beside) sit in
    directories deeper than PATH_MAX for a moment; their /proc/<pid>/cwd then cannot be read and
    `nix-store --gc` fails with "reading symlink: File name too long". That is Nix's limitation, not
    the store under test, so the command (any that scans roots: --gc, --delete; it fails before it
    changes anything) is tried again once the moment has passed.
    """
    return b"reading symlink: File name too long" in stderr


@dataclass
class NixStore:
    """A real-Nix local store: `store_dir` is both the logical and the physical dir."""

    root: Path
    store_dir: str

    @property
    def state_dir(self) -> Path:
        return self.root / "var" / "nix"

    @property
    def uri(self) -> str:
        return f"local?store={self.store_dir}&state={self.state_dir}&log={self.root / 'var' / 'log' / 'nix'}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["NIX_CONFIG"] = NIX_CONFIG
        env["NIX_STORE_DIR"] = self.store_dir
        env["NIX_STATE_DIR"] = str(self.state_dir)
        env["NIX_LOG_DIR"] = str(self.root / "var" / "log" / "nix")
        env["HOME"] = str(self.root / "home")
        env["XDG_CACHE_HOME"] = str(self.root / "cache")
        return env

    def run(self, *args: str, input: bytes | None = None, store_flag: bool = True) -> bytes:
        """Run a Nix command against this store and return its stdout; fail loudly with its stderr."""
        argv = list(args)
        if store_flag:
            argv[1:1] = ["--store", self.uri]
        for _attempt in range(20):
            proc = subprocess.run(argv, input=input, capture_output=True, env=self.env(), check=False)
            if proc.returncode == 0 or not _gc_tripped_on_a_deep_cwd(proc.stderr):
                break
            time.sleep(0.5)
        if proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr.decode()}")
        return proc.stdout

    def text(self, *args: str, **kw: object) -> str:
        return self.run(*args, **kw).decode().strip()  # type: ignore[arg-type]


def make_nix_store(root: Path, store_dir: str | None = None) -> NixStore:
    require_nix()
    root.mkdir(parents=True, exist_ok=True)
    return NixStore(root=root, store_dir=store_dir or str(root / "store"))
