"""Remote builders (`storekit build --builders SPEC`): the `realise.hook.BuildHook` that sends
derivations to other machines over ssh, as Nix 2.8's `build-remote` does.

Per derivation: pick, among the enabled machines whose systems and features fit, the one with a free
slot and the lowest load per speed factor (ties: the faster, then the less loaded); connect; copy the
input closure there (one upload at a time per machine, as Nix's upload lock); send the derivation as
a basic derivation whose input sources are that closure (`BuildDerivation`), with the far side's
stderr (its build log) going to the user and to the local log file as it comes; then copy the outputs
back, each checked against the NAR hash the far side reports. A machine that cannot be reached is
disabled for the rest of the run and said once; its derivations are built elsewhere, or here.

Each machine has `max-jobs` slots, and its `SshStore` as many connections, so a slot's copies and
build never wait for another slot's.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from storekit.derivation.fs import read_derivation
from storekit.errors import BuildError, RemoteError, StorekitError
from storekit.realise.hook import Answer
from storekit.realise.logs import LogWriter, log_path
from storekit.realise.plan import Goal
from storekit.realise.runner import BuildOptions, BuildResult, LogSink
from storekit.remote.machines import Machine
from storekit.remote.store import SshStore, open_ssh_store, plain
from storekit.store.local import LocalStore
from storekit.storepath import StorePath
from storekit.transfer.copy import copy_closure
from storekit.wire import values as wire

Warn = Callable[[str], None]
#: How long a postponed derivation waits for a slot before the scheduler asks again.
POSTPONE_WAIT = 0.5


class _Slots:
    """One machine's state in this run: its store (opened on first use), busy slots, enabled."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.busy = 0
        self.enabled = True
        self.store: SshStore | None = None
        self.upload = threading.Lock()


