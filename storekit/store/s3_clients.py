"""The two clients of an `s3://` cache: `S3Http` for the per-path requests, boto3 for the rare ones.

Both take credentials from the AWS default chain, as Nix does. Its first link, the environment
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), is read here directly when no
`profile=` is named, which is what botocore's chain would answer too; anything else (profiles, SSO,
web identity, instance roles, refreshing credentials) goes through botocore's resolver. So boto3 (and
its ~0.3 s import and client set-up) is loaded only when a copy needs it: a multipart upload, a
bucket to create, a `cache gc`, or credentials from somewhere other than the environment.
"""

from __future__ import annotations

import datetime
import email.utils
import os
from collections.abc import Callable
from typing import Any

from storekit.store.s3_http import S3Error, S3Http
from storekit.store.s3_sigv4 import Credentials
from storekit.store.s3_spec import S3CacheSpec

POOL = 32  # HTTP connections per client: copy jobs x parts in flight
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0

CredentialSource = Callable[[], Credentials | None]


def credential_source(spec: S3CacheSpec, environ: dict[str, str] | None = None) -> CredentialSource:
    """What signs the cache's requests: the environment's keys, botocore's chain, or nothing (unsigned)."""
    env = dict(os.environ) if environ is None else environ
    if not spec.get("profile") and env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        token = env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN") or None
        static = Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], token)
        return lambda: static
    resolved = boto_session(spec).get_credentials()
    if resolved is None:
        return lambda: None

    def current() -> Credentials:  # refreshing credentials renew themselves here when near expiry
        frozen = resolved.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token or None)

    return current


def http_client(spec: S3CacheSpec, credentials: CredentialSource) -> S3Http:
    return S3Http(
        spec.endpoint_url,
        spec.bucket,
        spec.region,
        credentials,
        connections=POOL,
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        ca_certs=os.environ.get("AWS_CA_BUNDLE"),  # botocore honours it too
        user_agent="storekit",  # as the HTTP cache client says it
    )


def boto_session(spec: S3CacheSpec) -> Any:
    """A boto3 session on the default chain (or `profile=`), its timestamps parsed by `_timestamp`."""
    import boto3.session
    import botocore.exceptions
    import botocore.session

    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    try:
        return boto3.session.Session(
            botocore_session=core, profile_name=spec.get("profile") or None, region_name=spec.region
        )
    except botocore.exceptions.BotoCoreError as e:  # ProfileNotFound and friends
        raise S3Error(f"S3 binary cache '{spec}': {e}") from e


def boto_client(spec: S3CacheSpec) -> Any:
    """A boto3 client, path-style when an endpoint is given, payloads unsigned (as `S3Http`'s)."""
    import botocore
    import botocore.config

    session = boto_session(spec)
    options: dict[str, Any] = {
        "max_pool_connections": POOL,
        "retries": {"max_attempts": 3, "mode": "standard"},
        "connect_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": READ_TIMEOUT_S,
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
    import botocore.utils

    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return botocore.utils.parse_timestamp(text)  # type: ignore[no-any-return]
