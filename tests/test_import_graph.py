"""The import-graph check of `just lint` (scripts/check_imports.py) finds cycles and upward imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "check_imports.py"


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root)], capture_output=True, text=True, check=False
    )


def package(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"storekit/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_tree_has_no_cycle_and_no_upward_import() -> None:
    result = check(REPO)
    assert result.returncode == 0, result.stderr


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    root = package(
        tmp_path,
        {
            "storekit/store/__init__.py": "",
            "storekit/store/a.py": "from storekit.store import b\n",
            "storekit/store/b.py": "def f():\n    from storekit.store.a import x\n",
        },
    )
    result = check(root)
    assert result.returncode == 1
    assert "import cycle among 2 modules" in result.stderr
    assert "storekit/store/b.py:2: storekit.store.b -> storekit.store.a" in result.stderr


def test_an_upward_import_is_named(tmp_path: Path) -> None:
    root = package(
        tmp_path,
        {
            "storekit/hashing.py": "from storekit.store.base import Store\n",
            "storekit/store/__init__.py": "",
            "storekit/store/base.py": "from storekit import hashing\n",
            "storekit/relocate/__init__.py": "",
            "storekit/relocate/plan.py": "from storekit.transfer.copy import copy_closure\n",
            "storekit/transfer/__init__.py": "",
            "storekit/transfer/copy.py": "",
        },
    )
    result = check(root)
    assert result.returncode == 1
    assert "storekit/hashing.py:1: upward import storekit.store.base (core imports store)" in result.stderr
    assert "workflow relocate imports transfer, which comes after it" in result.stderr
