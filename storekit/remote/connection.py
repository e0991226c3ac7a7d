"""One connection to a far side's `nix-store --serve --write`, over the `ssh` client.

The ssh process's stdin and stdout carry the serve protocol; its stderr carries ssh's own messages
and, during a build, the far side's build log. A thread reads stderr as it comes: each piece goes to
the current log sink (so a builder's log reaches the user while it runs) and the last lines are kept
for error messages, since that is where the far side says why it gave up.

Every read waits with a deadline (`select`): the greeting must come within `connect_timeout`, a
build within its `--timeout` (plus a grace for the far side to report it); a peer that goes quiet
beyond that is cut off, never waited on for ever. Any failure marks the connection bad (the pool
drops it) and becomes a one-line `RemoteError` naming the host and what the far side said.

The greeting follows Nix's `LegacySSHStore::openConnection`: send magic 1 and our version, read magic
2 and the far side's version. Bytes that are not magic 2 are what a shell start-up file printed on
the far side; they are shown, and stdin is closed so the far side cannot keep us waiting. Then a
probe (`QueryValidPaths` of a made-up path of our store dir) makes a far side with another store
dir say so now, rather than in the middle of a copy.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

from storekit.errors import RemoteError, WireFormatError
from storekit.storepath import StoreDir
from storekit.wire.framing import WireReader, WireWriter
from storekit.wire.serve import NIX_2_8_VERSION, SERVE_MAGIC_1, SERVE_MAGIC_2, ServeCommand

CLIENT_VERSION = NIX_2_8_VERSION
"""The version storekit's client asks for: Nix 2.8's (2.7), which both real Nix and storekit serve."""
CONNECT_TIMEOUT = 60.0
_TAIL_LINES = 20
_SHOWN = 200

LogSink = Callable[[bytes], None]


def show_version(version: int) -> str:
    return f"{version >> 8}.{version & 0xFF}"


class _StderrPump:
    """Reads the ssh process's stderr on a thread: to the current sink, and the last lines kept.

    Bytes are read and handled only under a lock, so `settle()` can take what is already in the
    pipe itself: after a build's result (stdout), the log it wrote before (stderr, the same ssh
    channel, so already in the pipe) reaches the sink before the sink is taken away.
    """

    def __init__(self, fd: int) -> None:
        self.sink: LogSink | None = None
        self._fd = fd
        self._ended = False
        self._lines: deque[bytes] = deque(maxlen=_TAIL_LINES)
        self._partial = b""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="ssh-stderr")
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # closed under us: the connection is gone
            while not self._ended:
                select.select([self._fd], [], [], 0.2)
                self.settle()

    def settle(self) -> None:
        """Handle whatever the pipe holds now (without waiting for more)."""
        with self._lock:
            while not self._ended and select.select([self._fd], [], [], 0)[0]:
                data = os.read(self._fd, 1 << 16)
                if not data:
                    self._ended = True
                    return
                if self.sink is not None:
                    self.sink(data)
                lines = (self._partial + data).split(b"\n")
                self._partial = lines.pop()[-4096:]
                self._lines.extend(line.rstrip(b"\r") for line in lines if line.strip())

    def stop(self) -> None:
        """Stop reading (the thread ends within its select timeout), before the pipe is closed."""
        with self._lock:
            self._ended = True
        self._thread.join(1.0)

    def tail(self, wait: float = 0.0) -> str:
        """The far side's last words (waiting up to `wait` for the stream to end: ssh exiting)."""
        self._thread.join(wait)
        with contextlib.suppress(OSError, ValueError):
            self.settle()
        with self._lock:
            lines = [*self._lines, *([self._partial] if self._partial.strip() else [])]
        return "; ".join(line.decode("utf-8", "replace").strip() for line in lines[-5:])


class _DeadlineReader(io.RawIOBase):
    """The ssh process's stdout as a raw stream whose reads fail once the connection's deadline passes."""

    def __init__(self, fd: int, conn: Connection) -> None:
        self._fd, self._conn = fd, conn

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        deadline = self._conn.deadline
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._fd], [], [], wait)
            if ready:
                data = os.read(self._fd, len(buffer))
                buffer[: len(data)] = data
                return len(data)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(self._conn.timeout_reason)


