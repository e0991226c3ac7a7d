"""What `storekit cache gc` deletes from a binary cache, and in which order: pure, from a listing.

Nix cannot delete from a binary cache (NixOS/nix#1968), so caches only grow. Deleting is safe only in
an order that keeps the cache consistent at every moment, for readers and for a run killed halfway:

- a narinfo is present only while its NAR file and the narinfos of its references are;
- a realisation (`realisations/….doi`, `build-trace-v2/…/….doi`) only while its output's narinfo is;
- a `debuginfo/<build-id>` link only while the NAR it points into is.

So the kept set is a closure (the `--keep` paths, the paths written within `--keep-since`, and
everything their narinfos' `References` reach), and what goes is deleted in waves: realisations and
debuginfo links of deleted things first, then narinfos with referrers before referees (a narinfo is
deleted only after every deleted narinfo referring to it), each with its `.ls` listing, then the
NAR files (`nar/*.nar*`) no remaining narinfo names (a NAR shared by several narinfos stays while
one of them does), then build logs of derivations nothing kept was built by and temp files of
long-dead uploads.
Members of one wave do not depend on each other, so a wave may be deleted in one request (S3). A rerun
computes the plan again from what is there, so a run killed anywhere converges.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from storekit.errors import DependencyCycle, StoreError
from storekit.graph import toposort
from storekit.store.cache_files import CacheFile

Kind = Literal["realisation", "debuginfo", "narinfo", "listing", "nar", "log", "temp"]
#: An upload's temp file (`.tmp-…`) younger than this may still be written to: it is left alone.
TEMP_GRACE_S = 24 * 3600.0
HASH_PART_LEN = 32
#: What a NAR file and a build log are named (`nar/<file hash>.nar[.xz]`, `log/<drv base name>`): other
#: files in those directories (a cache server's bookkeeping, say) are not the collection's to delete.
_NAR_FILE = re.compile(r"^nar/[0-9a-z]+\.nar(\.[0-9a-z]+)?$")
_LOG_FILE = re.compile(r"^log/[0-9a-z]{32}-[^/]+\.drv$")


@dataclass(frozen=True, slots=True)
class CachedPath:
    """What collection needs of one narinfo: its path, NAR file and references (hash parts, no self)."""

    hash_part: str
    base_name: str
    url: str
    references: frozenset[str] = frozenset()
    deriver: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A cache as listed: its files, its narinfos parsed, and what its links point at.

    `realisations` maps a `.doi` file to the hash part of its output path; `debuginfo` maps a
    `debuginfo/` file to the NAR file it points into. Files whose target could not be read are absent
    from these maps and left alone.
    """

    files: Mapping[str, CacheFile]
    paths: Mapping[str, CachedPath]
    realisations: Mapping[str, str] = field(default_factory=dict)
    debuginfo: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Deletion:
    """One file to delete, in wave `wave` (see the module docstring); `path` is its store path's base name."""

    wave: int
    name: str
    size: int
    kind: Kind
    path: str = ""


@dataclass(frozen=True, slots=True)
class GcPlan:
    kept: frozenset[str]
    """Hash parts of the paths kept."""
    deletions: tuple[Deletion, ...]
    """In order: by wave, then by name."""

    @property
    def bytes(self) -> int:
        return sum(d.size for d in self.deletions)

    @property
    def paths(self) -> list[str]:
        """Base names of the store paths whose narinfos go."""
        return [d.path for d in self.deletions if d.kind == "narinfo"]

    def waves(self) -> list[list[Deletion]]:
        grouped: dict[int, list[Deletion]] = {}
        for d in self.deletions:
            grouped.setdefault(d.wave, []).append(d)
        return [grouped[w] for w in sorted(grouped)]


def narinfo_name(hash_part: str) -> str:
    return f"{hash_part}.narinfo"


def is_temp(name: str) -> bool:
    return posixpath.basename(name).startswith(".tmp-")


def recent_roots(snapshot: Snapshot, cutoff: float) -> set[str]:
    """Hash parts of paths whose narinfo or NAR file was written at or after `cutoff` (`--keep-since`)."""
    recent = {name for name, f in snapshot.files.items() if f.mtime >= cutoff}
    roots = {h for h, p in snapshot.paths.items() if narinfo_name(h) in recent or p.url in recent}
    roots |= {out for doi, out in snapshot.realisations.items() if doi in recent and out in snapshot.paths}
    return roots


