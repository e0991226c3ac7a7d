"""`sources --from-debian`: fill the mirror from Debian source packages, accepting only pinned bytes.

Debian's `.orig.tar.*` of most GNU packages is the upstream release byte for byte; for others
(binutils, gcc, glibc, make, tar …) it is a repack. The profile decides which file it wants by
its sha256: `apt-get source --download-only NAME=VERSION` fetches the source package (apt checks it
against the signed Sources index), and its orig tarball goes into the mirror, under the profile's
file name, only when its sha256 equals the pinned one (before pinning: the book's md5). A repack is
refused with both hashes, never silently used.

apt needs `deb-src` entries. When the system has none, a private apt configuration is made under
`apt_dir` (default `<mirror>/.apt`) from the system's `deb` entries, so the system's own apt state is
never touched: `apt-get -o Dir::Etc::SourceList=… -o Dir::State::Lists=… update`.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from storekit.bootstrap.debian_index import ShowSrc, find_move, parse_showsrc, pinned_file, versions_with
from storekit.bootstrap.model import Source
from storekit.bootstrap.sources import (
    Download,
    FetchResult,
    check_file,
    fetch_sources,
    fetched_event,
    file_digest,
    mirror_file,
)
from storekit.errors import HashMismatch, StorekitError
from storekit.progress import Progress

Run = Callable[[Sequence[str], str], None]
"""Run a command in a directory; raises `StorekitError` with its output when it fails."""
DEFAULT_DEB_SRC = "deb-src http://deb.debian.org/debian bookworm main\n"
LISTS_MAX_AGE = 24 * 3600


def run_command(argv: Sequence[str], cwd: str) -> None:
    try:
        subprocess.run(list(argv), cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise StorekitError(f"{argv[0]} not found: --from-debian needs a Debian host with apt") from e
    except subprocess.CalledProcessError as e:
        out = (e.stderr or e.stdout or "").strip().splitlines()[-5:]
        raise StorekitError(f"{' '.join(argv)} failed (exit {e.returncode}):\n" + "\n".join(out)) from e


@dataclass(frozen=True, slots=True)
class AptConfig:
    """The `-o` options that point apt-get at the source lists to use (none: the system's)."""

    options: tuple[str, ...] = ()


def deb_src_lines(sources_list_files: Iterable[str]) -> list[str]:
    """`deb-src` lines equivalent to the `deb` entries of the system's apt sources (both formats)."""
    lines: list[str] = []
    for path in sources_list_files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if path.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.M))
                if "deb" not in fields.get("Types", "").split() or "Enabled: no" in stanza:
                    continue
                for uri in fields.get("URIs", "").split():
                    for suite in fields.get("Suites", "").split():
                        lines.append(f"deb-src {uri} {suite} {fields.get('Components', 'main')}")
        else:
            for line in text.splitlines():
                m = re.match(r"^\s*deb\s+(\[[^]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$", line)
                if m:
                    lines.append(f"deb-src {m.group(2)} {m.group(3)} {m.group(4)}")
    return [line for line in dict.fromkeys(lines) if "debian.org" in line]


def has_deb_src(sources_list_files: Iterable[str]) -> bool:
    for path in sources_list_files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if re.search(r"^\s*deb-src\s", text, re.M) or re.search(r"^Types:.*\bdeb-src\b", text, re.M):
            return True
    return False


def system_sources() -> list[str]:
    found = [p for p in ["/etc/apt/sources.list"] if os.path.exists(p)]
    return found + sorted(
        glob.glob("/etc/apt/sources.list.d/*.list") + glob.glob("/etc/apt/sources.list.d/*.sources")
    )


