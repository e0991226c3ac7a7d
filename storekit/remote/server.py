"""`nix-store --serve` in storekit: Nix's serve protocol on a pair of streams, over a storekit store.

Real Nix reaches a machine's store through `ssh HOST <remote-program> --serve --write [--store S]`
(`ssh://` stores, `nix copy`, `nix-build --builders`); this is the far side of that, as Nix 2.8's
`opServe` behaves. The exchange (Nix 2.8's `nix-store.cc`, `legacy-ssh-store.cc`):

- the client sends magic 1 and its version; the server answers magic 2 and its own version (2.7,
  Nix 2.8's), then reads the client's version; both then speak the lower one;
- then commands, each a u64 followed by its arguments, until the client closes the stream. Paths
  travel as full paths: the serve protocol has no store dir exchange, so a path from another store
  dir is the first sign that the two sides disagree, and is refused naming both store dirs;
- NARs travel unframed: `AddToStoreNar` announces the NAR's size first, `DumpStorePath` and
  `ExportPaths` just write it (the client parses the NAR to find its end).

An error ends the session: the message goes to the caller (the CLI prints it on stderr, which ssh
carries back to the client's terminal, as Nix's server does), the connection closes, and nothing
half-received becomes valid (a store adds a path only after the whole NAR arrived and matched its
hash). Builds are in `server_builds`.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import select
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from storekit.errors import InvalidStorePath, StoreError, StorekitError, WireFormatError
from storekit.hashing import Hash
from storekit.store.base import Store, ValidPathInfo
from storekit.store.export import export_paths, import_paths
from storekit.store.local import LocalStore
from storekit.storepath import StorePath
from storekit.wire import serve
from storekit.wire.framing import WireReader, WireWriter
from storekit.wire.serve import SERVE_MAGIC_1, ServeCommand
from storekit.wire.values import BuildOptions as WireBuildOptions
from storekit.wire.values import PathInfo

if TYPE_CHECKING:
    from storekit.realise.runner import BuildOptions
    from storekit.store.substituters import SignaturePolicy

SERVER_VERSION = serve.NIX_2_8_VERSION
"""The serve protocol version storekit speaks: Nix 2.8's (2.7)."""


class ServeProtocolError(StorekitError):
    """The client broke the serve protocol: a wrong magic or version, an unknown command."""


