"""docs/compatibility.md and the tests agree: every cell names evidence, every key names a test that
exists, and every golden file a key names is in Nix's golden data (when that data is here)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from nixgolden import golden_root

REPO = Path(__file__).resolve().parent.parent
PAGE = (REPO / "docs" / "compatibility.md").read_text()
KEY = re.compile(r"\[([A-Z][A-Z0-9-]+)\]")
DEFINITION = re.compile(r"^- \[([A-Z][A-Z0-9-]+)\] `([^`]+)::([^`]+)` — (.+)$")


def table_rows() -> list[list[str]]:
    lines = [line for line in PAGE.splitlines() if line.startswith("| ") and not line.startswith("|---")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def definitions() -> dict[str, tuple[str, str, str]]:
    found = {}
    for line in PAGE.splitlines():
        m = DEFINITION.match(line)
        if m:
            assert m.group(1) not in found, f"[{m.group(1)}] is defined twice"
            found[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return found


def test_every_cell_names_evidence_or_claims_nothing() -> None:
    rows = table_rows()
    assert len(rows) >= 10
    for row in rows:
        assert len(row) == 6, row
        for cell in row[1:]:
            assert cell in ("—", "unchecked") or KEY.search(cell), f"{row[0]}: '{cell}' names no evidence"


def test_every_key_is_defined_and_used() -> None:
    used = {k for row in table_rows() for cell in row[1:] for k in KEY.findall(cell)}
    defined = set(definitions())
    assert used <= defined, f"undefined: {sorted(used - defined)}"
    assert defined <= used, f"never used: {sorted(defined - used)}"


@pytest.mark.parametrize("key", sorted(definitions()))
def test_every_key_names_a_test_and_its_golden_file_or_oracle(key: str) -> None:
    file, function, evidence = definitions()[key]
    source = REPO / file
    assert source.is_file(), file
    names = {n.name for n in ast.walk(ast.parse(source.read_text())) if isinstance(n, ast.FunctionDef)}
    assert function in names, f"{file} has no {function}"
    golden = re.search(r"golden `([^`]+)`", evidence)
    assert golden or "oracle:" in evidence, f"[{key}] names neither a golden file nor an oracle"
    root = golden_root()
    if golden and root is not None:
        pattern = golden.group(1)
        base = root / "libstore-tests-data"
        if pattern.startswith("../"):
            base, pattern = root, pattern.removeprefix("../")
        assert list(base.glob(pattern)), f"[{key}]: no golden file matches {pattern}"