def prepare_apt(apt_dir: str, run: Run = run_command, now: float | None = None) -> AptConfig:
    """Apt options that can fetch source packages; runs `apt-get update` on a private list when needed.

    The options name absolute paths: apt runs in `apt_dir`, so a relative one (`--mirror ../sources`)
    would name a directory that is not there.
    """
    apt_dir = os.path.abspath(apt_dir)
    files = system_sources()
    if has_deb_src(files):
        return AptConfig()
    lists = os.path.join(apt_dir, "lists")
    cache = os.path.join(apt_dir, "cache")
    for d in (
        os.path.join(lists, "partial"),
        os.path.join(cache, "archives", "partial"),
        os.path.join(apt_dir, "parts"),
    ):
        os.makedirs(d, exist_ok=True)
    source_list = os.path.join(apt_dir, "sources.list")
    text = "\n".join(deb_src_lines(files)) + "\n" if deb_src_lines(files) else DEFAULT_DEB_SRC
    with open(source_list, "w") as f:
        f.write(text)
    options = (
        f"-oDir::Etc::SourceList={source_list}",
        f"-oDir::Etc::SourceParts={os.path.join(apt_dir, 'parts')}",
        f"-oDir::State::Lists={lists}",
        f"-oDir::Cache={cache}",
    )
    indexes = glob.glob(os.path.join(lists, "*Sources*"))
    fresh = indexes and (now or time.time()) - min(os.path.getmtime(p) for p in indexes) < LISTS_MAX_AGE
    if not fresh:
        run(["apt-get", *options, "update"], apt_dir)
    return AptConfig(options)


def fetch_from_debian(
    sources: Iterable[Source],
    mirror: str,
    *,
    apt_dir: str | None = None,
    run: Run = run_command,
    progress: Progress | None = None,
    showsrc: ShowSrc | None = None,
    download: Download | None = None,
) -> list[FetchResult]:
    """Fill `mirror` with the Debian files of `sources` (those declaring `debian`), verified.

    A pinned version that is gone is replaced by another that carries the same file, or reported
    with where its package moved (`showsrc`: Debian's source index, default apt-cache's). apt fetches
    a whole source package and fails when any of its files is missing from the archive (a `.dsc` or
    `.debian.tar.xz` gone, the orig still there): a file apt could not bring is then fetched alone
    from the source's own URLs (`download`), and kept only if it has the pinned sha256, as apt's are.
    """
    os.makedirs(mirror, exist_ok=True)
    todo: dict[str, list[Source]] = {}
    results = []
    for source in sources:
        if os.path.exists(mirror_file(mirror, source)):
            results.append(_present(source, mirror))
        elif source.debian is None:
            results.append(FetchResult(source, "failed", "no Debian source package declared (debian = …)"))
        else:
            todo.setdefault(source.debian, []).append(source)
    if todo:
        apt = prepare_apt(apt_dir or os.path.join(mirror, ".apt"), run)
        index = showsrc if showsrc is not None else (apt_showsrc(apt) if run is run_command else None)
        for spec, wanted in todo.items():
            results.extend(_one_package(spec, wanted, mirror, apt, run, index, download))
    if progress is not None:
        for done, r in enumerate(results, 1):
            progress(fetched_event(r, done, len(results)))
    return results


def _by_url(failed: FetchResult, mirror: str, download: Download | None) -> FetchResult:
    """What apt could not fetch, from the source's URLs (a file apt brought but that is not the
    pinned bytes, a repack, is refused and not looked for elsewhere)."""
    source = failed.source
    if not source.urls or source.sha256 is None or os.path.exists(mirror_file(mirror, source)):
        return failed
    (result,) = fetch_sources([source], mirror, download)
    if result.status != "fetched":
        return FetchResult(source, "failed", f"{failed.detail}; by its URL: {result.detail}")
    return FetchResult(
        source, "fetched", f"{result.detail} (by its URL: apt could not fetch {source.debian})"
    )


def _present(source: Source, mirror: str) -> FetchResult:
    try:
        check_file(mirror_file(mirror, source), source)
    except HashMismatch as e:
        return FetchResult(source, "failed", f"{e} (remove the file to fetch it again)")
    return FetchResult(source, "present")


