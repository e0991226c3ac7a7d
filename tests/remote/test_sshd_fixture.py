"""The sshd the remote tests start: a login with the run's key works, and only with it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sshd_server import Sshd


def test_login_runs_the_command_on_the_far_side(sshd: Sshd) -> None:
    done = subprocess.run(sshd.ssh_argv(["sh", "-c", "echo $0 $1", "a b", "c"]), capture_output=True,
                          check=True, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.stdout == b"a b c\n"


def test_an_unknown_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    cfg = sshd.ssh_config.read_text().replace(f"IdentityFile {sshd.client_key}", f"IdentityFile {other}")
    (tmp_path / "cfg").write_text(cfg)
    argv = ["ssh", "-F", str(tmp_path / "cfg"), sshd.host, "true"]
    done = subprocess.run(argv, capture_output=True, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 255
    assert b"Permission denied" in done.stderr
