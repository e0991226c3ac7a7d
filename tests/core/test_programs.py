"""`storekit.programs.which` finds what `shutil.which` finds (it stands in for it on the build path)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from storekit.programs import which


def test_which_agrees_with_shutil_on_this_machine() -> None:
    for name in ("sh", "env", "bwrap", "no-such-program-storekit", "/bin/sh", "/no/such/program"):
        assert which(name) == shutil.which(name)


def test_which_skips_what_cannot_run(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "tool").write_text("#!/bin/sh\n")  # not executable
    (first / "dir-tool").mkdir()  # a directory, even a searchable one, is not a program
    (second / "tool").write_text("#!/bin/sh\n")
    (second / "tool").chmod(0o755)
    (second / "dir-tool").write_text("#!/bin/sh\n")
    (second / "dir-tool").chmod(0o755)
    path = os.pathsep.join([str(first), str(second)])
    assert which("tool", path=path) == str(second / "tool")
    assert which("dir-tool", path=path) == str(second / "dir-tool")
    assert which("tool", path=str(first)) is None
    assert which("tool", path=path) == shutil.which("tool", path=path)
