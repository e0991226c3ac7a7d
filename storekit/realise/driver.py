"""`storekit build` as a workflow: plan against a local store, substitute what substituters have, build
the rest in the sandbox, in dependency order and in parallel.

This is the one place that binds the pure planner and the scheduler to a store: derivations are read
from the store, validity is the store's, substitutability is "a substituter has it and its signature is
trusted" (`store.substituters`, `store.copy`), and each goal is done by `runner.build_derivation` or
`copy_closure`. A substitution that fails anyway (a cache went away, a NAR is damaged) falls back to
building that derivation, as Nix does.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence

from storekit.errors import StorekitError
from storekit.frozen import Frozen
from storekit.progress import Progress
from storekit.realise.builddir import reclaim
from storekit.realise.content_addressed import Realised, build_content_addressed, needs_realisations
from storekit.realise.plan import BuildPlan, Goal, make_plan
from storekit.realise.runner import BuildOptions, BuildResult, LogSink, build_derivation
from storekit.realise.scheduler import OnFinish, Report, run_plan
from storekit.realise.valid import Target, derivation_reader
from storekit.store.base import ValidPathInfo
from storekit.store.deferred import deferred_deletions
from storekit.store.local import LocalStore
from storekit.storepath import StorePath

TYPE_CHECKING = False  # no `typing` at run time: a plain build imports this module (start-up)
if TYPE_CHECKING:  # substitution and remote builders: imported when a build uses them (start-up)
    from storekit.derivation.hashing import ModuloHasher
    from storekit.realise.hook import BuildHook
    from storekit.store.substituters import SignaturePolicy, Substituters

__all__ = ["Sources", "Target", "build", "build_goal", "derivation_reader", "plan_build"]


_set = object.__setattr__


class Sources(Frozen):
    """Where missing paths may be substituted from, and which of them to believe."""

    __slots__ = ("policy", "substituters")
    __match_args__ = ("substituters", "policy")
    substituters: Substituters
    policy: SignaturePolicy | None

    def __init__(
        self,
        substituters: Substituters,
        policy: SignaturePolicy | None = None,
    ) -> None:
        _set(self, "substituters", substituters)
        _set(self, "policy", policy)

    def trusted_info(self, path: StorePath) -> ValidPathInfo | None:
        info = self.substituters.lookup_path_info(path)
        if info is None:
            return None
        from storekit.store.substituters import SignaturePolicy, is_untrusted_source

        policy = self.policy or SignaturePolicy(require_sigs=is_untrusted_source(self.substituters))
        return info if policy.is_trusted(info, self.substituters.store_dir) else None


def plan_build(
    store: LocalStore,
    targets: Sequence[Target],
    sources: Sources | None = None,
    realised: Realised | None = None,
) -> BuildPlan:
    """What `build` would do, without doing it (`storekit build --dry-run`)."""
    substitutable = None
    if sources is not None:

        def substitutable(paths: Collection[StorePath]) -> set[StorePath]:
            return {p for p in paths if sources.trusted_info(p) is not None}

    realised = realised or _realised(store, sources)
    return make_plan(
        targets, store.store_dir, derivation_reader(store), store.is_valid_path, substitutable, realised
    )


def _realised(store: LocalStore, sources: Sources | None) -> Realised:
    if sources is None:
        return Realised(store)
    from storekit.store.substituters import SignaturePolicy, is_untrusted_source

    policy = sources.policy or SignaturePolicy(require_sigs=is_untrusted_source(sources.substituters))
    return Realised(store, sources.substituters, policy)


def build_goal(
    store: LocalStore,
    goal: Goal,
    options: BuildOptions,
    cancel: threading.Event | None = None,
    on_log: LogSink | None = None,
    hasher: ModuloHasher | None = None,
) -> BuildResult:
    """One derivation: content-addressed (and deferred) ones are resolved first (`content_addressed`),
    with the run's memo of hashes modulo when there is one (`hasher`)."""
    if needs_realisations(store, goal.drv):
        return build_content_addressed(store, goal, options, cancel=cancel, on_log=on_log, hasher=hasher)
    return build_derivation(store, goal, options, cancel=cancel, on_log=on_log)


def build(
    store: LocalStore,
    targets: Sequence[Target],
    options: BuildOptions,
    *,
    jobs: int = 1,
    keep_going: bool = False,
    sources: Sources | None = None,
    progress: Progress | None = None,
    on_finish: OnFinish | None = None,
    on_log: LogSink | None = None,
    hook: BuildHook | None = None,
) -> tuple[BuildPlan, Report]:
    """Make the wanted outputs of `targets` valid in `store`; see `Report.error()` for failures.

    With a `hook` (remote builders), each derivation goes where the hook says (`realise.hook`), and
    `jobs` (which may then be 0) counts the local builds only.
    """
    reclaim(options.tmp_dir)  # build dirs of builds that were killed (kill -9) before they cleaned up
    realised = _realised(store, sources)
    plan = plan_build(store, targets, sources, realised)
    if sources is not None and plan.sources:
        from storekit.transfer.copy import copy_closure

        copy_closure(sources.substituters, store, sorted(plan.sources), policy=sources.policy)

    def build_here(goal: Goal, cancel: threading.Event) -> BuildResult:
        return build_goal(store, goal, options, cancel, on_log, realised.hasher)

    do_build = build_here
    if hook is not None:
        from storekit.realise.hook import LocalSlots, build_somewhere

        slots, remote = LocalSlots(jobs), hook
        jobs = max(1, jobs) + hook.slots

        def do_build(goal: Goal, cancel: threading.Event) -> BuildResult:
            if needs_realisations(store, goal.drv):  # resolved here first; remote CA builds: not yet
                return build_here(goal, cancel)
            return build_somewhere(goal, cancel, remote, slots, build_here, on_log)

    def do_substitute(goal: Goal, cancel: threading.Event) -> BuildResult | None:
        assert sources is not None
        from storekit.transfer.copy import copy_closure

        wanted = sorted(goal.outputs[o] for o in goal.missing)
        try:
            copy_closure(sources.substituters, store, wanted, policy=sources.policy)
            realised.register(goal.drv_path)
            return None
        except StorekitError:
            return _build_instead(store, goal, options, cancel, on_log)

    with deferred_deletions():  # build and staging dirs go in the background: a chain waits less
        report = run_plan(
            plan,
            build=do_build,
            substitute=do_substitute if sources is not None else None,
            jobs=jobs,
            keep_going=keep_going,
            progress=progress,
            on_finish=on_finish,
        )
    return plan, report


def _build_instead(
    store: LocalStore,
    goal: Goal,
    options: BuildOptions,
    cancel: threading.Event,
    on_log: LogSink | None,
) -> BuildResult | None:
    """Nix's fallback: a substitution failed, so build the derivation (and what it needs) here.

    Returns the build of the goal's own derivation (None if it turned out valid meanwhile).
    """
    plan = plan_build(store, [(goal.drv_path, goal.wanted)])
    results = [build_goal(store, g, options, cancel, on_log) for g in plan.todo]
    return next((r for r in results if r.drv_path == goal.drv_path), None)
