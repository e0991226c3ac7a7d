"""`storekit key`: Generate and inspect ed25519 signing keys in Nix's format.

Like `nix key`, keys are written without a trailing newline, so the files are interchangeable with
the ones `nix key generate-secret` writes (either tool reads both).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from storekit.errors import SignatureError
from storekit.signing import SecretKey

NAME = "key"
HELP = "Generate and inspect ed25519 signing keys in Nix's format."
app = typer.Typer(no_args_is_help=True)


@app.command("generate")
def generate(
    name: Annotated[str, typer.Argument(help="Key name, e.g. cache.example.org-1; signatures carry it.")],
) -> None:
    """Print a new secret key `NAME:base64` (like `nix key generate-secret --key-name NAME`)."""
    typer.echo(str(SecretKey.generate(name)), nl=False)


@app.command("public")
def public() -> None:
    """Read a secret key on stdin, print its public key (like `nix key convert-secret-to-public`)."""
    text = sys.stdin.buffer.read().decode("utf-8", "replace")
    try:
        secret = SecretKey.parse(text)
    except SignatureError as e:
        # not the parser's message: it quotes the input, and this input is a secret (and may be binary)
        raise SignatureError(
            "stdin does not hold a secret key in Nix's 'name:base64' form "
            "(as `storekit key generate` or `nix key generate-secret` write it)"
        ) from e
    typer.echo(str(secret.public_key()), nl=False)
