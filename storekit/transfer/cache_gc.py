"""`storekit cache gc`: delete from a binary cache what no kept closure reaches, never breaking it.

The cache is read once (every file, every narinfo, realisation and debuginfo link), the pure planner
(`cache_gc_plan`) decides what goes and in which waves, and the waves are deleted in order, synced
to disk between phases (links, narinfos, NARs, the rest). All of it happens under the cache's lock
when it has one, so a cache server storing into the same directory waits rather than racing. Killed
at any point, the cache is consistent (the order guarantees it) and a rerun finishes the job, since
it plans from what is there.
"""

from __future__ import annotations

import json
import posixpath
import re
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from storekit.errors import InvalidStorePath, InvalidValue, StoreError
from storekit.progress import Progress, ProgressEvent
from storekit.store.cache_files import CacheFiles, DirectoryFiles
from storekit.store.transport import FileTransport, Transport
from storekit.storepath import StoreDir, StorePath
from storekit.transfer.cache_gc_plan import (
    HASH_PART_LEN,
    CachedPath,
    Deletion,
    GcPlan,
    Snapshot,
    integrity_problems,
    plan_gc,
)

#: Files deleted per request (S3's DeleteObjects takes at most 1,000 keys).
BATCH = 1000
_FIELDS = frozenset(("StorePath", "URL", "References", "Deriver"))
_NARINFO = re.compile(r"^[0-9a-z]{32}\.narinfo$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as `30d`, `12h`, `1w2d` or `90m` (s, m, h, d, w)."""
    if not text or _DURATION.sub("", text) != "":
        raise InvalidValue(
            f"'{text}' is not a duration: give a number with a unit, s, m, h, d or w (e.g. 30d, 12h, 1w2d)"
        )
    return float(sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(text)))


def cache_files_for(transport: Transport) -> CacheFiles:
    """The deletable files behind a binary cache's transport, or a `StoreError` saying why there are none."""
    if isinstance(transport, FileTransport):
        return DirectoryFiles(transport.root)
    s3 = sys.modules.get("storekit.store.s3")  # loaded when an s3:// cache was opened, not before
    if s3 is not None and isinstance(transport, s3.S3Transport):
        from storekit.store.s3_files import S3Files

        return S3Files(transport)
    raise StoreError(
        f"binary cache '{transport.uri}' cannot be listed or deleted from over its protocol; "
        "run the garbage collection where its files are (a file:// directory or an s3:// bucket)"
    )


@dataclass(frozen=True, slots=True)
class GcResult:
    """What a collection did (or, with `dry_run`, would do)."""

    plan: GcPlan
    deleted: tuple[Deletion, ...]
    dry_run: bool
    warnings: tuple[str, ...]

    @property
    def bytes_freed(self) -> int:
        return sum(d.size for d in self.deleted)


def read_snapshot(files: CacheFiles, store_dir: StoreDir) -> Snapshot:
    """List the cache and read every narinfo, realisation and debuginfo link in it."""
    listing = {f.name: f for f in files.list_files()}
    narinfos = [n for n in listing if _NARINFO.match(n)]
    links = [n for n in listing if n.endswith(".doi") or n.startswith("debuginfo/")]
    with ThreadPoolExecutor(files.read_jobs, thread_name_prefix="storekit-cache-gc") as pool:
        reader = pool.map if files.read_jobs > 1 else map
        read = dict(zip(narinfos, reader(files.read, narinfos), strict=True))
        link_data = dict(zip(links, reader(files.read, links), strict=True))
    paths = {}
    for name, data in read.items():
        if data is None:  # deleted since listed (another collector, the server's eviction)
            del listing[name]
            continue
        paths[name[:HASH_PART_LEN]] = _cached_path(data, name, store_dir, files.uri)
    realisations, debuginfo = {}, {}
    for name, data in link_data.items():
        target = _link_target(name, data) if data is not None else None
        if target is None:
            continue
        if name.endswith(".doi"):
            realisations[name] = target
        else:
            debuginfo[name] = target
    return Snapshot(listing, paths, realisations, debuginfo)


def _cached_path(data: bytes, name: str, store_dir: StoreDir, uri: str) -> CachedPath:
    """A narinfo's path, NAR file, references and deriver; one that lacks them stops the collection.

    Only these fields are read (hashes and signatures do not matter here), which makes reading a
    cache of 100,000 narinfos ten times faster than parsing them whole.
    """
    fields: dict[str, str] = {}
    try:
        for line in data.decode("utf-8").splitlines():
            key, sep, value = line.partition(": ")
            if sep and key in _FIELDS:
                fields[key] = value
        path = store_dir.parse_path(fields["StorePath"])
        refs = frozenset(store_dir.parse_base_name(r).hash_part for r in fields.get("References", "").split())
        deriver = fields.get("Deriver")
        if deriver is not None and deriver != "unknown-deriver":
            store_dir.parse_base_name(deriver)
        url = fields["URL"]
    except (UnicodeDecodeError, KeyError, InvalidStorePath) as e:
        what = f"no {e} field" if isinstance(e, KeyError) else str(e)
        raise StoreError(
            f"cannot collect garbage in '{uri}': narinfo '{name}' is unreadable ({what}); "
            "nothing was deleted (delete or repair that file, then run again)"
        ) from e
    hash_part = name[:HASH_PART_LEN]
    if path.hash_part != hash_part:
        raise StoreError(
            f"cannot collect garbage in '{uri}': narinfo '{name}' describes '{path}'; nothing was deleted"
        )
    return CachedPath(hash_part, path.base_name, url, refs - {hash_part}, deriver)


