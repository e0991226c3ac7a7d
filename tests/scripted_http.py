"""A scripted HTTP/1.1 server on 127.0.0.1 for the clients' own tests (`s3_conn`, `http_lean`).

Real servers (radosgw, nginx) do not produce on demand the cases a client must survive: a chunked
body, a kept-alive connection closed meanwhile, a body cut short, a silence. Here each connection
the server accepts follows a script of canned answers, one per request it reads, on a thread of its
own; every request read is kept for the test to look at.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator

#: One connection's script, one item per request read: bytes to send; None reads the request and
#: closes the connection without answering; bytes ending in `CLOSE` are sent (without it) and the
#: connection closed; `STALL` sends nothing until the client hangs up.
Script = list[bytes | None]
CLOSE = b"<close>"
STALL = b"<stall>"


class ScriptedServer:
    """Connection i (in the order accepted) follows `scripts[i]`; TLS when given a context."""

    def __init__(self, scripts: list[Script], tls: ssl.SSLContext | None = None) -> None:
        self.scripts, self.tls = scripts, tls
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        for script in self.scripts:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn, script), daemon=True).start()

    def _answer(self, conn: socket.socket, script: Script) -> None:
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except ssl.SSLError:  # the client refused our certificate
                conn.close()
                return
        with conn, conn.makefile("rb") as f:
            for answer in script:
                request = read_request(f)
                if request is None:
                    break
                self.requests.append(request)
                if answer is None:
                    break
                if answer == STALL:
                    conn.recv(1)  # until the client gives up and closes
                    break
                conn.sendall(answer.removesuffix(CLOSE))
                if answer.endswith(CLOSE):
                    break

    def close(self) -> None:
        self.sock.close()


def read_request(f: object) -> bytes | None:
    """One request, its head and its body (by Content-Length), or None once the client has closed."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = f.readline()  # type: ignore[attr-defined]
        if not line:
            return None
        head += line
    lines = head.lower().split(b"\r\n")
    length = next((int(h.split(b":")[1]) for h in lines if h.startswith(b"content-length:")), 0)
    return head + (f.read(length) if length else b"")  # type: ignore[attr-defined]


def scripted_servers() -> Iterator[object]:
    """The body of a fixture: yields `start(*scripts)`, which starts a server; closes them all after."""
    servers: list[ScriptedServer] = []

    def start(*scripts: Script) -> ScriptedServer:
        servers.append(ScriptedServer(list(scripts)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
