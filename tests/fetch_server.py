"""A file server on 127.0.0.1 for `builtin:fetchurl` tests: Python's http.server in a thread, plain or
TLS with a self-signed certificate made for the run by the openssl command."""

from __future__ import annotations

import contextlib
import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path


class _Quiet(http.server.SimpleHTTPRequestHandler):
    hits: list[str]

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.hits.append(self.path)

    def log_message(self, format: str, *args: object) -> None:
        pass


def self_signed(dir: Path) -> tuple[Path, Path]:
    key, cert = dir / "key.pem", dir / "cert.pem"
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key)]
    argv += ["-out", str(cert)]
    subprocess.run([*argv, "-subj", "/CN=127.0.0.1", "-days", "2"], check=True, capture_output=True)
    return key, cert


@contextlib.contextmanager
def serve(root: Path, *, tls: tuple[Path, Path] | None = None) -> Iterator[tuple[str, list[str]]]:
    """Serve `root`; yields (base URL, the request paths seen so far)."""
    hits: list[str] = []
    handler = type("Handler", (_Quiet,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[1]), str(tls[0]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
