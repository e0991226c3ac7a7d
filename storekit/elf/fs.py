"""The only ELF module touching the disk: read files through mmap, apply patches all-or-nothing.

A patch that keeps the file's size is written with pwrite into the file itself (fast, keeps the
inode, mode, owner, xattrs); one that grows it is assembled in a temp file next to it
(copy_file_range for the unchanged parts, holes for zeros), given the original's mode and owner,
read back and checked, then renamed over it. Either way the result is parsed again and compared with
what the plan promised; in place, a mismatch puts the saved original bytes back.

Hard links: an edit changes the path it is given, never other names of the same inode. A file with
several links is therefore always rewritten through a temp file and rename, which splits it from its
other links (as `sed -i` does); in a Nix store optimised with hard links, patching one path must not
silently patch every other path sharing the inode. Symbolic links are followed: the target is edited.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from storekit.elf import ldcache
from storekit.elf.edits import Edit
from storekit.elf.format import ELF_MAGIC, Codec, Ehdr
from storekit.elf.inspect import ElfFacts, ElfFile, parse
from storekit.elf.layout import Copy, Fill, Piece, Write, Zeros
from storekit.elf.patch import Patch, plan
from storekit.errors import ElfError, ElfPatchError

Outcome = Literal["unchanged", "patched in place", "rewritten"]


@dataclass(frozen=True, slots=True)
class Result:
    path: str
    outcome: Outcome
    facts: ElfFacts


@contextmanager
def open_elf(path: str) -> Iterator[ElfFile]:
    """Parse `path` over a read-only shared mapping (it sees later writes to the file)."""
    with _mapped(path) as (_, elf):
        yield elf


@contextmanager
def _mapped(path: str) -> Iterator[tuple[int, ElfFile]]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise ElfError(path, f"cannot open: {e.strerror}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ElfError(path, "not a regular file")
        if st.st_size < 4:
            raise ElfError(path, "not an ELF file" if st.st_size == 0 else "truncated ELF file")
        with mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ) as data:
            yield fd, parse(data, path)
    finally:
        os.close(fd)


def read_facts(path: str) -> ElfFacts:
    with open_elf(path) as elf:
        return elf.facts()


def edit_file(path: str, edits: Sequence[Edit], output: str | None = None, *, atomic: bool = True) -> Result:
    """Apply `edits` to `path` (or write the result to `output`), all or nothing.

    A grown file replaces the original through a temp file and rename; with `atomic=False` it is
    written in place like a same-size patch (only the bytes that change: many times faster on whole
    trees), which a crash midway can leave half-written.
    """
    with _mapped(path) as (src, elf):
        patch = plan(elf, edits)
        stale = ldcache.find(elf) is not None and _resolution_changes(elf.facts(), patch.expected)
        result = _apply(path, src, elf, patch, output, atomic)
    if stale:  # the resolution cache names what the old run path and libraries resolved to
        drop_resolution_cache(output if output is not None else path)
    return result


def _apply(path: str, src: int, elf: ElfFile, patch: Patch, output: str | None, atomic: bool) -> Result:
    st = os.fstat(src)
    if output is not None and not _same_file(output, st):
        _write_new(src, elf, patch, os.path.realpath(output), st)
        return Result(path, "rewritten", patch.expected)
    if patch.is_noop:
        return Result(path, "unchanged", patch.expected)
    if not os.access(path, os.W_OK):
        raise ElfPatchError(path, "is not writable: check its permissions (nothing was changed)")
    writes = _writes_over(elf, patch, atomic)
    if writes is not None and st.st_nlink == 1 and _write_in_place(path, elf, writes, patch):
        return Result(path, "patched in place", patch.expected)
    _write_new(src, elf, patch, os.path.realpath(path), st)
    return Result(path, "rewritten", patch.expected)


def _resolution_changes(before: ElfFacts, after: ElfFacts) -> bool:
    return (before.needed, before.rpath, before.runpath) != (after.needed, after.rpath, after.runpath)


#: What `build_resolution_cache` did, in patchelf's words where it warns
CACHE_OUTCOMES = {
    "written": "",
    "up to date": "",
    "no dynamic": "no dynamic section (statically linked?); no cache written",
    "nothing to resolve": "no DT_NEEDED entries or run path to resolve; no cache written",
    "none resolved": "no libraries resolved against the run path; no cache written",
}


def build_resolution_cache(path: str, output: str | None = None) -> str:
    """Add the library resolution cache note (see `ldcache`) to `path` (or write the result to
    `output`); the outcome, a key of CACHE_OUTCOMES. A note already there that no longer matches what
    the run path resolves to is refused: it must be rebuilt from a file without one."""
    target = os.path.realpath(output if output is not None else path)
    with _mapped(path) as (src, elf):
        existing = ldcache.find(elf)
        outcome, desc = _resolve(elf)
        if existing is not None:
            if desc is not None and ldcache.existing_descriptor(elf, existing) == desc:
                outcome = "up to date"
            else:
                raise ElfPatchError(
                    path, "a resolution cache note is already present; rebuild from an unpatched binary"
                )
        if desc is None or outcome == "up to date":
            if output is not None and not _same_file(output, os.fstat(src)):
                _write_new(src, elf, _unchanged(elf), target, os.fstat(src))
            return outcome
        try:
            pieces, writes, size = ldcache.plan_add(elf, desc)
        except ldcache.NoRoom as e:
            raise ElfPatchError(path, f"{e}: cannot add a resolution cache") from e
        patch = Patch(elf.path, writes, pieces, size, elf.facts())
        _write_new(src, elf, patch, target, os.fstat(src))
    return "written"


def drop_resolution_cache(path: str) -> bool:
    """Remove the resolution cache note from `path`, atomically; False when it has none."""
    with _mapped(path) as (src, elf):
        index = ldcache.find(elf)
        if index is None:
            return False
        patch = Patch(elf.path, ldcache.plan_remove(elf, index), (Copy(0, elf.size),), elf.size, elf.facts())
        _write_new(src, elf, patch, os.path.realpath(path), os.fstat(src))
    return True


def _resolve(elf: ElfFile) -> tuple[str, bytes | None]:
    if elf.dynamic_segment is None or not elf.has_dynamic_bytes:
        return "no dynamic", None
    facts = elf.facts()
    run_path = facts.runpath if facts.runpath is not None else facts.rpath
    if not facts.needed or not run_path:
        return "nothing to resolve", None
    desc = ldcache.descriptor(
        [os.fsencode(n) for n in facts.needed],
        os.fsencode(run_path).split(b":"),
        lambda p: os.access(p, os.R_OK),
        lambda d: os.path.lexists(d + b"/glibc-hwcaps"),
    )
    return ("none resolved", None) if desc is None else ("written", desc)


def _unchanged(elf: ElfFile) -> Patch:
    return Patch(elf.path, (), (Copy(0, elf.size),), elf.size, elf.facts())


def _same_file(path: str, st: os.stat_result) -> bool:
    try:
        other = os.stat(path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)


def _writes_over(elf: ElfFile, patch: Patch, atomic: bool) -> list[Write] | None:
    """The patch as writes over the original file, or None when it must go through a new file."""
    if patch.pieces is None:
        return list(patch.writes)
    if atomic or patch.size < elf.size:  # a shrinking patch (un-growth) would truncate unsaved bytes
        return None
    out: list[Write] = []
    pos = budget = 0
    for p in patch.pieces:
        if isinstance(p, Copy):
            if p.offset != pos:  # moved: read now, before anything is written
                out.append((pos, bytes(elf.data[p.offset : p.offset + p.length])))
                budget += p.length
            pos += p.length
        elif isinstance(p, Fill):
            out.append((pos, p.data))
            pos += len(p.data)
        else:
            below = max(0, min(pos + p.length, elf.size) - pos)  # zeros past the old end are a hole
            out += [(pos + i, bytes(min(_CHUNK, below - i))) for i in range(0, below, _CHUNK)]
            budget += below
            pos += p.length
        if budget > _MOVE_LIMIT:
            return None
    return out + list(patch.writes)


_CHUNK = 1 << 20
_MOVE_LIMIT = 64 << 20  # moving more than this in place is no faster than writing a new file


def _write_in_place(path: str, elf: ElfFile, writes: list[Write], patch: Patch) -> bool:
    """pwrite the patch, check the result, restore the saved bytes on any failure. False: file busy."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ETXTBSY:  # a running program: replace it by rename instead
            return False
        raise ElfPatchError(path, f"cannot open for writing: {e.strerror} (nothing was changed)") from e
    saved = [(offset, bytes(elf.data[offset : offset + len(data)])) for offset, data in writes]
    try:
        for offset, data in writes:
            os.pwrite(fd, data, offset)
        if patch.size == elf.size:
            _check(parse(elf.data, path), patch)
        else:
            os.ftruncate(fd, patch.size)
            with mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ) as result:
                _check(parse(result, path), patch)
    except BaseException:
        for offset, data in reversed(saved):
            os.pwrite(fd, data, offset)
        os.ftruncate(fd, elf.size)
        raise
    finally:
        os.close(fd)
    return True