def closure(snapshot: Snapshot, roots: Iterable[str]) -> set[str]:
    """`roots` and every path their narinfos reach; references with no narinfo are left out."""
    kept: set[str] = set()
    stack = [r for r in roots if r in snapshot.paths]
    while stack:
        h = stack.pop()
        if h in kept:
            continue
        kept.add(h)
        stack.extend(r for r in snapshot.paths[h].references if r in snapshot.paths and r not in kept)
    return kept


def plan_gc(snapshot: Snapshot, keep: Iterable[str], *, cutoff: float | None, now: float) -> GcPlan:
    """The deletions that leave exactly the closure of `keep` (+ paths written since `cutoff`)."""
    roots = set(keep) | (recent_roots(snapshot, cutoff) if cutoff is not None else set())
    kept = closure(snapshot, roots)
    young = {n for n, f in snapshot.files.items() if cutoff is not None and f.mtime >= cutoff}
    deleted = [h for h in snapshot.paths if h not in kept]
    waves = _narinfo_waves(snapshot, deleted)
    last = max(waves.values(), default=0)
    # a NAR stays while a kept narinfo names it, or a debuginfo link too young to delete points into it
    kept_nars = {snapshot.paths[h].url for h in kept} | {
        nar for name, nar in snapshot.debuginfo.items() if name in young
    }
    kept_drvs = {p.deriver or "" for p in map(snapshot.paths.__getitem__, kept)}
    kept_drvs |= {snapshot.paths[h].base_name for h in kept}
    out: list[Deletion] = []

    def add(wave: int, name: str, kind: Kind, path: str = "") -> None:
        if name in snapshot.files and name not in young:
            out.append(Deletion(wave, name, snapshot.files[name].size, kind, path))

    for doi, target in snapshot.realisations.items():
        if target not in kept:
            add(0, doi, "realisation")
    for h in deleted:
        base = snapshot.paths[h].base_name
        add(waves[h], narinfo_name(h), "narinfo", base)
        add(waves[h], f"{h}.ls", "listing", base)
    for name, nar in snapshot.debuginfo.items():
        if nar not in kept_nars:
            add(0, name, "debuginfo")
    for name in snapshot.files:
        if _NAR_FILE.match(name) and name not in kept_nars:
            add(last + 1, name, "nar")
        elif _LOG_FILE.match(name) and name[4:] not in kept_drvs:
            add(last + 2, name, "log")
        elif name.endswith(".ls") and "/" not in name and name[:-3] not in snapshot.paths:
            add(last + 2, name, "listing")
        elif is_temp(name) and snapshot.files[name].mtime < now - TEMP_GRACE_S:
            add(last + 2, name, "temp")
    return GcPlan(frozenset(kept), tuple(sorted(out, key=lambda d: (d.wave, d.name))))


def _narinfo_waves(snapshot: Snapshot, deleted: list[str]) -> dict[str, int]:
    """For each deleted path, its wave: one more than the latest wave of a deleted referrer (first: 1)."""
    gone = set(deleted)

    def refs(h: str) -> list[str]:
        return sorted(r for r in snapshot.paths[h].references if r in gone)

    try:
        order = toposort(sorted(gone), refs)  # referees before referrers
    except DependencyCycle as e:
        raise StoreError(
            f"the narinfos of {', '.join(str(n) for n in e.cycle)} refer to each other in a cycle, "
            "which no store makes; nothing was deleted"
        ) from e
    waves: dict[str, int] = {}
    for h in reversed(order):  # referrers first
        waves.setdefault(h, 1)
        for r in refs(h):
            waves[r] = max(waves.get(r, 1), waves[h] + 1)
    return waves


def integrity_problems(snapshot: Snapshot) -> list[str]:
    """What in the cache points at something missing: the promise the deletion order keeps."""
    problems = []
    for _, p in sorted(snapshot.paths.items()):
        if p.url not in snapshot.files:
            problems.append(f"narinfo of '{p.base_name}' names NAR file '{p.url}', which is missing")
        for r in sorted(r for r in p.references if r not in snapshot.paths):
            problems.append(f"narinfo of '{p.base_name}' refers to '{r}', whose narinfo is missing")
    for doi, target in sorted(snapshot.realisations.items()):
        if target not in snapshot.paths:
            problems.append(f"realisation '{doi}' names '{target}', whose narinfo is missing")
    for name, nar in sorted(snapshot.debuginfo.items()):
        if nar not in snapshot.files:
            problems.append(f"debug info link '{name}' points into '{nar}', which is missing")
    return problems
