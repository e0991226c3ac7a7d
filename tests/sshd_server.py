"""A real SSH server for tests and bench: Debian's openssh-server `sshd` on 127.0.0.1.

Everything lives in a scratch dir: a host key and a client key made for the run, an authorized_keys
file holding the client key (for the user running the tests, root or not), a known_hosts file holding
the host key, and an `sshd_config` that reads nothing of the machine's (`-f`), listens on a free port
of 127.0.0.1 only and allows public-key logins only. `sshd -D -e` runs in the foreground as a child of
the test process and logs to `sshd.log`; an `atexit` hook and a watchdog stop it, so an interrupted run
leaves no daemon behind.

Clients reach it the way Nix does: `ssh` with `$NIX_SSHOPTS` (`env()`), or `ssh_argv()` for a direct
call. `ssh_config` is a client config file naming the port, key and known hosts, for tools that read
`-F` (and for users' `~/.ssh/config`-style set-ups).

The far side runs the remote command with sshd's own environment: a minimal PATH and none of the
test's variables. `wrapper()` writes a script that sets an environment and execs a program, which is
how a test gives the far side's `nix-store` its NIX_CONFIG (what a user's shell profile does).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import getpass
import os
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

WATCHDOG = 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill "$2" 2>/dev/null'
INSTALL = "apt-get install --no-install-recommends openssh-server openssh-client"


def missing_tools() -> list[str]:
    return [t for t in ("sshd", "ssh", "ssh-keygen") if _which(t) is None]


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sshd:
    """A running sshd; `host` is `user@127.0.0.1`, `env()` gives NIX_SSHOPTS for Nix and storekit."""

    root: Path
    port: int = field(default_factory=free_port)
    user: str = field(default_factory=getpass.getuser)
    _proc: subprocess.Popen[bytes] | None = None
    _watchdog: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"{self.user}@127.0.0.1"

    @property
    def client_key(self) -> Path:
        return self.root / "client_ed25519"

    @property
    def host_key(self) -> Path:
        return self.root / "host_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh_config"

    @property
    def log(self) -> Path:
        return self.root / "sshd.log"

    def base64_host_key(self) -> str:
        """The host's public key as Nix's `base64-ssh-public-host-key` URI parameter wants it."""
        return base64.b64encode(self.host_key.with_suffix(".pub").read_bytes()).decode()

    def ssh_options(self) -> list[str]:
        """Options for `ssh` (before the host) that reach this server and no other."""
        return ["-F", str(self.ssh_config)]

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default: os.environ) with NIX_SSHOPTS set, as a user would set it for Nix."""
        env = dict(os.environ if base is None else base)
        env["NIX_SSHOPTS"] = shlex.join(self.ssh_options())
        return env

    def ssh_argv(self, command: Sequence[str]) -> list[str]:
        """argv running `command` on the far side (joined by the remote shell, as ssh does)."""
        return ["ssh", *self.ssh_options(), self.host, "--", shlex.join(command)]

    def wrapper(self, name: str, program: str, env: Mapping[str, str]) -> Path:
        """A script `name` in the scratch dir that sets `env` and execs `program "$@"` on the far side."""
        path = self.root / "bin" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
        path.write_text(f'#!/bin/sh\n{exports}exec {shlex.quote(program)} "$@"\n')
        path.chmod(0o755)
        self.root.chmod(0o755)  # the far side (same user) must reach it; nothing secret is in bin/
        return path

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for key in (self.host_key, self.client_key):
            if not key.exists():
                argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key.name, "-f", str(key)]
                subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        auth = self.root / "authorized_keys"
        auth.write_text(self.client_key.with_suffix(".pub").read_text())
        auth.chmod(0o600)
        host_pub = self.host_key.with_suffix(".pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        (self.root / "sshd_config").write_text(self._server_config(auth))
        self.ssh_config.write_text(self._client_config())
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        sshd = _which("sshd")
        assert sshd is not None, INSTALL
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(self.root / "sshd_config")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        atexit.register(self.stop)
        self._watchdog = subprocess.Popen(
            ["sh", "-c", WATCHDOG, "sshd-watchdog", str(os.getpid()), str(self._proc.pid)],
            start_new_session=True, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._wait_ready()

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                log = self.log.read_text()[-2000:]
                raise RuntimeError(f"sshd exited with {self._proc.returncode}: {log}")
            done = subprocess.run(self.ssh_argv(["true"]), capture_output=True, timeout=30, check=False,
                                  stdin=subprocess.DEVNULL)  # fmt: skip
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not accept a login: {done.stderr.decode()[-1000:]}")
            time.sleep(0.1)

    def _server_config(self, auth: Path) -> str:
        return f"""ListenAddress 127.0.0.1:{self.port}
HostKey {self.host_key}
PidFile none
AuthorizedKeysFile {auth}
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowUsers {self.user}
X11Forwarding no
AllowAgentForwarding no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 100
LogLevel INFO
"""

    def _client_config(self) -> str:
        return f"""Host 127.0.0.1
  Port {self.port}
  User {self.user}
  IdentityFile {self.client_key}
  IdentitiesOnly yes
  UserKnownHostsFile {self.known_hosts}
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
"""


def start_sshd(root: Path) -> Iterator[Sshd]:
    """Yield a started sshd (pytest-skipped where openssh-server is missing), stopped afterwards."""
    import pytest

    missing = missing_tools()
    if missing:
        pytest.skip(f"sshd tests need {', '.join(missing)} ({INSTALL})")
    server = Sshd(root)
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
