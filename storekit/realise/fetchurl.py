"""Nix's built-in builder `builtin:fetchurl` (what `<nix/fetchurl.nix>` makes), done by storekit itself.

Nix 2.8 runs it in its forked build process (libstore/builtins/fetchurl.cc): download `url` with curl,
TLS unverified (the fixed-output hash is checked afterwards anyway), no `Content-Encoding` decoding;
with `unpack = "1"` the download is a NAR (xz-compressed when the URL ends in `.xz`) restored at the
output path, else the bytes are the output file; `executable = "1"` makes it mode 0755. The output
then goes through the ordinary checks of a fixed output (`outputs.py`): a wrong hash is refused with
both hashes and nothing is registered.

What storekit does the same way, and where it differs:

- the fetch runs in the storekit process, not in a sandbox: there is no builder program, only this
  module, and what it writes is the scratch output a sandboxed builder would have written;
- `http://` and `https://` go out like a fixed-output build's connections (Nix shares the host's
  network with them; so does pasta, for `127.0.0.1` too); redirects are followed, as curl does, but
  only to http(s); the caller's `http_proxy`/`https_proxy`/`no_proxy` are used when the derivation
  lists them in `impureEnvVars` (as `<nix/fetchurl.nix>` does);
- `file://` URLs see what a sandboxed builder would see: paths under a `--sandbox-path` (read from
  its host source) and the derivation's input closure, nothing else of the host (without the sandbox,
  `--no-sandbox`, any host file, as in Nix);
- `urls`: Nix 2.8 downloads only `url` (and its `hashed-mirrors`, empty by default); storekit tries
  the other entries of `urls` in order when `url` fails, since the hash decides anyway.
"""

from __future__ import annotations

import contextlib
import lzma
import os
import posixpath
import shutil
import time
import urllib.parse

from storekit.errors import BuildError, StorekitError
from storekit.frozen import Frozen, _set
from storekit.realise.logs import LogWriter
from storekit.store.fsdelete import remove_tree

TYPE_CHECKING = False
if TYPE_CHECKING:  # every build imports this module for `BUILDER`; a fetch imports `download` too
    import threading
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from typing import BinaryIO, Protocol

    from storekit.bytestreams import ByteSource
    from storekit.derivation.model import Derivation
    from storekit.realise.outputs import Streamed
    from storekit.realise.plan import Goal
    from storekit.realise.sandbox import SandboxPath
    from storekit.store.local import LocalStore
    from storekit.storepath import StorePath

    Log = Callable[[str], None]

    class Options(Protocol):
        """What of `runner.BuildOptions` a download uses."""

        @property
        def sandbox(self) -> bool: ...
        @property
        def sandbox_paths(self) -> tuple[SandboxPath, ...]: ...
        @property
        def host_env(self) -> Mapping[str, str]: ...
        @property
        def timeout(self) -> float | None: ...


BUILDER = "builtin:fetchurl"
_CHUNK = 1 << 16
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class FileView(Frozen):
    """Where `file://` URLs may read: logical path prefix -> host path (None: the whole host)."""

    __slots__ = ("mounts",)
    __match_args__ = ("mounts",)
    mounts: tuple[tuple[str, str], ...] | None

    def __init__(self, mounts: tuple[tuple[str, str], ...] | None) -> None:
        _set(self, "mounts", mounts)

    def resolve(self, path: str) -> str | None:
        """The host path behind `path` as the sandbox shows it, or None when the sandbox has no such path."""
        path = posixpath.normpath(path)
        if self.mounts is None:
            return path
        for logical, host in self.mounts:
            if path == logical or path.startswith(logical.rstrip("/") + "/"):
                real = os.path.realpath(host + path[len(logical) :])
                root = os.path.realpath(host)
                if real == root or real.startswith(root.rstrip("/") + "/"):  # no symlink out of the mount
                    return real
                return None
        return None


def file_view(sandbox: bool, inputs: Sequence[tuple[str, str]], paths: Sequence[SandboxPath]) -> FileView:
    """The view of a sandboxed build: `inputs` are (host path, logical path) of the input closure."""
    if not sandbox:
        return FileView(None)
    mounts = [(p.target, p.source) for p in paths if not p.optional or os.path.exists(p.source)]
    mounts += [(logical, host) for host, logical in inputs]
    return FileView(tuple(sorted(mounts, key=lambda m: -len(m[0]))))  # the deepest mount wins, as in bwrap


