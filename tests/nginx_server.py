"""A real nginx (Debian's nginx-light) serving a directory as a binary cache on 127.0.0.1, for tests.

The configuration is the one docs/caches.md shows for the origin of a cache hierarchy: static files,
the Nix MIME types, an access log (which the tests count requests in). nginx runs in the foreground
from a config in the test's temp dir, on a free port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NGINX_CONF = """\
{user}daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    types {{
        text/x-nix-cache-info nix-cache-info;
        text/x-nix-narinfo narinfo;
        application/x-nix-nar nar xz zst bz2;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {cache};
        location / {{ try_files $uri =404; }}
    }}
}}
"""


@dataclass(frozen=True)
class Nginx:
    url: str
    access_log: Path

    def requests(self) -> list[str]:
        """The request lines (`GET /x.narinfo HTTP/1.1`) logged so far."""
        if not self.access_log.exists():
            return []
        return [line.split('"')[1] for line in self.access_log.read_text().splitlines() if '"' in line]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def nginx_serving(cache: Path, root: Path) -> Iterator[Nginx]:
    """nginx serving `cache` (state in `root`) until the block ends; skipped where nginx is missing."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        if os.environ.get("CI"):
            pytest.fail("nginx (Debian's nginx package) is required in CI")
        pytest.skip("nginx not installed")
    port = free_port()
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=user, root=root, port=port, cache=cache))
    argv = [binary, "-c", str(conf), "-p", str(root), "-e", str(root / "error.log")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, proc, root / "error.log")
        yield Nginx(f"http://127.0.0.1:{port}", root / "access.log")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"nginx exited ({proc.returncode}):\n{log.read_text() if log.exists() else ''}"
            )
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")
