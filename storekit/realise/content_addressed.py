"""Building derivations whose output paths are known only after building (Nix 2.8's `ca-derivations`).

A floating content-addressed derivation, or an input-addressed one *deferred* because it uses one,
goes like Nix's `DerivationGoal`: its outputs are looked up as realisations under its hash modulo
(`DrvOutput` `sha256:<hex>!<output>`); if missing, it is *resolved* against its realised inputs
(`resolve`), the resolved `.drv` is written to the store, and if the resolved derivation already has
realisations for its outputs nothing is built (the early cutoff: an input was rebuilt but came out
the same). Otherwise the resolved derivation is built: a deferred one like any input-addressed
derivation, a floating one at scratch paths that `ca_outputs` turns into content-addressed paths.
Realisations are then registered for the resolved derivation and for the original one, the latter
with the realisations of inputs its outputs refer to (`dependentRealisations`), as Nix records them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Mapping

from storekit.derivation.aterm import print_aterm
from storekit.derivation.fs import read_derivation
from storekit.derivation.hashing import ModuloHasher, hash_placeholder
from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import BuildError, PathNotValid
from storekit.realise import runner
from storekit.realise.logs import log_path
from storekit.realise.plan import Action, Goal
from storekit.realise.resolve import needs_resolution, resolve, rewrite_derivation
from storekit.store import canonical
from storekit.store.base import Store, ValidPathInfo
from storekit.store.local import LocalStore
from storekit.store.lock import path_lock
from storekit.storepath import StorePath

TYPE_CHECKING = False  # no `typing` at run time: a plain build imports this module (start-up)
if TYPE_CHECKING:  # every build plans through `Realised`; what only CA builds and substitution use is
    # imported where they happen (realisations, signatures, the transfer layer, the CA output rewriter)
    from storekit.realisation import DrvOutput, Realisation
    from storekit.realise.ca_outputs import Finished
    from storekit.store.substituters import SignaturePolicy


def modulo_hasher(store: LocalStore) -> ModuloHasher:
    """`hashDerivationModulo` over `.drv` files of `store` (read from its real dir). Its `lookup`
    remembers what it read: a valid `.drv` does not change, and a CA build reads its inputs' again
    (to resolve it, then to register its realisations)."""
    read: dict[str, Derivation] = {}

    def lookup(drv_path: str) -> Derivation:
        found = read.get(drv_path)
        if found is None:
            path = store.store_dir.parse_path(drv_path)
            if not store.is_valid_path(path):
                raise PathNotValid(drv_path, store.uri)
            found = read[drv_path] = read_derivation(store.real_path(path))
        return found

    return ModuloHasher(store.store_dir, lookup)


def drv_outputs(hasher: ModuloHasher, drv: Derivation, name: str) -> dict[str, DrvOutput]:
    """Nix's `staticOutputHashes` as `DrvOutput` keys, one per output."""
    from storekit.realisation import DrvOutput

    hashes = hasher.hash(drv, name, mask_outputs=True).hashes
    return {o: DrvOutput(o, f"{h.algo}:{h.base16}") for o, h in hashes.items()}


def realised_outputs(
    store: LocalStore, drv_path: StorePath, drv: Derivation, hasher: ModuloHasher | None = None
) -> dict[str, StorePath]:
    """The outputs of `drv` whose paths are known and valid: from the `.drv` or from realisations."""
    found = {n: store.store_dir.parse_path(o.path) for n, o in drv.outputs.items() if o.path}
    if len(found) < len(drv.outputs):
        keys = drv_outputs(hasher or modulo_hasher(store), drv, drv_path.name.removesuffix(".drv"))
        for name, key in keys.items():
            r = store.query_realisation(key)
            if name not in found and r is not None:
                found[name] = r.out_path
    return {n: p for n, p in found.items() if store.is_valid_path(p)}


def needs_realisations(store: LocalStore, drv: Derivation) -> bool:
    """Whether `drv` must go through `build_content_addressed`: its own output paths are unknown, or
    (a fixed-output derivation) an input's are, so it has to be resolved before it can be built."""
    if needs_resolution(drv):
        return True
    read = modulo_hasher(store).lookup
    return drv.is_fixed_output and any(not o.path for p in drv.input_drvs for o in read(p).outputs.values())


