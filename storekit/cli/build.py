"""`storekit build`: build derivations in the sandbox into a store under any prefix (like `nix-build`).

Targets are `.drv` paths valid in the store (for example ones real Nix instantiated for that store dir
and `storekit copy` brought over), `DRV!out,dev` for chosen outputs, or storekit recipes (`*.toml`),
which are instantiated first. Missing outputs are substituted when `--substituters` (default: the
config file's) have them with a signature by a trusted key (`--trusted-public-keys` and the config
file's), built otherwise; the output paths are printed, one per line (`--json`: as `nix build --json`),
and `./result` symlinks to them are made as indirect GC roots (`--out-link`, `--no-out-link`), as
`nix-build` does, so that `storekit store gc` keeps what was just built.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Annotated

import typer

from storekit.cli._options import (
    KeepFailedOption,
    StoreOption,
    TrustedKeysOption,
    cli_config,
    complete_store_path,
    local_store,
    opened_store,
    resolve_path,
)
from storekit.cli._progress import progress_bar

if TYPE_CHECKING:
    from storekit.config import Config
    from storekit.realise.driver import Sources, Target
    from storekit.realise.plan import BuildPlan
    from storekit.realise.runner import BuildOptions
    from storekit.realise.scheduler import Report
    from storekit.remote.builders import RemoteBuilders
    from storekit.remote.machines import Machine
    from storekit.store.local import LocalStore
    from storekit.storepath import StorePath

#: A target that is done: its .drv and {output name: output path} for the outputs asked for.
Done = tuple["StorePath", dict[str, str]]

NAME = "build"
HELP = "Build derivations (.drv or recipe .toml) in a sandbox; print the output paths."


def command(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="Derivations: a .drv path, DRV!OUT[,OUT…], or a recipe .toml.",
            autocompletion=complete_store_path,
            show_default=False,
        ),
    ],
    store: StoreOption = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "--max-jobs",
            "-j",
            min=0,
            help="Builds to run in parallel here (0: none, only on --builders).",
        ),
    ] = 1,
    builders: Annotated[
        str | None,
        typer.Option(
            "--builders",
            help="Remote machines in Nix's syntax: 'ssh://HOST SYSTEMS KEY JOBS SPEED FEATURES "
            "MANDATORY HOSTKEY', ';' or newline between machines, @FILE for a machines file.",
        ),
    ] = None,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", "-k", help="Keep building what does not depend on a failure.")
    ] = False,
    keep_failed: KeepFailedOption = False,
    sandbox_path: Annotated[
        list[str] | None,
        typer.Option(
            "--sandbox-path", help="PATH[=HOSTPATH][?]: a host path visible (read-only) to builders."
        ),
    ] = None,
    substituters: Annotated[
        str | None,
        typer.Option(
            "--substituters",
            help="Space-separated stores to substitute from. Default: the config file's substituters.",
        ),
    ] = None,
    trusted_public_keys: TrustedKeysOption = None,
    no_check_sigs: Annotated[
        bool, typer.Option("--no-check-sigs", help="Substitute paths without a trusted signature.")
    ] = False,
    no_sandbox: Annotated[
        bool, typer.Option("--no-sandbox", help="Run builders on the host (needs store dir = real dir).")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="Kill a build after this many seconds.")
    ] = None,
    cores: Annotated[
        int | None, typer.Option("--cores", min=1, help="NIX_BUILD_CORES (default: all CPUs).")
    ] = None,
    print_build_logs: Annotated[
        bool, typer.Option("--print-build-logs", "-L", help="Show build logs on stderr as they come.")
    ] = False,
    out_link: Annotated[
        str,
        typer.Option(
            "--out-link",
            "-o",
            metavar="PATH",
            help="The symlink to each output, an indirect GC root: PATH, PATH-dev for output dev, "
            "PATH-2 for the second target (like nix-build).",
        ),
    ] = "result",
    no_out_link: Annotated[
        bool,
        typer.Option("--no-out-link", help="Make no symlink: the outputs are garbage until rooted."),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be done.")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Rebuild built derivations and compare (nix-build --check); change nothing."
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress line.")] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print `nix build --json`'s [{drvPath, outputs}] for the targets built."),
    ] = False,
) -> None:
    """Build derivations and their missing inputs; print their output paths."""
    from storekit.realise.driver import build
    from storekit.realise.runner import BuildOptions, find_bwrap
    from storekit.realise.sandbox import SandboxPath

    if not no_sandbox and not dry_run:
        find_bwrap()
    options = BuildOptions(
        sandbox=not no_sandbox,
        sandbox_paths=tuple(SandboxPath.parse(p) for p in sandbox_path or []),
        timeout=timeout,
        cores=cores or os.cpu_count() or 1,
        host_env=dict(os.environ),
        keep_failed=keep_failed,
    )
    config = cli_config()
    specs = substituters if substituters is not None else " ".join(config.substituters)
    with ExitStack() as stack:
        s: LocalStore = stack.enter_context(local_store(store))
        wanted = [_target(s, t) for t in targets]
        sources = _sources(stack, specs, trusted_public_keys, no_check_sigs, config)
        if dry_run:
            _show_plan(s, wanted, sources)
            return
        if check:
            _check(s, wanted, options)
            return
        on_log = _log_printer() if print_build_logs else None
        hook = _remote_builders(stack, builders, s, options, jobs)
        bar = stack.enter_context(progress_bar(quiet or print_build_logs, desc="building"))
        plan, report = build(
            s,
            wanted,
            options,
            jobs=jobs,
            keep_going=keep_going,
            sources=sources,
            progress=bar,
            on_log=on_log,
            hook=hook,
        )
        done = _done_outputs(plan, report, wanted)
        if not no_out_link:
            _link_results(s, done, out_link)
    _print_outputs(done, as_json)
    error = report.error()
    if error is not None:
        raise error


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
        typer.echo(f"warning: {message}", err=True)

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
        rows = [{"drvPath": str(drv), "outputs": outs} for drv, outs in done]
        typer.echo(json.dumps(rows, separators=(",", ":"), ensure_ascii=False))
        return
    for _, outs in done:
        for path in outs.values():
            typer.echo(path)


def _target(store: LocalStore, text: str) -> Target:
    if text.endswith(".toml"):
        from storekit.realise.driver import derivation_reader
        from storekit.realise.recipe import instantiate_recipe
        from storekit.realise.runner import host_system

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
            typer.echo(f"these {len(goals)} derivations will be {verb}:", err=True)
            for g in goals:
                typer.echo(f"  {g.drv_path}", err=True)


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
                typer.echo(f"{r.output}: rebuilds bit for bit", err=True)
            else:
                differ.append(str(r.output))
                typer.echo(
                    f"{r.output}: differs (NAR {r.expected.sri} before, {r.got.sri} now): "
                    + ", ".join(r.differing[:20]),
                    err=True,
                )
    if differ:
        raise StorekitError(f"derivation may not be deterministic: {', '.join(differ)} differ when rebuilt")
