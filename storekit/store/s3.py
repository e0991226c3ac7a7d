"""`s3://` binary caches: the transport that keeps a cache's files as objects of one S3 bucket.

`BinaryCacheStore` does the Nix part (narinfos, NAR files, compression, signatures, a narinfo only
after its NAR); this module moves the named files, as `FileTransport` does for a directory:

- Reads tell "no such key" (404) from every other failure: a 403 (wrong secret, private bucket) is an
  error naming the endpoint and the S3 error code, never "the path is not in the cache". NAR downloads
  resume where they broke off (a `Range` GET, pinned to the object's ETag) instead of starting over.
- Writes are atomic per object (S3 has no partial objects; a multipart upload becomes visible only
  when completed). A NAR file goes up by parts of `buffer-size` in parallel once it is bigger than
  one part, spooled first or streamed to its known key (`s3_upload`), and not at all when its key
  already exists (same name, same bytes). The narinfo is written by the caller only after that
  returns, so no reader ever sees a narinfo whose NAR is missing.
- A listing of a small bucket answers "which of these are there?" for a whole push (`_listed`).
- Credentials come from the AWS default chain (environment, `~/.aws` profiles, SSO, instance roles),
  or `profile=`; with none at all requests go unsigned, which reads a public bucket.

The per-path requests (GET, HEAD, PUT, a page of a listing) go through `s3_http` (SigV4 on a kept-alive
urllib3 pool); boto3 is loaded only for the rare ones (`s3_clients` says which).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

from storekit.errors import StoreError, SubstituteError
from storekit.store.binary_cache import BinaryCacheStore, read_secret_key
from storekit.store.compression import compressor_for, decompressor
from storekit.store.s3_clients import POOL, boto_client, credential_source, http_client
from storekit.store.s3_http import NETWORK_ERRORS, Response, S3Answer, S3Error
from storekit.store.s3_spec import S3CacheSpec
from storekit.store.s3_upload import PARTS_IN_FLIGHT, SpooledUpload, StreamedUpload
from storekit.store.transport import Download, PendingFile, Transport
from storekit.storepath import StoreDir

__all__ = ["S3Error", "S3Transport", "open_s3_cache"]

#: Content types Nix's S3 store sets (a web server in front would otherwise guess).
CONTENT_TYPES = {
    ".narinfo": "text/x-nix-narinfo",
    ".ls": "application/json",
    "nix-cache-info": "text/x-nix-cache-info",
}
NAR_TYPE = "application/x-nix-nar"
MISSING_CODES = ("NoSuchKey", "NotFound", "404")
RESUMES = 5
#: A listing of at most this many pages (1,000 keys each) answers "is it there?" for a whole prefix.
LIST_PAGES = 5
LIST_TTL_S = 30.0  # then listed again: a long-lived reader (cache serve) sees new paths
#: Above this a NAR goes up by parts (when multipart is on), so no single request carries gigabytes.
SINGLE_PUT_LIMIT = 5 << 30


def open_s3_cache(spec: S3CacheSpec) -> BinaryCacheStore:
    """Open the cache an `s3://` spec names (`?secret-key=FILE` signs what is written)."""
    transport = S3Transport(spec)
    keys = [read_secret_key(spec.get("secret-key"))] if spec.get("secret-key") else []
    priority = spec.get("priority") or None
    if priority is not None and not priority.lstrip("-").isdigit():
        raise StoreError(f"binary cache '{spec}': priority '{priority}' is not an integer")
    return BinaryCacheStore(
        transport,
        StoreDir(spec.store_dir),
        compression=spec.get("compression", "xz"),
        secret_keys=keys,
        priority=None if priority is None else int(priority),
        uri=str(spec),
    )


class S3Transport(Transport):
    """The objects of one bucket, named like a cache directory's files (`nar/…`, `<hash>.narinfo`)."""

    writable = True

    def __init__(self, spec: S3CacheSpec) -> None:
        self.spec = spec
        self.bucket = spec.bucket
        self.uri = str(spec)
        self.endpoint = spec.endpoint_url or f"https://s3.{spec.region}.amazonaws.com"
        self.http = http_client(spec, credential_source(spec))
        self._boto: Any = None
        self._boto_lock = threading.Lock()
        self._warming = False
        self._lock = threading.Lock()
        self._parts = ThreadPoolExecutor(POOL // 2, thread_name_prefix="storekit-s3-part")
        self._listings: dict[str, set[str] | None] = {}
        self._listed_at: dict[str, float] = {}
        if spec.create_bucket:
            self._create_bucket()

    @property
    def client(self) -> Any:
        """boto3's client, made on first use (multipart uploads, bucket creation, `cache gc`)."""
        with self._boto_lock:
            if self._boto is None:
                self._boto = boto_client(self.spec)
            return self._boto

    def _warm_client(self) -> None:
        """Make boto3's client on a thread of its own, once, when a push begins.

        Its import and set-up take ~0.3 s; a NAR large enough for a multipart upload would otherwise
        wait for them when its first part is ready. Reads never start it.
        """
        with self._lock:
            if self._warming or self._boto is not None:
                return
            self._warming = True
        threading.Thread(target=lambda: self.client, name="storekit-s3-boto", daemon=True).start()

    @property
    def transfer(self) -> Any:
        """boto3's multipart settings: parts of `buffer-size`, `PARTS_IN_FLIGHT` at a time."""
        import boto3.s3.transfer

        part = self.spec.buffer_size
        return boto3.s3.transfer.TransferConfig(
            multipart_threshold=part, multipart_chunksize=part, max_concurrency=PARTS_IN_FLIGHT
        )

    def close(self) -> None:
        self.http.close()

    # --- requests and their errors -------------------------------------------------------------------

    def call(self, op: str, key: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """boto3's `fn(Bucket=…, **kwargs)`, its failures translated by `errors`."""
        with self.errors(op, key):
            return fn(Bucket=self.bucket, **kwargs)

    def request(self, op: str, method: str, key: str, **kwargs: Any) -> Response:
        """`S3Http.request`, its failures translated by `errors`."""
        with self.errors(op, key):
            return self.http.request(method, key, **kwargs)

    @contextlib.contextmanager
    def errors(self, op: str, key: str) -> Iterator[None]:
        """Every failure becomes one `S3Error` naming the cache, the endpoint, the key and the S3 code."""
        try:
            yield
        except S3Answer as e:
            raise self.error(op, key, e.code, e.status, e.message) from e
        except S3Error:
            raise
        except NETWORK_ERRORS as e:
            raise S3Error(f"{self._where(op, key)}: cannot reach the endpoint: {e}") from e
        except Exception as e:
            failure = self._boto_failure(op, key, e)
            if failure is None:
                raise
            raise failure from e

    def _boto_failure(self, op: str, key: str, e: Exception) -> S3Error | None:
        """The `S3Error` for a boto3 failure (None: not one; boto3 is imported only once used)."""
        if "botocore.exceptions" not in sys.modules:
            return None
        import boto3.exceptions
        import botocore.exceptions

        if isinstance(e, botocore.exceptions.ClientError):
            error = e.response.get("Error", {})
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            code = str(error.get("Code") or status)
            return self.error(op, key, code, status, str(error.get("Message") or ""))
        if isinstance(e, boto3.exceptions.S3UploadFailedError):
            return S3Error(f"{self._where(op, key)}: {e}")
        if isinstance(e, botocore.exceptions.NoCredentialsError):
            return S3Error(f"{self._where(op, key)}: no AWS credentials ({e})")
        if isinstance(e, botocore.exceptions.BotoCoreError):
            return S3Error(f"{self._where(op, key)}: cannot reach the endpoint: {e}")
        return None

    def error(self, op: str, key: str, code: str, status: int, message: str) -> S3Error:
        hint = ""
        if code == "NoSuchBucket":
            hint = f"; bucket '{self.bucket}' does not exist there (storekit copy --create-bucket creates it)"
        elif code in ("SignatureDoesNotMatch", "InvalidAccessKeyId"):
            hint = "; check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or profile=)"
        elif code in ("AuthorizationHeaderMalformed", "PermanentRedirect"):  # S3 does not redirect for us
            hint = f"; the bucket may be in another region than '{self.spec.region}' (set region=)"
        detail = f": {message}" if message and message != code else ""
        return S3Error(f"{self._where(op, key)}: {code} (HTTP {status}){detail}{hint}")

    def _where(self, op: str, key: str) -> str:
        return f"S3 binary cache '{self.uri}' at {self.endpoint}: {op} '{key}'"

    def _create_bucket(self) -> None:
        try:
            self.http.request("HEAD", "")
            return
        except S3Answer as e:
            if e.status != 404:
                raise self.error("HEAD bucket", self.bucket, e.code, e.status, e.message) from e
        except NETWORK_ERRORS as e:
            raise S3Error(f"{self._where('HEAD bucket', self.bucket)}: cannot reach the endpoint: {e}") from e
        extra: dict[str, Any] = {}
        if self.spec.region != "us-east-1":  # S3's rule: us-east-1 is named by leaving it out
            extra["CreateBucketConfiguration"] = {"LocationConstraint": self.spec.region}
        with contextlib.suppress(S3Error):  # a concurrent creator won: fine if it is ours now
            self.call("create bucket", self.bucket, self.client.create_bucket, **extra)
        self.request("HEAD bucket", "HEAD", "")

    def _get(self, name: str, *, stream: bool, headers: dict[str, str] | None = None) -> Response | None:
        """GET `name` (None: no such key; a missing bucket or a 403 is an `S3Error`)."""
        try:
            with self.errors("GET", name):
                return self.http.request("GET", name, headers=headers, stream=stream)
        except S3Error as e:
            answer = e.__cause__
            if isinstance(answer, S3Answer) and answer.status == 404 and answer.code in MISSING_CODES:
                return None
            raise

    # --- the Transport interface -----------------------------------------------------------------------

    def _listed(self, name: str) -> bool | None:
        """Whether `name` (a narinfo or a NAR) was in the bucket when its prefix was listed.

        One listing of a small bucket replaces a request per path (a push asks for every path's
        narinfo and NAR first, and a request costs far more than a key of a listing). Only absence
        is believed: an object listed is fetched or checked anyway. None: no listing (a prefix of more
        than `LIST_PAGES` pages, or not a narinfo or NAR). Like Nix's negative narinfo cache, an
        answer may miss others' writes of the last `LIST_TTL_S`; this process's own are added here.
        """
        prefix = "nar/" if name.startswith("nar/") and name.count("/") == 1 else ""
        if not prefix and ("/" in name or not name.endswith(".narinfo")):
            return None
        with self._lock:
            if prefix not in self._listings or time.monotonic() - self._listed_at[prefix] > LIST_TTL_S:
                self._listed_at[prefix] = time.monotonic()
                self._listings[prefix] = self._list(prefix)
            listing = self._listings[prefix]
        return None if listing is None else name in listing

    def _list(self, prefix: str) -> set[str] | None:
        keys: set[str] = set()
        token: str | None = None
        with self.errors("LIST", prefix):
            for _ in range(LIST_PAGES):
                page, token = self.http.list_page(prefix, token)
                keys.update(page)
                if token is None:
                    return keys
        return None

    def added(self, name: str) -> None:
        with self._lock:
            for prefix, listing in self._listings.items():
                if listing is not None and name.startswith(prefix):
                    listing.add(name)

    def read(self, name: str) -> bytes | None:
        if self._listed(name) is False:
            return None
        response = self._get(name, stream=False)
        if response is None:
            return None
        data = response.data
        encoding = response.headers.get("content-encoding") or ""
        if encoding in ("", "none", "identity"):
            return data
        if encoding not in ("xz", "bzip2", "zstd"):
            raise SubstituteError(f"{self._where('GET', name)}: unknown Content-Encoding '{encoding}'")
        with decompressor(encoding, io.BytesIO(data), None) as plain:  # type: ignore[arg-type]
            return plain.read()

    def open(self, name: str, expected_size: int | None = None) -> Download | None:
        response = self._get(name, stream=True)
        if response is None:
            return None
        stream = _ObjectStream(self, name, response)
        return Download(stream, expected_size or stream.size, f"{self.endpoint}/{self.bucket}/{name}")  # type: ignore[arg-type]

    def exists(self, name: str) -> bool:
        if self._listed(name) is False:
            return False
        try:
            self.http.request("HEAD", name)
        except S3Answer as e:
            if e.status == 404:  # HEAD answers have no body, so no code: 404 is "no such key"
                return False
            raise self.error("HEAD", name, e.code, e.status, e.message) from e
        except NETWORK_ERRORS as e:
            raise S3Error(f"{self._where('HEAD', name)}: cannot reach the endpoint: {e}") from e
        return True

    def write(self, name: str, data: bytes) -> None:
        headers = _content_type(name)
        encoding = self._encoding_for(name)
        if encoding:
            compressor = compressor_for(encoding)
            assert compressor is not None
            data = compressor.compress(data) + compressor.flush()
            headers["Content-Encoding"] = encoding
        self.request("PUT", "PUT", name, body=data, headers=headers)
        self.added(name)

    @contextlib.contextmanager
    def pending(self, directory: str, name: str | None = None) -> Iterator[PendingFile]:
        """A NAR file being written: streamed by parts when its `name` is known, else spooled."""
        pending: PendingFile
        if self.spec.multipart:
            self._warm_client()
        if name is not None and self.spec.multipart:
            pending = StreamedUpload(self, name, self._parts)
        else:
            pending = SpooledUpload(self)
        try:
            yield pending
        finally:
            pending.discard()

    def list_names(self, suffix: str) -> list[str]:
        """Top-level keys ending in `suffix` (narinfos), listed a page of 1,000 at a time."""
        names: list[str] = []
        token: str | None = None
        with self.errors("LIST", ""):
            while True:
                page, token = self.http.list_page("", token)
                names.extend(k for k in page if k.endswith(suffix))
                if token is None:
                    return sorted(names)

    def upload(self, name: str, file: BinaryIO, size: int) -> None:
        """Put a spooled file at `name`: by parts in parallel above one part, else in one PUT."""
        headers = _content_type(name) or {"Content-Type": NAR_TYPE}
        limit = self.spec.buffer_size if self.spec.multipart else SINGLE_PUT_LIMIT
        if size <= limit:
            body: bytes | BinaryIO = file.read() if size <= self.spec.buffer_size else file
            self.request("PUT", "PUT", name, body=body, headers=headers | {"Content-Length": str(size)})
        else:
            with self.errors("multipart upload", name):
                self.client.upload_fileobj(file, self.bucket, name, ExtraArgs=headers, Config=self.transfer)
        self.added(name)

    def _encoding_for(self, name: str) -> str:
        key = (
            "narinfo-compression"
            if name.endswith(".narinfo")
            else "ls-compression"
            if name.endswith(".ls")
            else ""
        )
        key = "log-compression" if name.startswith("log/") else key
        value = self.spec.get(key) if key else ""
        return "" if value == "none" else value


class _ObjectStream(io.RawIOBase):
    """An object's bytes; a broken connection resumes with a `Range` GET of the same ETag."""

    def __init__(self, transport: S3Transport, name: str, response: Response) -> None:
        super().__init__()
        self._transport, self._name = transport, name
        self._body: Any = response
        self._etag: str | None = response.headers.get("etag")
        length = response.headers.get("content-length")
        self.size: int | None = int(length) if length and length.isdigit() else None
        self.position = 0
        self.resumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while True:
            try:
                data = self._body.read(len(buffer))
            except (*NETWORK_ERRORS, http.client.HTTPException) as e:
                self._resume(e)
                continue
            if not data and self.size is not None and self.position < self.size:
                self._resume(EOFError(f"the connection closed at byte {self.position} of {self.size}"))
                continue
            buffer[: len(data)] = data
            self.position += len(data)
            return len(data)

    def _resume(self, cause: BaseException) -> None:
        """Ask for the rest; `Download` turns a final OSError into a truncated-download error."""
        if self.resumed >= RESUMES:
            raise OSError(f"gave up after {self.resumed} resumed GETs: {cause}")
        self.resumed += 1
        self._close_body()
        headers = {"Range": f"bytes={self.position}-"} | ({"If-Match": self._etag} if self._etag else {})
        try:
            response = self._transport._get(self._name, stream=True, headers=headers)
        except S3Error as e:
            raise OSError(f"resuming at byte {self.position} failed: {e}") from e
        if response is None:
            raise OSError(f"'{self._name}' vanished while being downloaded")
        self._body = response

    def _close_body(self) -> None:
        """Give the connection back to the pool (closed instead if the body was not read to its end)."""
        with contextlib.suppress(Exception):
            self._body.close()

    def close(self) -> None:
        self._close_body()
        super().close()


def _content_type(name: str) -> dict[str, str]:
    for suffix, kind in CONTENT_TYPES.items():
        if name.endswith(suffix):
            return {"Content-Type": kind}
    return {}
