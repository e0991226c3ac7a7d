"""Running one derivation's builder in the sandbox and turning what it wrote into valid store paths.

The steps follow Nix 2.8's `LocalDerivationGoal`: lock the output paths (so two processes never build
the same thing) and check again whether they became valid meanwhile; make a staging directory in the
store's real dir holding the scratch store dir the builder writes its outputs into; run bwrap with the
builder's output on a pseudo-terminal (as Nix does), copied into the log file; then, for each output,
copy it into a fresh inode of storekit's own (`output_copy`: whoever kept an fd of what the builder
wrote cannot change the store path), check it, make it canonical, hash its NAR and scan it for
references in one pass, check a fixed output's hash, and finally rename the outputs into place and
register them in one transaction with their deriver. Any failure before that leaves nothing in the
store but the log.

The scratch store dir the builder writes into is `<staging>/store`, inside the store's staging
directory (0700, out of the builder's sight), and `/build` is inside a private directory too
(`builddir`); both are deleted with `fsdelete`, fd-relative and without following symlinks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping

from storekit.derivation.fs import read_derivation
from storekit.derivation.model import Derivation
from storekit.errors import BuildError, SandboxError, StorekitError
from storekit.frozen import Frozen
from storekit.programs import which
from storekit.realise import export_graph, trampoline
from storekit.realise import outputs as out_checks
from storekit.realise.builddir import BuildDir, build_dir
from storekit.realise.input_copies import place_inputs
from storekit.realise.logs import LogWriter, log_path
from storekit.realise.output_copy import copy_outputs
from storekit.realise.plan import Goal
from storekit.realise.process import memfd, run_logged
from storekit.realise.sandbox import (
    BUILD_DIR,
    BuilderEnv,
    SandboxPath,
    SandboxSpec,
    builder_args,
    builder_command,
    builder_env,
    bwrap_args,
    bwrap_command,
    etc_files,
)
from storekit.realise.system import host_system as host_system  # (re-exported: its old home)
from storekit.store import canonical
from storekit.store.base import ValidPathInfo
from storekit.store.fsdelete import remove_tree
from storekit.store.local import LocalStore
from storekit.store.lock import path_lock
from storekit.storepath import StorePath

TYPE_CHECKING = False  # no `typing` at run time: a plain build imports this module (start-up)
if TYPE_CHECKING:  # a fixed-output build's network (pasta) is set up by the few builds that have one
    from storekit.realise.network import FodNetwork

BWRAP_HINT = "bubblewrap not found: apt-get install -y bubblewrap"
#: The scratch store dir inside the staging dir: the builder's outputs appear there.
SCRATCH = "store"
LogSink = Callable[[StorePath, bytes], None]


def find_bwrap() -> str:
    """The bubblewrap executable, or a `SandboxError` saying how to install it."""
    found = which("bwrap") or ("/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None)
    if found is None:
        raise SandboxError("sandbox", BWRAP_HINT)
    return found


_set = object.__setattr__


class BuildOptions(Frozen):
    __slots__ = (
        "bwrap",
        "cores",
        "host_env",
        "keep_failed",
        "sandbox",
        "sandbox_paths",
        "sandbox_paths_of",
        "system",
        "timeout",
        "tmp_dir",
    )
    __match_args__ = (
        "sandbox",
        "sandbox_paths",
        "timeout",
        "cores",
        "host_env",
        "bwrap",
        "tmp_dir",
        "keep_failed",
        "system",
        "sandbox_paths_of",
    )
    sandbox: bool
    sandbox_paths: tuple[SandboxPath, ...]
    """Host paths every build of the run sees (Nix's `sandbox-paths`)."""
    sandbox_paths_of: Mapping[StorePath, tuple[SandboxPath, ...]]
    """More of them for particular derivations (by .drv path): a bootstrap stage is one run, and a
    package of it may see a path the others of its stage must not (`Package.sandbox_paths`)."""
    timeout: float | None
    cores: int
    host_env: Mapping[str, str]
    """Where fixed-output derivations take their `impureEnvVars` from."""
    bwrap: tuple[str, ...]
    """The bwrap command (default: found on PATH); tests may prefix it, e.g. to drop privileges."""
    tmp_dir: str | None
    """Where the host side of /build is created (default: the system temp dir)."""
    keep_failed: bool
    system: str

    def __init__(
        self,
        sandbox: bool = True,
        sandbox_paths: tuple[SandboxPath, ...] = (),
        timeout: float | None = None,
        cores: int = 1,
        host_env: Mapping[str, str] | None = None,
        bwrap: tuple[str, ...] = (),
        tmp_dir: str | None = None,
        keep_failed: bool = False,
        system: str | None = None,
        sandbox_paths_of: Mapping[StorePath, tuple[SandboxPath, ...]] | None = None,
    ) -> None:
        _set(self, "sandbox", sandbox)
        _set(self, "sandbox_paths", sandbox_paths)
        _set(self, "sandbox_paths_of", {} if sandbox_paths_of is None else sandbox_paths_of)
        _set(self, "timeout", timeout)
        _set(self, "cores", cores)
        _set(self, "host_env", dict() if host_env is None else host_env)
        _set(self, "bwrap", bwrap)
        _set(self, "tmp_dir", tmp_dir)
        _set(self, "keep_failed", keep_failed)
        _set(self, "system", host_system() if system is None else system)


class BuildResult(Frozen):
    __slots__ = ("drv_path", "log_file", "outputs", "registered", "seconds")
    __match_args__ = ("drv_path", "outputs", "registered", "log_file", "seconds")
    drv_path: StorePath
    outputs: Mapping[str, StorePath]
    registered: tuple[ValidPathInfo, ...]
    log_file: str
    seconds: float

    def __init__(
        self,
        drv_path: StorePath,
        outputs: Mapping[str, StorePath],
        registered: tuple[ValidPathInfo, ...],
        log_file: str,
        seconds: float,
    ) -> None:
        _set(self, "drv_path", drv_path)
        _set(self, "outputs", outputs)
        _set(self, "registered", registered)
        _set(self, "log_file", log_file)
        _set(self, "seconds", seconds)


def build_derivation(
    store: LocalStore,
    goal: Goal,
    options: BuildOptions,
    *,
    cancel: threading.Event | None = None,
    on_log: LogSink | None = None,
) -> BuildResult:
    """Build `goal` into `store`; returns what was registered. Raises `BuildError` on any failure."""
    _check_buildable(goal, options)
    started = time.monotonic()
    log_file = log_path(store.spec.log_dir, goal.drv_path)
    with contextlib.ExitStack() as locks:
        for path in sorted(goal.outputs.values()):
            locks.enter_context(path_lock(store.real_path(path)))
            store.add_temp_root(path)
        if all(store.is_valid_path(goal.outputs[o]) for o in goal.wanted):
            return BuildResult(goal.drv_path, goal.outputs, (), log_file, 0.0)  # built meanwhile
        closure = input_closure(store, goal)
        check_builder(goal, closure, options)
        with store.staging() as stage:
            builtin = _is_builtin(goal)
            if builtin:
                built = builtin_locations(goal, stage)
            else:
                built = output_locations(store, goal, stage, options)
            try:
                if builtin:  # builtin:fetchurl, the one `_check_buildable` lets through
                    from storekit.realise import fetchurl

                    out = built["out"]
                    got = fetchurl.build(
                        store, goal, closure, out, log_file, options, cancel=cancel, on_log=on_log
                    )
                    streamed = {} if got is None else {"out": got}
                else:
                    run_builder(store, goal, closure, stage, log_file, options, cancel, on_log)
                    built = fresh_copies(goal, stage, built, options)
                    streamed = {}
                infos = out_checks.collect(store, goal, built, closure, streamed)
                registered = _install(store, built, infos)
            except BaseException:
                _discard(store, goal, built, stage, options)
                raise
    return BuildResult(goal.drv_path, goal.outputs, registered, log_file, time.monotonic() - started)


def output_locations(store: LocalStore, goal: Goal, stage: str, options: BuildOptions) -> dict[str, str]:
    """Where the builder writes each output: the scratch store dir, or in place without a sandbox."""
    if options.sandbox:
        scratch = os.path.join(stage, SCRATCH)
        os.mkdir(scratch)
        os.chmod(scratch, 0o1775)  # the store dir the builder sees, as in Nix; `stage` stays 0700
        return {name: os.path.join(scratch, p.base_name) for name, p in goal.outputs.items()}
    built = {}
    for name, path in goal.outputs.items():
        real = store.real_path(path)
        if os.path.lexists(real) and not store.is_valid_path(path):
            canonical.delete_path(real)  # a leftover of an earlier failed or killed build
        built[name] = real
    return built


def builtin_locations(goal: Goal, stage: str) -> dict[str, str]:
    """Where a built-in builder writes each output: straight into the staging dir, which only this
    process can enter (0700). The builder is storekit's own code in this process, so no other
    process holds a descriptor of what it wrote and there is nothing to copy (`fresh_copies`)."""
    return {name: os.path.join(stage, p.base_name) for name, p in goal.outputs.items()}


def fresh_copies(goal: Goal, stage: str, built: Mapping[str, str], options: BuildOptions) -> dict[str, str]:
    """Outputs copied out of the scratch store dir (which then goes); without a sandbox the builder
    wrote in place, with the user's rights anyway, and there is nothing to copy."""
    if not options.sandbox:
        return dict(built)
    return copy_outputs(str(goal.drv_path), stage, SCRATCH, built)


def _discard(
    store: LocalStore, goal: Goal, built: Mapping[str, str], stage: str, options: BuildOptions
) -> None:
    """A failed build leaves nothing: the builder's scratch store dir goes (fd-relative, as it is the
    builder's tree), and so do outputs written in place (no sandbox) that did not become valid."""
    if options.sandbox:
        remove_tree(stage, SCRATCH)
        return
    for name, location in built.items():
        if not store.is_valid_path(goal.outputs[name]):
            canonical.delete_path(location)


def _is_builtin(goal: Goal) -> bool:
    """Whether the builder is one of Nix's built into it (`builtin:…`): no program to run."""
    return goal.drv.builder.startswith("builtin:")


def _check_buildable(goal: Goal, options: BuildOptions) -> None:
    builtin = _is_builtin(goal)
    if builtin:
        from storekit.realise import fetchurl  # imported by the few builds that download

        if goal.drv.builder != fetchurl.BUILDER:
            raise BuildError(
                str(goal.drv_path),
                f"Nix's built-in builder '{goal.drv.builder}' is not supported (only builtin:fetchurl is)",
            )
    system = goal.drv.system
    if builtin and system == "builtin":
        return
    if system != options.system and not (options.system == "x86_64-linux" and system == "i686-linux"):
        raise BuildError(
            str(goal.drv_path), f"it needs a '{system}' machine to build on, but this is '{options.system}'"
        )


def input_closure(store: LocalStore, goal: Goal) -> set[StorePath]:
    """Input sources plus the used outputs of input derivations, with everything they reference."""
    parse = store.store_dir.parse_path
    roots = {parse(p) for p in goal.drv.input_srcs}
    for drv_path, outputs in goal.drv.input_drvs.items():
        drv = _read_input_drv(store, parse(drv_path))
        roots.update(parse(drv.outputs[o].path) for o in outputs)
    for path in roots:
        store.add_temp_root(path)
    try:
        return store.closure(roots)
    except StorekitError as e:
        raise BuildError(str(goal.drv_path), f"an input is missing: {e}") from e


def _read_input_drv(store: LocalStore, drv_path: StorePath) -> Derivation:
    return read_derivation(store.real_path(drv_path))


def check_builder(goal: Goal, closure: set[StorePath], options: BuildOptions) -> None:
    builder = goal.drv.builder
    store_dir = goal.drv_path.store_dir.path
    if not builder.startswith(store_dir + "/") or not options.sandbox:
        return
    base = builder[len(store_dir) + 1 :].split("/", 1)[0]
    if not any(p.base_name == base for p in closure):
        raise BuildError(
            str(goal.drv_path), f"its builder '{builder}' is not in its inputs, so the sandbox cannot see it"
        )


# --- running the builder ----------------------------------------------------------------------------


#: How many times a sandbox whose setup failed transiently (`SandboxError.transient`) is set up.
SETUP_ATTEMPTS = 3


def run_builder(
    store: LocalStore,
    goal: Goal,
    closure: set[StorePath],
    stage: str,
    log_file: str,
    options: BuildOptions,
    cancel: threading.Event | None,
    on_log: LogSink | None,
) -> None:
    """Run the builder to completion, its output going to the log; `BuildError` unless it succeeded.

    A sandbox whose setup failed before the builder ran, in a way that may not happen again
    (`SandboxError.transient`), is set up anew, up to `SETUP_ATTEMPTS` times in all."""
    for attempt in range(1, SETUP_ATTEMPTS + 1):
        try:
            _run_builder_once(store, goal, closure, stage, log_file, options, cancel, on_log)
            return
        except SandboxError as e:
            if not e.transient or attempt == SETUP_ATTEMPTS:
                raise


def _run_builder_once(
    store: LocalStore,
    goal: Goal,
    closure: set[StorePath],
    stage: str,
    log_file: str,
    options: BuildOptions,
    cancel: threading.Event | None,
    on_log: LogSink | None,
) -> None:
    with build_dir(goal.name, options.tmp_dir) as bd:
        net = None
        fds: list[int] = []
        try:
            benv = builder_env(
                goal.drv, store_dir=store.store_dir.path, cores=options.cores, host_env=options.host_env
            )
            _write_files(bd.build, benv.files)
            _write_files(bd.build, export_graph.build_files(store, goal, closure, store.real_path))
            env: dict[str, str] | None = None
            executable = None
            if options.sandbox:
                if goal.drv.is_fixed_output:
                    from storekit.realise.network import FodNetwork, find_pasta

                    net = FodNetwork(find_pasta(str(goal.drv_path)), bd.top, str(goal.drv_path))
                argv, fds = _sandboxed(store, goal, closure, stage, bd, benv, options, net)
            else:
                argv, env, executable = _unsandboxed(store, goal, bd.build, benv)
            log = LogWriter(log_file)
            try:
                status = run_logged(
                    argv,
                    env=env,
                    executable=executable,
                    cwd=bd.build,
                    fds=[*fds, *(net.child_fds if net else ())],
                    sink=_sink(goal, log, on_log),
                    label=str(goal.drv_path),
                    timeout=options.timeout,
                    cancel=cancel,
                    tail=log.tail,
                    attach=net.attach if net else None,
                )
            finally:
                log.close()
            keep = status != 0 and options.keep_failed
            if keep:
                bd.keep()
            _check_status(goal, status, log, options, bd.build if keep else None)
        finally:
            for fd in fds:
                os.close(fd)
            if net is not None:
                net.close()


def _sink(goal: Goal, log: LogWriter, on_log: LogSink | None) -> Callable[[bytes], None]:
    def sink(data: bytes) -> None:
        log.write(data)
        if on_log is not None:
            on_log(goal.drv_path, data)

    return sink


def _sandboxed(
    store: LocalStore,
    goal: Goal,
    closure: set[StorePath],
    stage: str,
    bd: BuildDir,
    benv: BuilderEnv,
    options: BuildOptions,
    net: FodNetwork | None,
) -> tuple[list[str], list[int]]:
    network = goal.drv.is_fixed_output
    fds = []
    etc_fds = {}
    for name, text in etc_files(network).items():
        etc_fds[name] = memfd(f"etc-{name}", text.encode())
        fds.append(etc_fds[name])
    program = trampoline.program(os.uname().machine)
    exec_path = None
    if program is not None:
        fds.append(memfd("exec", program))
        exec_path = f"/proc/self/fd/{fds[-1]}"
    spec = SandboxSpec(
        command=builder_command(goal.drv, exec_path),
        env=benv.env,
        store_dir=store.store_dir.path,
        store_scratch=os.path.join(stage, SCRATCH),
        build_dir=bd.build,
        etc_fds=etc_fds,
        inputs=place_inputs(
            os.path.join(stage, SCRATCH), ((store.real_path(p), str(p)) for p in sorted(closure))
        ),
        sandbox_paths=(*options.sandbox_paths, *options.sandbox_paths_of.get(goal.drv_path, ())),
        network=network,
        sync_fds=net.child_fds if net else None,
    )
    args = b"".join(a.encode("utf-8", "surrogateescape") + b"\0" for a in bwrap_args(spec))
    fds.append(memfd("bwrap-args", args))  # options through a file: no limit on their size
    args_fd = fds[-1]
    bwrap = list(options.bwrap) or [find_bwrap()]
    return [*bwrap, "--args", str(args_fd), *bwrap_command(spec)], fds


def _unsandboxed(
    store: LocalStore, goal: Goal, build_dir: str, benv: BuilderEnv
) -> tuple[list[str], dict[str, str], str]:
    """Nix's `sandbox = false`: the builder runs on the host, in a temp dir, writing outputs in place."""
    if store.real_dir != store.store_dir.path:
        raise SandboxError(
            str(goal.drv_path),
            f"the store's files are in '{store.real_dir}', not at its store dir '{store.store_dir}', which "
            "only the sandbox can show at the right place; build without --no-sandbox",
        )
    env = dict(benv.env)
    for key, value in env.items():
        if value == BUILD_DIR:
            env[key] = build_dir
        elif value.startswith(BUILD_DIR + "/.attr"):  # passAsFile's .attr-*, structured attrs' .attrs.*
            env[key] = build_dir + value[len(BUILD_DIR) :]
    argv = [os.path.basename(goal.drv.builder), *builder_args(goal.drv)]
    return argv, env, goal.drv.builder


def _write_files(build_dir: str, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        with open(os.path.join(build_dir, name), "wb") as f:
            f.write(text.encode("utf-8", "surrogateescape"))


def _check_status(
    goal: Goal, status: int, log: LogWriter, options: BuildOptions, kept: str | None = None
) -> None:
    """`BuildError` unless the builder succeeded; `kept` is the build directory `--keep-failed` kept."""
    if status == 0:
        return
    tail = log.tail()
    note = f" (build directory kept: {kept})" if kept else ""
    if options.sandbox and status == 1 and tail.startswith("bwrap: "):
        first = tail.splitlines()[0]
        error = SandboxError(str(goal.drv_path), f"the sandbox could not be set up: {first}{note}")
        error.transient = first.startswith("bwrap: loopback: ")
        raise error
    if status < 0:
        name = signal.Signals(-status).name if -status in signal.valid_signals() else str(-status)
        raise BuildError(str(goal.drv_path), f"the builder was killed by signal {name}{note}", tail)
    raise BuildError(str(goal.drv_path), f"the builder exited with code {status}{note}", tail)


# --- installing the outputs -----------------------------------------------------------------------------


def _install(
    store: LocalStore, built: Mapping[str, str], infos: Mapping[str, ValidPathInfo]
) -> tuple[ValidPathInfo, ...]:
    """Rename the checked outputs into place and register them in one transaction (locks are held)."""
    new = {name: info for name, info in infos.items() if not store.is_valid_path(info.path)}
    for name, info in new.items():
        real = store.real_path(info.path)
        if built[name] == real:
            continue
        if os.path.lexists(real):
            canonical.delete_path(real)  # an unregistered leftover of a killed build or add
        canonical.make_movable(built[name])
        os.rename(built[name], real)
    store.register_valid_paths(list(new.values()))
    return tuple(new.values())
