"""AWS Signature Version 4 for S3 requests (pure): the headers that sign one request.

Why not botocore's signer on the hot path: a boto3 call spends about a millisecond of Python time on
request building, event hooks and response parsing under the GIL, more than radosgw spends serving
a small PUT; a push of 1,000 small paths is 2,000 such requests. Signing itself is two HMACs and a
SHA-256 of a few hundred bytes. This module is checked against botocore's `S3SigV4Auth`
(tests/store/test_s3_sigv4.py), byte for byte, so the two sign the same requests the same way.

As Nix's S3 client, payloads are not signed (`UNSIGNED-PAYLOAD`): a NAR is checked by its hashes, and
hashing every byte once more for the signature would cost a core at these speeds.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
#: Headers never signed (botocore's list): proxies and clients may change them on the way.
UNSIGNED_HEADERS = frozenset({"expect", "user-agent", "x-amzn-trace-id", "content-length"})


@dataclass(frozen=True, slots=True)
class Credentials:
    """An access key and its secret; `token` for temporary credentials (STS, SSO, instance roles)."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


def quote(text: str, *, keep_slash: bool = False) -> str:
    """SigV4's URI encoding: everything but `A-Za-z0-9-._~` (and `/` in a path) as `%XX`."""
    return urllib.parse.quote(text, safe="-_.~/" if keep_slash else "-_.~")


def canonical_query(query: Mapping[str, str]) -> str:
    """`k=v&…` sorted by encoded key, as both the request line and the signature use it."""
    pairs = sorted((quote(k), quote(v)) for k, v in query.items())
    return "&".join(f"{k}={v}" for k, v in pairs)


class Signer:
    """Signs requests for one region with one set of credentials (the day's key computed once)."""

    def __init__(self, region: str, service: str = "s3") -> None:
        self.region, self.service = region, service
        self._keys: dict[tuple[str, str, str], bytes] = {}

    def _key(self, secret: str, day: str) -> bytes:
        found = self._keys.get((secret, day, self.region))
        if found is None:
            found = _hmac(("AWS4" + secret).encode(), day)
            for part in (self.region, self.service, "aws4_request"):
                found = _hmac(found, part)
            self._keys = {(secret, day, self.region): found}  # one day's key: replaced, not grown
        return found

    def headers(
        self,
        creds: Credentials,
        method: str,
        host: str,
        path: str,
        query: str = "",
        headers: Mapping[str, str] | None = None,
        *,
        now: float | None = None,
        payload: str = UNSIGNED_PAYLOAD,
    ) -> dict[str, str]:
        """`headers` plus `host`, `x-amz-date`, `x-amz-content-sha256` (and the token) and `authorization`.

        `path` is already URI-encoded (S3 paths are encoded once, not normalised); `query` is
        `canonical_query`'s output. Header names come back lower-case.
        """
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
        day = stamp[:8]
        signed = {k.lower(): " ".join(str(v).split()) for k, v in (headers or {}).items()}
        signed.update({"host": host, "x-amz-date": stamp, "x-amz-content-sha256": payload})
        if creds.token:
            signed["x-amz-security-token"] = creds.token
        names = sorted(n for n in signed if n not in UNSIGNED_HEADERS)
        canonical = "\n".join(
            [method, path, query, *(f"{n}:{signed[n]}" for n in names), "", ";".join(names), payload]
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{digest}"
        signature = hmac.new(self._key(creds.secret_key, day), to_sign.encode(), hashlib.sha256).hexdigest()
        signed["authorization"] = (
            f"{ALGORITHM} Credential={creds.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return signed


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()
