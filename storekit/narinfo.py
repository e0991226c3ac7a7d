"""`.narinfo` and `nix-cache-info`: the two text files that make a directory a Nix binary cache.

Both are `Key: value` lines. Printing follows Nix 2.8's `NarInfo::to_string` field for field, so a
narinfo parsed from a cache Nix wrote prints back byte for byte; parsing is as forgiving as Nix's
(unknown keys are ignored) but names the line that is wrong. References and the deriver are kept as
base names, as the file holds them; `fingerprint` is what a `Sig:` line signs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from storekit.errors import InvalidHash, InvalidStorePath, NarInfoError
from storekit.hashing import Base, Hash
from storekit.storepath import StoreDir, StorePath

_NIX32 = Base.NIX32
_REQUIRED = (
    ("store_path", "StorePath missing"),
    ("nar_hash", "NarHash missing"),
    ("url", "URL missing"),
    ("nar_size", "NarSize missing or zero"),
)


@dataclass(frozen=True, slots=True)
class NarInfo:
    """One `<hashpart>.narinfo`. `compression` is `bzip2` when the file does not say, as in Nix."""

    store_path: StorePath
    url: str
    nar_hash: Hash
    nar_size: int
    compression: str = "bzip2"
    file_hash: Hash | None = None
    file_size: int = 0
    references: tuple[str, ...] = ()
    deriver: str | None = None
    sigs: tuple[str, ...] = ()
    ca: str | None = None
    system: str | None = None

    @classmethod
    def parse(cls, text: str, store_dir: StoreDir, whence: str = "narinfo") -> NarInfo:
        """Parse a narinfo of a cache for `store_dir`; `whence` names the file in error messages."""
        return _Parser(text, store_dir, whence).run()

    def to_text(self) -> str:
        """The file's text, byte-identical to what Nix 2.8 writes for the same values."""
        lines = [
            f"StorePath: {self.store_path}",
            f"URL: {self.url}",
            f"Compression: {self.compression}",
        ]
        if self.file_hash is not None:
            lines.append(f"FileHash: {self.file_hash.format(_NIX32)}")
        lines.append(f"FileSize: {self.file_size}")
        lines.append(f"NarHash: {self.nar_hash.format(_NIX32)}")
        lines.append(f"NarSize: {self.nar_size}")
        lines.append("References: " + " ".join(sorted(set(self.references))))
        if self.deriver is not None:
            lines.append(f"Deriver: {self.deriver}")
        if self.system:
            lines.append(f"System: {self.system}")
        lines.extend(f"Sig: {sig}" for sig in sorted(set(self.sigs)))
        if self.ca is not None:
            lines.append(f"CA: {self.ca}")
        return "".join(line + "\n" for line in lines)

    def __str__(self) -> str:
        return self.to_text()

    @property
    def reference_paths(self) -> list[StorePath]:
        store_dir = self.store_path.store_dir
        return [_parse_base_name(store_dir, r) for r in self.references]

    def fingerprint(self) -> str:
        """What a `Sig:` signs; see `fingerprint` below."""
        prefix = self.store_path.store_dir.path + "/"
        return fingerprint(
            self.store_path, self.nar_hash, self.nar_size, (prefix + r for r in self.references)
        )


def fingerprint(
    store_path: StorePath | str, nar_hash: Hash, nar_size: int, references: Iterable[StorePath | str]
) -> str:
    """Nix's `ValidPathInfo::fingerprint`: `1;<path>;sha256:<nix32>;<narSize>;<sorted full refs>`.

    References are full paths. Like Nix, refuse when the NAR size is unknown (0) or the NAR hash is
    not sha256, since no one could verify such a signature.
    """
    if nar_size <= 0:
        raise NarInfoError(
            f"cannot calculate fingerprint of path '{store_path}' because its size is not known"
        )
    if nar_hash.algo != "sha256":
        raise NarInfoError(
            f"cannot calculate fingerprint of path '{store_path}': its NAR hash is {nar_hash.algo}, "
            "not sha256"
        )
    refs = ",".join(sorted({str(r) for r in references}))
    return f"1;{store_path};{nar_hash.format(_NIX32)};{nar_size};{refs}"


_PARSED: dict[tuple[str, object, str], StorePath] = {}
_PARSED_MAX = 1 << 16


def _parse_base_name(store_dir: StoreDir, base_name: str) -> StorePath:
    """`store_dir.parse_base_name`, remembered: in a closure each path is named by its own narinfo
    and by its referrers' (twice per narinfo: as read, then as a reference of the path info), and a
    substitution of 1,000 small paths parsed 5,000 names. Store paths are values, safe to share."""
    key = (store_dir.path, store_dir.name_rule, base_name)
    found = _PARSED.get(key)
    if found is None:
        found = store_dir.parse_base_name(base_name)  # raises for a bad name: nothing remembered
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = found
    return found