def _one_package(
    spec: str,
    wanted: list[Source],
    mirror: str,
    apt: AptConfig,
    run: Run,
    showsrc: ShowSrc | None,
    download: Download | None,
) -> list[FetchResult]:
    with tempfile.TemporaryDirectory(prefix="storekit-debian-", dir=mirror) as work:
        try:
            run(["apt-get", *apt.options, "source", "--download-only", spec], work)
        except StorekitError as e:
            if showsrc is None:
                found = [FetchResult(s, "failed", str(e)) for s in wanted]
            else:
                found = [_moved(spec, s, mirror, apt, run, showsrc, e) for s in wanted]
            return [_by_url(r, mirror, download) if r.status == "failed" else r for r in found]
        return [_take(spec, s, work, mirror) for s in wanted]


def _moved(
    spec: str, source: Source, mirror: str, apt: AptConfig, run: Run, showsrc: ShowSrc, error: StorekitError
) -> FetchResult:
    """`spec` could not be fetched: take the same file from another version, or say where it went.

    An orig tarball outlives the Debian revisions that carry it (perl's 5.36.0 orig is in every
    5.36.0-7+deb12uN), so any listed version with the pinned file's name and sha256 serves.
    """
    records = parse_showsrc(showsrc(spec.partition("=")[0]))
    for version in versions_with(source, records):
        other = f"{spec.partition('=')[0]}={version}"
        if other == spec:
            continue
        with tempfile.TemporaryDirectory(prefix="storekit-debian-", dir=mirror) as work:
            try:
                run(["apt-get", *apt.options, "source", "--download-only", other], work)
            except StorekitError:
                continue
            result = _take(other, source, work, mirror)
            if result.status == "fetched":
                return FetchResult(source, "fetched", f"{result.detail} (the same file; {spec} is gone)")
    move = find_move(source, records)
    if move is not None:
        return FetchResult(
            source,
            "failed",
            f"{spec} is gone from Debian's archive: {move.describe()}, sha256 {move.sha256}; "
            "update the pins with storekit bootstrap pin CONFIG --from-debian",
        )
    return FetchResult(source, "failed", str(error))


def apt_showsrc(apt: AptConfig) -> ShowSrc:
    """`apt-cache showsrc NAME` with the lists `apt` points at (no download: the local index)."""

    def showsrc(name: str) -> str:
        try:
            proc = subprocess.run(
                ["apt-cache", *apt.options, "showsrc", name], capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError) as e:
            raise StorekitError(f"apt-cache showsrc {name} failed: {e}") from e
        return proc.stdout

    return showsrc


def _take(spec: str, source: Source, work: str, mirror: str) -> FetchResult:
    """Move the downloaded file the source stands for into the mirror, if its hash is the pinned one."""
    candidates = [os.path.join(work, source.file), os.path.join(work, pinned_file(source))]
    candidates += sorted(p for p in glob.glob(os.path.join(work, "*.orig.tar.*")) if not p.endswith(".asc"))
    path = next((p for p in candidates if os.path.exists(p)), None)
    if path is None:
        return FetchResult(source, "failed", f"{spec} has no '{source.file}' and no .orig tarball")
    if source.sha256 is None and source.md5 is None:
        return FetchResult(
            source, "failed", f"not pinned: no sha256 (or md5) to check {os.path.basename(path)} against"
        )
    try:
        check_file(path, source)
    except HashMismatch as e:
        got = file_digest(path)
        return FetchResult(
            source,
            "failed",
            f"refused {os.path.basename(path)} from {spec}: Debian's file is "
            f"not the pinned one (a repack?): {e}; its sha256 is {got}",
        )
    shutil.move(path, mirror_file(mirror, source))
    return FetchResult(source, "fetched", f"{os.path.basename(path)} from Debian {spec}")
