"""Content addresses (`ca` in the store DB and narinfo): `text:sha256:…`, `fixed:r:sha256:…`, `fixed:sha1:…`.

A content address is an *assertion* that a path's name follows from its contents. Stores check it
before registering a path (Nix's `isContentAddressed`), so a NAR cannot slip in under a name that
claims content it does not have.
"""

from __future__ import annotations

from storekit.errors import InvalidValue
from storekit.frozen import Frozen
from storekit.hashing import Hash
from storekit.storepath import FileIngestionMethod, StoreDir, StorePath

TYPE_CHECKING = False  # no `typing` at run time: every local store imports this module
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Literal


class ContentAddress(Frozen):
    """`text` (a `.drv` or `toFile` file) or `fixed` (flat or recursive `method`), with its hash.

    A frozen value written by hand (`storekit.frozen`).
    """

    __slots__ = ("hash", "kind", "method")
    __match_args__ = ("kind", "hash", "method")
    kind: Literal["text", "fixed"]
    hash: Hash
    method: FileIngestionMethod

    def __init__(
        self,
        kind: Literal["text", "fixed"],
        hash: Hash,
        method: FileIngestionMethod = FileIngestionMethod.FLAT,
    ) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "hash", hash)
        object.__setattr__(self, "method", method)

    @classmethod
    def parse(cls, text: str, *, blake3: bool = False) -> ContentAddress:
        prefix, sep, rest = text.partition(":")
        if not sep:
            raise InvalidValue(f"'{text}' is not a content address ('text:…' or 'fixed:…')")
        if prefix == "text":
            algo, _, digest = rest.partition(":")
            if algo != "sha256":
                raise InvalidValue(f"text content address '{text}' must use sha256")
            return cls("text", Hash.parse(digest, "sha256", blake3=blake3))
        if prefix == "fixed":
            method = FileIngestionMethod.FLAT
            if rest.startswith("r:"):
                method, rest = FileIngestionMethod.RECURSIVE, rest[2:]
            algo, _, digest = rest.partition(":")
            return cls("fixed", Hash.parse(digest, algo, blake3=blake3), method)
        raise InvalidValue(f"content address '{text}' has an unknown prefix '{prefix}' (known: text, fixed)")

    def __str__(self) -> str:
        if self.kind == "text":
            return f"text:{self.hash}"
        return f"fixed:{self.method.value}{self.hash}"

    def store_path(
        self,
        store_dir: StoreDir,
        name: str,
        references: Iterable[StorePath],
        self_path: StorePath | None = None,
    ) -> StorePath:
        """The path this content address implies; `self_path` in `references` counts as a self-reference."""
        refs = set(references)
        self_ref = self_path in refs
        if self_path is not None:
            refs.discard(self_path)
        if self.kind == "text":
            return store_dir.make_text_path(name, self.hash, refs)
        return store_dir.make_fixed_output_path(name, self.method, self.hash, refs, self_ref=self_ref)


def source_ca(nar_hash: Hash) -> str:
    """What `nix-store --add` records: the NAR's sha256, recursive."""
    return str(ContentAddress("fixed", nar_hash, FileIngestionMethod.RECURSIVE))


def text_ca(content_hash: Hash) -> str:
    return str(ContentAddress("text", content_hash))


_JSON_METHODS = {"text": "text:", "flat": "fixed:", "nar": "fixed:r:", "git": "fixed:git:"}


def ca_to_json(text: str) -> dict[str, str]:
    """Newer Nix's JSON of a content address: `{"method": "nar", "hash": "sha256-…"}`."""
    for method, prefix in sorted(_JSON_METHODS.items(), key=lambda kv: -len(kv[1])):
        if text.startswith(prefix):
            return {"hash": Hash.parse(text.removeprefix(prefix)).sri, "method": method}
    raise InvalidValue(f"content address '{text}' has an unknown prefix (known: text, fixed)")


def ca_from_json(obj: object) -> str:
    """The printed form (`fixed:r:sha256:<nix32>`) of a content address given as JSON."""
    if not isinstance(obj, dict) or set(obj) != {"hash", "method"} or obj["method"] not in _JSON_METHODS:
        raise InvalidValue(f"not a content address object {{method, hash}}: {obj!r}")
    h = Hash.parse(str(obj["hash"]))
    return f"{_JSON_METHODS[obj['method']]}{h}"