class Realised:
    """The planner's view of content-addressed outputs: this store's realisations, else a trusted one
    a substituter has (its path is then substituted like any other, and the realisation registered)."""

    def __init__(
        self, store: LocalStore, substituters: Store | None = None, policy: SignaturePolicy | None = None
    ) -> None:
        self.store = store
        self.substituters = substituters
        self.policy = policy
        self.fetched: dict[StorePath, list[Realisation]] = {}
        self.hasher = modulo_hasher(store)  # one memo of hashes modulo for the whole plan

    def __call__(self, drv_path: StorePath, drv: Derivation) -> dict[str, StorePath]:
        found = realised_outputs(self.store, drv_path, drv, self.hasher)
        if self.substituters is None or len(found) == len(drv.outputs):
            return found
        from storekit.transfer.realisations import fetch_realisation

        keys = drv_outputs(self.hasher, drv, drv_path.name.removesuffix(".drv"))
        for name, key in keys.items():
            r = None if name in found else fetch_realisation(self.substituters, key, self.policy)
            if r is not None:
                self.fetched.setdefault(drv_path, []).append(r)
                found[name] = r.out_path
        return found

    def register(self, drv_path: StorePath) -> None:
        """After the outputs of `drv_path` were substituted: record how they were found."""
        assert self.substituters is not None or drv_path not in self.fetched
        from storekit.transfer.realisations import register_fetched

        for r in self.fetched.pop(drv_path, []):
            if self.substituters is not None and self.store.is_valid_path(r.out_path):
                register_fetched(self.store, self.substituters, r, self.policy)


def build_content_addressed(
    store: LocalStore,
    goal: Goal,
    options: runner.BuildOptions,
    *,
    cancel: threading.Event | None = None,
    on_log: runner.LogSink | None = None,
    hasher: ModuloHasher | None = None,
) -> runner.BuildResult:
    """Resolve `goal`, build the resolved derivation unless it is realised already, register realisations.

    `hasher` is the run's memo of hashes modulo (`Realised.hasher`): a `.drv` does not change, and
    without it each derivation of a chain hashed every one below it again."""
    from storekit.realisation import Realisation

    started = time.monotonic()
    hasher = hasher or modulo_hasher(store)
    name = goal.name
    drv_path, drv = goal.drv_path, goal.drv
    if drv.input_drvs:
        inputs = _realised_inputs(store, drv, hasher)
        drv = resolve(drv, inputs, hasher)
        refs = [store.store_dir.parse_path(p) for p in drv.input_srcs]
        drv_path = store.add_text(f"{name}.drv", print_aterm(drv).encode("utf-8", "surrogateescape"), refs)
    keys = drv_outputs(hasher, drv, name)
    outputs = _cutoff(store, keys)
    registered: tuple[ValidPathInfo, ...] = ()
    if outputs is None:
        if all(o.path for o in drv.outputs.values()):
            paths = {n: store.store_dir.parse_path(o.path) for n, o in drv.outputs.items()}
            wanted = frozenset(paths)
            sub = Goal(drv_path, drv, paths, wanted, wanted, Action.BUILD)
            registered = runner.build_derivation(store, sub, options, cancel=cancel, on_log=on_log).registered
            outputs = paths
            for output, path in outputs.items():
                store.register_realisation(Realisation(path, id=keys[output]))
        else:  # registers the realisations itself, under the scratch paths' locks
            outputs, registered = _build_floating(store, drv_path, drv, keys, options, cancel, on_log)
    if drv_path != goal.drv_path:
        _register_original(store, hasher, goal, outputs)
    log_file = log_path(store.spec.log_dir, drv_path)
    return runner.BuildResult(goal.drv_path, outputs, registered, log_file, time.monotonic() - started)


def _cutoff(store: LocalStore, keys: Mapping[str, DrvOutput]) -> dict[str, StorePath] | None:
    """Every output's path if the (resolved) derivation is realised and valid already, else None."""
    found = {}
    for output, key in keys.items():
        r = store.query_realisation(key)
        if r is None or not store.is_valid_path(r.out_path):
            return None
        found[output] = r.out_path
    return found


def _realised_inputs(
    store: LocalStore, drv: Derivation, hasher: ModuloHasher
) -> dict[tuple[str, str], StorePath]:
    found = {}
    for input_drv, outputs in drv.input_drvs.items():
        path = store.store_dir.parse_path(input_drv)
        known = realised_outputs(store, path, hasher.lookup(input_drv), hasher)
        for output in outputs:
            if output not in known:
                raise BuildError(drv.name, f"output '{output}' of its input '{input_drv}' is not built")
            found[(input_drv, output)] = known[output]
    return found


