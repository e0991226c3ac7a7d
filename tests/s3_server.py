"""A real S3 server for tests and bench: Ceph's radosgw (Debian's packages) on 127.0.0.1.

One monitor, one OSD on `memstore` (data in RAM), no auth between the daemons, and radosgw's beast
frontend at a free port; everything lives in a scratch dir, the daemons write pid files there and are
stopped by those pids (SIGKILL: a throwaway memstore cluster has nothing to flush). An `atexit` hook
stops them too, so an interrupted run leaves no daemon behind. Start-up is about 2-4 s.
Settings and quirks: ../shared/S3-NOTES.md (ceph.conf, path-style addressing, `LocationConstraint`).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

TOOLS = ("monmaptool", "ceph-mon", "ceph-osd", "ceph", "radosgw", "radosgw-admin")
ACCESS_KEY = "storekit-test-access"
SECRET_KEY = "storekit-test-secret-0123456789abcdef"
WATCHDOG = (
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done; for f in "$2"/*.pid; do kill -9 "$(cat "$f")"; done'
)
INSTALL = "apt-get install --no-install-recommends radosgw ceph-mon ceph-osd"


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RadosGW:
    """A running radosgw; `endpoint` is http://127.0.0.1:PORT, `env()` its credentials for boto3/aws."""

    root: Path
    mon_port: int = field(default_factory=free_port)
    port: int = field(default_factory=free_port)
    memory: int = 2 << 30  # memstore's limit: objects live in the OSD's RAM
    _watchdog: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spec(self, bucket: str, store_dir: str, **params: str) -> str:
        extra = "".join(f"&{k.replace('_', '-')}={v}" for k, v in params.items())
        return f"s3://{bucket}?endpoint=127.0.0.1:{self.port}&scheme=http&store={store_dir}{extra}"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=str(self.root / "aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.root / "aws-credentials"),
        )
        env.pop("AWS_PROFILE", None)
        return env

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "ceph.conf"
        conf.write_text(self._conf())
        fsid = uuid.uuid4()
        mon = f"[v2:127.0.0.1:{self.mon_port}]"
        self._ceph(
            "monmaptool", "--create", "--fsid", str(fsid), "--addv", "a", mon, str(self.root / "monmap")
        )
        self._ceph(
            "ceph-mon", "--mkfs", "-i", "a", "--monmap", str(self.root / "monmap"), "--keyring", "/dev/null"
        )
        atexit.register(self.stop)
        # and if this process dies without running atexit (SIGKILL), a watchdog kills the daemons
        self._watchdog = subprocess.Popen(
            ["sh", "-c", WATCHDOG, "s3-watchdog", str(os.getpid()), str(self.root / "run")],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._ceph("ceph-mon", "-i", "a")
        osd_uuid = str(uuid.uuid4())
        osd_id = self._ceph("ceph", "osd", "new", osd_uuid).strip()
        self._ceph("ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid)
        self._ceph("ceph-osd", "-i", osd_id)
        self._wait(self._osd_up, "the OSD to come up")
        self._ceph("radosgw", "-n", "client.rgw")
        self._wait(self._answers, "radosgw to answer HTTP")
        self._ceph("radosgw-admin", "user", "create", "--uid=storekit", "--display-name=storekit",
                   f"--access-key={ACCESS_KEY}", f"--secret-key={SECRET_KEY}")  # fmt: skip
        (self.root / "aws-config").write_text("[default]\nregion = us-east-1\n")
        (self.root / "aws-credentials").write_text("")

    def stop(self) -> None:
        """SIGKILL every daemon by its pid file (radosgw first, so clients see a dead endpoint)."""
        self.kill("client.rgw")
        for pid_file in sorted((self.root / "run").glob("*.pid")):
            self.kill(pid_file.name.removesuffix(".pid"))
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None

    def kill(self, name: str = "client.rgw") -> None:
        pid_file = self.root / "run" / f"{name}.pid"
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):  # wait until it is gone, so its port is free again
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                    break
                time.sleep(0.05)
            pid_file.unlink()

    def restart_gateway(self) -> None:
        self._ceph("radosgw", "-n", "client.rgw")
        self._wait(self._answers, "radosgw to answer HTTP again")

    def _conf(self) -> str:
        r = self.root
        return f"""[global]
fsid = {uuid.uuid4()}
mon host = v2:127.0.0.1:{self.mon_port}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
keyring = /dev/null
run dir = {r}/run
pid file = {r}/run/$name.pid
admin socket = {r}/run/$name.asok
log file = {r}/log/$name.log
mon cluster log file = {r}/log/cluster.log
crash dir = {r}/crash
mon data = {r}/mon/$cluster-$id
osd data = {r}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = {self.memory}
osd crush chooseleaf type = 0
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
paxos propose interval = 0.1
[client]
ms mon client mode = crc
rgw frontends = beast endpoint=127.0.0.1:{self.port} tcp_nodelay=1
"""

    def _ceph(self, *argv: str) -> str:
        for sub in ("run", "log", "crash", "mon", "osd/ceph-0"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, CEPH_CONF=str(self.root / "ceph.conf"))
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
        return done.stdout

    def _osd_up(self) -> bool:
        with contextlib.suppress(RuntimeError, ValueError):
            return int(json.loads(self._ceph("ceph", "osd", "stat", "-f", "json")).get("num_up_osds", 0)) >= 1
        return False

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint, timeout=2).close()
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    def _wait(self, ready: object, what: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}; logs in {self.root / 'log'}")
            time.sleep(0.1)


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    return True


def start_radosgw(root: Path) -> Iterator[RadosGW]:
    """The session fixture's body: skip (fail in CI) without Ceph's packages; always stop by pid."""
    import pytest

    missing = missing_tools()
    if missing:
        why = f"radosgw not installed ({', '.join(missing)} missing): {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    gateway = RadosGW(root)
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.stop()