class Fetch(Frozen):
    """One `builtin:fetchurl` job, read from the derivation's env."""

    __slots__ = ("executable", "proxies", "unpack", "urls")
    __match_args__ = ("urls", "unpack", "executable", "proxies")
    urls: tuple[str, ...]
    unpack: bool
    executable: bool
    proxies: Mapping[str, str]

    def __init__(
        self, urls: tuple[str, ...], unpack: bool, executable: bool, proxies: Mapping[str, str]
    ) -> None:
        _set(self, "urls", urls)
        _set(self, "unpack", unpack)
        _set(self, "executable", executable)
        _set(self, "proxies", proxies)

    @classmethod
    def of(cls, drv: Derivation, label: str, host_env: Mapping[str, str]) -> Fetch:
        env = drv.env
        if "url" not in env:
            raise BuildError(label, "attribute 'url' missing")
        urls = [env["url"], *(u for u in env.get("urls", "").split() if u != env["url"])]
        wanted = set(env.get("impureEnvVars", "").split())
        proxies = {k: host_env[k] for k in _PROXY_VARS if k in wanted and host_env.get(k)}
        return cls(tuple(urls), env.get("unpack") == "1", env.get("executable") == "1", proxies)


def fetch(
    job: Fetch,
    dest: str,
    view: FileView,
    *,
    log: Log,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    scan: Mapping[str, object] | None = None,
) -> Streamed | None:
    """Download to `dest` (which must not exist) from the first URL that works. An unpacked NAR is
    hashed and searched for the hash parts in `scan` as it is restored: what that found (`Streamed`),
    else None."""
    errors = []
    deadline = None if timeout is None else time.monotonic() + timeout
    for url in job.urls:
        log(f"downloading '{url}'...\n")
        try:
            with _open(url, view, job.proxies, deadline) as body:
                stream = _Guarded(body, deadline, cancel, url)
                streamed = _write(job, job.urls[0], stream, dest, scan or {})
        except _FetchFailed as e:
            errors.append(str(e))
            log(f"error: {e}\n")
            remove_tree(os.path.dirname(dest), os.path.basename(dest))  # fd-relative, nothing followed
            continue
        if job.executable:
            os.chmod(dest, 0o755)
        return streamed
    raise _FetchFailed("; ".join(errors)) if len(errors) > 1 else _FetchFailed(errors[0])


class _FetchFailed(StorekitError):
    """No URL gave the file (the message says why for each)."""


def _write(
    job: Fetch, main_url: str, stream: _Guarded, dest: str, scan: Mapping[str, object]
) -> Streamed | None:
    from storekit.nar.restore import restore

    try:
        if job.unpack and main_url.endswith(".xz"):
            with lzma.LZMAFile(stream) as unxz:  # type: ignore[arg-type]
                return _Teed(unxz, scan).restore(restore, dest)
        elif job.unpack:
            return _Teed(stream, scan).restore(restore, dest)
        else:
            with open(dest, "xb") as out:
                shutil.copyfileobj(stream, out, _CHUNK)
            return None
    except (OSError, lzma.LZMAError, StorekitError, EOFError) as e:
        if isinstance(e, (_FetchFailed, BuildError)):
            raise
        raise _FetchFailed(f"unpacking '{main_url}': {e}" if job.unpack else f"'{main_url}': {e}") from e


@contextlib.contextmanager
def _open(url: str, view: FileView, proxies: Mapping[str, str], deadline: float | None) -> Iterator[BinaryIO]:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme == "file":
        with _open_file(url, view) as f:
            yield f
        return
    if scheme not in ("http", "https"):
        raise _FetchFailed(f"unable to download '{url}': storekit fetches only http, https and file URLs")
    from storekit.realise.download import DownloadError, get

    left = None if deadline is None else max(deadline - time.monotonic(), 0.1)
    try:
        response = get(url, _proxies_for(url, proxies), timeout=left if left is not None else 300)
    except DownloadError as e:
        raise _FetchFailed(f"unable to download '{url}': {e}") from e
    with response:
        yield response  # type: ignore[misc]  # read like a file, which is all a fetch does with it


@contextlib.contextmanager
def _open_file(url: str, view: FileView) -> Iterator[BinaryIO]:
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise _FetchFailed(f"unable to download '{url}': a file URL must not name a host")
    path = urllib.parse.unquote(parts.path)
    real = view.resolve(path)
    if real is None:
        raise _FetchFailed(f"unable to download '{url}': '{path}' is not visible in the sandbox")
    try:
        with open(real, "rb") as f:
            yield f
    except OSError as e:
        raise _FetchFailed(f"unable to download '{url}': {e.strerror}") from e