def _register_original(
    store: LocalStore, hasher: ModuloHasher, goal: Goal, outputs: Mapping[str, StorePath]
) -> None:
    """The unresolved derivation's realisations, with the input realisations its outputs refer to."""
    from storekit.realisation import Realisation

    inputs: list[Realisation] = []
    for input_drv, names in goal.drv.input_drvs.items():
        input_path = store.store_dir.parse_path(input_drv)
        keys = drv_outputs(hasher, hasher.lookup(input_drv), input_path.name.removesuffix(".drv"))
        known = realised_outputs(store, input_path, hasher.lookup(input_drv), hasher)
        for output in names:
            r = store.query_realisation(keys[output])
            if r is None:  # an input-addressed input built without realisations: Nix records it now
                r = Realisation(known[output], id=keys[output])
                store.register_realisation(r)
            inputs.append(r)
    closure = store.realisation_closure(r.id for r in inputs if r.id is not None)
    keys = drv_outputs(hasher, goal.drv, goal.name)
    for output, path in outputs.items():
        refs = store.query_references(path)
        dependent = {str(r.id): r.out_path for r in closure if r.out_path in refs}
        store.register_realisation(Realisation(path, id=keys[output], dependent=dependent))


def _build_floating(
    store: LocalStore,
    drv_path: StorePath,
    drv: Derivation,
    keys: Mapping[str, DrvOutput],
    options: runner.BuildOptions,
    cancel: threading.Event | None,
    on_log: runner.LogSink | None,
) -> tuple[dict[str, StorePath], tuple[ValidPathInfo, ...]]:
    """Build at scratch paths (placeholders rewritten to them), then move to content-addressed paths.

    The scratch paths' locks make a second process building the same derivation wait; it then finds
    the realisations the first registered (under the locks) and builds nothing."""
    from storekit.realisation import Realisation
    from storekit.realise.ca_outputs import finish_outputs, scratch_path

    name = drv.name
    scratch = {o: scratch_path(store.store_dir, drv_path, name, o) for o in drv.outputs}
    placeholders = {hash_placeholder(o): str(p) for o, p in scratch.items()}
    scratch_drv = rewrite_derivation(drv, placeholders)
    scratch_drv = Derivation(
        outputs={o: DerivationOutput(str(p)) for o, p in scratch.items()},
        input_srcs=scratch_drv.input_srcs,
        system=scratch_drv.system,
        builder=scratch_drv.builder,
        args=scratch_drv.args,
        env=scratch_drv.env,
    )
    wanted = frozenset(scratch)
    goal = Goal(drv_path, scratch_drv, scratch, wanted, wanted, Action.BUILD)
    runner._check_buildable(goal, options)
    log_file = log_path(store.spec.log_dir, drv_path)
    with contextlib.ExitStack() as locks:
        for path in sorted(scratch.values()):
            locks.enter_context(path_lock(store.real_path(path)))
        done = _cutoff(store, keys)
        if done is not None:
            return done, ()
        closure = runner.input_closure(store, goal)
        runner.check_builder(goal, closure, options)
        with store.staging() as stage:
            built = runner.output_locations(store, goal, stage, options)
            try:
                runner.run_builder(store, goal, closure, stage, log_file, options, cancel, on_log)
                built = runner.fresh_copies(goal, stage, built, options)
                finished = finish_outputs(drv_path, drv, scratch, built, closure, stage)
                result = _install(store, finished)
                for output, path in result[0].items():
                    store.register_realisation(Realisation(path, id=keys[output]))
            except BaseException:
                runner._discard(store, goal, built, stage, options)
                raise
            if not options.sandbox:  # the builder wrote at the scratch paths themselves
                for location in built.values():
                    canonical.delete_path(location)
            return result


def _install(
    store: LocalStore, finished: list[Finished]
) -> tuple[dict[str, StorePath], tuple[ValidPathInfo, ...]]:
    """Move each output to its final path and register it, unless that path is valid already (the
    same content built before: Nix keeps the existing copy)."""
    outputs = {}
    new = []
    for f in finished:
        outputs[f.name] = f.info.path
        real = store.real_path(f.info.path)
        with path_lock(real):
            store.add_temp_root(f.info.path)
            if store.is_valid_path(f.info.path):
                continue
            if os.path.lexists(real):
                canonical.delete_path(real)  # an unregistered leftover of a killed build
            canonical.make_movable(f.location)
            os.rename(f.location, real)
            store.register_valid_paths([f.info])
            new.append(f.info)
    return outputs, tuple(new)
