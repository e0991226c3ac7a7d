"""Both sides of a serve-protocol session for the tests: real Nix 2.8 here, `storekit nix-store` there.

The two sides share one store dir (`<tmp>/nix/store`, where the client's files are) and keep their
files apart: the storekit side is a `real=` store under `<tmp>/far`. The far side is reached through
the session's sshd as Nix reaches any machine (`ssh://`, `$NIX_SSHOPTS`), and runs a wrapper script
(what a user's profile would do) that gives storekit a PATH with bwrap on it; the store is named by
Nix's `remote-store=` URI parameter, which Nix passes on as `--store`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nixoracle import NixStore
from sshd_server import Sshd

REPO = Path(__file__).resolve().parent.parent.parent


def storekit_program() -> str:
    """The storekit of this venv (the far side is the same machine)."""
    return str(Path(sys.executable).parent / "storekit")


@dataclass
class Sides:
    client: NixStore
    sshd: Sshd
    far_root: Path
    wrapper: Path

    @property
    def far_uri(self) -> str:
        r = self.far_root
        return (
            f"local?store={self.client.store_dir}&real={r / 'store'}&state={r / 'var' / 'nix'}"
            f"&log={r / 'var' / 'log' / 'nix'}"
        )

    def ssh_uri(self, remote_store: str | None = "", program: str | None = None) -> str:
        """The far side as Nix names it; `remote_store=None` leaves the store to the far side's
        `$STOREKIT_STORE` (builder URIs must stay short: Nix makes a lock file named after them)."""
        params = {"remote-program": program or f"{self.wrapper} nix-store"}
        if remote_store is not None:
            params["remote-store"] = remote_store or self.far_uri
        return f"ssh://{self.sshd.host}?{urllib.parse.urlencode(params, quote_via=urllib.parse.quote)}"

    def env(self) -> dict[str, str]:
        return self.sshd.env(self.client.env())

    def nix(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env(), check=False,
                              stdin=subprocess.DEVNULL)  # fmt: skip
        if check:
            assert proc.returncode == 0, f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}"
        return proc

    def path_infos(self, store: str, paths: list[str], *extra: str) -> dict[str, dict[str, Any]]:
        out = self.nix("nix", "path-info", "--store", store, "--json", *extra, *paths).stdout
        return {o["path"]: o for o in json.loads(out)}


def make_sides(client: NixStore, sshd: Sshd, tmp: Path) -> Sides:
    far = tmp / "far"
    far.mkdir()
    path = os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"])
    env = {"PATH": path, "HOME": str(far / "home"), "XDG_CONFIG_HOME": str(far / "config")}
    sides = Sides(client, sshd, far, Path())
    env["STOREKIT_STORE"] = sides.far_uri
    sides.wrapper = sshd.wrapper(f"sk-{abs(hash(str(tmp))):x}", storekit_program(), env)
    return sides
