"""Store dirs, store paths, and the ways Nix names a path from what it holds.

Every path name is `storeDir/<hash part>-<name>`, where the hash part is the first 160 bits (folded) of
sha256 over a *fingerprint* `type:sha256:<inner hex>:<storeDir>:<name>`. The store dir is part of the
fingerprint, which is why the same content has a different hash part under `/opt/store` than under
`/nix/store`, and why storekit must carry a `StoreDir` everywhere instead of assuming `/nix/store`.
"""

from __future__ import annotations

import posixpath
from functools import total_ordering

from storekit import nixbase32
from storekit.errors import InvalidStorePath
from storekit.frozen import Constant, Frozen
from storekit.hashing import Hash, compress

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import ClassVar

HASH_PART_LEN = 32
MAX_NAME_LEN = 211
DEFAULT_STORE_DIR = "/nix/store"
_HASH_CHARS = frozenset(nixbase32.ALPHABET)
_NAME_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+-._?=")


class FileIngestionMethod(Constant):
    """How a fixed-output hash was computed: over the flat file bytes or over the NAR.

    `FLAT` (value `""`) or `RECURSIVE` (`"r:"`): constants compared by identity, as enum members
    (`storekit.frozen.Constant` says why not an `Enum`), as is `NameRule`.
    """

    __slots__ = ()
    FLAT: ClassVar[FileIngestionMethod]
    RECURSIVE: ClassVar[FileIngestionMethod]


FileIngestionMethod.FLAT = FileIngestionMethod("FLAT", "")
FileIngestionMethod.RECURSIVE = FileIngestionMethod("RECURSIVE", "r:")


class NameRule(Constant):
    """Which store path names are accepted, by Nix version (`storekit.nixversion` picks one).

    `NIX_2_8`: Nix's characters and length only (what Nix 2.4-2.20 check; the core's default, so
    the core reads whatever Nix 2.8 wrote). `STRICT`: no name starts with `.` (Nix <= 2.3 refused
    them), what every Nix accepts: the CLI's default. `NIX_2_21`: names may start with `.`, but not
    `.`, `..` or a first dash-separated part that is one of them.
    """

    __slots__ = ()
    NIX_2_8: ClassVar[NameRule]
    STRICT: ClassVar[NameRule]
    NIX_2_21: ClassVar[NameRule]


NameRule.NIX_2_8 = NameRule("NIX_2_8", "nix-2.8")
NameRule.STRICT = NameRule("STRICT", "strict")
NameRule.NIX_2_21 = NameRule("NIX_2_21", "nix-2.21")


def check_name(name: str, path: str | None = None, *, rule: NameRule = NameRule.NIX_2_8) -> None:
    """Raise `InvalidStorePath` unless `name` is a legal store path name under `rule`."""
    what = f"store path '{path}'" if path is not None else f"name '{name}'"
    if not name:
        raise InvalidStorePath(f"{what} has an empty name")
    if rule is not NameRule.NIX_2_8 and name.startswith("."):
        where = f"store path '{path}': " if path is not None else ""
        first = name.split("-", 1)[0]
        if first in (".", ".."):
            raise InvalidStorePath(
                f"{where}name '{name}' is not valid: its first dash-separated part is '{first}'"
            )
        if rule is NameRule.STRICT:
            raise InvalidStorePath(
                f"{where}name '{name}' starts with a period, which only Nix >= 2.21 accepts "
                "(set nix-version to 2.21 or later to allow it)"
            )
    if len(name) > MAX_NAME_LEN:
        raise InvalidStorePath(f"{what} has a name longer than {MAX_NAME_LEN} characters")
    for c in name:
        if c not in _NAME_CHARS:
            raise InvalidStorePath(f"{what} contains illegal character '{c}'")


_set = object.__setattr__


