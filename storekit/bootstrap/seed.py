"""Stage 0: host tools made into one self-contained store path, the way nixpkgs makes bootstrap-tools.

`scan_host` (reads the host) finds what the `[seed]` table declares: commands on the search path,
every file of the named Debian packages, globbed files and trees, then, transitively, each symlink's
target and each ELF file's interpreter and shared libraries (glibc and the loader included). The
result, a `SeedManifest`, names every file with its sha256; its digest goes into the seed's
derivation, so the seed's store path is known before it is made and changes when the host does.

`make_seed` copies the files into the store at their host paths under the seed (`usr/bin/bash`,
`usr/lib/x86_64-linux-gnu/libc.so.6`, `lib -> usr/lib` on a merged-/usr host), then rewrites every ELF
file with storekit's ELF editor: the interpreter becomes the seed's loader, the rpath the seed
directories holding its libraries, so nothing points at /usr or /lib any more. `bin/` holds one entry
per command; the declared compilers are small wrappers that compile against the seed as a sysroot and
link programs to run with the seed's loader and libc. Scripts' `#!` lines point into `bin/`.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
import posixpath
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from storekit.bootstrap.model import SeedSpec
from storekit.elf import SetInterpreter, SetRpath
from storekit.elf.fs import edit_file, is_elf_file, read_facts
from storekit.errors import ElfError, StorekitError
from storekit.programs import which
from storekit.progress import Progress, ProgressEvent
from storekit.store.base import ValidPathInfo
from storekit.storepath import StorePath

if TYPE_CHECKING:
    from storekit.store.local import LocalStore

#: Only files under these host directories are copied; the rest (/etc/alternatives ...) is followed.
ROOTS = ("/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/lib32/", "/libx32/")
DEFAULT_EXCLUDE = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
    "/usr/share/bug/*",
    "/usr/share/bash-completion/*",
    "/usr/share/menu/*",
)
LIBRARY_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)
SPECS_FILE = "storekit-seed.specs"
PATH_DIRS = ("/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/")


@dataclass(frozen=True, slots=True)
class HostFile:
    """A file or symlink to copy, at its canonical host path (real parent directory + name)."""

    path: str
    kind: Literal["file", "symlink"]
    target: str = ""
    """A symlink's target, relative, pointing at the final file inside the seed."""
    executable: bool = False
    sha256: str = ""


@dataclass(frozen=True, slots=True)
class SeedManifest:
    files: tuple[HostFile, ...]
    commands: tuple[tuple[str, str], ...]
    """(name in bin/, canonical host path it runs)."""
    missing: tuple[str, ...]
    """Shared libraries some ELF file needs that the host does not have (reported, not fatal)."""
    digest: str

    @property
    def size(self) -> int:
        return len(self.files)


def canonical(path: str) -> str:
    """The host path with every directory symlink resolved but the last component kept."""
    path = posixpath.normpath(path)
    return posixpath.join(os.path.realpath(posixpath.dirname(path)), posixpath.basename(path))


