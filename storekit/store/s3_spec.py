"""`s3://BUCKET?…`: a binary cache in an S3 bucket, as Nix 2.8's `S3BinaryCacheStore` names it (pure).

The parameters are Nix's, with Nix's meanings and defaults, so a `substituters` line written for Nix
opens the same cache here: `region` (us-east-1), `endpoint` (host[:port], or a URL; given, the bucket
is addressed path-style, as Nix does), `scheme` (https), `profile` (a profile of ~/.aws/credentials;
empty: the default chain), `narinfo-compression`, `ls-compression`, `log-compression` (stored with a
`Content-Encoding`, which HTTP clients undo), `multipart-upload` and `buffer-size` (the part size),
plus the binary-cache ones. Two storekit parameters: `create-bucket=true` creates a missing bucket on
open (what `copy --create-bucket` sets), and `multipart-upload` defaults to true here (Nix's default
false works around a C++ SDK problem; boto3's transfer manager has none).
"""

from __future__ import annotations

from storekit.errors import StoreError
from storekit.frozen import Frozen
from storekit.storepath import DEFAULT_STORE_DIR

Params = tuple[tuple[str, str], ...]

COMPRESSIONS = ("xz", "zstd", "bzip2", "none")
#: Content-Encodings a narinfo, listing or log may be stored with ("" = none).
ENCODINGS = ("", "none", "xz", "bzip2", "zstd")
MIN_PART = 5 << 20  # S3's smallest part size (all parts but the last)
#: Accepted without effect here (tuning knobs of Nix's); the two `write-*` ones only when false.
INERT = ("write-nar-listing", "write-debug-info", "local-nar-cache", "parallel-compression",
         "compression-level", "path-info-cache-size", "want-mass-query", "system-features")  # fmt: skip
KNOWN = (
    "store", "region", "endpoint", "scheme", "profile", "narinfo-compression", "ls-compression",
    "log-compression", "multipart-upload", "buffer-size", "compression", "secret-key", "priority",
    "create-bucket", *INERT,
)  # fmt: skip


class S3CacheSpec(Frozen):
    """A binary cache in bucket `bucket`; `params` are the query's other parameters, in order.

    A frozen value written by hand (`storekit.frozen`): every command imports the store specs.
    """

    __slots__ = ("bucket", "params", "store_dir")
    __match_args__ = ("bucket", "store_dir", "params")
    bucket: str
    store_dir: str
    params: Params

    def __init__(self, bucket: str, store_dir: str, params: Params = ()) -> None:
        object.__setattr__(self, "bucket", bucket)
        object.__setattr__(self, "store_dir", store_dir)
        object.__setattr__(self, "params", params)

    def __str__(self) -> str:
        full = (
            (("store", self.store_dir), *self.params) if self.store_dir != DEFAULT_STORE_DIR else self.params
        )
        import urllib.parse  # here: with `ipaddress`, it costs every command's start-up a few ms

        query = urllib.parse.urlencode(full, safe="/:")
        return f"s3://{self.bucket}?{query}" if query else f"s3://{self.bucket}"

    def get(self, key: str, default: str = "") -> str:
        return dict(self.params).get(key, default)

    @property
    def region(self) -> str:
        return self.get("region", "us-east-1")

    @property
    def endpoint_url(self) -> str | None:
        """The endpoint as a URL (`scheme` applies to a bare host[:port]); None: AWS's own."""
        endpoint = self.get("endpoint")
        if not endpoint:
            return None
        return endpoint if "://" in endpoint else f"{self.get('scheme', 'https')}://{endpoint}"

    @property
    def multipart(self) -> bool:
        return _flag(self.get("multipart-upload", "true"))

    @property
    def buffer_size(self) -> int:
        return int(self.get("buffer-size", str(MIN_PART)))

    @property
    def create_bucket(self) -> bool:
        return _flag(self.get("create-bucket", "false"))


def parse_s3_spec(text: str, bucket: str, params: Params, store_dir: str) -> S3CacheSpec:
    """Check an `s3://` spec's bucket and parameters; `store_dir` is already checked by the caller."""
    if not bucket or "/" in bucket:
        raise StoreError(f"binary cache '{text}': name one bucket, as in s3://BUCKET?region=…")
    given = dict(params)
    unknown = sorted(set(given) - set(KNOWN))
    if unknown:
        raise StoreError(
            f"store spec '{text}': unknown parameter(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(KNOWN))})"
        )
    _one_of(text, "compression", given.get("compression", "xz"), COMPRESSIONS)
    for key in ("narinfo-compression", "ls-compression", "log-compression"):
        _one_of(text, key, given.get(key, ""), ENCODINGS)
    _one_of(text, "scheme", given.get("scheme", "https"), ("http", "https"))
    for key in ("multipart-upload", "create-bucket"):
        if key in given and given[key] not in ("true", "false", "1", "0"):
            raise StoreError(f"binary cache '{text}': {key} must be true or false, not '{given[key]}'")
    for key in ("write-nar-listing", "write-debug-info"):
        if _flag(given.get(key, "false")):
            raise StoreError(f"binary cache '{text}': {key}=true is not supported by storekit yet")
    size = given.get("buffer-size", str(MIN_PART))
    if not size.isdigit() or int(size) < MIN_PART:
        raise StoreError(
            f"binary cache '{text}': buffer-size must be a number of bytes >= {MIN_PART} (5 MiB)"
        )
    rest = tuple((k, v) for k, v in params if k != "store")
    return S3CacheSpec(bucket, store_dir, rest)


def _one_of(text: str, key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        known = ", ".join(a for a in allowed if a)
        raise StoreError(f"binary cache '{text}': unknown {key} '{value}' (known: {known})")


def _flag(value: str) -> bool:
    return value in ("true", "1")
