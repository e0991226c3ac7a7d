"""storekit's HTTP/1.1 client for S3 (`s3_conn`, `s3_http`) against scripted servers on 127.0.0.1.

Each server answers the requests of each connection it accepts from a list of canned answers, so the
cases radosgw does not produce on demand are covered: chunked bodies, a kept-alive connection the
server closed meanwhile, a body cut short, a 503 before success, an error body's code and message.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from storekit.store.s3_conn import BrokenAnswer, Pool
from storekit.store.s3_http import S3Answer, S3Http
from storekit.store.s3_sigv4 import Credentials
from tests.scripted_http import CLOSE, ScriptedServer, scripted_servers


def ok(body: bytes, *extra: str) -> bytes:
    headers = "".join(f"{h}\r\n" for h in extra)
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


@pytest.fixture
def serve() -> Iterator[object]:
    yield from scripted_servers()


def pool(server: ScriptedServer) -> Pool:
    return Pool("http", "127.0.0.1", server.port, connect_timeout=5, read_timeout=5)


def test_a_kept_alive_connection_serves_several_requests(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve([ok(b"one"), ok(b"two")])
    p = pool(server)
    for expected in (b"one", b"two"):
        answer = p.exchange("GET", "/b/k", {"host": "h"}, None)
        assert answer.status == 200 and answer.read() == expected and answer.done
    assert len(server.requests) == 2


def test_chunked_bodies_are_decoded_whole_and_by_pieces(serve) -> None:  # type: ignore[no-untyped-def]
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
    )
    server = serve([chunked, chunked, ok(b"after")])
    p = pool(server)
    assert p.exchange("GET", "/", {}, None).read() == b"hello world"
    answer = p.exchange("GET", "/", {}, None)
    assert b"".join(iter(lambda: answer.read(4), b"")) == b"hello world"
    assert p.exchange("GET", "/", {}, None).read() == b"after"  # the same connection, still in step


def test_a_connection_closed_while_idle_is_replaced_without_an_error(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve([ok(b"first"), None], [ok(b"second")])
    p = pool(server)
    assert p.exchange("PUT", "/b/k", {}, b"data").read() == b"first"
    assert p.exchange("PUT", "/b/k", {}, b"data").read() == b"second"
    assert [r.endswith(b"data") for r in server.requests] == [True, True, True]


def test_a_body_cut_short_is_an_oserror(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this" + CLOSE])
    answer = pool(server).exchange("GET", "/", {}, None)
    with pytest.raises(BrokenAnswer, match="bytes of the body unread"):
        answer.read()
    assert isinstance(BrokenAnswer("x"), OSError)


def test_a_fresh_connection_closed_without_answer_is_an_error(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve([None])
    with pytest.raises(BrokenAnswer, match="without answering"):
        pool(server).exchange("GET", "/", {}, None)


def s3(server: ScriptedServer, creds: Credentials | None = None) -> S3Http:
    return S3Http(
        f"http://127.0.0.1:{server.port}", "bucket", "us-east-1", lambda: creds,
        connections=4, connect_timeout=5, read_timeout=5,
    )  # fmt: skip


def error(status: bytes = b"403 Forbidden", code: bytes = b"SignatureDoesNotMatch") -> bytes:
    body = b"<Error><Code>" + code + b"</Code><Message>a &amp; b</Message></Error>"
    return b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def test_an_error_answer_keeps_s3s_code_and_message(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve([error(), b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"])
    client = s3(server, Credentials("AK", "SK"))
    with pytest.raises(S3Answer) as raised:
        client.request("GET", "nix-cache-info")
    assert (raised.value.code, raised.value.status, raised.value.message) == (
        "SignatureDoesNotMatch",
        403,
        "a & b",
    )
    with pytest.raises(S3Answer) as head:  # a HEAD answer has no body: the status is the code
        client.request("HEAD", "x.narinfo")
    assert (head.value.code, head.value.status, head.value.message) == ("404", 404, "Not Found")
    first = server.requests[0].decode()
    assert first.startswith("GET /bucket/nix-cache-info HTTP/1.1\r\n")
    assert "authorization: AWS4-HMAC-SHA256 Credential=AK/" in first


def test_a_503_is_retried_and_a_403_is_not(serve, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("storekit.store.s3_http._backoff", lambda attempt: None)
    server = serve([error(b"503 Slow Down", b"SlowDown"), ok(b"at last"), error()])
    client = s3(server)
    assert client.request("GET", "k").data == b"at last"
    with pytest.raises(S3Answer, match="SignatureDoesNotMatch"):
        client.request("GET", "k")
    assert len(server.requests) == 3
    assert "authorization" not in server.requests[0].decode().lower()  # no credentials: unsigned


def test_a_listing_page_gives_keys_and_the_next_token(serve) -> None:  # type: ignore[no-untyped-def]
    page = (
        b"<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a&amp;b.narinfo</Key></Contents>"
        b"<Contents><Key>c.narinfo</Key></Contents><CommonPrefixes><Prefix>nar/</Prefix></CommonPrefixes>"
        b"<NextContinuationToken>tok/+=</NextContinuationToken></ListBucketResult>"
    )
    last = (
        b"<ListBucketResult><IsTruncated>false</IsTruncated>"
        b"<Contents><Key>d</Key></Contents></ListBucketResult>"
    )
    server = serve([ok(page), ok(last)])
    client = s3(server)
    assert client.list_page("", None) == (["a&b.narinfo", "c.narinfo"], "tok/+=")
    assert client.list_page("", "tok/+=") == (["d"], None)
    second = server.requests[1].decode().split(" ")[1]
    assert second == "/bucket?continuation-token=tok%2F%2B%3D&delimiter=%2F&list-type=2&prefix="


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_https_checks_the_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server = ScriptedServer([[ok(b"over tls"), ok(b"kept alive")], []], tls)
    try:
        trusted = Pool(
            "https", "127.0.0.1", server.port, connect_timeout=5, read_timeout=5, ca_certs=str(cert)
        )
        assert trusted.exchange("GET", "/", {}, None).read() == b"over tls"
        assert trusted.exchange("GET", "/", {}, None).read() == b"kept alive"
        untrusted = Pool("https", "127.0.0.1", server.port, connect_timeout=5, read_timeout=5)
        with pytest.raises(ssl.SSLCertVerificationError):
            untrusted.exchange("GET", "/", {}, None)
    finally:
        server.close()


def test_a_wrong_region_is_one_error_naming_it(serve, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from storekit.store.s3 import S3Error, S3Transport
    from storekit.store.specs import parse_store_spec

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "SK")
    server = serve([error(b"400 Bad Request", b"AuthorizationHeaderMalformed")])
    spec = parse_store_spec(f"s3://bucket?endpoint=127.0.0.1:{server.port}&scheme=http&region=eu-west-3")
    transport = S3Transport(spec)  # type: ignore[arg-type]
    with pytest.raises(S3Error) as raised:
        transport.read("nix-cache-info")
    assert str(raised.value) == (
        f"S3 binary cache '{spec}' at http://127.0.0.1:{server.port}: GET 'nix-cache-info': "
        "AuthorizationHeaderMalformed (HTTP 400): a & b; the bucket may be in another region than "
        "'eu-west-3' (set region=)"
    )
