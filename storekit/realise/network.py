"""Outbound network for fixed-output builds, from a network namespace of their own, through pasta.

A fixed-output build may fetch (its result is checked against a hash), but sharing the host's network
namespace, as Nix does, also shares its *abstract* unix sockets: a builder can then hand a writable fd
of its output to any local process, or to another fixed-output build running at once (Nix's
CVE-2024-27297 and CVE-2025-46416). So every build gets its own network namespace (bwrap's
`--unshare-net`), and a fixed-output build gets outbound TCP, UDP and ICMP from pasta (Debian's
`passt`), a user-mode network stack that plugs a tap device into that namespace and forwards its
traffic through ordinary sockets on the host. Unix sockets do not cross it.

The order: bwrap creates the namespaces and reports the sandbox's pid on `--info-fd`, then waits on
`--block-fd` before it runs the builder; storekit opens the sandbox's network namespace and the user
namespace that owns it, hands both to `pasta --config-net` (in the foreground, killed with its parent
thread through setpriv's `--pdeathsig`), waits for pasta's pid file (written once the interface is
configured), and only then lets bwrap go on. The builder never runs without its
network, and pasta is stopped when the build ends.

What pasta forwards: connections out, with the host's addresses, routes and DNS; connections to the
namespace's own loopback on ports the host listens on go to the host's loopback (`-T auto`, so a
fetch from `127.0.0.1` works as under Nix, where fixed-output builds share the host's loopback).
Nothing comes in (`-t none -u none`): a port opened in one build is reachable from no other.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import subprocess
import time
from collections.abc import Iterator

from storekit.errors import SandboxError
from storekit.programs import which

PASTA_HINT = (
    "fixed-output builds get their network from pasta, which is not installed: apt-get install -y passt"
)
#: Where Debian puts pasta, for when PATH does not lead to it.
PASTA_FALLBACK = "/usr/bin/pasta"
_NS_GET_USERNS = 0xB701  # ioctl: the user namespace owning a namespace (linux/nsfs.h)
#: How long bwrap and pasta may take to set up the namespace and its interface.
SETUP_TIMEOUT_S = 30.0


def find_pasta(label: str) -> str:
    """The pasta executable, or a `SandboxError` (for the build `label`) naming the package to install."""
    found = which("pasta") or (PASTA_FALLBACK if os.access(PASTA_FALLBACK, os.X_OK) else None)
    if found is None:
        raise SandboxError(label, PASTA_HINT)
    return found


def pasta_command(pasta: str, userns_fd: int, netns_fd: int, pid_file: str) -> list[str]:
    """pasta for the namespaces open as `userns_fd` and `netns_fd` (passed to it), outbound only."""
    argv = [pasta, "--quiet", "--foreground", "--pid", pid_file, "--config-net", "--no-netns-quit"]
    argv += ["--tcp-ports", "none", "--udp-ports", "none", "--tcp-ns", "auto", "--udp-ns", "auto"]
    if os.geteuid() == 0:
        # pasta would switch to nobody, who may not enter a namespace root created
        argv += ["--runas", "0:0"]
    argv += ["--userns", f"/proc/self/fd/{userns_fd}", "--netns", f"/proc/self/fd/{netns_fd}"]
    setpriv = which("setpriv")
    if setpriv is not None:  # dies with the thread that started it, even when storekit is killed
        argv = [setpriv, "--pdeathsig", "KILL", "--", *argv]
    return argv


def namespace_fds(pid: int) -> tuple[int, int]:
    """(user namespace, network namespace) fds for the sandbox process `pid`.

    Not `/proc/PID/ns/user`: with `--dev`, bwrap moves its child into a nested user namespace just
    before it blocks, and pasta joining that one cannot configure the network namespace, which
    belongs to the outer one. The owner of the network namespace (`NS_GET_USERNS`) is always right.
    """
    netns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        userns = fcntl.ioctl(netns, _NS_GET_USERNS)
    except OSError:
        os.close(netns)
        raise
    os.set_inheritable(userns, False)
    return userns, netns


def read_sandbox_pid(info_fd: int, label: str) -> int:
    """The host pid of bwrap's sandbox, from the JSON bwrap writes to `--info-fd`."""
    data = b""
    deadline = time.monotonic() + SETUP_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([info_fd], [], [], 0.1)
        if not ready:
            continue
        chunk = os.read(info_fd, 4096)
        if not chunk:
            break
        data += chunk
        with contextlib.suppress(ValueError):
            return int(json.loads(data)["child-pid"])
    raise SandboxError(label, "the sandbox could not be set up (bwrap reported no process)")


