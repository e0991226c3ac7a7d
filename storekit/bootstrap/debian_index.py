"""Debian's source index, read through apt: which versions of a source package exist, with their files.

Debian's archive keeps only current versions, and bookworm's point releases and security updates
replace some pinned files (the linux orig moves with every kernel update; glibc's and gcc's
`debian.tar.xz` with each revision). `apt-cache showsrc NAME` lists every version apt's lists know,
each with its files and their sha256 (from the signed Sources index), so without downloading
anything this can tell that `perl=5.36.0-7+deb12u4` is no longer fetchable but the same
`perl_5.36.0.orig.tar.xz` is in `5.36.0-7+deb12u3`, or that linux moved from 6.1.187 to 6.1.190 and
what the new orig's sha256 is (`storekit bootstrap pin --from-debian` writes it into the profile).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cmp_to_key

from tomlkit.toml_document import TOMLDocument

from storekit.bootstrap.model import Profile, Source


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One version of a Debian source package: its files as name -> sha256."""

    package: str
    version: str
    files: dict[str, str]


def parse_showsrc(text: str) -> list[SourceRecord]:
    """The records of `apt-cache showsrc` output (stanzas separated by blank lines)."""
    records = []
    for stanza in re.split(r"\n\s*\n", text):
        package = re.search(r"^Package: *(\S+)", stanza, re.M)
        version = re.search(r"^Version: *(\S+)", stanza, re.M)
        block = re.search(r"^Checksums-Sha256:[ \t]*\n((?:[ \t]+.*\n?)*)", stanza, re.M)
        if not (package and version and block):
            continue
        files = {}
        for line in block.group(1).splitlines():
            fields = line.split()
            if len(fields) == 3 and re.fullmatch(r"[0-9a-f]{64}", fields[0]):
                files[fields[2]] = fields[0]
        records.append(SourceRecord(package.group(1), version.group(1), files))
    return records


def compare_versions(a: str, b: str) -> int:
    """Debian's version order (`dpkg --compare-versions`): epoch, then upstream, then revision."""

    def split(v: str) -> tuple[int, str, str]:
        epoch, _, rest = v.rpartition(":") if ":" in v else ("0", "", v)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
        return int(epoch or 0), upstream, revision

    def order(c: str) -> int:
        if c == "~":
            return -1
        if c.isalpha():
            return ord(c)
        return ord(c) + 256

    def part(x: str, y: str) -> int:
        while x or y:
            nx = re.match(r"[^0-9]*", x).group()  # type: ignore[union-attr]
            ny = re.match(r"[^0-9]*", y).group()  # type: ignore[union-attr]
            for i in range(max(len(nx), len(ny))):
                cx = order(nx[i]) if i < len(nx) else 0
                cy = order(ny[i]) if i < len(ny) else 0
                if cx != cy:
                    return -1 if cx < cy else 1
            x, y = x[len(nx) :], y[len(ny) :]
            dx = re.match(r"[0-9]*", x).group()  # type: ignore[union-attr]
            dy = re.match(r"[0-9]*", y).group()  # type: ignore[union-attr]
            if int(dx or 0) != int(dy or 0):
                return -1 if int(dx or 0) < int(dy or 0) else 1
            x, y = x[len(dx) :], y[len(dy) :]
        return 0

    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return part(ua, ub) or part(ra, rb)


def newest_first(records: Sequence[SourceRecord]) -> list[SourceRecord]:
    def newer(a: SourceRecord, b: SourceRecord) -> int:
        return compare_versions(b.version, a.version)

    return sorted(records, key=cmp_to_key(newer))


def role(filename: str) -> str:
    """What a file is to its package, independent of the version: `orig`, `orig-COMPONENT`, `debian`."""
    m = re.search(r"\.(orig(?:-[A-Za-z0-9-]+)?)\.tar\.[a-z0-9]+$", filename)
    if m:
        return m.group(1)
    if re.search(r"\.debian\.tar\.[a-z0-9]+$", filename):
        return "debian"
    return filename


