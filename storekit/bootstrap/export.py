"""`storekit bootstrap export`: the built system as one reproducible tarball, owners and modes applied.

The tarball holds the rootfs tree at `/` (its links into the store kept as links) and the tree's
closure at its store paths, so it unpacks into a system that runs (`tar -xpf lfs.tar -C /mnt/lfs`,
then `chroot /mnt/lfs`). The tree's own store path is not in it: `/` is that tree.

Reproducible, so two exports of one build are the same bytes: entries sorted by name, every mtime 1
(the store's), owner root:root (0:0) unless the ownership manifest says otherwise, modes normalised as
the store has them (0755 or 0644, directories 0755) and then the manifest's modes applied (setuid
`su`, a sticky `/tmp`), GNU tar headers without user names of the exporting machine, compression
with fixed settings (gzip without a file name or time, xz preset 6, zstd level 12 on one thread).
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, cast

from storekit.bootstrap.driver import Bootstrap
from storekit.bootstrap.rootfs import OWNERSHIP
from storekit.errors import StorekitError
from storekit.programs import which
from storekit.storepath import StorePath

MTIME = 1
COMPRESSIONS = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.zst")


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    """Path in the archive, without a leading `/`."""
    real: str | None
    """Where the file is on this machine (None: a directory made only to hold the store)."""


@dataclass(frozen=True, slots=True)
class Exported:
    path: str
    sha256: str
    entries: int
    store_paths: int
    modes_applied: int


def built_rootfs(boot: Bootstrap, name: str | None = None) -> StorePath:
    """The output of the rootfs tree `name` (default: the last declared, the finished system).

    An error says how to get one when there is none yet, or which names there are.
    """
    trees = {tree.package.id: tree for tree in boot.plan.rootfs}
    if not trees:
        raise StorekitError(
            f"{boot.profile.file} declares no [rootfs]: there is no system to export or enter"
        )
    if name is not None and name not in trees:
        raise StorekitError(f"{boot.profile.file} has no rootfs tree '{name}' (it has: {', '.join(trees)})")
    tree = trees[name] if name is not None else boot.plan.rootfs[-1]
    out = tree.planned.out
    if not boot.store.is_valid_path(out):
        until = f" --until {tree.package.id}" if len(trees) > 1 else ""
        raise StorekitError(
            f"the system ({out}) is not built yet: "
            f"storekit bootstrap build {boot.profile.file}{until} --store …"
        )
    return out


def read_ownership(boot: Bootstrap, rootfs: StorePath) -> dict[str, tuple[int, int, int]]:
    """The manifest as archive name -> (mode, uid, gid)."""
    path = os.path.join(boot.store.real_path(rootfs), OWNERSHIP)
    found: dict[str, tuple[int, int, int]] = {}
    if not os.path.exists(path):
        return found
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split(maxsplit=3)
            if not fields:
                continue
            if len(fields) != 4:
                raise StorekitError(
                    f"{rootfs}/{OWNERSHIP}:{number}: expected MODE UID GID PATH, got {line!r}"
                )
            mode, uid, gid, name = fields
            found[name.strip().lstrip("/")] = (int(mode, 8), int(uid), int(gid))
    return found


def entries(boot: Bootstrap, rootfs: StorePath) -> list[Entry]:
    """Every archive entry, sorted: the tree at the top, the closure at its store paths."""
    store = boot.store
    found: dict[str, Entry] = {}
    root = store.real_path(rootfs)
    for name, real in _walk(root, ""):
        if name != "nix-support" and not name.startswith("nix-support/"):
            found[name] = Entry(name, real)
    store_dir = store.store_dir.path.strip("/")
    parts = store_dir.split("/")
    for i in range(1, len(parts) + 1):
        found.setdefault("/".join(parts[:i]), Entry("/".join(parts[:i]), None))
    closure = sorted(p for p in store.closure([rootfs]) if p != rootfs)
    for path in closure:
        base = f"{store_dir}/{path.base_name}"
        for name, real in _walk(store.real_path(path), base):
            found[name] = Entry(name, real)
    return [found[k] for k in sorted(found, key=lambda n: n.encode())]


def _walk(real_root: str, prefix: str) -> Iterator[tuple[str, str]]:
    if prefix:
        yield prefix, real_root
    if os.path.islink(real_root) or not os.path.isdir(real_root):
        return
    for directory, dirs, files in os.walk(real_root):
        rel = os.path.relpath(directory, real_root)
        for name in (*dirs, *files):
            sub = name if rel == "." else f"{rel}/{name}"
            yield (f"{prefix}/{sub}" if prefix else sub), os.path.join(directory, name)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def export(boot: Bootstrap, output: str, rootfs_name: str | None = None) -> Exported:
    """Write the system's tarball to `output` (compression from its suffix), atomically.

    `rootfs_name` picks one of the profile's trees (default: the last declared).
    """
    if not output.endswith(COMPRESSIONS):
        raise StorekitError(f"cannot tell the format of '{output}': name it {' or '.join(COMPRESSIONS)}")
    rootfs = built_rootfs(boot, rootfs_name)
    modes = read_ownership(boot, rootfs)
    items = entries(boot, rootfs)
    directory = os.path.dirname(os.path.abspath(output))
    fd, tmp = tempfile.mkstemp(prefix=".storekit-export-", dir=directory)
    applied = 0
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            _compressor(output, raw) as stream,
            tarfile.open(fileobj=stream, mode="w|", format=tarfile.GNU_FORMAT) as tar,
        ):
            for entry in items:
                applied += _add(tar, entry, modes.get(entry.name))
        os.chmod(tmp, 0o666 & ~_umask())  # a file the user asked for, not mkstemp's private 0600
        os.replace(tmp, output)
    except BaseException:
        os.unlink(tmp)
        raise
    digest = hashlib.sha256()
    with open(output, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    prefix = boot.store.store_dir.path.strip("/") + "/"
    store_paths = sum(1 for e in items if e.name.startswith(prefix) and "/" not in e.name[len(prefix) :])
    return Exported(output, digest.hexdigest(), len(items), store_paths, applied)


def _add(tar: tarfile.TarFile, entry: Entry, override: tuple[int, int, int] | None) -> int:
    info = tarfile.TarInfo(entry.name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = MTIME, 0, 0, "root", "root"
    real = entry.real
    data: IO[bytes] | None = None
    if real is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        st = os.lstat(real)
        if stat.S_ISLNK(st.st_mode):
            info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, os.readlink(real)
        elif stat.S_ISDIR(st.st_mode):
            info.type, info.mode = tarfile.DIRTYPE, 0o755
        else:
            info.type, info.size = tarfile.REGTYPE, st.st_size
            info.mode = 0o755 if st.st_mode & 0o100 else 0o644
            data = open(real, "rb")  # noqa: SIM115 - closed below
    if override is not None:
        info.mode, info.uid, info.gid = override
    try:
        tar.addfile(info, data)
    finally:
        if data is not None:
            data.close()
    return 0 if override is None else 1


class _compressor:
    """A write stream for the suffix's compression, finished (and checked) on exit."""

    def __init__(self, output: str, raw: IO[bytes]) -> None:
        self.output, self.raw = output, raw
        self.stream: IO[bytes] = raw
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        if self.output.endswith((".tar.gz", ".tgz")):
            self.stream = cast(IO[bytes], gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, mtime=0))
        elif self.output.endswith(".tar.xz"):
            self.stream = cast(IO[bytes], lzma.LZMAFile(self.raw, "wb", preset=6))
        elif self.output.endswith(".tar.zst"):
            zstd = which("zstd")
            if zstd is None:
                raise StorekitError("a .tar.zst export needs the zstd command (apt-get install zstd)")
            self.proc = subprocess.Popen(
                [zstd, "-q", "-12", "-T1", "-c"], stdin=subprocess.PIPE, stdout=self.raw
            )
            assert self.proc.stdin is not None
            self.stream = self.proc.stdin
        return self.stream

    def __exit__(self, *exc: object) -> None:
        if self.stream is not self.raw:
            self.stream.close()
        if self.proc is not None and self.proc.wait() != 0:
            raise StorekitError(f"zstd failed (exit {self.proc.returncode}) writing {self.output}")
