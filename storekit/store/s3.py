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

boto3 (and its ~0.3 s import) is loaded only here, when an `s3://` store is opened.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import http.client
import io
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

import boto3
import boto3.exceptions
import boto3.s3.transfer
import botocore.config
import botocore.exceptions
import botocore.session
import botocore.utils

from storekit.errors import StoreError, SubstituteError
from storekit.store.binary_cache import BinaryCacheStore, read_secret_key
from storekit.store.compression import compressor_for, decompressor
from storekit.store.s3_spec import S3CacheSpec
from storekit.store.s3_upload import PARTS_IN_FLIGHT, SpooledUpload, StreamedUpload
from storekit.store.transport import Download, PendingFile, Transport
from storekit.storepath import StoreDir

#: Content types Nix's S3 store sets (a web server in front would otherwise guess).
CONTENT_TYPES = {
    ".narinfo": "text/x-nix-narinfo",
    ".ls": "application/json",
    "nix-cache-info": "text/x-nix-cache-info",
}
MISSING_CODES = ("NoSuchKey", "NotFound", "404")
RESUMES = 5
#: A listing of at most this many pages (1,000 keys each) answers "is it there?" for a whole prefix.
LIST_PAGES = 5
LIST_TTL_S = 30.0  # then listed again: a long-lived reader (cache serve) sees new paths
POOL = 32  # HTTP connections per client: copy jobs x parts in flight


