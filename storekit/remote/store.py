"""`ssh://HOST` as a `Store`: the far side's `nix-store --serve --write`, driven like Nix 2.8's
`LegacySSHStore`, so `copy_closure` pushes to and pulls from it like any other store.

What the serve protocol offers is what this store offers: path infos (`QueryPathInfos`), validity
(`QueryValidPaths`), NARs out (`DumpStorePath`) and in (`AddToStoreNar`, or `ImportPaths` before 2.5),
and builds (`BuildDerivation`, `BuildPaths`). It cannot list the far side's paths or its referrers.

Connections come from a pool of `max-connections` (default 1, as in Nix), each an `ssh` process; a
connection that broke is dropped and the next user opens a fresh one, so a retry after a dropped
connection just works. What travels is checked here as well as there: a NAR read from the far side is
read to exactly the size its path info declared (the receiving store then checks its hash), and a NAR
sent is sent to exactly the size declared, so a short source can never leave the far side reading the
next command as NAR bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import shutil
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from storekit.bytestreams import ByteSource
from storekit.derivation.model import Derivation
from storekit.errors import RemoteError, StoreError
from storekit.remote.connection import CONNECT_TIMEOUT, Connection, LogSink
from storekit.remote.uri import SshStoreSpec, known_hosts_line, parse_ssh_uri, ssh_argv
from storekit.store.base import Store, ValidPathInfo
from storekit.storepath import StoreDir, StorePath
from storekit.tempdirs import make_temp_dir, temp_root
from storekit.wire.common import write_store_paths
from storekit.wire.framing import WireWriter
from storekit.wire.serve import (
    ServeCommand,
    minor,
    read_build_result,
    read_unkeyed_path_info,
    write_basic_derivation,
    write_build_options,
)
from storekit.wire.values import BuildOptions, BuildResult

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CHUNK = 1 << 20
#: Seconds a far side gets, past the build timeout it was given, to report the timeout itself.
TIMEOUT_GRACE = 30.0


def plain(message: str) -> str:
    """A far side's error message without its terminal colours (Nix colours store paths)."""
    return _ANSI.sub("", message).strip()


