"""`storekit build --check`: build a derivation again and compare with the store (`nix-build --check`).

A reproducibility check: the derivation is built once more in the sandbox, into a staging directory
that never becomes valid, its outputs are canonicalised and hashed exactly as a real build's are,
and each NAR hash is compared with the registered one. When they differ, the two trees are walked
side by side to name the files that differ (content, type, executable bit, link target), which is
what one needs to chase the cause (a timestamp, a build path, an unordered directory listing).
The store is not changed; the check's log goes beside the build's (`<drv>.check` in the log dir).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from storekit.derivation.fs import read_derivation
from storekit.errors import PathNotValid, StorekitError
from storekit.hashing import Hash
from storekit.realise import outputs as out_checks
from storekit.realise.logs import log_path
from storekit.realise.plan import Action, Goal
from storekit.realise.runner import (
    BuildOptions,
    LogSink,
    check_builder,
    fresh_copies,
    input_closure,
    output_locations,
    run_builder,
)
from storekit.store.local import LocalStore
from storekit.storepath import StorePath


@dataclass(frozen=True, slots=True)
class CheckResult:
    drv_path: StorePath
    output: StorePath
    expected: Hash
    got: Hash
    differing: tuple[str, ...]
    """Paths inside the output that differ (`.` for the output itself), sorted."""
    seconds: float

    @property
    def same(self) -> bool:
        return self.expected == self.got


def check_derivation(
    store: LocalStore, drv_path: StorePath, options: BuildOptions, *, on_log: LogSink | None = None
) -> list[CheckResult]:
    """Rebuild `drv_path` (whose outputs must be valid) and compare each output's NAR hash."""
    if not options.sandbox:
        raise StorekitError("--check needs the sandbox: without it the build would overwrite the outputs")
    if not store.is_valid_path(drv_path):
        raise PathNotValid(str(drv_path), store.uri)
    drv = read_derivation(Path(store.real_path(drv_path)))
    outputs = {}
    for name, out in drv.outputs.items():
        if not out.path:
            raise StorekitError(
                f"{drv_path}: output '{name}' has no fixed path (content-addressed): cannot check"
            )
        outputs[name] = store.store_dir.parse_path(out.path)
    missing = [str(p) for p in outputs.values() if not store.is_valid_path(p)]
    if missing:
        raise StorekitError(f"{drv_path}: not built yet ({', '.join(missing)}): build it before checking it")
    goal = Goal(drv_path, drv, outputs, frozenset(outputs), frozenset(), Action.BUILD)
    started = time.monotonic()
    closure = input_closure(store, goal)
    check_builder(goal, closure, options)
    results = []
    with store.staging() as stage:
        built = output_locations(store, goal, stage, options)  # where the builder writes, as a build
        log_file = log_path(store.spec.log_dir, drv_path) + ".check"
        run_builder(store, goal, closure, stage, log_file, options, None, on_log)
        built = fresh_copies(goal, stage, built, options)  # copied out of the builder's reach first
        infos = out_checks.collect(store, goal, built, closure)
        seconds = time.monotonic() - started
        for name, path in sorted(outputs.items()):
            registered = store.lookup_path_info(path)
            assert registered is not None
            got = infos[name].nar_hash
            differing = (
                () if got == registered.nar_hash else tuple(diff_trees(store.real_path(path), built[name]))
            )
            results.append(CheckResult(drv_path, path, registered.nar_hash, got, differing, seconds))
    return results


def diff_trees(a: str, b: str) -> Iterator[str]:
    """Relative paths where the trees at `a` and `b` differ, in sorted order."""
    yield from _diff(a, b, ".")


def _diff(a: str, b: str, rel: str) -> Iterator[str]:
    sa, sb = _lstat(a), _lstat(b)
    if sa is None or sb is None or stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
        yield rel
        return
    if stat.S_ISLNK(sa.st_mode):
        if os.readlink(a) != os.readlink(b):
            yield rel
    elif stat.S_ISDIR(sa.st_mode):
        for name in sorted(set(os.listdir(a)) | set(os.listdir(b))):
            yield from _diff(
                os.path.join(a, name), os.path.join(b, name), name if rel == "." else f"{rel}/{name}"
            )
    elif (sa.st_mode & 0o100) != (sb.st_mode & 0o100) or sa.st_size != sb.st_size or not _same_bytes(a, b):
        yield rel


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _same_bytes(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True