class S3Error(StoreError):
    """An S3 request failed: the message names the cache, the endpoint, the key and the S3 error code."""


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
        self.client = _client(spec)
        part = spec.buffer_size
        self.transfer = boto3.s3.transfer.TransferConfig(
            multipart_threshold=part if spec.multipart else 5 << 30,
            multipart_chunksize=part,
            max_concurrency=PARTS_IN_FLIGHT,
            use_threads=True,
        )
        self._lock = threading.Lock()
        self._parts = ThreadPoolExecutor(POOL // 2, thread_name_prefix="storekit-s3-part")
        self._listings: dict[str, set[str] | None] = {}
        self._listed_at: dict[str, float] = {}
        if spec.create_bucket:
            self._create_bucket()

    # --- requests and their errors -------------------------------------------------------------------

    def call(self, op: str, key: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """`fn(Bucket=…, **kwargs)`, its failures translated by `errors`."""
        with self.errors(op, key):
            return fn(Bucket=self.bucket, **kwargs)

    @contextlib.contextmanager
    def errors(self, op: str, key: str) -> Iterator[None]:
        """Every failure becomes one `S3Error` naming the cache, the endpoint, the key and the S3 code."""
        try:
            yield
        except botocore.exceptions.ClientError as e:
            raise self.error(op, key, e) from e
        except boto3.exceptions.S3UploadFailedError as e:
            raise S3Error(f"{self._where(op, key)}: {e}") from e
        except botocore.exceptions.NoCredentialsError as e:
            raise S3Error(f"{self._where(op, key)}: no AWS credentials ({e})") from e
        except (botocore.exceptions.BotoCoreError, OSError) as e:
            raise S3Error(f"{self._where(op, key)}: cannot reach the endpoint: {e}") from e

    def error(self, op: str, key: str, e: botocore.exceptions.ClientError) -> S3Error:
        code, status, message = _details(e)
        hint = ""
        if code == "NoSuchBucket":
            hint = f"; bucket '{self.bucket}' does not exist there (storekit copy --create-bucket creates it)"
        elif code in ("SignatureDoesNotMatch", "InvalidAccessKeyId"):
            hint = "; check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or profile=)"
        detail = f": {message}" if message and message != code else ""
        return S3Error(f"{self._where(op, key)}: {code} (HTTP {status}){detail}{hint}")

    def _where(self, op: str, key: str) -> str:
        return f"S3 binary cache '{self.uri}' at {self.endpoint}: {op} '{key}'"

    def _create_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except botocore.exceptions.ClientError as e:
            if _details(e)[1] != 404:
                raise self.error("HEAD bucket", self.bucket, e) from e
        except botocore.exceptions.BotoCoreError as e:
            raise S3Error(f"{self._where('HEAD bucket', self.bucket)}: {e}") from e
        extra: dict[str, Any] = {}
        if self.spec.region != "us-east-1":  # S3's rule: us-east-1 is named by leaving it out
            extra["CreateBucketConfiguration"] = {"LocationConstraint": self.spec.region}
        with contextlib.suppress(S3Error):  # a concurrent creator won: fine if it is ours now
            self.call("create bucket", self.bucket, self.client.create_bucket, **extra)
        self.call("HEAD bucket", self.bucket, self.client.head_bucket)

    def _get(self, name: str, **kwargs: Any) -> dict[str, Any] | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=name, **kwargs)  # type: ignore[no-any-return]
        except botocore.exceptions.ClientError as e:
            code, status, _ = _details(e)
            if status == 404 and code in MISSING_CODES:
                return None
            raise self.error("GET", name, e) from e
        except botocore.exceptions.NoCredentialsError as e:
            raise S3Error(f"{self._where('GET', name)}: no AWS credentials ({e})") from e
        except (botocore.exceptions.BotoCoreError, OSError) as e:
            raise S3Error(f"{self._where('GET', name)}: cannot reach the endpoint: {e}") from e

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
        token: dict[str, str] = {}
        with self.errors("LIST", prefix):
            for _ in range(LIST_PAGES):
                page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, Delimiter="/", **token)
                keys.update(o["Key"] for o in page.get("Contents", ()))
                if not page.get("IsTruncated"):
                    return keys
                token = {"ContinuationToken": page["NextContinuationToken"]}
        return None

    def added(self, name: str) -> None:
        with self._lock:
            for prefix, listing in self._listings.items():
                if listing is not None and name.startswith(prefix):
                    listing.add(name)

    def read(self, name: str) -> bytes | None:
        if self._listed(name) is False:
            return None
        response = self._get(name)
        if response is None:
            return None
        with contextlib.closing(_ObjectStream(self, name, response)) as stream:
            data = stream.read()
        encoding = response.get("ContentEncoding") or ""
        if encoding in ("", "none", "identity"):
            return data
        if encoding not in ("xz", "bzip2", "zstd"):
            raise SubstituteError(f"{self._where('GET', name)}: unknown Content-Encoding '{encoding}'")
        with decompressor(encoding, io.BytesIO(data), None) as plain:  # type: ignore[arg-type]
            return plain.read()

    def open(self, name: str, expected_size: int | None = None) -> Download | None:
        response = self._get(name)
        if response is None:
            return None
        stream = _ObjectStream(self, name, response)
        return Download(stream, expected_size or stream.size, f"{self.endpoint}/{self.bucket}/{name}")  # type: ignore[arg-type]

    def exists(self, name: str) -> bool:
        if self._listed(name) is False:
            return False
        try:
            self.client.head_object(Bucket=self.bucket, Key=name)
        except botocore.exceptions.ClientError as e:
            if _details(e)[1] == 404:  # HEAD answers have no body, so no code: 404 is "no such key"
                return False
            raise self.error("HEAD", name, e) from e
        except (botocore.exceptions.BotoCoreError, OSError) as e:
            raise S3Error(f"{self._where('HEAD', name)}: cannot reach the endpoint: {e}") from e
        return True

    def write(self, name: str, data: bytes) -> None:
        extra = _content_type(name)
        encoding = self._encoding_for(name)
        if encoding:
            compressor = compressor_for(encoding)
            assert compressor is not None
            data = compressor.compress(data) + compressor.flush()
            extra["ContentEncoding"] = encoding
        self.call("PUT", name, self.client.put_object, Key=name, Body=data, **extra)
        self.added(name)

    @contextlib.contextmanager
    def pending(self, directory: str, name: str | None = None) -> Iterator[PendingFile]:
        """A NAR file being written: streamed by parts when its `name` is known, else spooled."""
        pending: PendingFile
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
        with self.errors("LIST", ""):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Delimiter="/"
            ):
                names.extend(o["Key"] for o in page.get("Contents", ()) if o["Key"].endswith(suffix))
        return sorted(names)

    def upload(self, name: str, file: BinaryIO, size: int) -> None:
        """Put a spooled file at `name`: by parts in parallel above one part, else in one PUT."""
        extra = _content_type(name) or {"ContentType": "application/x-nix-nar"}
        if size <= self.transfer.multipart_threshold:
            self.call("PUT", name, self.client.put_object, Key=name, Body=file, ContentLength=size, **extra)
        else:
            with self.errors("multipart upload", name):
                self.client.upload_fileobj(file, self.bucket, name, ExtraArgs=extra, Config=self.transfer)
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

    def __init__(self, transport: S3Transport, name: str, response: dict[str, Any]) -> None:
        super().__init__()
        self._transport, self._name = transport, name
        self._body = response["Body"]
        self._etag: str | None = response.get("ETag")
        self.size: int | None = response.get("ContentLength")
        self.position = 0
        self.resumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while True:
            try:
                data = self._body.read(len(buffer))
            except (botocore.exceptions.BotoCoreError, OSError, http.client.HTTPException) as e:
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
        with contextlib.suppress(Exception):
            self._body.close()
        extra = {"IfMatch": self._etag} if self._etag else {}
        try:
            response = self._transport._get(self._name, Range=f"bytes={self.position}-", **extra)
        except S3Error as e:
            raise OSError(f"resuming at byte {self.position} failed: {e}") from e
        if response is None:
            raise OSError(f"'{self._name}' vanished while being downloaded")
        self._body = response["Body"]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._body.close()
        super().close()


