"""The serve protocol's two build commands, done by storekit's sandbox (`storekit.realise`).

- `BuildDerivation` (Nix's build hook, `nix-build --builders`): the client sends a *basic* derivation,
  one without input derivations: the hook has put the whole input closure, already copied here, in its
  input sources. The `.drv` itself never reaches this machine, so it is built from the value, and its
  outputs are registered with the `.drv` path as deriver, as Nix's `buildDerivation` does. The answer
  is a `BuildResult`: a failure is a status and a message, not an error that ends the session.
- `BuildPaths` (`nix-store -r --store ssh://…`): `.drv` paths (with `!outputs`) valid here, built with
  whatever they need, as `storekit build` would; plain paths must be valid already.

Build logs go to `log` as they come; on an ssh connection that is the server's stderr, which Nix's
client shows as the build's log (`nix-build -L` prints it under the derivation's name).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import BinaryIO

from storekit.derivation.hashing import hash_derivation_modulo
from storekit.derivation.model import Derivation
from storekit.errors import BuildError, StorekitError
from storekit.realisation import DrvOutput, Realisation
from storekit.realise.driver import build
from storekit.realise.plan import Action, Goal
from storekit.realise.runner import BuildOptions, LogSink, build_derivation
from storekit.store.local import LocalStore
from storekit.storepath import StorePath
from storekit.wire.values import BuildResult, BuildStatus

Target = tuple[StorePath, Sequence[str] | None]


def build_derivation_command(
    store: LocalStore,
    drv_path: StorePath,
    drv: Derivation,
    options: BuildOptions,
    log: BinaryIO | None,
    cancel: threading.Event | None = None,
) -> BuildResult:
    """Build the basic derivation `drv` (as `drv_path`) into `store`; its outcome as a `BuildResult`.

    A success carries `builtOutputs` as Nix 2.8's server sends them: each output's realisation, keyed
    by the derivation's hash modulo (of the derivation as received) and the output name.
    """
    started = int(time.time())
    try:
        goal = _goal(store, drv_path, drv)
    except StorekitError as e:
        return BuildResult(BuildStatus.InputRejected, str(e), start_time=started, stop_time=started)
    status = BuildStatus.AlreadyValid
    if goal.missing:
        try:
            build_derivation(store, goal, options, cancel=cancel, on_log=_log_sink(log))
        except BuildError as e:
            failed = BuildStatus.TimedOut if "timed out after" in str(e) else BuildStatus.PermanentFailure
            return BuildResult(failed, str(e), start_time=started, stop_time=int(time.time()))
        except StorekitError as e:
            return BuildResult(
                BuildStatus.MiscFailure, str(e), start_time=started, stop_time=int(time.time())
            )
        status = BuildStatus.Built
    return BuildResult(
        status,
        times_built=1 if status is BuildStatus.Built else 0,
        start_time=started,
        stop_time=int(time.time()),
        built_outputs=_realisations(store, drv_path, drv, goal.outputs),
    )


def _realisations(
    store: LocalStore, drv_path: StorePath, drv: Derivation, outputs: Mapping[str, StorePath]
) -> dict[str, Realisation]:
    def no_lookup(path: str) -> Derivation:
        raise BuildError(
            str(drv_path), f"a basic derivation has no input derivations, yet '{path}' was asked"
        )

    name = drv_path.name.removesuffix(".drv")
    drv_hash = hash_derivation_modulo(drv, store.store_dir, no_lookup, name=name)
    key = f"sha256:{drv_hash.base16}"
    return {o: Realisation(path, id=DrvOutput(o, key)) for o, path in outputs.items()}


def _goal(store: LocalStore, drv_path: StorePath, drv: Derivation) -> Goal:
    """The derivation as a goal for the runner: every output wanted, the invalid ones missing."""
    outputs = {}
    for name, out in drv.outputs.items():
        if not out.path:
            raise BuildError(str(drv_path), f"output '{name}' has no path: floating content-addressed "
                             "derivations are not supported by this server")  # fmt: skip
        outputs[name] = store.store_dir.parse_path(out.path)
    missing = frozenset(n for n, p in outputs.items() if not store.is_valid_path(p))
    return Goal(drv_path, drv, outputs, frozenset(outputs), missing, Action.BUILD)


def build_paths_command(
    store: LocalStore, targets: Sequence[Target], options: BuildOptions, log: BinaryIO | None
) -> tuple[int, str]:
    """Make `targets` valid (building `.drv` targets); (0, "") or (a `BuildStatus`, its message)."""
    opaque = [p for p, outs in targets if outs is None and not p.is_derivation]
    missing = [str(p) for p in opaque if not store.is_valid_path(p)]
    if missing:
        return BuildStatus.MiscFailure, f"path '{missing[0]}' is not valid here and cannot be built"
    wanted = [(p, outs) for p, outs in targets if p.is_derivation or outs is not None]
    if not wanted:
        return 0, ""
    try:
        _, report = build(store, wanted, options, on_log=_log_sink(log))
    except StorekitError as e:
        return BuildStatus.MiscFailure, str(e)
    error = report.error()
    if error is not None:
        return BuildStatus.PermanentFailure, str(error)
    return 0, ""


def _log_sink(log: BinaryIO | None) -> LogSink | None:
    if log is None:
        return None

    def sink(_drv: StorePath, data: bytes) -> None:
        assert log is not None
        log.write(data)
        log.flush()

    return sink
