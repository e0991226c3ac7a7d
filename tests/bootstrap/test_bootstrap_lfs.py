"""LFS chapters 5 and 6 for real (`bootstrap/lfs/lfs-debian.toml`): about 1.5 hours of two cores.

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

REPO = Path(__file__).resolve().parent.parent.parent
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


def test_chapters_5_and_6_build_and_pass_the_books_sanity_checks(tmp_path: Path) -> None:
    store, mirror = str(tmp_path / "store"), str(tmp_path / "sources")
    storekit("bootstrap", "sources", PROFILE, "--mirror", mirror, "--from-debian")
    storekit(
        "bootstrap", "build", PROFILE, "--store", store, "--mirror", mirror, "--cores", str(os.cpu_count())
    )
    report = storekit("bootstrap", "verify", PROFILE, "--store", store)
    assert "FAILED" not in report and report.count("ok: ") == 6
    doc = json.loads(storekit("bootstrap", "status", PROFILE, "--store", store, "--json"))
    assert [s["name"] for s in doc["stages"]] == ["seed", "cross-toolchain", "temp-tools"]
    packages = {p["name"]: p for s in doc["stages"] for p in s["packages"]}
    assert all(p["status"] == "built" for p in packages.values())
    times = {name: p["seconds"] for name, p in packages.items()}
    sbu = times["binutils-pass1"]
    print("\n" + "\n".join(f"{k}: {v}s = {v / sbu:.1f} SBU" for k, v in times.items() if v))

    # chapter 6's programs are the temporary system's: they run through chapter 5's loader
    glibc = packages["glibc-cross"]["outputs"][0]
    bash = packages["bash-tmp"]["outputs"][0] + "/bin/bash"
    assert (
        f"Requesting program interpreter: {glibc}/lib/ld-linux-x86-64.so.2"
        in subprocess.run(["readelf", "-l", bash], capture_output=True, text=True, check=True).stdout
    )
    said = subprocess.run([bash, "-c", "echo $BASH_VERSION"], capture_output=True, text=True, check=True)
    assert said.stdout.startswith("5.2.15")
    gcc = packages["native-toolchain"]["outputs"][0] + "/bin/gcc"
    (tmp_path / "t.c").write_text('#include <stdio.h>\nint main(void){ puts("pass 2"); return 0; }\n')
    subprocess.run([gcc, str(tmp_path / "t.c"), "-o", str(tmp_path / "t")], check=True)
    assert subprocess.run([str(tmp_path / "t")], capture_output=True, text=True).stdout == "pass 2\n"