def scan_host(spec: SeedSpec, run: Callable[[list[str]], str] | None = None) -> SeedManifest:
    """Everything the seed will hold, read from the host. `run` lists Debian packages (dpkg-query)."""
    excluded = (*DEFAULT_EXCLUDE, *spec.exclude)
    commands: dict[str, str] = {}
    todo: list[str] = []
    for tool in spec.tools:
        found = which(tool, path=os.pathsep.join(spec.search_path))
        if found is None:
            raise StorekitError(
                f"seed: the host has no '{tool}' on {':'.join(spec.search_path)}; "
                "install it (apt-get install …) or drop it from [seed] tools"
            )
        commands[tool] = os.path.realpath(found)
        todo.append(commands[tool])
    for package in spec.debian_packages:
        listed = (run or _run)(["dpkg-query", "-L", package]).splitlines()
        todo.extend(p for p in listed if p.startswith(ROOTS) and (os.path.islink(p) or not os.path.isdir(p)))
    for pattern in spec.files:
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise StorekitError(f"seed: no host file matches '{pattern}' ([seed] files)")
        todo.extend(matches)
    entries, missing = _close(todo, excluded)
    for name, path in list(commands.items()):
        commands[name] = canonical(path)
    for entry in entries.values():
        if entry.kind == "file" and entry.path.startswith(PATH_DIRS) and entry.executable:
            commands.setdefault(posixpath.basename(entry.path), entry.path)
    if spec.sh not in commands:
        raise StorekitError(f"seed: sh = '{spec.sh}' is not one of the seed's commands; add it to tools")
    commands["sh"] = commands[spec.sh]
    files = tuple(sorted(entries.values(), key=lambda e: e.path))
    return SeedManifest(
        files, tuple(sorted(commands.items())), tuple(sorted(missing)), _digest(files, commands)
    )


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        raise StorekitError(f"seed: {' '.join(argv)} failed: {detail.strip()}") from e


def _close(todo: list[str], excluded: Iterable[str]) -> tuple[dict[str, HostFile], set[str]]:
    """Add symlink targets, directory contents, interpreters and needed libraries until nothing is new."""
    entries: dict[str, HostFile] = {}
    missing: set[str] = set()
    while todo:
        raw = todo.pop()
        path = canonical(raw)
        if path in entries or any(fnmatch.fnmatch(path, x) for x in excluded):
            continue
        _directory_links(raw, entries)
        try:
            st = os.lstat(path)
        except OSError as e:
            raise StorekitError(f"seed: cannot read host file '{path}': {e.strerror}") from e
        if stat.S_ISLNK(st.st_mode):
            final = os.path.realpath(path)
            if not os.path.exists(final):
                continue  # a dangling link on the host: nothing to copy
            rel = posixpath.relpath(final, posixpath.dirname(path))
            entries[path] = HostFile(path, "symlink", target=rel)
            todo.append(final)
        elif stat.S_ISDIR(st.st_mode):
            todo.extend(posixpath.join(path, name) for name in sorted(os.listdir(path)))
        elif stat.S_ISREG(st.st_mode):
            if not path.startswith(ROOTS):
                continue
            entries[path] = HostFile(path, "file", executable=bool(st.st_mode & 0o100), sha256=_sha256(path))
            todo.extend(_elf_needs(path, missing))
    return entries, missing


def _directory_links(path: str, entries: dict[str, HostFile]) -> None:
    """Keep the directory symlinks a path goes through (perl's `5.36 -> 5.36.0`), but not /lib & co."""
    parts = posixpath.normpath(path).split("/")
    for i in range(3, len(parts)):
        d = "/".join(parts[:i])
        if os.path.islink(d) and d.startswith(ROOTS):
            link = canonical(d)
            if link not in entries:
                target = posixpath.relpath(os.path.realpath(d), posixpath.dirname(link))
                entries[link] = HostFile(link, "symlink", target=target)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _elf_needs(path: str, missing: set[str]) -> list[str]:
    if not is_elf_file(path):
        return []
    try:
        facts = read_facts(path)
    except ElfError:
        return []  # objects, archives members and the like: nothing to load
    needs = [facts.interpreter] if facts.interpreter else []
    origin = posixpath.dirname(path)
    search = [d.replace("$ORIGIN", origin) for d in (facts.rpath or facts.runpath or "").split(":") if d]
    for lib in facts.needed:
        candidates = (posixpath.join(d, lib) for d in (*search, *LIBRARY_DIRS))
        found = next((c for c in candidates if os.path.exists(c)), None)
        if found is None:
            missing.add(f"{lib} (needed by {path})")
        else:
            needs.append(found)
    return needs


def _digest(files: Iterable[HostFile], commands: dict[str, str]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.kind}\t{f.path}\t{int(f.executable)}\t{f.sha256 or f.target}\n".encode())
    for name, path in sorted(commands.items()):
        h.update(f"command\t{name}\t{path}\n".encode())
    return h.hexdigest()


