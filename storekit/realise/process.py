"""Running a builder process: output on a raw pseudo-terminal copied to a sink, a deadline, cancellation,
and killing the whole process tree.

Nix gives builders a pseudo-terminal for stdout and stderr (in raw mode, so `\n` stays `\n`), which
programs that check `isatty` notice; storekit does the same. The child runs in a new session (its own
process group); for a sandboxed build the child is bwrap, whose builder is pid 1 of a pid namespace
and dies with bwrap (`--die-with-parent`), so killing bwrap's group takes every process of the build
with it, however deep the builder forked.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
import tty
from collections.abc import Callable, Sequence

from storekit.errors import BuildError, SandboxError
from storekit.programs import which

#: After an unsandboxed builder exits, how long children of it may keep the terminal busy.
LINGER_S = 1.0

#: Signals a builder must get with their default action, as Nix's builders do.
DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGQUIT)


def with_default_signals(argv: Sequence[str], executable: str | None) -> tuple[list[str], str | None]:
    """`argv` (and its executable) so that it starts with SIGINT and SIGQUIT at their default action.

    A process started in the background by a shell inherits these two ignored, and an ignored
    signal stays ignored across exec: a builder would inherit it, and test suites that interrupt
    their own children (m4's test-execute, for one) fail. Popen can only reset them through
    `preexec_fn`, which is unsafe with the scheduler's threads, so coreutils' `env
    --default-signal` does it, only when one of them is ignored here.
    """
    ignored = [s for s in DEFAULT_SIGNALS if signal.getsignal(s) == signal.SIG_IGN]
    if not ignored:
        return list(argv), executable
    env = which("env") or "/usr/bin/env"
    names = ",".join(signal.Signals(s).name[3:] for s in ignored)
    return [env, f"--default-signal={names}", "--", executable or argv[0], *argv[1:]], None


def memfd(name: str, data: bytes) -> int:
    """An anonymous in-memory file holding `data`, read from its start; close-on-exec unless passed."""
    fd = os.memfd_create(f"storekit-{name}")
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def run_logged(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None,
    executable: str | None,
    cwd: str,
    fds: Sequence[int],
    sink: Callable[[bytes], None],
    label: str,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    tail: Callable[[], str] = str,
    attach: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
) -> int:
    """Run `argv` until it and its output are done; returns its exit status (negative: a signal).

    Raises `BuildError` (after killing it) on timeout or when `cancel` is set; `tail()` gives the
    last log lines for the message. `attach()`, entered once the child runs and left when it is
    done, sets up what the child waits for (a fixed-output build's network); if it fails, the child
    is killed.
    """
    argv, executable = with_default_signals(argv, executable)
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        proc = subprocess.Popen(
            argv,
            executable=executable,
            env=env if env is not None else {},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            pass_fds=tuple(fds),
            start_new_session=True,
            umask=0o022,
        )
    except OSError as e:
        os.close(master)
        raise SandboxError(label, f"cannot start '{argv[0]}': {e.strerror}") from e
    finally:
        os.close(slave)
    try:
        with attach() if attach is not None else contextlib.nullcontext():
            _pump(proc, master, sink, label, timeout, cancel, tail)
    finally:
        os.close(master)
        kill_tree(proc)
    return proc.wait()


def _pump(
    proc: subprocess.Popen[bytes],
    master: int,
    sink: Callable[[bytes], None],
    label: str,
    timeout: float | None,
    cancel: threading.Event | None,
    tail: Callable[[], str],
) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    exited_at: float | None = None
    while True:
        if cancel is not None and cancel.is_set():
            raise BuildError(label, "cancelled (another build failed, or the run was interrupted)")
        if deadline is not None and time.monotonic() > deadline:
            raise BuildError(label, f"timed out after {timeout:g} seconds", tail())
        ready, _, _ = select.select([master], [], [], 0.2)
        if not ready:
            if proc.poll() is not None:
                # an unsandboxed builder may leave children holding the terminal: stop shortly after
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > LINGER_S:
                    return
            continue
        try:
            data = os.read(master, 1 << 16)
        except OSError:  # EIO: every writer has gone
            return
        if not data:
            return
        sink(data)


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group (for bwrap: the whole sandbox, through its pid namespace)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
