"""What a relocation will do, decided before any byte is read: the order, the modes, the new names.

A closure moves in topological order, references first, so that each path's new name is known
before any referrer is rewritten. In `keep-hash` mode the new name is known at once (same hash part
and name, new store dir). In `content-addressed` mode it follows from the rewritten contents, as in
Nix's make-content-addressed: the NAR with every reference already renamed is hashed modulo the
path's own old hash part, and that hash names the path as a recursive sha256 fixed output under the
new store dir (`source:<refs>[:self]`), so real Nix trusts it without a signature.

Everything here is pure: infos in, names and rules out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from storekit.errors import DependencyCycle, RelocationError
from storekit.graph import toposort
from storekit.hashing import Hash
from storekit.relocate.rules import Rules
from storekit.store.base import ValidPathInfo
from storekit.store.content_address import ContentAddress
from storekit.storepath import FileIngestionMethod, StoreDir, StorePath


class Mode(Enum):
    KEEP_HASH = "keep-hash"
    CONTENT_ADDRESSED = "content-addressed"


@dataclass(frozen=True, slots=True)
class Plan:
    """The closure to move, references first, between two store dirs."""

    old_dir: StoreDir
    new_dir: StoreDir
    mode: Mode
    order: tuple[StorePath, ...]
    infos: Mapping[StorePath, ValidPathInfo]

    @property
    def total_nar_size(self) -> int:
        return sum(self.infos[p].nar_size for p in self.order)


def check_store_dirs(old: StoreDir, new: StoreDir, mode: Mode) -> None:
    """Refuse nested store dirs (a rewrite between them would rewrite its own output), and keep-hash
    within one store dir (nothing would change). Content-addressed within one store dir is Nix's
    `nix store make-content-addressed`, to the byte."""
    if old == new and mode is Mode.KEEP_HASH:
        raise RelocationError(
            f"source and destination share the store dir '{old}': keep-hash has nothing to rewrite "
            "(use a plain copy, or --mode content-addressed)"
        )
    a, b = old.path, new.path
    if b.startswith(a + "/") or a.startswith(b + "/"):
        raise RelocationError(
            f"store dirs '{a}' and '{b}' are nested: relocating between them is ambiguous; "
            "pick store dirs that do not contain each other"
        )


def make_plan(
    old_dir: StoreDir, new_dir: StoreDir, mode: Mode, infos: Mapping[StorePath, ValidPathInfo]
) -> Plan:
    """The plan for moving `infos` (a whole closure: every reference is among them)."""
    check_store_dirs(old_dir, new_dir, mode)
    for path, info in infos.items():
        if path.is_derivation:
            raise RelocationError(
                f"'{path}' is a derivation: its output paths are computed from the store dir, so it "
                "cannot be relocated; evaluate it again for the new store dir instead"
            )
        missing = sorted(str(r) for r in info.references if r not in infos)
        if missing:
            raise RelocationError(f"the closure of '{path}' is incomplete: missing {', '.join(missing)}")
    return Plan(old_dir, new_dir, mode, tuple(references_first(infos)), dict(infos))


def references_first(infos: Mapping[StorePath, ValidPathInfo]) -> list[StorePath]:
    """Every path after all of its references (self-references aside); ties broken by path."""
    try:
        return toposort(sorted(infos), lambda path: sorted(infos[path].references - {path}))
    except DependencyCycle as e:
        child, node = e.cycle[0], e.cycle[-2]
        raise RelocationError(f"cycle in the references of '{child}' (reached from '{node}')") from e


def keep_hash_path(path: StorePath, new_dir: StoreDir) -> StorePath:
    return StorePath(new_dir, path.hash_part, path.name)


def rules_for(plan: Plan, path: StorePath, renamed: Mapping[StorePath, StorePath], *, unsafe: bool) -> Rules:
    """What to rewrite in `path`: the store dir always; in content-addressed mode also the hash
    parts of its references (already renamed). Its own hash part stays until its new name is known."""
    hash_parts: dict[bytes, bytes] = {}
    if plan.mode is Mode.CONTENT_ADDRESSED:
        for ref in plan.infos[path].references:
            if ref != path and renamed[ref].hash_part != ref.hash_part:
                hash_parts[ref.hash_part.encode()] = renamed[ref].hash_part.encode()
    return Rules(plan.old_dir.path.encode(), plan.new_dir.path.encode(), hash_parts, unsafe)


def content_addressed_path(
    plan: Plan, path: StorePath, renamed: Mapping[StorePath, StorePath], modulo: Hash
) -> StorePath:
    """Nix's make-content-addressed name: `modulo` is the rewritten NAR's hash modulo the old hash part."""
    info = plan.infos[path]
    refs = [renamed[r] for r in info.references if r != path]
    return plan.new_dir.make_fixed_output_path(
        path.name, FileIngestionMethod.RECURSIVE, modulo, refs, self_ref=path in info.references
    )


def new_info(
    plan: Plan,
    path: StorePath,
    new_path: StorePath,
    renamed: Mapping[StorePath, StorePath],
    nar_hash: Hash,
    nar_size: int,
    modulo: Hash | None,
) -> ValidPathInfo:
    """The metadata of the relocated path.

    Signatures are dropped (they sign the old name). keep-hash keeps the deriver's hash part under
    the new store dir and marks the path ultimate (made here, like a local build); content-addressed
    drops the deriver (no derivation produces the new name) and records the content address instead.
    """
    old = plan.infos[path]
    refs = frozenset(new_path if r == path else renamed[r] for r in old.references)
    base = old.replace(path=new_path, nar_hash=nar_hash, nar_size=nar_size, references=refs, sigs=frozenset())
    if plan.mode is Mode.KEEP_HASH:
        deriver = None if old.deriver is None else keep_hash_path(old.deriver, plan.new_dir)
        return base.replace(deriver=deriver, ca=None, ultimate=True, registration_time=0)
    assert modulo is not None
    ca = str(ContentAddress("fixed", modulo, FileIngestionMethod.RECURSIVE))
    return base.replace(deriver=None, ca=ca, ultimate=False, registration_time=0)
