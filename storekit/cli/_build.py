"""What `storekit build` does, without typer: `run` takes the command line's values as a `BuildRequest`.

The typer command (`storekit.cli.build`) declares the options and their help and calls `run`; so does
`main` for a plain command line (`storekit.cli._build_line`), which it reads without importing typer.
Output goes through `echo`, which prints as `typer.echo` does, so both ways print the same bytes.
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack

from storekit.cli._plain import Request, echo
from storekit.cli._stores import cli_config, local_store, opened_store, resolve_path

# Every `storekit build` imports this module first: no `typing`, `dataclasses` or progress bars
# (tqdm) until a build needs them (tests/cli/test_cli_fast_imports.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from storekit.config import Config
    from storekit.realise.driver import Sources
    from storekit.realise.plan import BuildPlan
    from storekit.realise.runner import BuildOptions
    from storekit.realise.scheduler import Report
    from storekit.realise.valid import Done, Target
    from storekit.remote.builders import RemoteBuilders
    from storekit.remote.machines import Machine
    from storekit.store.local import LocalStore
    from storekit.storepath import StorePath


#: `BuildRequest`'s fields, in the typer command's order of parameters.
FIELDS = (
    "targets", "store", "jobs", "builders", "keep_going", "keep_failed", "sandbox_path", "substituters",
    "trusted_public_keys", "no_check_sigs", "no_sandbox", "timeout", "cores", "print_build_logs",
    "out_link", "no_out_link", "dry_run", "check", "quiet", "as_json",
)  # fmt: skip


class BuildRequest(Request):
    """The values of a `storekit build` command line (names and defaults: the typer command's).

    A plain class, not a dataclass: every `storekit build` makes one before anything else, and
    `dataclasses` (with inspect, ast, dis) costs a plain line more than the rest of its start-up.
    """

    __slots__ = FIELDS

    def __init__(
        self,
        targets: list[str],
        store: str | None = None,
        jobs: int = 1,
        builders: str | None = None,
        keep_going: bool = False,
        keep_failed: bool = False,
        sandbox_path: list[str] | None = None,
        substituters: str | None = None,
        trusted_public_keys: str | None = None,
        no_check_sigs: bool = False,
        no_sandbox: bool = False,
        timeout: float | None = None,
        cores: int | None = None,
        print_build_logs: bool = False,
        out_link: str = "result",
        no_out_link: bool = False,
        dry_run: bool = False,
        check: bool = False,
        quiet: bool = False,
        as_json: bool = False,
    ) -> None:
        self.targets = targets
        self.store = store
        self.jobs = jobs
        self.builders = builders
        self.keep_going = keep_going
        self.keep_failed = keep_failed
        self.sandbox_path = sandbox_path
        self.substituters = substituters
        self.trusted_public_keys = trusted_public_keys
        self.no_check_sigs = no_check_sigs
        self.no_sandbox = no_sandbox
        self.timeout = timeout
        self.cores = cores
        self.print_build_logs = print_build_logs
        self.out_link = out_link
        self.no_out_link = no_out_link
        self.dry_run = dry_run
        self.check = check
        self.quiet = quiet
        self.as_json = as_json


def _settle() -> None:
    """The cyclic garbage collector skips what importing the build's modules made, from now on.

    Imports allocate some 100,000 objects (modules, classes, functions) that live to the end of the
    process; collecting while importing, and then every full collection during the builds and the one
    at exit, walk them all and free nothing (about 10-15 ms of a command). `main` turns the collector
    off for a plain line's imports; here they are frozen (left out of collections) and it is on again
    for the builds, which may run for hours.
    """
    import gc

    gc.freeze()
    gc.enable()


# --- the command ----------------------------------------------------------------------------------------


def run(r: BuildRequest) -> None:
    """Build derivations and their missing inputs; print their output paths.

    Targets whose outputs are all valid already are answered before the build machinery is imported
    (`storekit.realise.valid`): that is what a `storekit build` of something built costs, as in Nix.
    """
    config = cli_config()
    with ExitStack() as stack:
        s: LocalStore = stack.enter_context(local_store(r.store, config))
        wanted = [_target(s, t) for t in r.targets]
        done = _valid_already(s, wanted, r)
        if done is None:
            done, report = _build(stack, s, wanted, r, config)
            if report is None:  # --dry-run, --check
                return
        else:
            report = None
        if not r.no_out_link:
            _link_results(s, done, r.out_link)
    _print_outputs(done, r.as_json)
    error = report.error() if report is not None else None
    if error is not None:
        raise error


def _valid_already(store: LocalStore, wanted: list[Target], r: BuildRequest) -> list[Done] | None:
    """The targets with their outputs, when all are valid and the line asks for nothing else; else None.

    `--dry-run`, `--check`, remote builders (`--max-jobs 0` or `--builders`) and `--sandbox-path`
    (whose syntax the build checks) take the whole way. Substituters are not opened, as Nix opens
    none when nothing is missing.
    """
    if r.dry_run or r.check or r.builders or r.jobs < 1 or r.sandbox_path:
        return None
    from storekit.realise.valid import valid_outputs

    return valid_outputs(store, wanted)


def _build(
    stack: ExitStack, s: LocalStore, wanted: list[Target], r: BuildRequest, config: Config
) -> tuple[list[Done], Report | None]:
    """The whole build workflow (`storekit.realise.driver`): the targets done, and its report (None
    for `--dry-run` and `--check`, which print what they found instead)."""
    from storekit.cli._progress import progress_bar
    from storekit.cli._signals import terminate_as_interrupt
    from storekit.realise.driver import build
    from storekit.realise.runner import BuildOptions, find_bwrap
    from storekit.realise.sandbox import SandboxPath

    terminate_as_interrupt()  # (a plain line's `main` leaves it to here)
    _settle()
    # found once here, not by each build
    bwrap = (find_bwrap(),) if not r.no_sandbox and not r.dry_run else ()
    options = BuildOptions(
        sandbox=not r.no_sandbox,
        bwrap=bwrap,
        sandbox_paths=tuple(SandboxPath.parse(p) for p in r.sandbox_path or []),
        timeout=r.timeout,
        cores=r.cores or os.cpu_count() or 1,
        host_env=dict(os.environ),
        keep_failed=r.keep_failed,
    )
    specs = r.substituters if r.substituters is not None else " ".join(config.substituters)
    sources = _sources(stack, specs, r.trusted_public_keys, r.no_check_sigs, config)
    if r.dry_run:
        _show_plan(s, wanted, sources)
        return [], None
    if r.check:
        _check(s, wanted, options)
        return [], None
    on_log = _log_printer() if r.print_build_logs else None
    hook = _remote_builders(stack, r.builders, s, options, r.jobs)
    bar = stack.enter_context(progress_bar(r.quiet or r.print_build_logs, desc="building"))
    plan, report = build(
        s,
        wanted,
        options,
        jobs=r.jobs,
        keep_going=r.keep_going,
        sources=sources,
        progress=bar,
        on_log=on_log,
        hook=hook,
    )
    return _done_outputs(plan, report, wanted), report


def _remote_builders(
    stack: ExitStack, spec: str | None, store: LocalStore, options: BuildOptions, jobs: int
) -> RemoteBuilders | None:
    """The `--builders` machines (none: None), closed when the build ends.

    The remote layer (ssh, the serve protocol) is imported only when machines are named.
    """
    from storekit.errors import StorekitError

    machines: list[Machine] = []
    if spec:
        from storekit.remote.machines import parse_builders

        machines = parse_builders(spec, options.system, _machines_file)
    if not machines:
        if jobs == 0:
            raise StorekitError(
                "--max-jobs 0 builds nothing on this machine: name remote ones with --builders"
            )
        return None
    from storekit.remote.builders import RemoteBuilders

    def warn(message: str) -> None:
        echo(f"warning: {message}", err=True)

    hook = RemoteBuilders(machines, store, options, sshopts=os.environ.get("NIX_SSHOPTS", ""), warn=warn)
    stack.callback(hook.close)
    return hook


def _machines_file(path: str) -> str | None:
    """An `@FILE` of --builders: its text, or None when it does not exist (as Nix)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _done_outputs(plan: BuildPlan, report: Report, wanted: list[Target]) -> list[Done]:
    """Each target that is done (built, substituted or already valid) with its wanted outputs."""
    done: list[Done] = []
    for drv_path, outputs in wanted:
        goal = plan.goals[drv_path]
        outcome = report.outcomes[drv_path]
        if outcome.status.value in ("built", "substituted", "valid"):
            paths = outcome.result.outputs if outcome.result is not None else goal.outputs  # CA: once built
            done.append((drv_path, {n: str(paths[n]) for n in sorted(outputs or goal.drv.outputs)}))
    return done


def result_links(done: list[Done], prefix: str) -> dict[str, str]:
    """nix-build's names: `prefix` for the first derivation, `prefix-2` … for the next; `-OUT` for
    an output other than `out`. A derivation named twice gets its links once."""
    drv_prefix: dict[StorePath, str] = {}
    links: dict[str, str] = {}
    for drv_path, outputs in done:
        if drv_path not in drv_prefix:
            n = len(drv_prefix)
            drv_prefix[drv_path] = prefix if n == 0 else f"{prefix}-{n + 1}"
        for name, path in outputs.items():
            links[drv_prefix[drv_path] + ("" if name == "out" else f"-{name}")] = path
    return links


def _link_results(store: LocalStore, done: list[Done], prefix: str) -> None:
    """Make the result symlinks, each registered in `gcroots/auto` like nix-build's."""
    from storekit.store.gc import add_root

    for link, path in result_links(done, prefix).items():
        add_root(store, store.parse_path(path), link)


def _print_outputs(done: list[Done], as_json: bool) -> None:
    """The output paths of the targets that are done, as `nix-build` (or `nix build --json`) prints them."""
    if as_json:
        import json

        rows = [{"drvPath": str(drv), "outputs": outs} for drv, outs in done]
        echo(json.dumps(rows, separators=(",", ":"), ensure_ascii=False))
        return
    for _, outs in done:
        for path in outs.values():
            echo(path)


def _target(store: LocalStore, text: str) -> Target:
    if text.endswith(".toml"):
        from storekit.realise.recipe import instantiate_recipe
        from storekit.realise.system import host_system
        from storekit.realise.valid import derivation_reader

        drv_path, _ = instantiate_recipe(store, text, derivation_reader(store), system=host_system())
        return drv_path, None
    path, bang, outs = text.partition("!")
    drv: StorePath = resolve_path(store, path)
    return drv, (outs.split(",") if bang else None)


def _sources(
    stack: ExitStack, specs: str, keys: str | None, no_check: bool, config: Config
) -> Sources | None:
    if not specs.split():
        return None
    from storekit.realise.driver import Sources
    from storekit.store.substituters import SignaturePolicy, Substituters, is_untrusted_source

    stores = [stack.enter_context(opened_store(s, config)) for s in specs.split()]
    union = Substituters(stores)
    require = not no_check and (bool(keys) or is_untrusted_source(union))
    trusted = [keys or "", *config.trusted_public_keys]
    return Sources(union, SignaturePolicy.from_text(trusted, require_sigs=require))


def _show_plan(store: LocalStore, wanted: list[Target], sources: Sources | None) -> None:
    from storekit.realise.driver import plan_build
    from storekit.realise.plan import Action

    plan = plan_build(store, wanted, sources)
    for verb, action in (("built", Action.BUILD), ("fetched", Action.SUBSTITUTE)):
        goals = [g for g in plan.todo if g.action is action]
        if goals:
            echo(f"these {len(goals)} derivations will be {verb}:", err=True)
            for g in goals:
                echo(f"  {g.drv_path}", err=True)


def _log_printer() -> Callable[[StorePath, bytes], None]:
    """Nix's `-L`: each line of a build log on stderr, prefixed with the derivation's name."""
    pending: dict[StorePath, bytes] = {}

    def show(drv: StorePath, data: bytes) -> None:
        lines = (pending.pop(drv, b"") + data).split(b"\n")
        pending[drv] = lines.pop()
        prefix = drv.name.removesuffix(".drv").encode() + b"> "
        if lines:
            sys.stderr.buffer.write(b"".join(prefix + line.rstrip(b"\r") + b"\n" for line in lines))
            sys.stderr.flush()

    return show


def _check(store: LocalStore, wanted: list[Target], options: BuildOptions) -> None:
    """`--check`: each target rebuilt and compared; an error names the outputs that differ."""
    from storekit.errors import StorekitError
    from storekit.realise.check import check_derivation

    differ = []
    for drv_path, _ in wanted:
        for r in check_derivation(store, drv_path, options):
            if r.same:
                echo(f"{r.output}: rebuilds bit for bit", err=True)
            else:
                differ.append(str(r.output))
                echo(
                    f"{r.output}: differs (NAR {r.expected.sri} before, {r.got.sri} now): "
                    + ", ".join(r.differing[:20]),
                    err=True,
                )
    if differ:
        raise StorekitError(f"derivation may not be deterministic: {', '.join(differ)} differ when rebuilt")
