"""`storekit bootstrap verify`: the book's sanity checks, and the promises the store makes about them.

Two kinds of check. Inside the sandbox, the profile's `[verify]` script runs like one more package of
its stage (compile and run a test program with the new toolchain, `readelf -l` shows the store's
dynamic linker, run the stage's programs), so it proves something only the built tools can do. Outside,
from the store: every package is built; no output file mentions a host path where a path starts
(except the profile's allowed files); every ELF file's interpreter and rpath point into the store; every
program finds its shared libraries there; and every output's closure stays within the profile's own
outputs and the seed.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from storekit.bootstrap.driver import Bootstrap
from storekit.bootstrap.model import SEED
from storekit.elf.fs import is_elf_file, read_facts
from storekit.elf.inspect import ElfFacts
from storekit.errors import ElfError
from storekit.progress import Progress
from storekit.storepath import StorePath


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


def verify(
    boot: Bootstrap,
    *,
    until: str | None = None,
    jobs: int = 1,
    cores: int = 1,
    progress: Progress | None = None,
) -> list[Check]:
    """Every check, in order; the sandboxed scripts run only when everything checked is built.

    `until` (a stage, a package or a rootfs tree, as for `build`) checks the system so far: what that
    needs, and the `[verify]` script and the `[rootfs]` trees when they come within it, while later
    stages build. A tree stands for what it composes (not its stage's test suites).
    """
    wanted = boot.wanted((until,) if until else ())
    checks = [_all_built(boot, wanted)]
    outputs = _outputs(boot, wanted)
    if not checks[0].ok:
        return checks
    checks.append(_host_paths(boot, outputs))
    checks.append(_elf_paths(boot, outputs))
    checks.append(_libraries_found(boot, outputs))
    checks.append(_closures(boot, outputs))
    spec, planned = boot.profile.verify, boot.plan.verify
    if spec is not None and planned is not None and _within(planned.package.deps, wanted):
        summary = boot.build_verify(jobs=jobs, cores=cores, progress=progress)
        failure = next(iter(summary.failed.values()), "")
        detail = failure or f"{planned.planned.out}/report.txt"
        checks.append(Check(f"sanity checks in the sandbox ({spec.script})", not failure, detail))
    for tree in boot.profile.rootfs:
        if tree.check and _within(tree.packages, wanted):
            checks.append(_inside(boot, tree.name, tree.check))
    return checks


def _within(ids: Iterable[str], wanted: set[str]) -> bool:
    """Whether everything `ids` names (packages, or the seed, which is always there) is checked."""
    return all(i == SEED or i in wanted for i in ids)


def _inside(boot: Bootstrap, tree: str, script: str) -> Check:
    """A tree's check script run inside it (`bootstrap enter --rootfs TREE … -- /bin/sh -c SCRIPT`)."""
    from storekit.bootstrap.enter import enter_argv

    text = boot.loaded.files[script].decode()
    proc = subprocess.run(
        enter_argv(boot, ["/bin/sh", "-c", text], rootfs=tree), capture_output=True, text=True, check=False
    )
    lines = (proc.stdout + proc.stderr).strip()
    where = "the system" if len(boot.profile.rootfs) == 1 else f"the system '{tree}'"
    name = f"the book's checks inside {where} ({script}, bootstrap enter)"
    return Check(name, proc.returncode == 0, lines if proc.returncode else lines.replace("ok: ", "", -1))


def _outputs(boot: Bootstrap, wanted: set[str]) -> dict[StorePath, str]:
    """Each package output and its package id (the rootfs trees too: their /etc is scanned as well)."""
    found = {pp.planned.out: pid for pid, pp in boot.plan.packages.items() if pid in wanted}
    for tree in boot.plan.rootfs:
        if _within(tree.package.deps, wanted):
            found[tree.planned.out] = tree.package.id
    return found


def _all_built(boot: Bootstrap, wanted: set[str]) -> Check:
    wanted = wanted | {t.package.id for t in boot.plan.rootfs if _within(t.package.deps, wanted)}
    missing = [s.id for _, states in boot.status() for s in states if s.id in wanted and s.status != "built"]
    if missing:
        return Check("every package is built", False, "not built: " + ", ".join(missing))
    return Check("every package is built", True, f"{len(wanted)} packages and the seed")


def _files(root: str) -> Iterator[str]:
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                yield path


def host_path_pattern(host_paths: tuple[str, ...]) -> re.Pattern[bytes]:
    """A host path where a path starts (not the tail of a store path such as `…-seed/usr/lib/…`)."""
    alternatives = b"|".join(re.escape(p.encode()) for p in host_paths)
    return re.compile(rb"(?:^|(?<=[^A-Za-z0-9._+-]))(?:" + alternatives + rb")")


def _host_paths(boot: Bootstrap, outputs: dict[StorePath, str]) -> Check:
    profile = boot.profile
    pattern = host_path_pattern(profile.host_paths)
    found = []
    trees = {tree.package.id: tree.package for tree in boot.plan.rootfs}
    for out, pid in outputs.items():
        package = profile.packages.get(pid) or trees.get(pid)
        allowed = (*profile.allowed_host_paths, *(package.allowed_host_paths if package else ()))
        root = boot.store.real_path(out)
        for path in _files(root):
            rel = os.path.relpath(path, root)
            if any(fnmatch.fnmatch(rel, g) for g in allowed):
                continue
            with open(path, "rb") as f:
                m = pattern.search(f.read())
            if m:
                found.append(f"{out}/{rel} mentions {m.group().decode(errors='replace')}")
    name = f"no output mentions a host path ({', '.join(profile.host_paths)})"
    return Check(name, not found, "\n".join(found[:20]) or f"{len(outputs)} outputs scanned")


def _elf_files(boot: Bootstrap, outputs: dict[StorePath, str]) -> Iterator[tuple[str, str, ElfFacts]]:
    """(logical path, real path, facts) of every ELF file of the outputs."""
    for out in outputs:
        root = boot.store.real_path(out)
        for path in _files(root):
            if not is_elf_file(path):
                continue
            try:
                facts = read_facts(path)
            except ElfError:
                continue
            yield f"{out}/{os.path.relpath(path, root)}", path, facts


def _elf_paths(boot: Bootstrap, outputs: dict[StorePath, str]) -> Check:
    store_dir = boot.store.store_dir.path + "/"
    bad = []
    count = 0
    for rel, _, facts in _elf_files(boot, outputs):
        count += 1
        if facts.interpreter and not facts.interpreter.startswith(store_dir):
            bad.append(f"{rel}: interpreter {facts.interpreter}")
        for entry in (facts.rpath or facts.runpath or "").split(":"):
            if entry and not entry.startswith((store_dir, "$ORIGIN")):
                bad.append(f"{rel}: rpath entry {entry}")
    name = "ELF interpreters and rpaths point into the store (readelf -l shows the store's loader)"
    return Check(name, not bad, "\n".join(bad[:20]) or f"{count} ELF files")


def _libraries_found(boot: Bootstrap, outputs: dict[StorePath, str]) -> Check:
    """Each program's NEEDED libraries are in its rpath or beside its loader (the loader's default).

    A program of a prefix-installed package finds its own libraries in /usr/lib in the book; in the
    store only an rpath finds them, and a missing one shows only when the program is run.
    """
    store_dir, real_dir = boot.store.store_dir.path, boot.store.real_dir

    def real(logical: str) -> str:
        return real_dir + logical[len(store_dir) :] if logical.startswith(store_dir + "/") else logical

    missing = []
    count = 0
    for rel, _, facts in _elf_files(boot, outputs):
        if not facts.interpreter:
            continue  # a library: its users' rpaths and what is loaded already find its needs
        count += 1
        origin = os.path.dirname(rel)
        dirs = [e.replace("$ORIGIN", origin) for e in (facts.runpath or facts.rpath or "").split(":") if e]
        dirs.append(os.path.dirname(facts.interpreter))
        for lib in facts.needed:
            if not any(os.path.exists(os.path.join(real(d), lib)) for d in dirs):
                missing.append(f"{rel}: {lib} (searched {':'.join(dirs)})")
    name = "programs find their shared libraries (rpath, or beside the loader)"
    return Check(name, not missing, "\n".join(missing[:20]) or f"{count} programs")


def _closures(boot: Bootstrap, outputs: dict[StorePath, str]) -> Check:
    allowed = set(outputs) | {boot.plan.seed.out}
    closure = boot.store.closure(outputs)
    strays = sorted(str(p) for p in closure - allowed)
    name = f"closures stay within the profile's outputs and the {SEED}"
    return Check(name, not strays, "\n".join(strays) or f"{len(closure)} paths in the closure")
