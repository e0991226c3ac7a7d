"""The S3 requests a push or a substitution makes per path, signed, over kept-alive connections.

GET, HEAD and PUT of an object and a page of ListObjectsV2 are what `S3Transport` sends hundreds of
times per copy; each is built, signed (`s3_sigv4`) and exchanged (`s3_conn`) in a few dozen
microseconds of Python, where a boto3 call costs about a millisecond under the GIL (measured: a push
of 1,000 small paths spent most of its client CPU in botocore). boto3 stays for what happens once per
copy or per big NAR (bucket creation, multipart uploads, credential chains other than the
environment's).

Failures keep S3's words: an error answer becomes `S3Answer` (S3's code, the HTTP status, S3's
message; a HEAD has no body, so its code is the status, as botocore reports it); a connection that
cannot be made or breaks is retried, as are 5xx answers and throttling, with botocore's "standard"
backoff (at most `ATTEMPTS` tries), then raised as the `OSError` it was.
"""

from __future__ import annotations

import html
import random
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import IO

from storekit.errors import StoreError
from storekit.store.s3_conn import Answer, Pool
from storekit.store.s3_sigv4 import Credentials, Signer, canonical_query, quote

ATTEMPTS = 3
MAX_BACKOFF_S = 20.0
RETRY_STATUSES = (500, 502, 503, 504)
RETRY_CODES = ("RequestTimeout", "Throttling", "ThrottlingException", "RequestThrottled", "SlowDown")
#: An error answer's body is read up to this many bytes (S3's are a few hundred).
ERROR_BODY = 64 << 10
#: What a connection failure is raised as (refused, reset, timed out, cut short, TLS).
NETWORK_ERRORS = (OSError,)
_DNS_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_KEY = re.compile(r"<Key>([^<]*)</Key>")

Response = Answer
Body = bytes | IO[bytes] | None


class S3Error(StoreError):
    """An S3 request failed: the message names the cache, the endpoint, the key and the S3 error code."""


class S3Answer(Exception):
    """S3 answered with an error: its code (`NoSuchKey`, `SignatureDoesNotMatch`, …), status and message."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(f"{code} (HTTP {status}): {message}")
        self.code, self.status, self.message = code, status, message


class S3Http:
    """Signed requests to the objects of one bucket (`endpoint_url` None: AWS's regional endpoint).

    `credentials` is asked before each request (temporary credentials refresh themselves); None
    sends the request unsigned, which reads a public bucket.
    """

    def __init__(
        self,
        endpoint_url: str | None,
        bucket: str,
        region: str,
        credentials: Callable[[], Credentials | None],
        *,
        connections: int,
        connect_timeout: float,
        read_timeout: float,
        ca_certs: str | None = None,
        user_agent: str = "storekit",
    ) -> None:
        if endpoint_url is not None:  # path-style, as Nix addresses a bucket at a given endpoint
            base, self._prefix = endpoint_url.rstrip("/"), f"/{quote(bucket)}"
        elif _DNS_NAME.match(bucket):
            base, self._prefix = f"https://{bucket}.s3.{region}.amazonaws.com", ""
        else:
            base, self._prefix = f"https://s3.{region}.amazonaws.com", f"/{quote(bucket)}"
        parts = urllib.parse.urlsplit(base)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise S3Error(f"S3 endpoint '{base}' is not an http:// or https:// URL")
        self._prefix = parts.path.rstrip("/") + self._prefix
        self.base = base
        self._credentials = credentials
        self._signer = Signer(region)
        self._user_agent = user_agent
        self._host = parts.netloc.rsplit("@", 1)[-1]
        port = parts.port or (443 if scheme == "https" else 80)
        self._pool = Pool(
            scheme, parts.hostname, port, connect_timeout=connect_timeout, read_timeout=read_timeout,
            ca_certs=ca_certs, keep=connections,
        )  # fmt: skip

    def close(self) -> None:
        self._pool.close()

    def request(
        self,
        method: str,
        key: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Body = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Response:
        """Send one request (retried as the module docstring says); an error answer raises `S3Answer`.

        With `stream` the body is left unread for the caller (who closes the response); else it is
        read whole and the connection goes back to the pool.
        """
        path = f"{self._prefix}/{quote(key, keep_slash=True)}" if key else self._prefix or "/"
        canonical = canonical_query(query or {})
        target = f"{path}?{canonical}" if canonical else path
        start = 0 if body is None or isinstance(body, bytes) else body.tell()
        for attempt in range(ATTEMPTS):
            last = attempt + 1 == ATTEMPTS
            if body is not None and not isinstance(body, bytes):
                body.seek(start)  # a retry sends the body again from its start
            creds = self._credentials()
            if creds is None:
                sent = {k.lower(): v for k, v in (headers or {}).items()} | {"host": self._host}
            else:
                sent = self._signer.headers(creds, method, self._host, path, canonical, headers)
            sent["user-agent"] = self._user_agent
            try:
                response = self._pool.exchange(method, target, sent, body)
                if response.status < 300 and not stream:
                    response.data = response.read()
                    response.release()
            except NETWORK_ERRORS:
                if last:
                    raise
                _backoff(attempt)
                continue
            if response.status < 300:
                return response
            answer = _answer(method, response)
            if last or not (answer.status in RETRY_STATUSES or answer.code in RETRY_CODES):
                raise answer
            _backoff(attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def list_page(
        self, prefix: str, token: str | None, *, delimiter: str = "/"
    ) -> tuple[list[str], str | None]:
        """One page of ListObjectsV2 (up to 1,000 keys under `prefix`) and the token of the next, if any.

        Keys are sent undecoded (no `encoding-type=url`), so `<Key>` holds the key XML-escaped.
        """
        query = {"list-type": "2", "prefix": prefix}
        if delimiter:
            query["delimiter"] = delimiter
        if token:
            query["continuation-token"] = token
        text = self.request("GET", "", query=query).data.decode("utf-8")
        keys = [html.unescape(k) for k in _KEY.findall(text)]
        truncated = "<IsTruncated>true</IsTruncated>" in text
        found = re.search(r"<NextContinuationToken>([^<]*)</NextContinuationToken>", text)
        return keys, html.unescape(found.group(1)) if truncated and found else None


def _answer(method: str, response: Answer) -> S3Answer:
    """The error a non-2xx response carries (its body read, the connection given back)."""
    data = b""
    try:
        while len(data) < ERROR_BODY and (chunk := response.read(ERROR_BODY)):
            data += chunk
    except OSError:
        pass  # the status alone still tells what went wrong
    finally:
        response.release()
    text = data.decode("utf-8", "replace") if method != "HEAD" else ""
    code = _tag(text, "Code") or str(response.status)
    message = _tag(text, "Message") or ("" if text else response.reason or "")
    return S3Answer(code, response.status, message)


def _tag(text: str, name: str) -> str:
    found = re.search(f"<{name}>([^<]*)</{name}>", text)
    return html.unescape(found.group(1)) if found else ""


def _backoff(attempt: int) -> None:
    """botocore's "standard" retry mode: a random wait of up to 2^attempt seconds (at most 20)."""
    time.sleep(random.random() * min(MAX_BACKOFF_S, 2.0**attempt))
