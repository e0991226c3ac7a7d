"""LFS chapter 5 for real (`bootstrap/lfs/lfs-debian.toml`): about 35 minutes of two cores.

Outside the default and the slow runs too, because of its length: set STOREKIT_LFS_TOOLCHAIN=1 (what
`just lfs-toolchain` does by hand). Sources come from Debian's archive through `apt-get source`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROFILE = str(REPO / "bootstrap" / "lfs" / "lfs-debian.toml")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("STOREKIT_LFS_TOOLCHAIN"), reason="set STOREKIT_LFS_TOOLCHAIN=1"),
    pytest.mark.skipif(
        shutil.which("apt-get") is None or shutil.which("bwrap") is None, reason="Debian + bwrap"
    ),
]


def storekit(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "storekit", *args], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, f"storekit {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_chapter_5_builds_and_passes_the_books_sanity_checks(tmp_path: Path) -> None:
    store, mirror = str(tmp_path / "store"), str(tmp_path / "sources")
    storekit("bootstrap", "sources", PROFILE, "--mirror", mirror, "--from-debian")
    storekit(
        "bootstrap", "build", PROFILE, "--store", store, "--mirror", mirror, "--cores", str(os.cpu_count())
    )
    report = storekit("bootstrap", "verify", PROFILE, "--store", store)
    assert "FAILED" not in report and report.count("ok: ") == 5
    doc = json.loads(storekit("bootstrap", "status", PROFILE, "--store", store, "--json"))
    times = {p["name"]: p["seconds"] for s in doc["stages"] for p in s["packages"]}
    sbu = times["binutils-pass1"]
    print("\n" + "\n".join(f"{k}: {v}s = {v / sbu:.1f} SBU" for k, v in times.items() if v))