def _client(spec: S3CacheSpec) -> Any:
    """A client from the default credential chain (or `profile=`), path-style when an endpoint is given."""
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    try:
        session = boto3.session.Session(
            botocore_session=core, profile_name=spec.get("profile") or None, region_name=spec.region
        )
    except botocore.exceptions.BotoCoreError as e:  # ProfileNotFound and friends
        raise S3Error(f"S3 binary cache '{spec}': {e}") from e
    options: dict[str, Any] = {
        "max_pool_connections": POOL,
        "retries": {"max_attempts": 3, "mode": "standard"},
        "connect_timeout": 10,
        "read_timeout": 60,
        # Nix's S3 client never signs payloads (PayloadSigningPolicy::Never): hashing every byte once
        # more for the signature costs a core at these speeds, and a NAR is checked by its hashes.
        "s3": {"addressing_style": "path" if spec.endpoint_url else "auto", "payload_signing_enabled": False},
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    }
    if session.get_credentials() is None:
        options["signature_version"] = botocore.UNSIGNED
    config = botocore.config.Config(**options)
    return session.client("s3", endpoint_url=spec.endpoint_url, config=config)


def _timestamp(text: str) -> datetime.datetime:
    """S3's timestamps (ISO 8601 in listings, HTTP dates in headers) without dateutil's general parser.

    botocore parses every `LastModified` (each GET's header, each key of a listing) with dateutil,
    which profiled as most of the CPU a listing of 1,000 keys took; these two forms are all S3 sends.
    """
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return botocore.utils.parse_timestamp(text)  # type: ignore[no-any-return]


def _details(e: botocore.exceptions.ClientError) -> tuple[str, int, str]:
    error = e.response.get("Error", {})
    status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return str(error.get("Code") or status), status, str(error.get("Message") or "")


def _content_type(name: str) -> dict[str, Any]:
    for suffix, kind in CONTENT_TYPES.items():
        if name.endswith(suffix):
            return {"ContentType": kind}
    return {}
