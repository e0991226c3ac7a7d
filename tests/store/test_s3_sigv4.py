"""storekit's SigV4 signer against botocore's `S3SigV4Auth` (the same request signs to the same headers),
and where its credentials come from."""

from __future__ import annotations

import datetime

import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest

from storekit.store.s3_sigv4 import Credentials, Signer, canonical_query, quote

NOW = datetime.datetime(2026, 12, 7, 3, 4, 5)
CASES = [
    ("GET", "/bucket/nix-cache-info", {}, {}),
    ("PUT", "/bucket/nar/0abc.nar", {}, {"Content-Type": "application/x-nix-nar"}),
    ("GET", "/bucket", {"list-type": "2", "prefix": "nar/", "delimiter": "/"}, {}),
    ("GET", "/bucket/odd key+name=~", {"continuation-token": "a/b c+d"}, {"Range": "bytes=5-"}),
    ("HEAD", "/bucket/x.narinfo", {}, {"If-Match": '"etag"'}),
]


@pytest.mark.parametrize("token", [None, "session-token/+="])
@pytest.mark.parametrize(("method", "path", "query", "headers"), CASES)
def test_headers_are_botocores(
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    token: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    encoded = quote(path, keep_slash=True)
    url = f"http://127.0.0.1:7480{encoded}" + (f"?{canonical_query(query)}" if query else "")  # as sent
    theirs = botocore.awsrequest.AWSRequest(method=method, url=url, headers=dict(headers))
    theirs.context["client_config"] = botocore.config.Config(s3={"payload_signing_enabled": False})
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: NOW)
    boto_creds = botocore.credentials.Credentials(creds.access_key, creds.secret_key, token)
    botocore.auth.S3SigV4Auth(boto_creds, "s3", "eu-west-3").add_auth(theirs)
    ours = Signer("eu-west-3").headers(
        creds, method, "127.0.0.1:7480", encoded, canonical_query(query), headers,
        now=NOW.replace(tzinfo=datetime.UTC).timestamp(),
    )  # fmt: skip
    assert ours["authorization"] == theirs.headers["Authorization"]
    assert ours["x-amz-date"] == theirs.headers["X-Amz-Date"]
    assert ours["x-amz-content-sha256"] == theirs.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert ours.get("x-amz-security-token") == theirs.headers.get("X-Amz-Security-Token")


def test_a_new_day_gets_a_new_key() -> None:
    signer, creds = Signer("us-east-1"), Credentials("AK", "secret")
    day1 = signer.headers(creds, "GET", "h", "/b/k", now=NOW.replace(tzinfo=datetime.UTC).timestamp())
    later = NOW + datetime.timedelta(days=1)
    day2 = signer.headers(creds, "GET", "h", "/b/k", now=later.replace(tzinfo=datetime.UTC).timestamp())
    assert "20261207/us-east-1/s3/aws4_request" in day1["authorization"]
    assert "20261208/us-east-1/s3/aws4_request" in day2["authorization"]


def test_environment_credentials_are_read_directly() -> None:
    from storekit.store.s3_clients import credential_source
    from storekit.store.s3_spec import S3CacheSpec

    spec = S3CacheSpec("bucket", "/opt/store")
    env = {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "TOK"}
    assert credential_source(spec, env)() == Credentials("AK", "SK", "TOK")
    assert credential_source(spec, env | {"AWS_SESSION_TOKEN": ""})() == Credentials("AK", "SK", None)


def test_a_named_profile_goes_through_botocores_chain(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from storekit.store.s3_clients import credential_source
    from storekit.store.s3_spec import S3CacheSpec

    (tmp_path / "credentials").write_text(
        "[ci]\naws_access_key_id = PROFILEKEY\naws_secret_access_key = PS\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    spec = S3CacheSpec("bucket", "/opt/store", (("profile", "ci"),))
    env = {"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "ES"}  # a named profile wins, as in Nix
    assert credential_source(spec, env)() == Credentials("PROFILEKEY", "PS", None)
