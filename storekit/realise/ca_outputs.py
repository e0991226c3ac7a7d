"""The outputs of a floating content-addressed build: from a scratch path to the path their content names.

Nix 2.8's `registerOutputs` for `CAFloating` outputs: the builder writes each output at a *scratch*
path (`makeStorePath("rewrite:<drv>:name:<output>", sha256 of nothing zeroed, <name>)`), since the real
path depends on what it writes. Afterwards, outputs are taken in dependency order: references to the
outputs already finished are rewritten to their final hash parts, the NAR is hashed *modulo* the
output's own scratch hash part (a self-reference does not change the address), the final path is
made from that hash, the name and the references (`source` path, self-reference flagged), and the
scratch hash part is rewritten to the final one in a fresh copy, whose NAR hash is registered. The
content address is `fixed:r:sha256:<hash modulo>`, so real Nix can verify the path like any other
content-addressed one.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

from storekit.derivation.model import Derivation
from storekit.errors import BuildError, DependencyCycle, StoreError
from storekit.frozen import Frozen
from storekit.graph import toposort
from storekit.hashing import Hash
from storekit.nar.fs import dump_path, hash_file, hash_path
from storekit.references import HashModuloSink, RefScanSink, rewrite_stream
from storekit.store import canonical
from storekit.store.base import ValidPathInfo
from storekit.store.content_address import ContentAddress
from storekit.storepath import FileIngestionMethod, StoreDir, StorePath, output_path_name

ZERO_SHA256 = Hash("sha256", bytes(32))


def scratch_path(store_dir: StoreDir, drv_path: StorePath, drv_name: str, output: str) -> StorePath:
    """Nix's `makeFallbackPath(outputName)`: where the builder writes an output of unknown path."""
    return store_dir.make_store_path(
        f"rewrite:{drv_path.base_name}:name:{output}", ZERO_SHA256, output_path_name(drv_name, output)
    )


class Finished(Frozen):
    """One output at its final path: `location` holds the rewritten tree, `info` describes it."""

    __slots__ = ("info", "location", "name")
    __match_args__ = ("name", "location", "info")
    name: str
    location: str
    info: ValidPathInfo

    def __init__(self, name: str, location: str, info: ValidPathInfo) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "location", location)
        object.__setattr__(self, "info", info)


def finish_outputs(
    drv_path: StorePath,
    drv: Derivation,
    scratch: Mapping[str, StorePath],
    built: Mapping[str, str],
    closure: set[StorePath],
    stage: str,
) -> list[Finished]:
    """Check, canonicalise and address every output written at `built` (name -> host path)."""
    label = str(drv_path)
    candidates = {p.hash_part: p for p in closure} | {p.hash_part: p for p in scratch.values()}
    refs: dict[str, frozenset[StorePath]] = {}
    sizes: dict[str, int] = {}
    for name, location in built.items():
        _check_output(label, name, location)
        try:
            canonical.canonicalise_path(location)
        except StoreError as e:
            raise BuildError(label, f"output '{name}': {e}") from e
        scanner = RefScanSink(candidates)
        size = 0
        for chunk in dump_path(location):
            scanner.feed(chunk)
            size += len(chunk)
        refs[name] = frozenset(candidates[h] for h in scanner.found)
        sizes[name] = size
    by_scratch = {p: n for n, p in scratch.items()}
    order = _order(label, refs, by_scratch)
    rewrites: dict[str, str] = {}
    finals: dict[StorePath, StorePath] = {}
    done = []
    for name in order:
        out = drv.outputs[name]
        old = scratch[name]
        got = _content_hash(label, name, built[name], out.method, out.algo, old.hash_part, rewrites)
        others = frozenset(finals.get(r, r) for r in refs[name] if r != old)
        self_ref = old in refs[name]
        final = drv_path.store_dir.make_fixed_output_path(
            output_path_name(drv.name, name), out.method, got, others, self_ref=self_ref
        )
        rewrites[old.hash_part] = final.hash_part
        finals[old] = final
        location = os.path.join(stage, f"final-{name}")
        if any(r in by_scratch for r in refs[name]):
            nar_hash, size = _rewritten_copy(built[name], location, rewrites)
        else:  # no scratch path in it, so nothing to rewrite: the tree moves as it is
            os.rename(built[name], location)
            recursive_sha256 = out.method is FileIngestionMethod.RECURSIVE and out.algo == "sha256"
            nar_hash = got if recursive_sha256 else hash_path(location)[0]  # `got`: the NAR, unchanged
            size = sizes[name]
        references = others | ({final} if self_ref else frozenset())
        ca = str(ContentAddress("fixed", got, out.method))
        info = ValidPathInfo(final, nar_hash, size, references, deriver=drv_path, ultimate=True, ca=ca)
        done.append(Finished(name, location, info))
    return done


def _check_output(label: str, name: str, location: str) -> None:
    try:
        st = os.lstat(location)
    except FileNotFoundError:
        raise BuildError(label, f"the builder did not produce an output for output '{name}'") from None
    if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise BuildError(label, f"suspicious permissions on output '{name}': group or world writable")


def _order(
    label: str, refs: Mapping[str, frozenset[StorePath]], by_scratch: Mapping[StorePath, str]
) -> list[str]:
    """Outputs before the outputs referring to them (Nix refuses a cycle among them)."""
    edges = {n: sorted({by_scratch[r] for r in rs if r in by_scratch} - {n}) for n, rs in refs.items()}
    try:
        return list(toposort(sorted(edges), lambda n: edges[n]))
    except DependencyCycle as e:
        raise BuildError(label, f"cycle detected in the references of output '{e.cycle[0]}'") from e


def _content_hash(
    label: str,
    name: str,
    location: str,
    method: FileIngestionMethod,
    algo: str,
    modulus: str,
    rewrites: Mapping[str, str],
) -> Hash:
    if method is FileIngestionMethod.FLAT:
        st = os.lstat(location)
        if not stat.S_ISREG(st.st_mode) or st.st_mode & stat.S_IXUSR:
            raise BuildError(
                label,
                f"output '{name}' should be a non-executable regular file since recursive hashing is "
                "not enabled (outputHashMode=flat)",
            )
        return hash_file(location, algo)
    sink = HashModuloSink(modulus, algo)
    for chunk in rewrite_stream(dump_path(location), rewrites):
        sink.feed(chunk)
    return sink.finish()[0]


def _rewritten_copy(src: str, dest: str, rewrites: Mapping[str, str]) -> tuple[Hash, int]:
    """`src` restored at `dest` with hash parts rewritten (same length), hashing the new NAR."""
    from storekit.nar.restore import restore  # here: most outputs name no scratch path, and move
    from storekit.store.streams import ChunkReader, HashingReader

    reader = HashingReader(ChunkReader(rewrite_stream(dump_path(src), rewrites)))
    restore(reader, dest)
    canonical.canonicalise_path(dest)
    return reader.finish()