def _write_new(src: int, elf: ElfFile, patch: Patch, target: str, st: os.stat_result) -> None:
    # `--output /dev/null` (patchelf's test suite does it): a device or FIFO is written to, never
    # replaced; renaming over it would swap the machine's /dev/null for a regular file.
    special = _is_special(target)
    directory = tempfile.gettempdir() if special else (os.path.dirname(target) or ".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".storekit-elf-", dir=directory)
    except OSError as e:
        raise ElfPatchError(
            elf.path, f"cannot create a file in {directory}: {e.strerror} (nothing was changed)"
        ) from e
    try:
        pieces: Sequence[Piece] = patch.pieces if patch.pieces is not None else (Copy(0, elf.size),)
        _assemble(src, elf, pieces, fd)
        for offset, data in patch.writes:
            os.pwrite(fd, data, offset)
        os.ftruncate(fd, patch.size)
        _keep_owner_and_mode(fd, st, elf.path)
        with mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ) as result:
            _check(parse(result, elf.path), patch)
        if special:
            _write_through(fd, target, patch.size)
            os.unlink(tmp)
        else:
            _replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)


def _is_special(path: str) -> bool:
    """Whether `path` exists and is not a regular file (a device, a FIFO, a socket)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


def _write_through(fd: int, target: str, size: int) -> None:
    """Copy the finished file open as `fd` into the special file `target`."""
    out = os.open(target, os.O_WRONLY)
    try:
        offset = 0
        while offset < size:
            chunk = os.pread(fd, min(1 << 20, size - offset), offset)
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view) :]
            offset += len(chunk)
    finally:
        os.close(out)


_RENAME_EXCHANGE = 2
_renameat2: Callable[..., int] | None = None


def _replace(tmp: str, target: str) -> None:
    """Put `tmp` in `target`'s place atomically.

    Swapping the two names (renameat2 RENAME_EXCHANGE) and then unlinking the old file under the temp
    name is as atomic as rename(2) (the path names the old file or the new one at every moment) but,
    on ext4, it does not make the kernel start writing the new file's data out at once, as replacing
    a file by rename does (auto_da_alloc): on whole trees that write-out is most of the time. Where
    the swap is not available (old kernels, other systems, a target that does not exist), rename.
    """
    global _renameat2
    if _renameat2 is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            _renameat2 = libc.renameat2
        except (OSError, AttributeError):
            _renameat2 = _no_renameat2
    at_fdcwd = -100
    if _renameat2(at_fdcwd, os.fsencode(tmp), at_fdcwd, os.fsencode(target), _RENAME_EXCHANGE) == 0:
        os.unlink(tmp)  # the old file, now under the temp name
        return
    os.rename(tmp, target)


def _no_renameat2(*_: object) -> int:
    return -1


def _assemble(src: int, elf: ElfFile, pieces: Sequence[Piece], fd: int) -> None:
    pos = 0
    for p in pieces:
        if isinstance(p, Copy):
            _copy(elf, src, fd, p, pos)
            pos += p.length
        elif isinstance(p, Fill):
            os.pwrite(fd, p.data, pos)
            pos += len(p.data)
        elif isinstance(p, Zeros):
            pos += p.length  # a hole: ftruncate at the end makes trailing zeros real


def _copy(elf: ElfFile, src: int, dst: int, p: Copy, pos: int) -> None:
    done = 0
    try:
        while done < p.length:
            n = os.copy_file_range(src, dst, p.length - done, p.offset + done, pos + done)
            if n == 0:
                break
            done += n
    except OSError:
        pass  # not supported here: fall back to writing from the mapping
    if done < p.length:
        os.pwrite(dst, elf.data[p.offset + done : p.offset + p.length], pos + done)


def _keep_owner_and_mode(fd: int, st: os.stat_result, path: str) -> None:
    try:
        os.fchown(fd, st.st_uid, st.st_gid)
    except PermissionError as e:
        if st.st_uid != os.geteuid():
            raise ElfPatchError(
                path, "belongs to another user: cannot keep its owner (nothing was changed)"
            ) from e
    os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits


def _check(elf: ElfFile, patch: Patch) -> None:
    """The planned bytes read back as planned; otherwise the planner has a bug (a traceback, not an error)."""
    got = elf.facts()
    if got != patch.expected:
        raise AssertionError(
            f"{patch.path}: the patched file reads back as {got} instead of {patch.expected}; "
            "nothing was changed (please report this bug)"
        )


def library_provider(elf_class: int, machine: int) -> Callable[[str, str], bool]:
    """`provides(dir, name)` for shrink-rpath: dir/name is an ELF file of this class and machine."""

    def provides(directory: str, name: str) -> bool:
        try:
            with open(os.path.join(directory, name), "rb") as f:
                head = f.read(64)
        except OSError:
            return False
        if head[:4] != ELF_MAGIC or len(head) < 20 or head[4] not in (1, 2) or head[5] not in (1, 2):
            return False
        codec = Codec(is64=head[4] == 2, little=head[5] == 1)
        if len(head) < codec.st("ehdr").size:
            return False
        header = Ehdr.unpack(codec, head)
        return (64 if codec.is64 else 32) == elf_class and header.machine == machine

    return provides


def is_elf_file(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False
