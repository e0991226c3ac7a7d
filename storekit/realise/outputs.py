"""Checking what a builder wrote and describing it as `ValidPathInfo`s (Nix 2.8's `registerOutputs`).

For each output: it must exist and not be group- or world-writable; it is made canonical (mtime 1,
read-only, no setuid, owned by the store's user); its NAR is produced once and feeds, in the same pass,
the NAR hash, the reference scanner (hash parts of the input closure and of all the derivation's own
outputs) and, for a recursive fixed output, the content hash. A fixed output must hash to what the
derivation promised. Outputs may refer to each other but not in a cycle; `allowedReferences` and
friends, and structured attributes' `outputChecks`, are enforced as Nix does (`output_checks.py`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

from storekit.errors import BuildError, DependencyCycle, HashMismatch, StoreError
from storekit.frozen import Frozen, _set
from storekit.graph import toposort
from storekit.hashing import Hash, new_hasher
from storekit.nar.fs import dump_path, hash_file
from storekit.realise import output_checks
from storekit.realise.plan import Goal
from storekit.references import HashModuloSink, RefScanSink, hash_modulo
from storekit.store import canonical
from storekit.store.base import Store, ValidPathInfo
from storekit.store.content_address import ContentAddress
from storekit.storepath import FileIngestionMethod, StorePath


class Streamed(Frozen):
    """An output's NAR hash, size and the reference candidates in it, taken by the builder from the
    NAR it restored the output from (builtin:fetchurl's `unpack`), so that it is not dumped again.

    The NAR reader accepts only Nix's canonical grammar (entries sorted, nothing duplicated or
    padded otherwise), so the tree a NAR restores to dumps back to exactly its bytes: the hash of the
    stream is the hash of the output."""

    __slots__ = __match_args__ = ("nar_hash", "nar_size", "found")
    nar_hash: Hash
    nar_size: int
    found: frozenset[str]

    def __init__(self, nar_hash: Hash, nar_size: int, found: frozenset[str]) -> None:
        _set(self, "nar_hash", nar_hash)
        _set(self, "nar_size", nar_size)
        _set(self, "found", found)


def reference_candidates(goal: Goal, closure: set[StorePath]) -> dict[str, StorePath]:
    """What an output may refer to, by hash part: the input closure and the derivation's own outputs."""
    return {p.hash_part: p for p in closure} | {p.hash_part: p for p in goal.outputs.values()}


def collect(
    store: Store,
    goal: Goal,
    built: Mapping[str, str],
    closure: set[StorePath],
    streamed: Mapping[str, Streamed] | None = None,
) -> dict[str, ValidPathInfo]:
    """Check the outputs written at `built` (output name -> host path) and describe them; an output
    in `streamed` is described from what its builder took from the stream it wrote it from."""
    drv_label = str(goal.drv_path)
    candidates = reference_candidates(goal, closure)
    infos = {}
    for name, location in built.items():
        path = goal.outputs[name]
        try:
            st = os.lstat(location)
        except FileNotFoundError:
            raise BuildError(
                drv_label, f"the builder did not produce output path '{path}' for output '{name}'"
            ) from None
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise BuildError(
                drv_label, f"suspicious permissions on output '{name}' ('{path}'): group or world writable"
            )
        try:
            canonical.canonicalise_path(location)
        except StoreError as e:
            raise BuildError(drv_label, f"output '{name}': {e}") from e
        infos[name] = _describe(goal, name, path, location, candidates, (streamed or {}).get(name))
    _check_cycles(goal, infos)
    output_checks.check_outputs(store, goal, infos)
    return infos


def _describe(
    goal: Goal,
    name: str,
    path: StorePath,
    location: str,
    candidates: Mapping[str, StorePath],
    streamed: Streamed | None = None,
) -> ValidPathInfo:
    out = goal.drv.outputs[name]
    recursive = out.is_fixed and out.method is FileIngestionMethod.RECURSIVE
    # A recursive fixed output's content hash is its NAR's hash modulo its own hash part. Where that
    # does not occur (the scanner looks for it: it is a candidate) and the algorithm is sha256, that is
    # the NAR hash itself, so a second hasher runs only for other algorithms or a self-reference.
    modulo = HashModuloSink(path.hash_part, out.algo) if recursive and out.algo != "sha256" else None
    if streamed is not None and modulo is None:
        nar_hash, size, found = streamed.nar_hash, streamed.nar_size, set(streamed.found)
    else:
        hasher = new_hasher("sha256")
        scanner = RefScanSink(candidates)
        size = 0
        for chunk in dump_path(location):
            hasher.update(chunk)
            scanner.feed(chunk)
            if modulo is not None:
                modulo.feed(chunk)
            size += len(chunk)
        nar_hash, found = hasher.finish(), scanner.found
    references = frozenset(candidates[h] for h in found)
    ca = None
    if out.is_fixed:
        if not recursive:
            got = _flat_hash(goal, name, location, out.algo)
        elif modulo is not None:
            got = modulo.finish()[0]
        elif path.hash_part in found:
            got = hash_modulo(dump_path(location), path.hash_part)
        else:
            got = nar_hash
        _check_fixed(goal, path, out.content_hash, got, references)
        ca = str(ContentAddress("fixed", got, out.method))
    return ValidPathInfo(
        path=path,
        nar_hash=nar_hash,
        nar_size=size,
        references=references,
        deriver=goal.drv_path,
        ultimate=True,
        ca=ca,
    )


def _flat_hash(goal: Goal, name: str, location: str, algo: str) -> Hash:
    st = os.lstat(location)
    if not stat.S_ISREG(st.st_mode) or st.st_mode & stat.S_IXUSR:
        raise BuildError(
            str(goal.drv_path),
            f"output '{name}' should be a non-executable regular file since recursive hashing is not "
            "enabled (outputHashMode=flat)",
        )
    return hash_file(location, algo)


def _check_fixed(
    goal: Goal, path: StorePath, wanted: Hash, got: Hash, references: frozenset[StorePath]
) -> None:
    if got != wanted:
        raise HashMismatch(f"fixed-output derivation '{goal.drv_path}'", wanted.sri, got.sri)
    others = sorted(str(r) for r in references if r != path)
    if others:
        raise BuildError(
            str(goal.drv_path),
            f"its fixed output refers to other store paths ({', '.join(others)}); a fixed-output "
            "derivation's result may not depend on what it was built from",
        )


def _check_cycles(goal: Goal, infos: Mapping[str, ValidPathInfo]) -> None:
    """Outputs may reference each other, but Nix refuses a cycle (it could never register them)."""
    by_path = {info.path: name for name, info in infos.items()}
    edges = {
        name: {by_path[r] for r in info.references if r in by_path and r != info.path}
        for name, info in infos.items()
    }
    try:
        toposort(sorted(edges), lambda name: sorted(edges[name]))
    except DependencyCycle as e:
        child, name = e.cycle[0], e.cycle[-2]
        raise BuildError(
            str(goal.drv_path), f"cycle detected in the references of output '{child}' from output '{name}'"
        ) from e
