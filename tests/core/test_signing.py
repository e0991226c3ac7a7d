"""ed25519 keys and signatures in Nix's format; the Nix-generated key in tests/data/narinfo is the oracle."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from storekit.errors import SignatureError
from storekit.signing import PublicKey, SecretKey, parse_public_keys, verify

DATA = Path(__file__).parent.parent / "data" / "narinfo"
NIX_SECRET = (DATA / "nix-key.sec").read_text()
NIX_PUBLIC = (DATA / "nix-key.pub").read_text()


def test_nix_generated_key_parses_and_converts_like_nix() -> None:
    secret = SecretKey.parse(NIX_SECRET)
    assert secret.name == "golden-1"
    assert str(secret) == NIX_SECRET  # written without a newline, like Nix
    assert str(secret.public_key()) == NIX_PUBLIC  # what `nix key convert-secret-to-public` printed
    assert SecretKey.parse(NIX_SECRET + "\n") == secret
    assert "key=<hidden>" in repr(secret) and NIX_SECRET.split(":")[1][:10] not in repr(secret)


def test_a_32_byte_seed_is_accepted() -> None:
    secret = SecretKey.parse(NIX_SECRET)
    seed_only = f"golden-1:{base64.b64encode(secret.key[:32]).decode()}"
    assert SecretKey.parse(seed_only) == secret


def test_generate_sign_verify() -> None:
    secret = SecretKey.generate("cache.example.org-1")
    public = secret.public_key()
    assert PublicKey.parse(str(public)) == public
    assert SecretKey.parse(str(secret)) == secret
    sig = secret.sign("1;/opt/store/x;sha256:0;1;")
    assert sig.startswith("cache.example.org-1:") and len(base64.b64decode(sig.split(":")[1])) == 64
    assert secret.sign("1;/opt/store/x;sha256:0;1;") == sig  # ed25519 is deterministic
    assert verify("1;/opt/store/x;sha256:0;1;", sig, [public])
    assert verify(b"1;/opt/store/x;sha256:0;1;", sig, {public.name: public})
    assert not verify("1;/opt/store/y;sha256:0;1;", sig, [public])
    other = SecretKey.generate("cache.example.org-1").public_key()
    assert not verify("1;/opt/store/x;sha256:0;1;", sig, [other])  # same name, other key
    assert not verify("1;/opt/store/x;sha256:0;1;", sig, [])  # untrusted name: simply not good
    assert not verify("1;/opt/store/x;sha256:0;1;", "no-colon", [public])


def test_corrupt_signature_by_a_trusted_key_raises() -> None:
    public = SecretKey.parse(NIX_SECRET).public_key()
    with pytest.raises(SignatureError, match="signature by 'golden-1' is not valid: 3 bytes"):
        verify("x", "golden-1:AAAA", [public])
    with pytest.raises(SignatureError, match="invalid character"):
        verify("x", "golden-1:!!!!", [public])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "secret key is corrupt"),
        ("nocolon", "secret key is corrupt"),
        (":AAAA", "secret key is corrupt"),
        ("name:", "secret key is corrupt"),
        ("name:AAAA", "secret key 'name' is not valid: 3 bytes"),
        ("name:a b", "secret key 'name' is corrupt: its key is not valid base-64"),
    ],
)
def test_bad_secret_keys(text: str, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        SecretKey.parse(text)


def test_errors_never_quote_secret_key_text() -> None:
    body = str(SecretKey.generate("k")).partition(":")[2]
    for text in (body, body + "!", "k:" + body[:-2] + "!!"):
        with pytest.raises(SignatureError) as info:
            SecretKey.parse(text)
        assert body[:6] not in str(info.value)


def test_secret_key_halves_must_match() -> None:
    a, b = SecretKey.generate("a"), SecretKey.generate("b")
    mixed = base64.b64encode(a.key[:32] + b.key[32:]).decode()
    with pytest.raises(SignatureError, match="does not match its seed"):
        SecretKey.parse(f"a:{mixed}")


def test_bad_public_keys_and_names() -> None:
    with pytest.raises(SignatureError, match="public key 'k' is not valid: 64 bytes"):
        PublicKey.parse("k:" + NIX_SECRET.split(":")[1])
    with pytest.raises(SignatureError, match="public key is corrupt"):
        PublicKey.parse("just-base64")
    with pytest.raises(SignatureError, match="must be non-empty"):
        SecretKey.generate("")
    with pytest.raises(SignatureError, match="no ':'"):
        SecretKey.generate("a:b")


def test_trusted_public_keys_setting() -> None:
    mine = SecretKey.generate("mine-1").public_key()
    keys = parse_public_keys(f"  {NIX_PUBLIC}\n {mine}  {SecretKey.generate('mine-1').public_key()}")
    assert list(keys) == ["golden-1", "mine-1"]
    assert keys["mine-1"] == mine  # the first key of a name wins, as in Nix
    assert parse_public_keys([NIX_PUBLIC, f"{mine}"]) == {
        "golden-1": PublicKey.parse(NIX_PUBLIC),
        "mine-1": mine,
    }
    assert parse_public_keys("") == {}
