"""The README's first command runs the demo: keep it working, on a fresh default store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_demo_runs_on_a_fresh_default_store(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "STOREKIT_STORE"}
    env.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "data"), TMPDIR=str(tmp_path))
    # the demo runs the environment's python, as `just demo` does with .venv/bin first on PATH
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "demo.sh")], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "Traceback" not in out + proc.stderr
    # The default store was created where the docs say, and what the demo built is valid there.
    store = tmp_path / "data" / "storekit" / "store"
    greet = [line for line in out.splitlines() if line.startswith(str(store)) and line.endswith("-greet")]
    assert greet and Path(greet[0]).is_dir()
    assert "Hello from storekit" in out
    assert "patched and running" in out
    assert "nix-store --verify --check-contents passes" in out
    # Real Nix agreed on the hash and the /opt/store path (the demo prints both sides).
    ours = [line.split()[-1] for line in out.splitlines() if line.startswith("sha256-")]
    theirs = [line.split()[-1] for line in out.splitlines() if line.startswith("real Nix:  sha256-")]
    assert ours and theirs == ours