class Connection:
    """A running `ssh HOST 'nix-store --serve --write'`, after the greeting; `SshStore.connection()`
    lends them out one exchange at a time."""

    def __init__(self, argv: list[str], host: str, store_dir: StoreDir, *, connect_timeout: float) -> None:
        self.host, self.store_dir = host, store_dir
        self.good = True
        self.deadline: float | None = None
        self.timeout_reason = ""
        try:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                bufsize=0, start_new_session=True,
            )  # fmt: skip
        except OSError as e:
            raise RemoteError(
                host, f"cannot connect to '{host}': cannot run '{argv[0]}': {e.strerror}"
            ) from e
        assert self._proc.stdin and self._proc.stdout and self._proc.stderr
        self._stdin = self._proc.stdin
        self._stderr = _StderrPump(self._proc.stderr.fileno())
        raw = _DeadlineReader(self._proc.stdout.fileno(), self)
        self._stdout = io.BufferedReader(raw, 1 << 17)
        self.reader = WireReader(self._stdout)
        try:
            self.version = self._greet(connect_timeout)
            self._probe_store_dir()
        except BaseException:
            self.close()
            raise

    # --- plumbing ---------------------------------------------------------------------------------------

    def send(self, data: bytes | WireWriter) -> None:
        payload = data.getvalue() if isinstance(data, WireWriter) else data
        try:
            self._stdin.write(payload)
        except OSError as e:
            self.good = False
            raise self.failure("sending", e) from e

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            self._stdin.flush()

    @contextlib.contextmanager
    def using(self, what: str, *, timeout: float | None = None, reason: str = "") -> Iterator[WireReader]:
        """Run one exchange; a closed connection, a protocol error or a passed deadline become a
        `RemoteError` saying `what` was being done and what the far side said."""
        self.deadline = None if timeout is None else time.monotonic() + timeout
        if timeout is not None:
            self.timeout_reason = reason or f"'{self.host}' did not answer within {timeout:g} s"
        try:
            yield self.reader
        except (WireFormatError, OSError) as e:
            self.good = False
            raise self.failure(what, e) from e
        except BaseException:
            self.good = False
            raise
        finally:
            self.deadline = None

    def failure(self, what: str, error: BaseException) -> RemoteError:
        """The error for a connection that broke while doing `what`: the far side's words if any."""
        if f"'{self.host}'" not in what:
            what += f" on '{self.host}'"
        if isinstance(error, TimeoutError):
            self.kill()
            return RemoteError(self.host, f"{what}: {error}")
        self.kill(grace=2.0)
        said = self._stderr.tail(wait=2.0)
        detail = f": {said}" if said else f" ({error})"
        return RemoteError(self.host, f"{what}: the connection was lost{detail}")

    @property
    def stream(self) -> io.BufferedReader[_DeadlineReader]:
        """The far side's output as raw bytes (a NAR is not made of wire values)."""
        return self._stdout

    def settle_log(self) -> None:
        """Pass on what the far side wrote to stderr before what was just read from its stdout."""
        with contextlib.suppress(OSError, ValueError):
            self._stderr.settle()

    @property
    def log_sink(self) -> LogSink | None:
        return self._stderr.sink

    @log_sink.setter
    def log_sink(self, sink: LogSink | None) -> None:
        self._stderr.sink = sink

    def kill(self, grace: float = 0.0) -> None:
        """End the ssh process (waiting `grace` seconds for it to end by itself first)."""
        self.good = False
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._proc.wait(grace)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def close(self) -> None:
        """Close stdin (the far side's serve loop ends at EOF) and reap ssh."""
        self.kill(grace=5.0)
        self._stderr.tail(wait=1.0)  # let the reader see ssh's end of stderr before it is closed
        self._stderr.stop()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    # --- the greeting -----------------------------------------------------------------------------------

    def _greet(self, timeout: float) -> int:
        self.send(WireWriter().u64(SERVE_MAGIC_1).u64(CLIENT_VERSION))
        reason = f"no answer from '{self.host}' within {timeout:g} s"
        self.deadline = time.monotonic() + timeout
        self.timeout_reason = reason
        try:
            head = self._stdout.read(8)
            if len(head) < 8:
                said = self._stderr.tail(wait=5.0) if self._exited(5.0) else ""
                raise RemoteError(
                    self.host, f"cannot connect to '{self.host}'" + (f": {said}" if said else "")
                )
            if int.from_bytes(head, "little") != SERVE_MAGIC_2:
                raise self._mismatch(head)
            rest = self._stdout.read(8)
            if len(rest) < 8:
                raise RemoteError(self.host, f"cannot connect to '{self.host}': it closed the connection")
            version = int.from_bytes(rest, "little")
        except TimeoutError as e:
            raise RemoteError(self.host, f"cannot connect to '{self.host}': {e}") from e
        finally:
            self.deadline = None
        if version >> 8 != 2:
            raise RemoteError(
                self.host,
                f"'{self.host}' speaks serve protocol version {show_version(version)}, which storekit "
                f"does not (it speaks 2.x, up to {show_version(CLIENT_VERSION)})",
            )
        return min(version, CLIENT_VERSION)

    def _mismatch(self, head: bytes) -> RemoteError:
        """Not the serve protocol: show what came instead (closing stdin so the far side stops waiting)."""
        with contextlib.suppress(OSError):
            self._stdin.close()
        got = head + self._drain(2.0)
        shown = _printable(got[:_SHOWN])
        return RemoteError(
            self.host,
            f"'nix-store --serve' protocol mismatch from '{self.host}': it printed '{shown}' instead of "
            "the serve protocol's greeting (does a shell start-up file on the far side, such as "
            "~/.bashrc, write to stdout? It must not for non-interactive shells)",
        )

    def _drain(self, timeout: float) -> bytes:
        self.deadline = time.monotonic() + timeout
        out = b""
        with contextlib.suppress(OSError, TimeoutError, ValueError):
            while len(out) < _SHOWN and (data := self._stdout.read1(_SHOWN)):
                out += data
        return out

    def _exited(self, wait: float) -> bool:
        try:
            self._proc.wait(wait)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _probe_store_dir(self) -> None:
        """Make a far side with another store dir refuse now, naming ours (and its own if it says)."""
        probe = self.store_dir.path + "/" + "0" * 32 + "-storekit-store-dir-probe"
        self.send(WireWriter().u64(ServeCommand.QueryValidPaths).bool(False).bool(False).strings([probe]))
        try:
            with self.using("checking the store dir", timeout=CONNECT_TIMEOUT) as r:
                r.strings()
        except RemoteError as e:
            said = self._stderr.tail()
            if probe not in said and "not in the" not in said:
                raise
            raise RemoteError(
                self.host,
                f"'{self.host}' refused a path of store dir '{self.store_dir}': its store has another "
                f"store dir (both sides must have the same)" + (f"; it said: {said}" if said else ""),
            ) from e


def _printable(data: bytes) -> str:
    """What a person would read of `data`: its text up to the first binary byte, lines joined."""
    text = data.decode("utf-8", "replace")
    binary = (i for i, c in enumerate(text) if c == "\ufffd" or not (c.isprintable() or c in "\n\r\t"))
    end = next(binary, len(text))
    return " ".join(line.strip() for line in text[:end].splitlines() if line.strip())
