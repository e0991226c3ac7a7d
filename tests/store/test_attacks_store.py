"""Two stores, one database: a state dir belongs to one store dir, and says so.

Each test was run against the code before the fix and failed there (the docstrings say how); see
storekit/store/dbmarker.py and docs/security.md.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from nixoracle import make_nix_store

from storekit.errors import StoreError
from storekit.store.dbmarker import MARKER
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for
from storekit.store.verify import verify_store

ROOT = Path(__file__).resolve().parent.parent.parent


def _rows(state: Path) -> list[str]:
    conn = sqlite3.connect(state / "db" / "db.sqlite")
    try:
        return sorted(r[0] for r in conn.execute("select path from ValidPaths"))
    finally:
        conn.close()


def _storekit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "storekit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )


def test_relocate_into_a_plain_path_store_sharing_the_state_dir_is_refused(tmp_path: Path) -> None:
    """The issue's case: `/opt/store` with state in `$PWD/var/nix` (as the docs put it), then
    `relocate --to $PWD/c10`, whose state defaults to the same `$PWD/var/nix`: refused, naming both,
    the database and `c10` untouched.

    Before: the relocation succeeded and wrote `$PWD/c10` paths into `/opt/store`'s database.
    """
    state = tmp_path / "var" / "nix"
    spec = f"local?store=/opt/store&state={state}&log={tmp_path}/var/log/nix&real={tmp_path}/opt-store"
    env = {**os.environ, "STOREKIT_STORE": spec}
    (tmp_path / "f").write_text("hello\n")
    added = _storekit("store", "add", str(tmp_path / "f"), env=env)
    assert added.returncode == 0, added.stderr
    path = added.stdout.strip()
    before = _rows(state)
    result = _storekit("relocate", "--from", spec, "--to", str(tmp_path / "c10"), path, env=env)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "'/opt/store'" in lines[0] and f"'{tmp_path / 'c10'}'" in lines[0]
    assert _rows(state) == before
    assert not (tmp_path / "c10").exists()
    assert _storekit("store", "verify", env=env).returncode == 0


def test_a_store_records_its_store_dir_and_refuses_another(tmp_path: Path) -> None:
    """A new store writes `db/storekit-store-dir`; opening its state for another store dir fails
    before writing anything (no real dir created, no marker changed)."""
    state = tmp_path / "var" / "nix"
    LocalStore(local_spec_for("/opt/store", state_dir=str(state), real_dir=str(tmp_path / "a"))).close()
    assert (state / "db" / MARKER).read_text() == "/opt/store\n"
    with pytest.raises(StoreError, match=r"belongs to store dir '/opt/store'.*not to '/opt/other'"):
        LocalStore(local_spec_for("/opt/other", state_dir=str(state), real_dir=str(tmp_path / "b")))
    assert not (tmp_path / "b").exists()
    assert (state / "db" / MARKER).read_text() == "/opt/store\n"


def _legacy(tmp_path: Path) -> tuple[Path, str]:
    """A store made before the marker: one path of `/opt/store`, no `db/storekit-store-dir`."""
    state = tmp_path / "var" / "nix"
    s = LocalStore(local_spec_for("/opt/store", state_dir=str(state), real_dir=str(tmp_path / "a")))
    path = str(s.add_text("old", b"made before the marker\n"))
    s.close()
    (state / "db" / MARKER).unlink()
    return state, path


def test_an_existing_store_gets_its_marker_on_first_open(tmp_path: Path) -> None:
    """Without a marker, the first open writes one when the database agrees (all its paths are ours)."""
    state, _ = _legacy(tmp_path)
    LocalStore(local_spec_for("/opt/store", state_dir=str(state), real_dir=str(tmp_path / "a"))).close()
    assert (state / "db" / MARKER).read_text() == "/opt/store\n"


def test_an_existing_store_without_marker_refuses_another_store_dir(tmp_path: Path) -> None:
    """Without a marker, a database whose paths all belong to `/opt/store` is refused to `/opt/other`.

    Before: it opened, and the next add mixed the database.
    """
    state, _ = _legacy(tmp_path)
    with pytest.raises(StoreError, match=r"belongs to store dir '/opt/store' \(its paths, e\.g\. '"):
        LocalStore(local_spec_for("/opt/other", state_dir=str(state), real_dir=str(tmp_path / "b")))
    assert not (state / "db" / MARKER).exists() and not (tmp_path / "b").exists()


def _mix(state: Path, foreign: str) -> None:
    """What storekit before the marker did: a row of another store dir in this database."""
    conn = sqlite3.connect(state / "db" / "db.sqlite")
    with conn:
        conn.execute(
            "insert into ValidPaths (path, hash, registrationTime, narSize) values (?, ?, 1, 120)",
            (foreign, "sha256:" + "0" * 64),
        )
    conn.close()


def test_verify_reports_a_mixed_database_and_repair_fixes_it(tmp_path: Path) -> None:
    """A database already mixed: `store verify` names the foreign store dir and the repair; with
    `--repair` the foreign rows go (files untouched) and the next verify is clean.

    Before: verify failed with "path '…' is not in the Nix store '/opt/store'" and no way out.
    """
    state, path = _legacy(tmp_path)
    foreign = f"{tmp_path}/c10/{os.path.basename(path)}"
    _mix(state, foreign)
    s = LocalStore(local_spec_for("/opt/store", state_dir=str(state), real_dir=str(tmp_path / "a")))
    try:
        assert not (state / "db" / MARKER).exists()  # mixed: no marker until repaired
        report = verify_store(s)
        assert not report.ok
        (message,) = report.errors
        assert f"'{tmp_path}/c10'" in message and "store verify --repair" in message
        repaired = verify_store(s, repair=True)
        assert repaired.ok and "removed those rows" in repaired.fixed[0]
        assert verify_store(s).ok and s.is_valid_path(s.store_dir.parse_path(path))
    finally:
        s.close()
    assert _rows(state) == [path]
    assert (state / "db" / MARKER).read_text() == "/opt/store\n"


def test_real_nix_reads_a_store_with_the_marker(tmp_path: Path) -> None:
    """Nix 2.8 verifies, queries and garbage-collects a storekit store holding the marker file."""
    nix = make_nix_store(tmp_path / "n")
    s = LocalStore(local_spec_for(nix.store_dir, state_dir=str(nix.state_dir)))
    path = str(s.add_text("marked", b"nix reads me\n"))
    s.close()
    assert (nix.state_dir / "db" / MARKER).read_text() == nix.store_dir + "\n"
    nix.run("nix-store", "--verify", "--check-contents")
    assert nix.text("nix-store", "--query", "--hash", path).startswith("sha256:")
    nix.run("nix-store", "--gc")
    assert (nix.state_dir / "db" / MARKER).exists()
    assert nix.text("nix", "path-info", "--all") == ""
