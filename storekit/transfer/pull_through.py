"""`storekit cache serve --upstream URL… --cache-dir D`: a pull-through binary cache (node, rack, origin).

A narinfo request is answered from the cache dir (`cache_dir.py`) when the path is there with its
NAR. Otherwise the upstreams are asked in the order given: the first that has a narinfo for the path
is checked (a trusted signature, or a content-addressed name, as substitution checks), its NAR is
downloaded into a temp file of the cache dir and verified (`upstream.py`), and only then are NAR and
narinfo renamed into place and the narinfo answered, so the server never serves or keeps a byte it
did not verify. An upstream that fails (unreachable, a hang past the timeout, a bad signature, a
truncated or tampered NAR) is dropped for that request with the reason in the log, and the next one
is tried. An upstream that failed `upstream_breaker.THRESHOLD` requests in a row is skipped for a
while (`upstream_breaker.Breaker`), so a dead or hanging upstream does not cost every request its
timeout. The NAR is fetched together with its narinfo, because a client that asked for a narinfo is
about to ask for its NAR, and a narinfo must not be served without its NAR behind it.

NAR requests are answered from the cache dir's files (aiohttp's `FileResponse`: sendfile, `Range`,
HEAD). Concurrent requests for one path share one fetch. The cache dir is kept within `--max-size`
by evicting least recently used paths after each addition.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from storekit.errors import StorekitError
from storekit.narinfo import NarInfo
from storekit.signing import SecretKey
from storekit.store.binary_cache import path_info_of
from storekit.store.substituters import SignaturePolicy
from storekit.transfer.cache_dir import CacheDir, CacheDirError
from storekit.transfer.http_server import HttpServer, Log, not_found, text
from storekit.transfer.serve import NAR_TYPE
from storekit.transfer.upstream import Upstream
from storekit.transfer.upstream_breaker import Breaker

_NARINFO = re.compile(r"^/([0-9a-df-np-sv-z]{32})\.narinfo$")
_NAR = re.compile(r"^/nar/([0-9a-df-np-sv-z]{52}\.nar(?:\.xz|\.zst|\.bz2)?)$")


class PullThrough:
    """The cache dir in front of upstreams in priority order; `get` is what a narinfo request does."""

    def __init__(
        self,
        cache: CacheDir,
        upstreams: Sequence[Upstream],
        policy: SignaturePolicy,
        *,
        secret_keys: Iterable[SecretKey] = (),
        log: Callable[[str], None] | None = None,
        breaker: Callable[[], Breaker] = Breaker,
    ) -> None:
        self.cache = cache
        self.upstreams = tuple(upstreams)
        self.breakers = [breaker() for _ in self.upstreams]
        self.policy = policy
        self.secret_keys = tuple(secret_keys)
        self.log = log

    def get(self, hash_part: str) -> bytes | None:
        """The narinfo of `hash_part`: from the cache dir, else fetched (with its NAR) and kept."""
        found = self.cache.lookup(hash_part)
        if found is not None:
            return found
        for upstream, breaker in zip(self.upstreams, self.breakers, strict=True):
            if not breaker.allow():
                continue
            try:
                fetched = self._fetch(upstream, hash_part)
            except CacheDirError:
                breaker.done()
                raise
            except StorekitError as e:
                self._say(f"upstream '{upstream.uri}' dropped for {hash_part}.narinfo: {e}")
                pause = breaker.failed()
                if pause is not None:
                    failures = breaker.failures
                    self._say(
                        f"upstream '{upstream.uri}' skipped for {pause:g} s: "
                        f"{failures} failed requests in a row"
                    )
                continue
            except BaseException:
                breaker.done()
                raise
            breaker.succeeded()
            if fetched is not None:
                return fetched
        return None

    def close(self) -> None:
        self.cache.close()

    def _fetch(self, upstream: Upstream, hash_part: str) -> bytes | None:
        narinfo = upstream.narinfo(hash_part)
        if narinfo is None:
            return None
        self.policy.check(path_info_of(narinfo), self.cache.store_dir, upstream.uri)
        with self.cache.transport.pending("nar") as pending:
            verified = self._signed(upstream.fetch_into(narinfo, pending))
            text = self.cache.publish(verified, pending)
        self._say(f"fetched {narinfo.store_path} from '{upstream.uri}' ({verified.file_size} bytes)")
        return text

    def _signed(self, narinfo: NarInfo) -> NarInfo:
        """Add this server's own signatures (`--sign-key`) to the upstream's."""
        if not self.secret_keys:
            return narinfo
        fingerprint = narinfo.fingerprint()
        sigs = set(narinfo.sigs) | {key.sign(fingerprint) for key in self.secret_keys}
        return dataclasses.replace(narinfo, sigs=tuple(sorted(sigs)))

    def _say(self, message: str) -> None:
        if self.log is not None:
            self.log(message)


class PullThroughServer(HttpServer):
    """The HTTP face of a `PullThrough`: nix-cache-info, narinfos (fetched on a miss), NAR files."""

    def __init__(
        self,
        pull: PullThrough,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log: Log | None = None,
        access_log: bool = False,
        workers: int = 32,
    ) -> None:
        self.pull = pull
        self._inflight: dict[str, asyncio.Future[bytes | None]] = {}
        # fetches wait on upstreams (up to --timeout each): a pool of their own keeps hits answered
        self._fetchers = ThreadPoolExecutor(workers, thread_name_prefix="cache-fetch")
        super().__init__(host, port, log=log, access_log=access_log)

    def server_close(self) -> None:
        """Also release the cache dir (its server lock): the server owns its `PullThrough`."""
        super().server_close()
        self._fetchers.shutdown(wait=False, cancel_futures=True)
        self.pull.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/nix-cache-info":
            return text(self.pull.cache.cache_info.to_text(), "text/x-nix-cache-info")
        if m := _NARINFO.match(path):
            data = await self._narinfo(m.group(1))
            if data is not None:
                return web.Response(body=data, content_type="text/x-nix-narinfo")
        elif m := _NAR.match(path):
            file = await self.blocking(self.pull.cache.nar_file, m.group(1))
            if file is not None:
                return web.FileResponse(file, headers={"Content-Type": NAR_TYPE})
        return not_found()

    async def _narinfo(self, hash_part: str) -> bytes | None:
        """A hit from the cache dir; a miss is one `PullThrough.get` per hash part at a time."""
        found = await self.blocking(self.pull.cache.lookup, hash_part)
        if found is not None:
            return found
        future = self._inflight.get(hash_part)
        if future is None:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._fetchers, self.pull.get, hash_part)
            self._inflight[hash_part] = future
            future.add_done_callback(lambda _: self._inflight.pop(hash_part, None))
        return await asyncio.shield(future)
