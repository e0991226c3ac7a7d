"""`storekit bootstrap init DIR`: the shipped profiles, written out for an install without a checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from storekit.bootstrap.config import load_profile
from storekit.bootstrap.profiles import shipped_files
from storekit.cli import main

REPO = Path(__file__).resolve().parent.parent.parent


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_init_writes_the_repository_profiles_and_they_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = sorted(p.relative_to(REPO / "bootstrap").as_posix() for p in (REPO / "bootstrap").rglob("*.*"))
    assert sorted(shipped_files()) == repo  # the package data is the repository's bootstrap/
    code, out, err = run(capsys, "bootstrap", "init", str(tmp_path / "b"))
    assert code == 0 and err == f"wrote {len(repo)} files under '{tmp_path / 'b'}'\n"
    assert out.split() == [
        str(tmp_path / "b" / "lfs" / n) for n in ("lfs-debian.toml", "lfs.toml", "mini.toml")
    ]
    for rel in repo:
        assert (tmp_path / "b" / rel).read_bytes() == (REPO / "bootstrap" / rel).read_bytes()
    for name in ("mini", "lfs", "lfs-debian"):
        load_profile(str(tmp_path / "b" / "lfs" / f"{name}.toml"))  # builder and scripts resolve
    assert (
        run(capsys, "bootstrap", "init", str(tmp_path / "b"))[2]
        == f"wrote 0 files under '{tmp_path / 'b'}'\n"
    )


def test_init_refuses_a_changed_file_before_writing_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lfs").mkdir()
    (tmp_path / "lfs" / "mini.toml").write_text("# mine\n")
    code, _, err = run(capsys, "bootstrap", "init", str(tmp_path))
    assert code == 1 and "refusing to overwrite" in err and "lfs/mini.toml" in err
    assert [p.name for p in tmp_path.rglob("*")] == ["lfs", "mini.toml"]
    assert (tmp_path / "lfs" / "mini.toml").read_text() == "# mine\n"