@contextlib.contextmanager
def pasta_for(pasta: str, pid: int, files: str, label: str) -> Iterator[None]:
    """Run pasta for the network namespace of `pid` until the block ends; returns once it is ready.

    `files` is a private directory for pasta's pid file and its messages (never a pipe: nobody
    would read it during a long build, and a full pipe would stall pasta)."""
    started = time.monotonic()
    pid_file = os.path.join(files, "pasta.pid")
    try:
        userns, netns = namespace_fds(pid)
    except OSError as e:
        raise SandboxError(label, f"the sandbox's network namespace is gone: {e.strerror}") from e
    try:
        with open(os.path.join(files, "pasta.log"), "wb") as log:
            proc = subprocess.Popen(
                pasta_command(pasta, userns, netns, pid_file),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(userns, netns),
            )
    finally:
        os.close(userns)
        os.close(netns)
    try:
        while not _pid_written(pid_file):
            if proc.poll() is not None:
                reason = _last_line(files)
                if "tun" in reason:
                    reason += " (pasta needs to open /dev/net/tun, usually mode 0666)"
                raise SandboxError(label, f"pasta could not give the build its network: {reason}")
            if time.monotonic() - started > SETUP_TIMEOUT_S:
                raise SandboxError(
                    label, f"pasta did not set up the build's network in {SETUP_TIMEOUT_S:g} s"
                )
            time.sleep(0.005)
        yield
    finally:
        proc.kill()
        proc.wait()


def _last_line(files: str) -> str:
    with open(os.path.join(files, "pasta.log"), "rb") as f:
        lines = [ln for ln in f.read().decode(errors="replace").splitlines() if "syslog" not in ln]
    return lines[-1].strip() if lines else "it exited"


def _pid_written(pid_file: str) -> bool:
    try:
        with open(pid_file, "rb") as f:
            return f.read().strip().isdigit()
    except FileNotFoundError:
        return False


class FodNetwork:
    """Everything one fixed-output build's network needs: bwrap's two sync pipes, then pasta.

    `child_fds` go to bwrap (`SandboxSpec.sync_fds`); `attach`, entered once bwrap runs, reads the
    sandbox's pid, starts pasta, releases bwrap and stops pasta at the end; `close` frees the pipes.
    """

    def __init__(self, pasta: str, files: str, label: str) -> None:
        self.pasta, self.files, self.label = pasta, files, label
        self._info_r, self._info_w = os.pipe()
        self._block_r, self._block_w = os.pipe()
        self._open = [self._info_r, self._info_w, self._block_r, self._block_w]

    @property
    def child_fds(self) -> tuple[int, int]:
        return (self._info_w, self._block_r)

    def _close(self, fd: int) -> None:
        if fd in self._open:
            self._open.remove(fd)
            os.close(fd)

    @contextlib.contextmanager
    def attach(self) -> Iterator[None]:
        self._close(self._info_w)  # bwrap holds its own copies now: EOF when it dies
        self._close(self._block_r)
        pid = read_sandbox_pid(self._info_r, self.label)
        with pasta_for(self.pasta, pid, self.files, self.label):
            with contextlib.suppress(BrokenPipeError):  # bwrap died: its exit status says why
                os.write(self._block_w, b"1")
            self._close(self._block_w)
            yield

    def close(self) -> None:
        for fd in list(self._open):
            self._close(fd)
