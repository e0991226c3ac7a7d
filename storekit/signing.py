"""ed25519 signing keys and signatures in Nix's `name:base64` forms (libstore crypto.cc).

A secret key is `name:base64(seed ‖ public key)` (libsodium's 64-byte layout), a public key
`name:base64(public key)`, a signature `name:base64(signature)`. The name ties a signature to the key
that made it, so verification looks the key up by name among the trusted ones. The curve arithmetic
is the `cryptography` package's (audited, constant-time), never ours. It is imported when a key is
used, not with this module: the stores import this module, and most commands never sign or verify.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from storekit.errors import InvalidHash, SignatureError
from storekit.hashing import base64_decode

SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
SECRET_KEY_BYTES = 64
SIGNATURE_BYTES = 64


def _split(text: str, what: str) -> tuple[str, bytes]:
    """Split `name:base64` as Nix does (the first colon; neither side empty) and decode the key.

    Messages never quote the key text: a secret key's body is the secret, and even a few characters of
    it in a terminal or a CI log are a leak.
    """
    name, sep, body = text.strip().partition(":")
    if not sep or not name or not body:
        raise SignatureError(
            f"{what} is corrupt: expected 'name:base64' ({len(text.strip())} characters given)"
        )
    try:
        return name, base64_decode(body)
    except InvalidHash:
        raise SignatureError(f"{what} '{name}' is corrupt: its key is not valid base-64") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True, slots=True)
class PublicKey:
    name: str
    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != PUBLIC_KEY_BYTES:
            raise SignatureError(
                f"public key '{self.name}' is not valid: {len(self.key)} bytes, expected {PUBLIC_KEY_BYTES}"
            )

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """Parse `name:base64(32 bytes)`, as in `trusted-public-keys`."""
        name, key = _split(text, "public key")
        return cls(name, key)

    def verify(self, data: str | bytes, signature: bytes) -> bool:
        """Check a raw 64-byte signature over `data` with this key."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        raw = data.encode() if isinstance(data, str) else data
        try:
            Ed25519PublicKey.from_public_bytes(self.key).verify(signature, raw)
        except InvalidSignature:
            return False
        return True

    def __str__(self) -> str:
        return f"{self.name}:{_b64(self.key)}"


@dataclass(frozen=True, slots=True, repr=False)
class SecretKey:
    """A signing key; `key` is libsodium's 64 bytes (seed ‖ public key). Its repr hides the key."""

    name: str
    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != SECRET_KEY_BYTES:
            raise SignatureError(
                f"secret key '{self.name}' is not valid: {len(self.key)} bytes, expected {SECRET_KEY_BYTES}"
            )
        if _public_bytes(self.key[:SEED_BYTES]) != self.key[SEED_BYTES:]:
            raise SignatureError(
                f"secret key '{self.name}' is not valid: its public half does not match its seed"
            )

    @classmethod
    def parse(cls, text: str) -> SecretKey:
        """Parse `name:base64(64 bytes)` as `nix key generate-secret` writes it (a bare 32-byte seed too)."""
        name, key = _split(text, "secret key")
        if len(key) == SEED_BYTES:
            key += _public_bytes(key)
        return cls(name, key)

    @classmethod
    def generate(cls, name: str) -> SecretKey:
        if not name or ":" in name:
            raise SignatureError(f"key name '{name}' must be non-empty and contain no ':'")
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return cls(name, seed + _public_bytes(seed))

    def public_key(self) -> PublicKey:
        return PublicKey(self.name, self.key[SEED_BYTES:])

    def sign(self, data: str | bytes) -> str:
        """Sign `data` (e.g. a narinfo fingerprint) and return the `name:base64` signature."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        raw = data.encode() if isinstance(data, str) else data
        signature = Ed25519PrivateKey.from_private_bytes(self.key[:SEED_BYTES]).sign(raw)
        return f"{self.name}:{_b64(signature)}"

    def __str__(self) -> str:
        return f"{self.name}:{_b64(self.key)}"

    def __repr__(self) -> str:
        return f"SecretKey(name={self.name!r}, key=<hidden>)"


def _public_bytes(seed: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return (
        Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def parse_public_keys(text: str | Iterable[str]) -> dict[str, PublicKey]:
    """Parse a `trusted-public-keys` value (whitespace-separated) into keys by name."""
    items = text.split() if isinstance(text, str) else [t for s in text for t in s.split()]
    keys: dict[str, PublicKey] = {}
    for item in items:
        key = PublicKey.parse(item)
        keys.setdefault(key.name, key)
    return keys


def verify(data: str | bytes, sig: str, trusted: Mapping[str, PublicKey] | Iterable[PublicKey]) -> bool:
    """Nix's `verifyDetached`: is `sig` (`name:base64`) a good signature of `data` by a trusted key?

    A signature by a key not in `trusted` is simply not good (False); one that names a trusted key but
    is not 64 bytes of base64 is corrupt and raises `SignatureError`, as in Nix.
    """
    keys = trusted if isinstance(trusted, Mapping) else {k.name: k for k in trusted}
    name, sep, body = sig.partition(":")
    key = keys.get(name) if sep and name else None
    if key is None:
        return False
    try:
        raw = base64_decode(body)
    except InvalidHash as e:
        raise SignatureError(f"signature by '{name}' is not valid: {e}") from e
    if len(raw) != SIGNATURE_BYTES:
        raise SignatureError(
            f"signature by '{name}' is not valid: {len(raw)} bytes, expected {SIGNATURE_BYTES}"
        )
    return key.verify(data, raw)