def _link_target(name: str, data: bytes) -> str | None:
    """A realisation's output hash part, or the NAR file a debuginfo link points into (None: unreadable)."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    if name.endswith(".doi"):
        out = value.get("outPath")
        return posixpath.basename(out)[:HASH_PART_LEN] if isinstance(out, str) and out else None
    archive = value.get("archive")
    if not isinstance(archive, str):
        return None
    return posixpath.normpath(posixpath.join("debuginfo", archive))


def resolve_keep(snapshot: Snapshot, keep: Sequence[StorePath], uri: str) -> list[str]:
    """The hash parts of the `--keep` paths; a path the cache lacks is an error (a typo would empty it)."""
    missing = [str(p) for p in keep if snapshot.paths.get(p.hash_part, None) is None
               or snapshot.paths[p.hash_part].base_name != p.base_name]  # fmt: skip
    if missing:
        raise StoreError(
            f"binary cache '{uri}' has no narinfo for {', '.join(repr(m) for m in missing)}; "
            "nothing was deleted (a path to keep must be in the cache)"
        )
    return [p.hash_part for p in keep]


def collect_cache_garbage(
    files: CacheFiles,
    store_dir: StoreDir,
    keep: Sequence[StorePath],
    *,
    keep_since: float | None = None,
    dry_run: bool = False,
    now: float | None = None,
    progress: Progress | None = None,
    on_deleted: Callable[[Deletion], None] | None = None,
) -> GcResult:
    """Delete every file of the cache that the closures of `keep` (and of paths written within
    `keep_since` seconds) do not need, in the planner's order; `on_deleted` hears of each deletion."""
    now = time.time() if now is None else now
    with files.lock():
        snapshot = read_snapshot(files, store_dir)
        warnings = tuple(integrity_problems(snapshot))
        roots = resolve_keep(snapshot, keep, files.uri)
        plan = plan_gc(snapshot, roots, cutoff=None if keep_since is None else now - keep_since, now=now)
        if dry_run:
            return GcResult(plan, plan.deletions, True, warnings)
        deleted = _delete(files, plan, progress, on_deleted)
        warnings += tuple(_late_problems(files, store_dir, snapshot))
    return GcResult(plan, deleted, False, warnings)


def _late_problems(files: CacheFiles, store_dir: StoreDir, before: Snapshot) -> list[str]:
    """Narinfos added during the collection that need a file it deleted.

    A writer that takes no lock (`nix copy --to file://…`, a push to S3) may check that a reference
    is in the cache, find it, and write a narinfo after the collection deleted that reference; only
    a lock prevents it, so this at least says which paths to push again.
    """
    listing = {f.name for f in files.list_files()}
    problems = []
    for name in sorted(n for n in listing if _NARINFO.match(n) and n not in before.files):
        data = files.read(name)
        try:
            added = _cached_path(data, name, store_dir, files.uri) if data is not None else None
        except StoreError:
            continue  # not this collection's business: it did not exist when the cache was read
        if added is None:
            continue
        needed = [f"{r}.narinfo" for r in sorted(added.references)] + [added.url]
        gone = [n for n in needed if n not in listing and n in before.files]
        if gone:
            problems.append(
                f"'{added.base_name}' was added to the cache during the collection and needs "
                f"{', '.join(gone)}, deleted meanwhile: copy its closure to the cache again"
            )
    return problems


def _delete(
    files: CacheFiles,
    plan: GcPlan,
    progress: Progress | None,
    on_deleted: Callable[[Deletion], None] | None,
) -> tuple[Deletion, ...]:
    done: list[Deletion] = []
    total = len(plan.deletions)
    phase = ""
    for wave in plan.waves():
        # durable between phases (links, narinfos, NARs, the rest): the narinfo waves all unlink in
        # one directory, whose order the file system's journal keeps (ext4, xfs) without a sync each
        kind = "narinfo" if any(d.kind == "narinfo" for d in wave) else wave[0].kind
        if phase and kind != phase:
            files.sync()
        phase = kind
        if on_deleted is None:
            for start in range(0, len(wave), BATCH):
                batch = wave[start : start + BATCH]
                files.delete([d.name for d in batch])
                done.extend(batch)
                if progress is not None:
                    progress(ProgressEvent("gc", len(done), total, "files", item=batch[-1].name))
        else:  # one at a time, so the caller sees every intermediate state
            for d in wave:
                files.delete([d.name])
                done.append(d)
                on_deleted(d)
    files.sync()
    return tuple(done)
