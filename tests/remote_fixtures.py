"""The two sides of the remote tests: real Nix 2.8's `nix-store --serve --write` behind the test sshd,
and a storekit store with the same store dir whose files live elsewhere (`real=`).

The far side runs with sshd's environment, so its `nix-store` gets the store, state and NIX_CONFIG
through a wrapper script (`Far.program`), as a user's shell profile would give them; tests name it
with `remote-program=`. Another wrapper can put something in the way (`Far.wrapped`): a shell
start-up file's greeting, `head -c` cutting a stream, a fake peer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from nixoracle import NixStore, make_nix_store
from sshd_server import Sshd

from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for

REPO = Path(__file__).parent.parent


CUTTER = """#!/usr/bin/python3
import os, sys
left = int(sys.argv[1])
while left > 0:
    data = os.read(0, min(left, 65536))
    if not data:
        break
    os.write(1, data)
    left -= len(data)
"""


@dataclass
class Far:
    """A real-Nix store reached over ssh; `uri(…)` is the `ssh://` store URI naming it."""

    sshd: Sshd
    nix: NixStore
    program: Path

    def uri(self, program: Path | None = None, **params: str) -> str:
        query = {"remote-program": str(program or self.program), **params}
        return f"ssh://{self.sshd.host}?" + "&".join(f"{k}={v}" for k, v in query.items())

    def wrapped(self, script: str) -> Path:
        """A remote program running `script` (POSIX sh) with the far store's environment;
        `$NIX_STORE_PROGRAM "$@"` runs the real one."""
        name = f"far-{uuid.uuid4().hex[:8]}"
        inner = self.sshd.root / "bin" / f"{name}.sh"
        inner.parent.mkdir(parents=True, exist_ok=True)
        inner.write_text("#!/bin/sh\n" + script + "\n")
        inner.chmod(0o755)
        env = {**far_env(self.nix), "NIX_STORE_PROGRAM": "/usr/bin/nix-store"}
        return self.sshd.wrapper(name, str(inner), env)

    def cutter(self) -> str:
        """A command copying stdin to stdout as it comes, then exiting after N bytes (`CUT N`): a link
        that dies mid-stream (`head -c` waits to fill its buffer, which would stall the greeting)."""
        path = self.sshd.root / "bin" / "cut-after"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CUTTER)
        path.chmod(0o755)
        return str(path)

    def valid(self, path: str) -> bool:
        done = subprocess.run(
            ["nix-store", "--store", self.nix.uri, "--check-validity", path],
            env=self.nix.env(), capture_output=True, check=False,
        )  # fmt: skip
        return done.returncode == 0

    def nar_hash(self, path: str) -> str:
        return self.nix.text("nix-store", "-q", "--hash", path)


def far_env(nix: NixStore) -> dict[str, str]:
    keep = ("NIX_", "HOME", "XDG_")
    return {k: v for k, v in nix.env().items() if k.startswith(keep)}


def make_far(sshd: Sshd, root: Path, store_dir: str) -> Far:
    nix = make_nix_store(root, store_dir)
    program = sshd.wrapper(f"nix-store-{uuid.uuid4().hex[:8]}", "/usr/bin/nix-store", far_env(nix))
    return Far(sshd, nix, program)


def storekit_store(root: Path, store_dir: str) -> LocalStore:
    """A storekit store for `store_dir` whose files are under `root` (so it can share a store dir
    with the far side on this one machine)."""
    spec = local_spec_for(
        store_dir,
        state_dir=str(root / "var" / "nix"),
        log_dir=str(root / "var" / "log" / "nix"),
        real_dir=str(root / "store"),
    )
    return LocalStore(spec)


def spec_of(store: LocalStore) -> str:
    return str(store.spec)


def storekit(
    sshd: Sshd, *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`storekit ARGS` with NIX_SSHOPTS reaching the test sshd, in a scratch cwd."""
    env = {**sshd.env(), "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory(prefix="storekit-cwd-") as own:
        proc = subprocess.run(
            [sys.executable, "-m", "storekit", *args],
            capture_output=True, text=True, env=env, check=False, cwd=own, timeout=timeout,
        )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"storekit {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The `error: …` line a failed command printed (asserting there is exactly one, alone)."""
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def listing(root: Path) -> list[str]:
    return sorted(os.listdir(root)) if root.exists() else []
