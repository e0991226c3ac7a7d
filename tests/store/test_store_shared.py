"""A store a group shares (docs/shared-store.md): users who are not root build into it, see each
other's paths, and collect garbage only where they may. Run as root, playing the users with setpriv."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from build_fixtures import write_recipe

REPO = Path(__file__).resolve().parent.parent.parent
GROUP = 3917
ALICE, BOB = 3901, 3902

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed"),
]


@pytest.fixture
def shared() -> Iterator[Path]:
    """A world-traversable dir (pytest's tmp dirs are root's alone) with a group-owned setgid store."""
    top = Path(tempfile.mkdtemp(prefix="storekit-shared-"))
    top.chmod(0o755)
    for d in ("opt/store", "opt/var/nix", "opt/var/log/nix"):
        (top / d).mkdir(parents=True)
    for d in ("opt", "opt/var", "opt/store", "opt/var/nix", "opt/var/log/nix"):
        os.chown(top / d, 0, GROUP)
    for d in ("opt/store", "opt/var/nix", "opt/var/log/nix"):
        (top / d).chmod(0o2775)
    for uid, name in ((ALICE, "alice"), (BOB, "bob")):
        (top / name).mkdir()
        os.chown(top / name, uid, GROUP)
    yield top
    subprocess.run(["chmod", "-R", "u+w", str(top)], check=False)
    shutil.rmtree(top, ignore_errors=True)


def as_user(top: Path, uid: int, *args: str) -> subprocess.CompletedProcess[str]:
    home = top / ("alice" if uid == ALICE else "bob")
    argv = ["setpriv", f"--reuid={uid}", f"--regid={GROUP}", f"--groups={GROUP}", "--"]
    argv += ["sh", "-c", 'umask 002 && exec "$@"', "sh", sys.executable, "-m", "storekit", *args]
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(REPO)}
    env = {k: v for k, v in env.items() if not k.startswith(("XDG_", "STOREKIT_"))}
    return subprocess.run(argv, cwd=home, env=env, capture_output=True, text=True, check=False)


def test_two_users_share_a_group_store(shared: Path) -> None:
    store = str(shared / "opt" / "store")
    recipe = write_recipe(shared / "alice", "hello", "mkdir $out; echo hi > $out/greeting")
    for p in (shared / "alice").rglob("*"):
        os.chown(p, ALICE, GROUP)
    built = as_user(shared, ALICE, "build", "--store", store, str(recipe))
    assert built.returncode == 0, built.stderr  # a non-root user renames read-only outputs into place
    out = built.stdout.strip()
    db = shared / "opt" / "var" / "nix" / "db"
    for f in ("db.sqlite", "big-lock"):
        assert stat.S_IMODE((db / f).stat().st_mode) & 0o060 == 0o060, f  # group-writable, for bob
    seen = as_user(shared, BOB, "store", "info", "--store", store, out)
    assert seen.returncode == 0 and f"StorePath: {out}" in seen.stdout, seen.stderr
    added = as_user(shared, BOB, "store", "add-text", "--store", store, "note.txt", "/etc/hostname")
    assert added.returncode == 0, added.stderr
    (shared / "alice" / "result").unlink()
    refused = as_user(shared, BOB, "store", "gc", "--store", store)
    assert refused.returncode == 1
    # which of alice's paths the gc meets first depends on their hashes (docs/shared-store.md)
    assert re.search(
        rf"cannot delete '{re.escape(store)}/[^']+': its files belong to uid {ALICE}", refused.stderr
    )
    assert as_user(shared, BOB, "store", "info", "--store", store, out).returncode == 0  # still valid
    collected = as_user(shared, ALICE, "store", "gc", "--store", store)
    assert collected.returncode == 0 and f"deleting '{out}'" in collected.stderr, collected.stderr