@dataclass
class ServeSession:
    """One client's session: the store, the streams, and what the client may do."""

    store: Store
    source: BinaryIO
    sink: BinaryIO
    write_allowed: bool = False
    build_options: BuildOptions | None = None
    """Builds' settings (sandbox, cores …); the client's timeout and keep-failed override them."""
    log: BinaryIO | None = None
    """Where build logs go as they come (the CLI's stderr, which ssh carries to the client)."""
    version: int = SERVER_VERSION
    substituters: Store | None = None
    """Where `QueryValidPaths` with its `substitute` flag fetches missing paths from (Nix's
    `builders-use-substitutes`, `nix copy --substitute-on-destination`); None: nowhere."""
    policy: SignaturePolicy | None = None

    def __post_init__(self) -> None:
        self.r = WireReader(self.source)

    # --- the session ----------------------------------------------------------------------------

    def run(self) -> None:
        """Handshake, then serve commands until the client closes its side."""
        try:
            self._serve()
        except (BrokenPipeError, ConnectionResetError) as e:
            msg = f"serve protocol: the client closed the connection ({e.strerror})"
            raise ServeProtocolError(msg) from e

    def _serve(self) -> None:
        self.handshake()
        while True:
            head = self.source.read(8)
            if not head:
                return
            if len(head) != 8:
                raise ServeProtocolError("serve protocol: the client closed the connection inside a command")
            self.dispatch(int.from_bytes(head, "little"))
            self.sink.flush()

    def handshake(self) -> None:
        magic = self._u64("the client's greeting")
        if magic != SERVE_MAGIC_1:
            raise ServeProtocolError(
                f"serve protocol mismatch: the client sent magic {magic:#x}, not Nix's {SERVE_MAGIC_1:#x}"
            )
        w = WireWriter()
        serve.write_handshake(w, SERVER_VERSION)
        self._send(w)
        client = self._u64("the client's protocol version")
        try:
            self.version = serve.negotiate(client, SERVER_VERSION)
        except ValueError:
            raise ServeProtocolError(
                f"unsupported serve protocol version {client >> 8}.{client & 0xFF} from the client "
                f"(this server speaks {SERVER_VERSION >> 8}.{SERVER_VERSION & 0xFF})"
            ) from None

    def dispatch(self, raw: int) -> None:
        try:
            cmd = ServeCommand(raw)
        except ValueError:
            raise ServeProtocolError(f"unknown serve command {raw}") from None
        handler = {
            ServeCommand.QueryValidPaths: self.query_valid_paths,
            ServeCommand.QueryPathInfos: self.query_path_infos,
            ServeCommand.DumpStorePath: self.dump_store_path,
            ServeCommand.ImportPaths: self.import_paths,
            ServeCommand.ExportPaths: self.export_paths,
            ServeCommand.BuildPaths: self.build_paths,
            ServeCommand.QueryClosure: self.query_closure,
            ServeCommand.BuildDerivation: self.build_derivation,
            ServeCommand.AddToStoreNar: self.add_to_store_nar,
        }[cmd]
        handler()

    # --- queries --------------------------------------------------------------------------------

    def query_valid_paths(self) -> None:
        lock, substitute = self.r.bool(), self.r.bool()
        paths = self.read_paths()
        if lock and self.write_allowed and isinstance(self.store, LocalStore):
            for p in paths:
                self.store.add_temp_root(p)
        if substitute and self.write_allowed:
            self.substitute([p for p in paths if not p.is_derivation and not self.store.is_valid_path(p)])
        self._send(self._paths(p for p in paths if self.store.is_valid_path(p)))

    def substitute(self, paths: list[StorePath]) -> None:
        """Fetch what the substituters have, as Nix's server does: a failure is a warning, not an end."""
        if self.substituters is None or not paths:
            return
        from storekit.transfer.copy import copy_closure

        for path in paths:
            try:
                if self.substituters.lookup_path_info(path) is not None:
                    copy_closure(self.substituters, self.store, [path], policy=self.policy)
            except StorekitError as e:
                if self.log is not None:
                    self.log.write(f"warning: cannot substitute '{path}': {e}\n".encode())

    def query_path_infos(self) -> None:
        w = WireWriter()
        for path in sorted(set(self.read_paths())):
            info = self.store.lookup_path_info(path)
            if info is None:
                continue
            w.string(str(path))
            serve.write_unkeyed_path_info(w, _wire_info(info), self.version)
        self._send(w.string(""))

    def query_closure(self) -> None:
        include_outputs = self.r.bool()
        roots = set(self.read_paths())
        if include_outputs and isinstance(self.store, LocalStore):
            for p in list(roots):
                if p.is_derivation and self.store.is_valid_path(p):
                    outs = self.store.query_derivation_outputs(p).values()
                    roots.update(o for o in outs if self.store.is_valid_path(o))
        self._send(self._paths(self.store.closure(roots)))

    # --- NARs out -------------------------------------------------------------------------------

    def dump_store_path(self) -> None:
        path = self.read_path()
        for chunk in self.store.nar_from_path(path):
            self.sink.write(chunk)

    def export_paths(self) -> None:
        self.r.u64()  # obsolete (was: sign)
        export_paths(self.store, self.read_paths(), self.sink)

    # --- NARs in --------------------------------------------------------------------------------

    def add_to_store_nar(self) -> None:
        self._require_write("importing paths")
        path = self.read_path()
        deriver_text = self.r.string()
        at = self.r.offset
        hash_text = self.r.string()
        try:
            nar_hash = Hash.parse(hash_text, "sha256")
        except ValueError as e:
            raise WireFormatError(str(e), at) from e
        references = self.read_paths()
        registration_time, nar_size, ultimate = self.r.u64(), self.r.u64(), self.r.bool()
        sigs = frozenset(self.r.strings())
        ca = self.r.string() or None
        if nar_size == 0:
            raise StoreError(f"cannot add '{path}': the client sent no NAR size (its narinfo is too old)")
        deriver = self.parse_path(deriver_text) if deriver_text else None
        info = ValidPathInfo(
            path, nar_hash, nar_size, frozenset(references), deriver, registration_time, ultimate, sigs, ca
        )
        nar = SizedReader(self.source, nar_size)
        self.store.add_from_nar(info, nar)
        nar.drain()
        self._send(WireWriter().u64(1))

    def import_paths(self) -> None:
        self._require_write("importing paths")
        import_paths(self.store, self.source)
        self._send(WireWriter().u64(1))

    # --- builds ---------------------------------------------------------------------------------

    def build_derivation(self) -> None:
        self._require_write("building paths")
        drv_path, drv = serve.read_basic_derivation(self.r, self.store.store_dir)
        options = serve.read_build_options(self.r, self.version)
        from storekit.remote.server_builds import build_derivation_command

        store, opts = self._local("build"), self._options(options)
        with cancel_on_hangup(self.source) as cancel:
            result = build_derivation_command(store, drv_path, drv, opts, self.log, cancel)
        w = WireWriter()
        serve.write_build_result(w, result, self.version)
        self._send(w)

    def build_paths(self) -> None:
        self._require_write("building paths")
        targets = [self.read_path_with_outputs(s) for s in self.r.strings()]
        options = serve.read_build_options(self.r, self.version)
        from storekit.remote.server_builds import build_paths_command

        status, message = build_paths_command(self._local("build"), targets, self._options(options), self.log)
        w = WireWriter().u64(status)
        if status != 0:
            w.string(message)
        self._send(w)

    # --- paths, checked against this store's store dir ------------------------------------------

    def parse_path(self, text: str) -> StorePath:
        try:
            return self.store.store_dir.parse_path(text)
        except InvalidStorePath as e:
            ours = self.store.store_dir.path
            theirs = posixpath.dirname(posixpath.normpath(text)) if text.startswith("/") else None
            if theirs is not None and theirs != ours:
                raise StoreError(
                    f"store dir mismatch: the client sent '{text}', a path of store dir '{theirs}', but "
                    f"this store's store dir is '{ours}'; both sides must use the same store dir"
                ) from e
            raise

    def read_path(self) -> StorePath:
        return self.parse_path(self.r.string())

    def read_paths(self) -> list[StorePath]:
        return [self.parse_path(s) for s in self.r.strings()]

    def read_path_with_outputs(self, text: str) -> tuple[StorePath, list[str] | None]:
        path, bang, outputs = text.partition("!")
        return self.parse_path(path), (outputs.split(",") if bang else None)

    # --- helpers --------------------------------------------------------------------------------

    def _u64(self, what: str) -> int:
        try:
            return self.r.u64()
        except WireFormatError:
            msg = f"serve protocol: the client closed the connection before {what}"
            raise ServeProtocolError(msg) from None

    def _send(self, w: WireWriter) -> None:
        self.sink.write(w.getvalue())
        self.sink.flush()

    def _paths(self, paths: Iterable[StorePath]) -> WireWriter:
        return WireWriter().strings(sorted(str(p) for p in paths))

    def _require_write(self, what: str) -> None:
        if not self.write_allowed:
            raise StoreError(f"{what} is not allowed: the server runs without --write")

    def _local(self, what: str) -> LocalStore:
        if not isinstance(self.store, LocalStore):
            raise StoreError(f"cannot {what} in '{self.store.uri}': only a local store can build")
        return self.store

    def _options(self, options: WireBuildOptions) -> BuildOptions:
        from storekit.realise.runner import BuildOptions

        base = self.build_options or BuildOptions()
        timeout = options.build_timeout or base.timeout
        return base.replace(timeout=timeout, keep_failed=options.keep_failed)