# --- making it ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeedReport:
    files: int
    elf_patched: int
    scripts_patched: int
    refused: tuple[tuple[str, str], ...]


def make_seed(
    manifest: SeedManifest, spec: SeedSpec, out: str, root: str, progress: Progress | None = None
) -> SeedReport:
    """Assemble the seed for store path `out` in the empty directory `root` (a staging directory)."""
    for done, f in enumerate(manifest.files, 1):
        dest = root + f.path
        os.makedirs(posixpath.dirname(dest), exist_ok=True)
        if f.kind == "symlink":
            os.symlink(f.target, dest)
        else:
            shutil.copyfile(f.path, dest)
            os.chmod(dest, 0o755 if f.executable else 0o644)
            if progress is not None:
                progress(ProgressEvent("seed", done, len(manifest.files), "files", item=f.path))
    for top in ("/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(top) and os.path.isdir(root + os.path.realpath(top)):
            os.symlink(os.readlink(top).lstrip("/"), root + top)
    loader = _loader(manifest)
    patched, refused = _patch_elves(manifest, out, root, loader)
    _make_bin(manifest, spec, out, root, loader)
    scripts = _patch_scripts(manifest, out, root)
    return SeedReport(len(manifest.files), patched, scripts, tuple(refused))


def _loader(manifest: SeedManifest) -> str:
    for f in manifest.files:
        if f.kind == "file" and posixpath.basename(f.path).startswith("ld-linux"):
            return f.path
    raise StorekitError("seed: no dynamic loader (ld-linux*.so) among the seed's files; add a dynamic tool")


def _patch_elves(
    manifest: SeedManifest, out: str, root: str, loader: str
) -> tuple[int, list[tuple[str, str]]]:
    located = {posixpath.basename(f.path): posixpath.dirname(f.path) for f in manifest.files}
    patched = 0
    refused: list[tuple[str, str]] = []
    for f in manifest.files:
        path = root + f.path
        if f.kind != "file" or not is_elf_file(path):
            continue
        try:
            facts = read_facts(path)
        except ElfError:
            continue
        edits: list[SetInterpreter | SetRpath] = []
        if facts.interpreter:
            edits.append(SetInterpreter(out + loader))
        dirs = sorted({located[lib] for lib in facts.needed if lib in located})
        if dirs:
            edits.append(SetRpath(":".join(out + d for d in dirs)))
        if not edits:
            continue
        try:
            edit_file(path, edits)
            patched += 1
        except ElfError as e:
            refused.append((f.path, str(e)))
    if refused:
        shown = "; ".join(f"{p}: {why}" for p, why in refused[:5])
        raise StorekitError(f"seed: the ELF editor refused {len(refused)} file(s): {shown}")
    return patched, refused


def _make_bin(manifest: SeedManifest, spec: SeedSpec, out: str, root: str, loader: str) -> None:
    """`bin/`: a relative link per command, a wrapper per declared compiler."""
    bindir = posixpath.join(root, "bin")
    os.makedirs(bindir)
    commands = dict(manifest.commands)
    specs = posixpath.join("/nix-support", SPECS_FILE)
    os.makedirs(root + "/nix-support")
    with open(root + specs, "w") as f:
        f.write(link_specs(out + loader, out + posixpath.dirname(loader)))
    wraps = dict(spec.wrap)
    sh = out + commands[spec.sh]
    for name, path in commands.items():
        link = posixpath.join(bindir, name)
        if name in spec.compilers:
            text = compiler_wrapper(out, path, out + specs, sh)
        elif name in wraps:
            text = env_wrapper(out, path, wraps[name], sh)
        else:
            os.symlink(posixpath.relpath(path, "/bin"), link)
            continue
        with open(link, "w") as f:
            f.write(text)
        os.chmod(link, 0o755)
    unknown = sorted((set(spec.compilers) | set(wraps)) - set(commands))
    if unknown:
        raise StorekitError(f"seed: {', '.join(unknown)} (compilers, wrap) are not among the seed's commands")


def env_wrapper(out: str, real: str, env: tuple[tuple[str, str], ...], sh: str) -> str:
    """A command run with variables set; relative entries of a `:` list are paths in the seed.

    The caller's setting wins: a list (`PERL5LIB`) keeps the caller's entries first, the way a build
    puts its own modules in front (automake's pre-inst-env), and a single value (`M4`) is only a
    default. Overwriting them made the seed's perl lose a build's own modules.
    """
    lines = [f"#!{sh}", "# storekit seed: run with the seed's own module paths"]
    for var, value in env:
        entries = [e if e.startswith("/") or not e else f"{out}/{e}" for e in value.split(":")]
        joined = ":".join(entries)
        if len(entries) > 1:
            lines.append(f'export {var}="${{{var}:+${var}:}}{joined}"')
        else:
            lines.append(f'export {var}="${{{var}:-{joined}}}"')
    lines.append(f'exec {out}{real} "$@"')
    return "\n".join(lines) + "\n"


def compiler_wrapper(out: str, real: str, specs: str, sh: str) -> str:
    """A compiler that treats the seed as its sysroot and links programs to run from the seed.

    `--sysroot` makes gcc and ld look for headers, crt files and libc in the seed instead of /usr
    (Debian's gcc and ld are built with sysroot support). The loader and rpath come from a specs
    file rather than `-Wl,` flags, so they apply only when gcc links (`gcc -v` must not link).
    """
    return (
        f"#!{sh}\n"
        "# storekit seed: compile against the seed, link to run from it\n"
        f'exec {out}{real} --sysroot={out} -specs={specs} "$@"\n'
    )


def link_specs(loader: str, libdir: str) -> str:
    """gcc specs appended to the `link` spec: the seed's loader and library directory."""
    return (
        f"*link:\n+ %{{!static:%{{!static-pie:-dynamic-linker {loader}}}}} %{{!static:-rpath {libdir}}}\n\n"
    )


def _patch_scripts(manifest: SeedManifest, out: str, root: str) -> int:
    """Point `#!/bin/sh`, `#!/usr/bin/perl` … at the seed's `bin/` when it has that command."""
    commands = dict(manifest.commands)
    count = 0
    for f in manifest.files:
        path = root + f.path
        if f.kind != "file" or not f.executable:
            continue
        with open(path, "rb") as fh:
            head = fh.read(256)
        if not head.startswith(b"#!"):
            continue
        line = head[2:].split(b"\n", 1)[0].strip()
        interpreter, _, rest = line.partition(b" ")
        name = posixpath.basename(interpreter.decode("utf-8", "replace"))
        if name not in commands or interpreter.startswith(out.encode()):
            continue
        with open(path, "rb") as fh:
            body = fh.read()
        new_line = b"#!" + f"{out}/bin/{name}".encode() + (b" " + rest if rest else b"")
        with open(path, "wb") as fh:
            fh.write(new_line + body[body.index(b"\n") if b"\n" in body else len(body) :])
        count += 1
    return count


def add_seed(
    store: LocalStore,
    out: StorePath,
    deriver: StorePath,
    manifest: SeedManifest,
    spec: SeedSpec,
    progress: Progress | None = None,
) -> SeedReport:
    """Make the seed in a staging directory of `store` and register it as `out`, built by `deriver`."""
    from storekit.nar.fs import hash_path

    with store.staging() as stage:
        root = posixpath.join(stage, "x")
        os.makedirs(root)
        report = make_seed(manifest, spec, str(out), root, progress)
        nar_hash, size = hash_path(root)
        info = ValidPathInfo(out, nar_hash, size, frozenset({out}), deriver=deriver)
        store.install_staged(info, root)
    return report
