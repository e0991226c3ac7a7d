from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from nixoracle import NixStore, make_nix_store


@pytest.fixture
def nix_store(tmp_path: Path) -> Iterator[NixStore]:
    """A fresh real-Nix store whose store dir is `<tmp>/nix/store` (never /nix/store)."""
    yield make_nix_store(tmp_path / "nix")