@total_ordering
class StoreDir(Frozen):
    """A store dir such as `/opt/store`: parses, validates and makes store paths under it.

    A frozen value, equal, hashed and ordered by `path` (a hand-written class: `storekit.frozen`).
    """

    __slots__ = ("name_rule", "path")
    __match_args__ = ("path", "name_rule")
    path: str
    name_rule: NameRule
    """Which names *new* paths may have (see `NameRule`); parsing accepts what Nix 2.8 wrote.
    Not part of the store dir's identity."""

    def __init__(self, path: str = DEFAULT_STORE_DIR, name_rule: NameRule = NameRule.NIX_2_8) -> None:
        _set(self, "name_rule", name_rule)
        if isinstance(path, StoreDir):  # `StoreDir(path.store_dir)`: the same store dir
            _set(self, "path", path.path)
            return
        _set(self, "path", path)
        if not path.startswith("/"):
            raise InvalidStorePath(f"store dir '{path}' is not an absolute path")
        norm = posixpath.normpath(path)
        if norm.startswith("//"):
            norm = "/" + norm.lstrip("/")
        if norm != path or norm == "/":
            raise InvalidStorePath(
                f"store dir '{path}' must be a canonical absolute path other than '/' (try '{norm}')"
            )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, StoreDir):
            return NotImplemented
        return self.path == other.path

    def __hash__(self) -> int:
        return hash((self.path,))

    def __lt__(self, other: StoreDir) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.path < other.path

    def __str__(self) -> str:
        return self.path

    # --- parsing -------------------------------------------------------------------------------

    def parse_base_name(self, base_name: str) -> StorePath:
        """Parse `<hash>-<name>` (no directory) as a path of this store, with Nix 2.8's messages.

        Nix 2.8 does not check the `-` after the hash part; storekit does, since a path without it
        cannot have been made by any store.
        """
        if len(base_name) < HASH_PART_LEN + 1:
            raise InvalidStorePath(f"'{base_name}' is too short to be a valid store path")
        hash_part = base_name[:HASH_PART_LEN]
        for c in hash_part:
            if c not in _HASH_CHARS:
                raise InvalidStorePath(f"store path '{base_name}' contains illegal base-32 character '{c}'")
        if base_name[HASH_PART_LEN] != "-":
            raise InvalidStorePath(
                f"store path '{base_name}' lacks the '-' between its hash part and its name"
            )
        name = base_name[HASH_PART_LEN + 1 :]
        check_name(name, base_name)  # reading: whatever Nix 2.8 wrote; the rule is for new paths
        return StorePath(self, hash_part, name)

    def parse_path(self, path: str) -> StorePath:
        """Parse a full store path; refuse paths outside this store dir or below a store path."""
        parent, base = posixpath.split(posixpath.normpath(path))
        if parent != self.path:
            raise InvalidStorePath(f"path '{path}' is not in the Nix store '{self.path}'")
        return self.parse_base_name(base)

    def to_store_path(self, path: str) -> tuple[StorePath, str]:
        """Split a path inside a store path into the store path and the rest (`/bin/sh` or `""`)."""
        norm = posixpath.normpath(path)
        prefix = self.path + "/"
        if not norm.startswith(prefix):
            raise InvalidStorePath(f"path '{path}' is not in the Nix store '{self.path}'")
        base, sep, rest = norm[len(prefix) :].partition("/")
        return self.parse_base_name(base), sep + rest

    def is_store_path(self, path: str) -> bool:
        try:
            self.parse_path(path)
        except InvalidStorePath:
            return False
        return True

    # --- making paths --------------------------------------------------------------------------

    def make_store_path(self, type_: str, inner: Hash, name: str) -> StorePath:
        """Nix's `makeStorePath`: hash the fingerprint, fold to 160 bits, print in nix-base32.

        The name is checked after hashing so that a bad name is reported with the would-be base
        name, exactly as Nix reports it.
        """
        fingerprint = f"{type_}:{inner.algo}:{inner.base16}:{self.path}:{name}"
        hash_part = nixbase32.encode(compress(Hash.of(fingerprint.encode()).digest))
        check_name(name, f"{hash_part}-{name}", rule=self.name_rule)
        return StorePath(self, hash_part, name)

    def make_text_path(
        self, name: str, content_hash: Hash, references: Iterable[StorePath] = ()
    ) -> StorePath:
        """A text path (`.drv` files, `builtins.toFile`): sha256 of the contents plus references."""
        if content_hash.algo != "sha256":
            raise InvalidStorePath("text paths are addressed by sha256 only")
        return self.make_store_path(_with_refs("text", references, self_ref=False), content_hash, name)

    def make_fixed_output_path(
        self,
        name: str,
        method: FileIngestionMethod,
        content_hash: Hash,
        references: Iterable[StorePath] = (),
        *,
        self_ref: bool = False,
    ) -> StorePath:
        """Nix's `makeFixedOutputPath`: recursive sha256 is a `source` path, anything else `output:out`."""
        refs = list(references)
        if method is FileIngestionMethod.RECURSIVE and content_hash.algo == "sha256":
            return self.make_store_path(_with_refs("source", refs, self_ref), content_hash, name)
        if refs or self_ref:
            how = f"{method.value}{content_hash.algo}"
            raise InvalidStorePath(f"fixed-output path '{name}' hashed with {how} cannot have references")
        inner = Hash.of(f"fixed:out:{method.value}{content_hash.algo}:{content_hash.base16}:".encode())
        return self.make_store_path("output:out", inner, name)

    def make_source_path(
        self, name: str, nar_hash: Hash, references: Iterable[StorePath] = (), *, self_ref: bool = False
    ) -> StorePath:
        """What `nix-store --add` gives: the NAR's sha256 as a recursive fixed output."""
        return self.make_fixed_output_path(
            name, FileIngestionMethod.RECURSIVE, nar_hash, references, self_ref=self_ref
        )

    def make_output_path(self, output: str, drv_hash_modulo: Hash, drv_name: str) -> StorePath:
        """An input-addressed output: `out` keeps the derivation's name, others get `-<output>`."""
        return self.make_store_path(f"output:{output}", drv_hash_modulo, output_path_name(drv_name, output))


