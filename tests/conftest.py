from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

from nixoracle import NixStore, make_nix_store
from s3_server import RadosGW, start_radosgw
from sshd_server import Sshd, start_sshd

# Property tests assert behaviour, never speed: on a loaded 2-core machine input generation can take
# over a second, which Hypothesis's timing checks would report as a failure.
settings.register_profile("storekit", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("storekit")


@pytest.fixture
def nix_store(tmp_path: Path) -> Iterator[NixStore]:
    """A fresh real-Nix store whose store dir is `<tmp>/nix/store` (never /nix/store)."""
    yield make_nix_store(tmp_path / "nix")


@pytest.fixture(scope="session")
def radosgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadosGW]:
    """A real S3 server (Ceph's radosgw) on 127.0.0.1 for the session; skipped where it is missing."""
    yield from start_radosgw(tmp_path_factory.mktemp("radosgw"))


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A real sshd on 127.0.0.1 for the session, logging in the running user by a key made for the run."""
    yield from start_sshd(tmp_path_factory.mktemp("sshd"))
