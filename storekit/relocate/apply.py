"""Relocating a closure from one store into another whose store dir differs: the I/O around the rules.

Each path of the closure, references first, is rewritten into a *staging area* of the destination
(`staging`) and hashed on the way: from file to file between two local stores (`tree`), else as a
NAR stream (`stream`). Nothing is registered until every path has been staged: if any file blocks,
the error lists every file and offset across the closure, the staging area is removed, and nothing
became valid in the destination.
Only then are the paths committed, references first, so the destination is consistent at every step.

In content-addressed mode the new name is known only once a path is staged (it is the hash of its
contents modulo its own old hash part); the staged bytes holding that hash part are then patched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storekit.errors import RelocationError
from storekit.progress import Progress, ProgressEvent
from storekit.relocate.plan import (
    Mode,
    Plan,
    content_addressed_path,
    keep_hash_path,
    make_plan,
    new_info,
    rules_for,
)
from storekit.relocate.staging import Staging, stage_nar, staging_for
from storekit.relocate.stream import PathReport
from storekit.store.base import Store, ValidPathInfo
from storekit.store.link import LinkMode
from storekit.storepath import StorePath

_MAX_BLOCKERS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class Relocation:
    """The result: every path of the closure, old -> new, and what the user should know."""

    paths: dict[StorePath, StorePath]
    warnings: tuple[str, ...]


def relocate(
    src: Store,
    dst: Store,
    paths: Sequence[StorePath],
    *,
    mode: Mode = Mode.KEEP_HASH,
    allow_unsafe: bool = False,
    link: LinkMode = LinkMode.AUTO,
    progress: Progress | None = None,
) -> Relocation:
    """Copy the closures of `paths` from `src` into `dst` (another store dir), rewritten to live there.

    Between two local stores the files are read and written directly; unchanged files are hard-linked
    (`link=AUTO`, when canonical and ours) or copied (`COPY`, `REFLINK`); `STREAM` forces the NAR
    stream every other pair of stores uses.
    """
    closure = src.closure(paths)
    plan = make_plan(src.store_dir, dst.store_dir, mode, {p: src.query_path_info(p) for p in closure})
    counter = _Counter(plan.total_nar_size, progress)
    renamed: dict[StorePath, StorePath] = {}
    blockers: list[tuple[str, int, str]] = []
    warnings: list[str] = []
    with staging_for(dst, link) as staging:
        staged: list[tuple[ValidPathInfo, str]] = []
        for path in plan.order:
            if mode is Mode.KEEP_HASH and dst.is_valid_path(keep_hash_path(path, plan.new_dir)):
                renamed[path] = keep_hash_path(path, plan.new_dir)
                counter.add(path, plan.infos[path].nar_size)
                continue
            info, handle, report = _stage_path(src, staging, plan, path, renamed, allow_unsafe)
            counter.add(path, plan.infos[path].nar_size)
            renamed[path] = info.path
            warnings += (f"{path}{'' if w.startswith((' ', ':')) else '/'}{w}" for w in report.warnings)
            blockers += ((_where(path, b.file), b.offset, b.why) for b in report.blockers)
            if handle is not None and not report.blockers:
                staged.append((info, handle))
        if blockers:
            raise _refusal(blockers)
        for info, handle in staged:
            staging.commit(info, handle)
    return Relocation(renamed, tuple(warnings))


def _stage_path(
    src: Store,
    staging: Staging,
    plan: Plan,
    path: StorePath,
    renamed: dict[StorePath, StorePath],
    unsafe: bool,
) -> tuple[ValidPathInfo, str | None, PathReport]:
    """Rewrite one path into the staging area; its info (with its new name) and where it was staged."""
    rules = rules_for(plan, path, renamed, unsafe=unsafe)
    report = PathReport()
    ca = plan.mode is Mode.CONTENT_ADDRESSED
    # only a self-referencing path can hold its own hash part (references are what a scan found)
    own = path.hash_part.encode() if ca and path in plan.infos[path].references else None
    real = staging.local_source(src, path)
    handle: str | None
    if real is not None:
        handle, digest, size = staging.stage_tree(real, rules, own, report)
    else:
        handle, digest, size = stage_nar(staging, src.nar_from_path(path), rules, own, report)
    if not ca:
        new_path = keep_hash_path(path, plan.new_dir)
        return new_info(plan, path, new_path, renamed, digest, size, None), handle, report
    if handle is None or report.blockers:  # a placeholder name, to go on finding blockers in referrers
        new_path = keep_hash_path(path, plan.new_dir)
        return new_info(plan, path, new_path, renamed, digest, size, digest), handle, report
    new_path = content_addressed_path(plan, path, renamed, digest)
    if own is None or not (report.own_hits or report.own_links):
        # nothing was zeroed: the hash modulo is the NAR hash of what was staged
        return new_info(plan, path, new_path, renamed, digest, size, digest), handle, report
    staging.replace_own_hash(handle, report, own, new_path.hash_part.encode())
    nar_hash, nar_size = staging.nar_hash(handle)
    return new_info(plan, path, new_path, renamed, nar_hash, nar_size, digest), handle, report


def _where(path: StorePath, rel: str) -> str:
    return f"{path}/{rel}" if rel else str(path)


def _refusal(blockers: list[tuple[str, int, str]]) -> RelocationError:
    shown = tuple(blockers[:_MAX_BLOCKERS_SHOWN])
    more = len(blockers) - len(shown)
    files = len({f for f, _, _ in blockers})
    message = (
        f"refusing to relocate: {len(blockers)} place(s) in {files} file(s) cannot be rewritten safely, "
        "so nothing was added to the destination"
        + (f" ({more} more not shown)" if more else "")
        + "; pick a store dir no longer than the old one, or pass --allow-unsafe to rewrite them anyway:"
    )
    return RelocationError(message, shown)


class _Counter:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total = total
        self.done = 0
        self.progress = progress

    def add(self, path: StorePath, n: int) -> None:
        """`path` (of the source) was staged: `n` more of the closure's NAR bytes are done."""
        self.done += n
        if self.progress is not None:
            self.progress(ProgressEvent("relocate", self.done, self.total, "bytes", item=str(path)))