def _proxies_for(url: str, proxies: Mapping[str, str]) -> dict[str, str]:
    """`http`/`https` proxies for `url`, none when `no_proxy` names its host (curl's rules, roughly)."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if _bypassed(host, proxies.get("no_proxy", "")):
        return {}
    found = {k.removesuffix("_proxy"): v for k, v in proxies.items() if k in ("http_proxy", "https_proxy")}
    if "all_proxy" in proxies:
        for scheme in ("http", "https"):
            found.setdefault(scheme, proxies["all_proxy"])
    return found


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether `no_proxy` (comma- or space-separated) names `host`: `*`, the host itself, or a domain
    it is in (`example.org` and `.example.org` both take `a.example.org`); a `:port` is ignored."""
    for entry in no_proxy.replace(",", " ").split():
        entry = entry.lower()
        if entry == "*":
            return True
        if entry.startswith("[") and "]" in entry:  # [::1]:8080
            name = entry[1 : entry.index("]")]
        else:
            name = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
        name = name.lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


class _Teed:
    """The NAR being restored, hashed and searched for references as it is read.

    The hashing runs on a thread of its own: `hashlib` lets go of the GIL while it hashes, as the
    decompressor does while it decompresses and the restorer while it writes, so on two cores the
    NAR is hashed while the next part of it is unpacked, instead of after."""

    def __init__(self, source: ByteSource, scan: Mapping[str, object]) -> None:
        import queue
        import threading

        from storekit.hashing import new_hasher
        from storekit.references import RefScanSink

        self.source = source
        self.hasher = new_hasher("sha256")
        self.scanner = RefScanSink(scan)
        self.size = 0
        # bounded: were the hashing ever slower than the unpacking, the NAR would not pile up in memory
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._worker = threading.Thread(target=self._hash, name="storekit-nar-hash", daemon=True)

    def _hash(self) -> None:
        while (data := self._chunks.get()) is not None:
            self.hasher.update(data)

    def read(self, size: int = -1, /) -> bytes:
        data = self.source.read(size)
        self._chunks.put(data)
        self.scanner.feed(data)
        self.size += len(data)
        return data

    def restore(self, restore: Callable[[ByteSource, str], int], dest: str) -> Streamed | None:
        """Restore the NAR at `dest` and give its `Streamed`. The reader refuses a stream that goes on
        after the NAR, so what was read is the NAR; were it ever not (None), the output would be
        described from its files."""
        from storekit.realise.outputs import Streamed

        self._worker.start()
        try:
            end = restore(self, dest)
        finally:
            self._chunks.put(None)
            self._worker.join()
        if end != self.size:
            return None
        return Streamed(self.hasher.finish(), self.size, frozenset(self.scanner.found))


class _Guarded:
    """A body that stops at the deadline or when the build is cancelled."""

    def __init__(
        self, body: BinaryIO, deadline: float | None, cancel: threading.Event | None, url: str
    ) -> None:
        self.body = body
        self.deadline = deadline
        self.cancel = cancel
        self.url = url

    def read(self, size: int = -1, /) -> bytes:
        if self.cancel is not None and self.cancel.is_set():
            raise BuildError(self.url, "cancelled (another build failed, or the run was interrupted)")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _FetchFailed(f"timed out downloading '{self.url}'")
        try:
            return self.body.read(_CHUNK if size < 0 else min(size, _CHUNK * 16))
        except OSError as e:
            raise _FetchFailed(f"unable to download '{self.url}': {e}") from e

    def readable(self) -> bool:
        return True


def build(
    store: LocalStore,
    goal: Goal,
    closure: set[StorePath],
    dest: str,
    log_file: str,
    options: Options,
    *,
    cancel: threading.Event | None = None,
    on_log: Callable[[StorePath, bytes], None] | None = None,
) -> Streamed | None:
    """Do the `builtin:fetchurl` build `goal` into `dest`, logging to `log_file`; `BuildError` if no URL
    works. `file://` URLs see the input `closure` and the sandbox paths (see `file_view`). An unpacked
    output comes with what its NAR stream gave (`outputs.Streamed`), else None."""
    from storekit.realise.outputs import reference_candidates

    label = str(goal.drv_path)
    candidates = reference_candidates(goal, closure)
    job = Fetch.of(goal.drv, label, options.host_env)
    inputs = [(store.real_path(p), str(p)) for p in sorted(closure)]
    view = file_view(options.sandbox, inputs, options.sandbox_paths)
    log = LogWriter(log_file)

    def say(text: str) -> None:
        data = text.encode("utf-8", "surrogateescape")
        log.write(data)
        if on_log is not None:
            on_log(goal.drv_path, data)

    try:
        return fetch(job, dest, view, log=say, timeout=options.timeout, cancel=cancel, scan=candidates)
    except _FetchFailed as e:
        raise BuildError(label, str(e)) from e
    finally:
        log.close()
