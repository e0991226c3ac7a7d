"""What every benchmark shares: storekit as a user runs it, timing a callable or a command, and
printing ratio rows."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@functools.cache
def storekit_argv() -> tuple[str, ...]:
    """The `storekit` command the CLI rows run: this checkout installed as a user installs it.

    A wheel of the checkout, installed (not editable) into a fresh venv made from the base
    interpreter, its console script started as a user's shell starts it. The development venv
    cannot stand in: its editable install's import finder, which site runs for every Python
    started there, imports pathlib, re and urllib.parse first (about 15 ms of CPU per command
    here), a cost no installed storekit has, while Nix's rows start an installed `nix`. Made once
    per bench run, offline: the declared dependencies come from this environment by a path line
    in the new venv (Python adds the directory but reads none of its .pth files).
    """
    root = Path(tempfile.mkdtemp(prefix="bench-storekit-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    quiet = {"check": True, "capture_output": True}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", root, REPO],
        **quiet,  # type: ignore[call-overload]
    )
    (wheel,) = root.glob("storekit-*.whl")
    venv = root / "venv"
    # No pip (nor the setuptools it brings on Python 3.11, whose distutils-precedence.pth runs at every
    # start of the venv's Python): as pipx makes its venvs; this environment's pip installs into it.
    subprocess.run(
        [getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", venv],
        **quiet,  # type: ignore[call-overload]
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            wheel,
        ],
        **quiet,  # type: ignore[call-overload]
    )
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], **quiet, text=True
    ).stdout.strip()  # type: ignore[call-overload]
    Path(site, "bench-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return (str(venv / "bin" / "storekit"),)


def work_dir(prefix: str, parent: str | None = None) -> Path:
    """A new directory for one benchmark's files, deleted when the bench run ends, not before.

    Deleting many files slows the file creations of the next 30 seconds on ext4 without a journal
    (this machine's root file system): allocating an inode, it skips each one deleted in that window,
    reading its inode table block (perf: `ext4_create` -> `recently_deleted`). A benchmark that
    deleted its stores as it went measured its own clean-up, on whichever side ran next; so a
    benchmark gives each run a new directory under this one, and everything goes at exit.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    atexit.register(_delete_tree, root)
    return root


def _delete_tree(root: Path) -> None:
    subprocess.run(["chmod", "-R", "u+w", str(root)], check=False, capture_output=True)  # store paths
    shutil.rmtree(root, ignore_errors=True)


def storekit_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) for the installed storekit: no PYTHONPATH, which would put
    the checkout ahead of the installed package."""
    return {k: v for k, v in (os.environ if env is None else env).items() if k != "PYTHONPATH"}


@dataclass(frozen=True, slots=True)
class Row:
    """One comparison: storekit's time against a reference tool's time for the same work."""

    task: str
    storekit_s: float
    reference: str
    reference_s: float
    note: str = ""

    @property
    def speed_ratio(self) -> float:
        """How many times faster storekit is (>1 means faster than the reference)."""
        return self.reference_s / self.storekit_s if self.storekit_s else float("inf")


def best_of(fn: Callable[[], object], repeat: int = 3, setup: Callable[[], object] | None = None) -> float:
    """The best wall time of `repeat` runs (warm caches), running `setup` untimed before each."""
    best = float("inf")
    for _ in range(repeat):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_cmd(argv: Sequence[str], **kw: object) -> None:
    subprocess.run(list(argv), check=True, stdout=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]


def print_rows(title: str, rows: Sequence[Row]) -> None:
    print(f"\n== {title}")
    print(f"{'task':44} {'storekit':>10} {'reference':>22} {'ratio':>8}")
    for r in rows:
        ref = f"{r.reference} {r.reference_s:.3f}s"
        print(f"{r.task:44} {r.storekit_s:9.3f}s {ref:>22} {r.speed_ratio:7.2f}x  {r.note}")