@total_ordering
class StorePath(Frozen):
    """A path in some store: its store dir, 32-character hash part and name. Prints as the full path.

    `store_dir` is the same `StoreDir` value stores have (`path.store_dir == store.store_dir`); a
    plain string given for it is taken as a `StoreDir` (and validated as one). A frozen value, equal,
    hashed and ordered by all three (a hand-written class: `storekit.frozen`).
    """

    __slots__ = ("hash_part", "name", "store_dir")
    __match_args__ = ("store_dir", "hash_part", "name")
    store_dir: StoreDir
    hash_part: str
    name: str

    def __init__(self, store_dir: StoreDir, hash_part: str, name: str) -> None:
        _set(self, "store_dir", store_dir if isinstance(store_dir, StoreDir) else StoreDir(store_dir))
        _set(self, "hash_part", hash_part)
        _set(self, "name", name)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, StorePath):
            return NotImplemented
        return (
            self.hash_part == other.hash_part
            and self.name == other.name
            and self.store_dir == other.store_dir
        )

    def __hash__(self) -> int:
        return hash((self.store_dir, self.hash_part, self.name))

    def __lt__(self, other: StorePath) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.store_dir.path, self.hash_part, self.name) < (
            other.store_dir.path,
            other.hash_part,
            other.name,
        )

    @property
    def base_name(self) -> str:
        return f"{self.hash_part}-{self.name}"

    @property
    def is_derivation(self) -> bool:
        return self.name.endswith(".drv")

    def __str__(self) -> str:
        return f"{self.store_dir}/{self.hash_part}-{self.name}"


def output_path_name(drv_name: str, output: str) -> str:
    return drv_name if output == "out" else f"{drv_name}-{output}"


def _with_refs(type_: str, references: Iterable[StorePath], self_ref: bool) -> str:
    parts = [type_, *sorted(str(r) for r in references)]
    if self_ref:
        parts.append("self")
    return ":".join(parts)