class RemoteBuilders:
    """The machines of `--builders`, as a `BuildHook` for `realise.driver.build`."""

    def __init__(
        self, machines: Sequence[Machine], store: LocalStore, options: BuildOptions, *,
        sshopts: str = "", warn: Warn | None = None,
    ) -> None:  # fmt: skip
        for m in machines:
            if not m.store_uri.startswith("ssh://"):
                raise StorekitError(f"builder '{m.store_uri}': storekit builds remotely over ssh:// only")
        self.local, self.options, self.sshopts = store, options, sshopts
        self.warn = warn or (lambda message: None)
        self._machines = [_Slots(m) for m in machines]
        self._cond = threading.Condition()

    @property
    def slots(self) -> int:
        return sum(m.machine.max_jobs for m in self._machines)

    def close(self) -> None:
        for m in self._machines:
            if m.store is not None:
                m.store.close()

    def fell_back(self, goal: Goal) -> bool:
        fits = [m for m in self._machines if self._fits(m.machine, goal)]
        return bool(fits) and not any(m.enabled for m in fits)

    def try_build(
        self, goal: Goal, cancel: threading.Event, on_log: LogSink | None, *, willing: bool
    ) -> Answer:
        while not cancel.is_set():
            with self._cond:
                chosen, right_type = self._choose(goal)
                if chosen is None:
                    if right_type and not willing:
                        self._cond.wait(POSTPONE_WAIT)
                        return "postpone"
                    return "decline"
                chosen.busy += 1
            try:
                store = self._connect(chosen)
                if store is None:
                    continue
                return self._build_on(chosen, store, goal, cancel, on_log)
            finally:
                with self._cond:
                    chosen.busy -= 1
                    self._cond.notify_all()
        raise BuildError(str(goal.drv_path), "cancelled")

    # --- choosing and connecting ------------------------------------------------------------------------

    def _fits(self, machine: Machine, goal: Goal) -> bool:
        features = goal.drv.env.get("requiredSystemFeatures", "").split()
        return machine.can_build(goal.drv.system, features)

    def _choose(self, goal: Goal) -> tuple[_Slots | None, bool]:
        """Nix's pick: the free machine with the lowest load per speed; and whether any fits at all."""
        best: _Slots | None = None
        right_type = False
        for m in self._machines:
            if not m.enabled or not self._fits(m.machine, goal):
                continue
            right_type = True
            if m.busy >= m.machine.max_jobs:
                continue
            if best is None or _rank(m) < _rank(best):
                best = m
        return best, right_type

    def _connect(self, m: _Slots) -> SshStore | None:
        """The machine's store, connected; None (and the machine disabled, said once) if unreachable."""
        try:
            with m.upload:
                if m.store is None:
                    uri, jobs = m.machine.with_params(), m.machine.max_jobs
                    m.store = open_ssh_store(uri, self.local.store_dir, self.sshopts, max_connections=jobs)
                m.store.connect()
            return m.store
        except StorekitError as e:
            with self._cond:
                if m.enabled:
                    m.enabled = False
                    self.warn(f"cannot build on '{m.machine.store_uri}': {e}; not using it for this run")
                self._cond.notify_all()
            return None

    # --- one build --------------------------------------------------------------------------------------

    def _build_on(
        self, m: _Slots, store: SshStore, goal: Goal, cancel: threading.Event, on_log: LogSink | None
    ) -> BuildResult:
        started = time.monotonic()
        drv_path = goal.drv_path
        inputs = self.local.closure(self._input_paths(goal))
        uri = m.machine.store_uri
        with m.upload, _as_build_error(drv_path, f"copying its inputs to '{uri}'"):
            copy_closure(self.local, store, sorted(inputs))
        drv = goal.drv
        if drv.input_drvs:
            drv = drv.replace(input_drvs={}, input_srcs=tuple(sorted(map(str, inputs))))
        log = LogWriter(log_path(self.local.spec.log_dir, drv_path))

        def relay(data: bytes) -> None:
            log.write(data)
            if on_log is not None:
                on_log(drv_path, data)

        timeout = self.options.timeout
        options = wire.BuildOptions(
            max_silent_time=0,
            build_timeout=math.ceil(timeout) if timeout else 0,
            keep_failed=self.options.keep_failed,
        )
        try:
            with _cancelling(cancel, store):
                result = store.build_derivation(drv_path, drv, options, on_log=relay, timeout=timeout)
        except RemoteError as e:
            raise BuildError(str(drv_path), str(e), log.tail()) from e
        finally:
            log.close()
        if not result.status.success:
            said = plain(result.error_msg)
            message = f"build on '{m.machine.store_uri}' failed ({result.status.name}): {said}"
            raise BuildError(str(drv_path), message.rstrip(": "), log.tail())
        missing = sorted(p for p in goal.outputs.values() if not self.local.is_valid_path(p))
        with _as_build_error(drv_path, f"copying its outputs back from '{uri}'"):
            copied = copy_closure(store, self.local, missing)
        registered = tuple(self.local.query_path_info(p) for p in copied.copied)
        return BuildResult(drv_path, goal.outputs, registered, log.path, time.monotonic() - started)

    def _input_paths(self, goal: Goal) -> set[StorePath]:
        """The input sources and the outputs used of the input derivations (their closure is sent)."""
        paths = {self.local.parse_path(p) for p in goal.drv.input_srcs}
        for drv_text, outputs in goal.drv.input_drvs.items():
            drv_path = self.local.parse_path(drv_text)
            inner = read_derivation(Path(self.local.real_path(drv_path)))
            paths |= {self.local.parse_path(inner.outputs[o].path) for o in outputs}
        return paths


@contextlib.contextmanager
def _as_build_error(drv_path: StorePath, doing: str) -> Iterator[None]:
    """A copy that failed fails the build, saying which copy (a hash mismatch keeps both hashes)."""
    try:
        yield
    except BuildError:
        raise
    except StorekitError as e:
        raise BuildError(str(drv_path), f"{doing}: {e}") from e


def _rank(m: _Slots) -> tuple[float, int, int]:
    return (m.busy / m.machine.speed_factor, -m.machine.speed_factor, m.busy)


class _cancelling:
    """While a remote build runs, a cancelled run (another build failed) cuts its connection."""

    def __init__(self, cancel: threading.Event, store: SshStore) -> None:
        self.cancel, self.store = cancel, store
        self.done = threading.Event()

    def __enter__(self) -> None:
        threading.Thread(target=self._watch, daemon=True).start()

    def __exit__(self, *exc: object) -> None:
        self.done.set()

    def _watch(self) -> None:
        while not self.done.wait(0.2):
            if self.cancel.is_set():
                self.store.cut_builds()
                return
