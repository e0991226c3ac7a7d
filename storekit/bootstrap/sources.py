"""Sources: a mirror directory of tarballs, filled from upstream URLs, and realised as fixed outputs.

The mirror is flat (`<mirror>/m4-1.4.19.tar.xz`), like the book's `$LFS/sources`. Filling it
(`fetch_sources`) downloads what is missing, trying each URL of a source in turn, and keeps a file
only when its sha256 (or, before pinning, the book's md5) matches. Realising a source
(`realise_source`) is what Nix's `builtin:fetchurl` does after its download: the file, checked
against the pinned sha256, becomes the output of the source's fixed-output derivation, registered
with its content address and deriver. So a build never touches the network, and a source in the
store is exactly the file the profile pins, whoever fetched it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from storekit.bootstrap.model import Profile, Source
from storekit.bootstrap.plan import Planned, pinned_hash
from storekit.errors import HashMismatch, StorekitError
from storekit.progress import Progress, ProgressEvent
from storekit.store.base import ValidPathInfo
from storekit.store.content_address import ContentAddress
from storekit.storepath import FileIngestionMethod

if TYPE_CHECKING:
    from storekit.store.local import LocalStore

Download = Callable[[str, str], None]
"""Fetch a URL into a file path; raises OSError (or urllib's errors) on failure."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    source: Source
    status: Literal["present", "fetched", "failed"]
    detail: str = ""


def mirror_file(mirror: str, source: Source) -> str:
    return os.path.join(mirror, source.file)


def file_digest(path: str, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_file(path: str, source: Source) -> None:
    """`HashMismatch` unless the file has every hash declared for it: the pinned sha256 and the md5.

    Both are checked when both are there: the md5 is the book's own, the sha256 may have been pinned
    from elsewhere (nixpkgs, Debian), so a file must satisfy the two independent records.
    """
    if source.sha256 is not None:
        got = file_digest(path)
        if got != source.sha256:
            raise HashMismatch(
                f"source '{source.file}' ({source.key})", f"sha256:{source.sha256}", f"sha256:{got}"
            )
    if source.md5 is not None:
        got = file_digest(path, "md5")
        if got != source.md5:
            raise HashMismatch(f"source '{source.file}' ({source.key})", f"md5:{source.md5}", f"md5:{got}")


def unique_sources(profile: Profile, ids: Iterable[str] | None = None) -> list[Source]:
    """The sources of the packages `ids` (default: all), each file once."""
    seen: dict[str, Source] = {}
    for pid in ids if ids is not None else profile.packages:
        for source in profile.packages[pid].sources:
            seen.setdefault(source.file, source)
    return list(seen.values())


def fetch_sources(
    sources: Iterable[Source],
    mirror: str,
    download: Download | None = None,
    progress: Progress | None = None,
) -> list[FetchResult]:
    """Put every source into `mirror`, verified; a file already there is checked, not fetched again."""
    os.makedirs(mirror, exist_ok=True)
    results = []
    todo = list(sources)
    for source in todo:
        result = _fetch_one(source, mirror, download or urllib_download)
        results.append(result)
        if progress is not None:
            progress(fetched_event(result, len(results), len(todo)))
    return results


def _fetch_one(source: Source, mirror: str, download: Download) -> FetchResult:
    target = mirror_file(mirror, source)
    if os.path.exists(target):
        try:
            check_file(target, source)
        except HashMismatch as e:
            return FetchResult(source, "failed", f"{e} (remove the file to fetch it again)")
        return FetchResult(source, "present")
    errors = []
    for url in source.urls:
        fd, part = tempfile.mkstemp(prefix=f".{source.file}.", dir=mirror)
        os.close(fd)
        try:
            download(url, part)
            check_file(part, source)
        except (OSError, urllib.error.URLError, ValueError, HashMismatch) as e:
            errors.append(f"{url}: {e}")
            os.unlink(part)
            continue
        os.replace(part, target)
        return FetchResult(source, "fetched", url)
    return FetchResult(source, "failed", "; ".join(errors) or "no URL")


def urllib_download(url: str, path: str) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "storekit-bootstrap"})
    with urllib.request.urlopen(request, timeout=60) as response, open(path, "wb") as f:
        shutil.copyfileobj(response, f, 1 << 20)


def realise_source(store: LocalStore, planned: Planned, source: Source, mirror: str | None) -> bool:
    """Make the source's fixed output valid from the mirror; False when it already was."""
    if store.is_valid_path(planned.out):
        return False
    if mirror is None:
        raise StorekitError(
            f"source '{source.file}' ({source.key}) is not in the store: give --mirror DIR "
            "(fill it with storekit bootstrap sources)"
        )
    path = mirror_file(mirror, source)
    if not os.path.exists(path):
        raise StorekitError(
            f"source '{source.file}' ({source.key}) is not in the mirror '{mirror}': fetch it with "
            "storekit bootstrap sources CONFIG --mirror DIR [--from-debian]"
        )
    from storekit.nar.fs import hash_path

    with store.staging() as stage:
        staged = os.path.join(stage, "x")
        shutil.copyfile(path, staged)
        check_file(staged, source)
        content = pinned_hash(source)  # sha256, or a weak pin's md5 (the plan refuses neither)
        nar_hash, size = hash_path(staged)
        ca = ContentAddress("fixed", content, FileIngestionMethod.FLAT)
        info = ValidPathInfo(planned.out, nar_hash, size, deriver=planned.drv_path, ca=str(ca))
        return store.install_staged(info, staged)


def fetched_event(result: FetchResult, done: int, total: int) -> ProgressEvent:
    """The progress event of one source put into the mirror (or not)."""
    message = f"{result.status} {result.source.file}" + (f"  {result.detail}" if result.detail else "")
    return ProgressEvent("sources", done, total, "files", item=result.source.file, message=message)