class _Parser:
    """Nix's `NarInfo` constructor, kept apart so each field's rule stays short."""

    def __init__(self, text: str, store_dir: StoreDir, whence: str) -> None:
        self.text = text
        self.store_dir = store_dir
        self.whence = whence
        self.line = 0
        self.fields: dict[str, object] = {}
        self.sigs: list[str] = []

    def corrupt(self, reason: str, *, at_line: bool = True) -> NarInfoError:
        where = f" at line {self.line}" if at_line else ""
        return NarInfoError(f"NAR info file '{self.whence}' is corrupt: {reason}{where}")

    def run(self) -> NarInfo:
        lines = self.text.split("\n")
        if lines[-1] != "":
            self.line = len(lines)
            raise self.corrupt("expecting '\\n' at the end of the last line")
        for self.line, line in enumerate(lines[:-1], start=1):
            key, sep, value = line.partition(":")
            if not sep:
                raise self.corrupt("expecting 'Key: value'")
            self.field(key, value.removeprefix(" "))
        return self.finish()

    def field(self, key: str, value: str) -> None:
        f = self.fields
        if key == "StorePath":
            f["store_path"] = self.path(value)
        elif key in ("URL", "Compression", "System"):
            f[key.lower()] = value
        elif key in ("FileHash", "NarHash"):
            f["file_hash" if key == "FileHash" else "nar_hash"] = self.hash(value)
        elif key in ("FileSize", "NarSize"):
            f["file_size" if key == "FileSize" else "nar_size"] = self.size(key, value)
        elif key == "References":
            if f.get("references"):
                raise self.corrupt("extra References")
            f["references"] = tuple(self.base_name(r) for r in value.split(" ") if r)
        elif key == "Deriver":
            f["deriver"] = None if value == "unknown-deriver" else self.base_name(value)
        elif key == "Sig":
            self.sigs.append(value)
        elif key == "CA":
            if "ca" in f:
                raise self.corrupt("extra CA")
            f["ca"] = self.content_address(value)

    def finish(self) -> NarInfo:
        f = self.fields
        missing = next((name for key, name in _REQUIRED if not f.get(key)), None)
        if missing is not None:
            raise self.corrupt(missing, at_line=False)
        f["compression"] = f.get("compression") or "bzip2"
        f["sigs"] = tuple(sorted(set(self.sigs)))
        return NarInfo(**f)  # type: ignore[arg-type]

    def path(self, value: str) -> StorePath:
        try:
            return self.store_dir.parse_path(value)
        except InvalidStorePath as e:
            raise self.corrupt(f"bad StorePath: {e}") from e

    def base_name(self, value: str) -> str:
        try:
            return _parse_base_name(self.store_dir, value).base_name
        except InvalidStorePath as e:
            raise self.corrupt(f"bad store path: {e}") from e

    def hash(self, value: str) -> Hash:
        try:
            return Hash.parse(value)
        except InvalidHash as e:
            raise self.corrupt(f"bad hash: {e}") from e

    def size(self, key: str, value: str) -> int:
        if not value.isascii() or not value.isdigit():
            raise self.corrupt(f"invalid {key} '{value}'")
        return int(value)

    def content_address(self, value: str) -> str:
        """Check a CA field's shape (`text:` or `fixed:[r:]` then a typed hash) and keep it as written."""
        rest = value.removeprefix("text:") if value.startswith("text:") else None
        if rest is None and value.startswith("fixed:"):
            rest = value.removeprefix("fixed:").removeprefix("r:")
        if rest is None:
            raise self.corrupt(f"content address '{value}' is neither 'text:…' nor 'fixed:…'")
        self.hash(rest)
        return value


@dataclass(frozen=True, slots=True)
class NixCacheInfo:
    """`nix-cache-info`: the store dir a cache serves, and its hints to clients. Unset fields are omitted."""

    store_dir: str | None = None
    want_mass_query: bool | None = None
    priority: int | None = None

    @classmethod
    def parse(cls, text: str, whence: str = "nix-cache-info") -> NixCacheInfo:
        """Parse like Nix's `BinaryCacheStore::init`: lines without `:` and unknown keys are skipped."""
        values: dict[str, str] = {}
        for line in text.split("\n"):
            key, sep, value = line.partition(":")
            if sep:
                values[key] = value.strip()
        priority = values.get("Priority")
        if priority is not None and not priority.lstrip("-").isdigit():
            raise NarInfoError(f"{whence}: Priority '{priority}' is not an integer")
        return cls(
            store_dir=values.get("StoreDir"),
            want_mass_query=None if "WantMassQuery" not in values else values["WantMassQuery"] == "1",
            priority=None if priority is None else int(priority),
        )

    def to_text(self) -> str:
        lines = []
        if self.store_dir is not None:
            lines.append(f"StoreDir: {self.store_dir}")
        if self.want_mass_query is not None:
            lines.append(f"WantMassQuery: {int(self.want_mass_query)}")
        if self.priority is not None:
            lines.append(f"Priority: {self.priority}")
        return "".join(line + "\n" for line in lines)

    def __str__(self) -> str:
        return self.to_text()
