"""The CI bootstrap profile end to end, against its goal: under 15 minutes on two cores.

`bootstrap/lfs/mini.toml` as a user runs it: sources from Debian's orig tarballs (`apt-get source`,
so this needs Debian's archive), build with `-j 2`, verify. There is no other tool doing the same
work to compare with, so the reference is the goal itself (900 s); the note gives each package's
seconds. Minutes long and network-bound: run only when named (`python -m bench bootstrap`), never
as part of the default `just bench`; the test suite checks the same run's results, not its time.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from bench._harness import Row, storekit_argv, work_dir

TITLE = "bootstrap: the CI profile (mini.toml), sources + build + verify (vs the 15-minute goal)"
DEFAULT = False
REPO = Path(__file__).resolve().parent.parent
MINI = str(REPO / "bootstrap" / "lfs" / "mini.toml")
GOAL_S = 15 * 60


def run(quick: bool) -> list[Row]:
    tmp = str(work_dir("storekit-bench-bootstrap-"))
    store, mirror = f"{tmp}/store", f"{tmp}/mirror"
    started = time.monotonic()
    _storekit("bootstrap", "sources", MINI, "--mirror", mirror, "--from-debian")
    _storekit("bootstrap", "build", MINI, "--store", store, "--mirror", mirror, "-j", "2", "--cores", "1")
    _storekit("bootstrap", "verify", MINI, "--store", store)
    elapsed = time.monotonic() - started
    doc = json.loads(_storekit("bootstrap", "status", MINI, "--store", store, "--json"))
    packages = [p for s in doc["stages"] for p in s["packages"]]
    note = ", ".join(f"{p['name']} {p['seconds']}s" for p in packages)
    return [Row("mini profile, two cores", elapsed, "goal", GOAL_S, note)]


def _storekit(*args: str) -> str:
    argv = [*storekit_argv(), *args]
    return subprocess.run(argv, check=True, capture_output=True, text=True, cwd=REPO).stdout
