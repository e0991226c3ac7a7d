"""`storekit.hashing.Base`, the encodings Nix prints hashes in; import it from `storekit.hashing`.

It lives apart so that importing `storekit.hashing` does not import `enum`: `storekit hash path` of a
small file needs `Hash` but no `Base`, and its start-up is most of what that command costs.
"""

from __future__ import annotations

from enum import Enum


class Base(Enum):
    """The encodings Nix knows, named as `nix hash` names them."""

    BASE16 = "base16"
    NIX32 = "base32"
    BASE64 = "base64"
    SRI = "sri"