class SshStore(Store):
    """A far side's store over ssh; `store_dir` must be the far side's store dir too (checked on connect)."""

    def __init__(
        self, spec: SshStoreSpec, store_dir: StoreDir, *, sshopts: str = "",
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:  # fmt: skip
        self.spec, self.store_dir = spec, store_dir
        self.connect_timeout = connect_timeout
        self._tmp: str | None = None
        known_hosts = None
        if spec.host_key:
            self._tmp = make_temp_dir(temp_root(), "storekit-ssh-")
            known_hosts = str(Path(self._tmp) / "host-key")
            Path(known_hosts).write_text(known_hosts_line(spec))
        self.argv = ssh_argv(spec, sshopts, known_hosts)
        self._idle: list[Connection] = []
        self._open = 0
        self._cond = threading.Condition()
        self._infos: dict[StorePath, ValidPathInfo] = {}
        self._building: set[Connection] = set()

    @property
    def uri(self) -> str:
        return str(self.spec)

    @property
    def host(self) -> str:
        return self.spec.host

    # --- connections ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for one exchange (at most `max-connections` open at once; the rest wait)."""
        with self._cond:
            while not self._idle and self._open >= self.spec.max_connections:
                self._cond.wait()
            conn = self._idle.pop() if self._idle else None
            if conn is None:
                self._open += 1
        try:
            if conn is None:
                conn = Connection(self.argv, self.host, self.store_dir, connect_timeout=self.connect_timeout)
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise
        try:
            yield conn
        finally:
            conn.log_sink = None
            with self._cond:
                if conn.good:
                    self._idle.append(conn)
                else:
                    self._open -= 1
                    conn.close()
                self._cond.notify()

    def connect(self) -> int:
        """Open a connection now (so an unreachable host is found before any work); the version spoken."""
        with self.connection() as conn:
            return conn.version

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for conn in idle:
            conn.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # --- queries ----------------------------------------------------------------------------------------

    def lookup_path_info(self, path: StorePath) -> ValidPathInfo | None:
        found = self.query_path_infos([path])
        return found.get(path)

    def query_path_infos(self, paths: Iterable[StorePath]) -> dict[StorePath, ValidPathInfo]:
        """The infos of those of `paths` that are valid on the far side, in one exchange."""
        wanted = sorted(set(paths))
        found: dict[StorePath, ValidPathInfo] = {}
        with self.connection() as conn:
            w = WireWriter().u64(ServeCommand.QueryPathInfos)
            write_store_paths(w, wanted)
            conn.send(w)
            with conn.using("querying path infos") as r:
                while text := r.string():
                    path = self._path(text, conn)
                    info = read_unkeyed_path_info(r, self.store_dir, conn.version)
                    if info.nar_hash is None:
                        raise StoreError(
                            f"'{self.host}' sent no NAR hash for '{path}' (serve protocol < 2.4)"
                        )
                    found[path] = ValidPathInfo(
                        path, info.nar_hash, info.nar_size, frozenset(info.references), info.deriver,
                        sigs=frozenset(info.sigs), ca=info.ca,
                    )  # fmt: skip
        self._infos.update(found)
        return found

    def query_valid_paths(self, paths: Iterable[StorePath]) -> set[StorePath]:
        with self.connection() as conn:
            w = WireWriter().u64(ServeCommand.QueryValidPaths).bool(False).bool(False)
            write_store_paths(w, sorted(set(paths)))
            conn.send(w)
            with conn.using("querying valid paths") as r:
                return {self._path(p, conn) for p in r.strings()}

    def is_valid_path(self, path: StorePath) -> bool:
        return path in self.query_valid_paths([path])

    def query_referrers(self, path: StorePath) -> set[StorePath]:
        raise StoreError(f"'{self.uri}' cannot list referrers: the serve protocol has no such query")

    def query_all_valid_paths(self) -> set[StorePath]:
        raise StoreError(f"'{self.uri}' cannot list its paths: the serve protocol has no such query")

    def _path(self, text: str, conn: Connection) -> StorePath:
        try:
            return self.store_dir.parse_path(text)
        except ValueError as e:
            conn.good = False
            raise RemoteError(
                self.host, f"'{self.host}' sent '{text}', which is not a store path: {e}"
            ) from e

    # --- NARs -------------------------------------------------------------------------------------------

    def nar_from_path(self, path: StorePath) -> Iterator[bytes]:
        info = self._infos.get(path) or self.query_path_info(path)
        with self.connection() as conn:
            conn.send(WireWriter().u64(ServeCommand.DumpStorePath).string(str(path)))
            left = info.nar_size
            done = False
            try:
                with conn.using(f"copying '{path}' from '{self.host}'"):
                    stream = conn.stream
                    while left:
                        data = stream.read(min(CHUNK, left))
                        if not data:
                            raise OSError(f"the NAR ended {left} bytes early")
                        left -= len(data)
                        yield data
                done = True
            finally:
                if not done:
                    conn.good = False  # abandoned half-way: the rest of the NAR is still in the pipe

    def add_from_nar(self, info: ValidPathInfo, source: ByteSource, *, repair: bool = False) -> None:
        with self.connection() as conn:
            w = WireWriter()
            if minor(conn.version) >= 5:
                w.u64(ServeCommand.AddToStoreNar).string(str(info.path))
                w.string(str(info.deriver) if info.deriver else "").string(info.nar_hash.base16)
                write_store_paths(w, sorted(info.references))
                w.u64(info.registration_time).u64(info.nar_size).bool(info.ultimate)
                w.strings(sorted(info.sigs)).string(info.ca or "")
                conn.send(w)
                self._send_nar(conn, info, source)
            else:
                conn.send(WireWriter().u64(ServeCommand.ImportPaths).u64(1))
                self._send_nar(conn, info, source)
                w.u64(0x4558494E).string(str(info.path))  # the export format's magic ("NIXE")
                write_store_paths(w, sorted(info.references))
                w.string(str(info.deriver) if info.deriver else "").u64(0).u64(0)
                conn.send(w)
            conn.flush()
            with conn.using(f"copying '{info.path}' to '{self.host}'") as r:
                if r.u64() != 1:
                    conn.good = False
                    raise RemoteError(
                        self.host, f"failed to add path '{info.path}' to remote host '{self.host}'"
                    )

    def _send_nar(self, conn: Connection, info: ValidPathInfo, source: ByteSource) -> None:
        """Exactly `nar_size` bytes of `source`; if that fails half-way (a short or broken source) the
        connection is cut, so the far side gets end-of-file instead of our next command as NAR bytes."""
        left = info.nar_size
        try:
            while left:
                data = source.read(min(CHUNK, left))
                if not data:
                    raise StoreError(f"the NAR of '{info.path}' ended {left} bytes before its declared size")
                conn.send(data)
                left -= len(data)
        except BaseException:
            conn.kill()
            raise

    # --- builds -----------------------------------------------------------------------------------------

    def build_derivation(
        self, drv_path: StorePath, drv: Derivation, options: BuildOptions, *,
        on_log: LogSink | None = None, timeout: float | None = None, grace: float = TIMEOUT_GRACE,
    ) -> BuildResult:  # fmt: skip
        """`BuildDerivation` of a basic derivation (its input closure in `input_srcs`, already there).

        `on_log` gets the far side's stderr (the build log) as it comes; without an answer within
        `timeout` plus `grace` (for the far side to report its own timeout) the connection is cut.
        """
        with self.connection() as conn:
            w = WireWriter().u64(ServeCommand.BuildDerivation)
            write_basic_derivation(w, drv_path, drv)
            write_build_options(w, options, conn.version)
            conn.log_sink = on_log
            conn.send(w)
            wait = None if timeout is None else timeout + grace
            reason = f"no result {grace:g} s past --timeout {timeout:g}; cut off" if timeout else ""
            with self._cond:
                self._building.add(conn)
            try:
                with conn.using(f"building '{drv_path}'", timeout=wait, reason=reason) as r:
                    result = read_build_result(r, self.store_dir, conn.version)
                conn.settle_log()
                return result
            finally:
                with self._cond:
                    self._building.discard(conn)

    def build_paths(
        self, targets: Sequence[str], options: BuildOptions, *, on_log: LogSink | None = None,
        timeout: float | None = None,
    ) -> None:  # fmt: skip
        """`BuildPaths`: build `DRV!OUT,…` targets whose `.drv` closures are valid on the far side (where
        they are read, with their input derivations), or make plain paths valid."""
        with self.connection() as conn:
            w = WireWriter().u64(ServeCommand.BuildPaths).strings(targets)
            write_build_options(w, options, conn.version)
            conn.log_sink = on_log
            conn.send(w)
            wait = None if timeout is None else timeout + TIMEOUT_GRACE
            with conn.using(f"building {', '.join(targets)}", timeout=wait) as r:
                status = r.u64()
                conn.settle_log()
                if status != 0:
                    said = plain(r.string())
                    raise RemoteError(
                        self.host, f"building on '{self.host}' failed (status {status}): {said}"
                    )

    def cut_builds(self) -> None:
        """Cut the connections of the builds running now (the far side kills a builder whose client
        went away), for a run that is being cancelled."""
        with self._cond:
            running = list(self._building)
        for conn in running:
            conn.kill()


def open_ssh_store(
    text: str, default_dir: StoreDir, sshopts: str = "", *, max_connections: int | None = None
) -> SshStore:
    """The store `ssh://HOST?…` names; its store dir is its `store` parameter, else `default_dir`.
    `max_connections` overrides the URI's (a builder has one connection per job slot)."""
    spec = parse_ssh_uri(text)
    if max_connections is not None:
        spec = dataclasses.replace(spec, max_connections=max_connections)
    store_dir = StoreDir(spec.store_dir) if spec.store_dir is not None else default_dir
    return SshStore(spec, store_dir, sshopts=sshopts)