@dataclass(frozen=True, slots=True)
class Move:
    """A pinned Debian file that moved: the version and file that now stand for it."""

    source: Source
    package: str
    old_version: str
    new_version: str
    old_file: str
    new_file: str
    sha256: str

    def describe(self) -> str:
        change = f"{self.old_file} -> {self.new_file}" if self.new_file != self.old_file else self.new_file
        return f"{self.package} moved {self.old_version} -> {self.new_version} ({change})"


def pinned_file(source: Source) -> str:
    """The Debian file name a source stands for (its URL's last part)."""
    return source.urls[0].rsplit("/", 1)[-1]


def find_move(source: Source, records: Sequence[SourceRecord]) -> Move | None:
    """Where a source's pinned `name=version` went: None when that version is still listed."""
    assert source.debian is not None
    package, _, version = source.debian.partition("=")
    mine = [r for r in records if r.package == package]
    if not mine or any(r.version == version for r in mine):
        return None
    newest = newest_first(mine)[0]
    old = pinned_file(source)
    same = [name for name in newest.files if role(name) == role(old)]
    if not same:
        return None
    return Move(source, package, version, newest.version, old, same[0], newest.files[same[0]])


def versions_with(source: Source, records: Sequence[SourceRecord]) -> list[str]:
    """Listed versions of the source's package that carry exactly its pinned file (name and sha256)."""
    assert source.debian is not None
    package = source.debian.partition("=")[0]
    name = pinned_file(source)
    return [
        r.version
        for r in newest_first([r for r in records if r.package == package])
        if source.sha256 is not None and r.files.get(name) == source.sha256
    ]


ShowSrc = Callable[[str], str]
"""Runs `apt-cache showsrc NAME` (with the private lists) and returns its output."""


def upstream_of(version: str) -> str:
    """`2:6.2.1+dfsg1-1.1` -> `6.2.1+dfsg1`: the version without epoch and Debian revision."""
    rest = version.split(":", 1)[-1]
    return rest.rsplit("-", 1)[0] if "-" in rest else rest


def apply_moves(document: TOMLDocument, profile: Profile, moves: Sequence[Move]) -> list[str]:
    """Rewrite the profile's pins for `moves`, in place (tomlkit keeps comments and layout).

    Every source standing for a moved file gets the new URL, `debian = name=version` and sha256; a
    package's patches naming the old file name the new one; when the upstream version changed too
    (linux 6.1.187 -> 6.1.190), a `file` name and the package `version` that carried it follow.
    Returns the keys changed.
    """
    by_file = {(m.package, m.old_file): m for m in moves}
    changed = []
    for pkg in profile.packages.values():
        table = document["packages"][pkg.id]
        renamed: dict[str, str] = {}
        for i, source in enumerate(pkg.sources):
            if source.debian is None:
                continue
            move = by_file.get((source.debian.partition("=")[0], pinned_file(source)))
            if move is None:
                continue
            entry = table["sources"][i]
            old_up, new_up = upstream_of(move.old_version), upstream_of(move.new_version)
            for key in ("url", "urls"):
                if key in entry:
                    value = entry[key]
                    entry[key] = (
                        value.replace(move.old_file, move.new_file)
                        if isinstance(value, str)
                        else [u.replace(move.old_file, move.new_file) for u in value]
                    )
            entry["debian"] = f"{move.package}={move.new_version}"
            entry["sha256"] = move.sha256
            if "file" in entry and old_up != new_up:
                entry["file"] = str(entry["file"]).replace(old_up, new_up)
            renamed[source.file] = str(entry.get("file", move.new_file))
            if pkg.version == old_up and old_up != new_up:
                table["version"] = new_up
            changed.append(source.key)
        if renamed and "patches" in table:
            table["patches"] = [_rename(p, renamed) for p in table["patches"]]
    return changed


def _rename(patch: str, renamed: dict[str, str]) -> str:
    name, sep, rest = patch.partition(":")
    return renamed.get(name, name) + sep + rest