@contextlib.contextmanager
def cancel_on_hangup(source: BinaryIO) -> Iterator[threading.Event | None]:
    """An event set when the client hangs up while a build runs (Nix's `MonitorFdHup`): the build is
    then killed rather than finished for nobody. None when `source` is no file descriptor."""
    try:
        fd = source.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        yield None
        return
    cancel, done = threading.Event(), threading.Event()

    def watch() -> None:
        poller = select.poll()
        poller.register(fd, select.POLLHUP)  # as Nix 2.8: a hang-up, not a half-close
        while not done.is_set():
            if poller.poll(200):
                cancel.set()
                return

    watcher = threading.Thread(target=watch, name="serve-hangup", daemon=True)
    watcher.start()
    try:
        yield cancel
    finally:
        done.set()
        watcher.join()


def _wire_info(info: ValidPathInfo) -> PathInfo:
    return PathInfo(
        info.nar_hash,
        info.nar_size,
        tuple(sorted(info.references)),
        info.deriver,
        sigs=tuple(sorted(info.sigs)),
        ca=info.ca,
        download_size=info.nar_size,
    )


class SizedReader:
    """Exactly `size` bytes of `source`: the NAR of one `AddToStoreNar`, however much of it is read."""

    def __init__(self, source: BinaryIO, size: int) -> None:
        self._source = source
        self.remaining = size

    def read(self, n: int = -1, /) -> bytes:
        want = self.remaining if n < 0 else min(n, self.remaining)
        if want == 0:
            return b""
        data = self._source.read(want)
        self.remaining -= len(data)
        return data

    def drain(self) -> None:
        """Read what the store did not (a path already valid is not read at all)."""
        while self.remaining:
            if not self.read(1 << 20):
                raise StoreError("the client closed the connection in the middle of a NAR")
