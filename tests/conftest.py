from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

from nixoracle import NixStore, make_nix_store
from s3_server import RadosGW, start_radosgw
from sshd_server import Sshd, start_sshd

# Real Nix reads the machine's /etc/nix/nix.conf, which Debian's nix-bin ships without: the nixbld
# group comes from nix-setup-systemd (it needs systemd), so on a plain machine Nix 2.8, as root,
# warns on every command that the group 'nixbld' does not exist, and the output the tests compare
# differs. The stores the tests use are daemon-less and build without build users, so every Nix
# they start reads this user configuration too (a docs example's own NIX_CONFIG or NIX_CONF_DIR
# does not replace it).
if "NIX_USER_CONF_FILES" not in os.environ:
    _nix_conf_dir = tempfile.mkdtemp(prefix="storekit-tests-nix-")
    atexit.register(shutil.rmtree, _nix_conf_dir, ignore_errors=True)
    _nix_user_conf = Path(_nix_conf_dir, "nix.conf")
    _nix_user_conf.write_text("build-users-group =\n")
    os.environ["NIX_USER_CONF_FILES"] = str(_nix_user_conf)

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
