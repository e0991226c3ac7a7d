"""What `storekit build` does, without typer: `run` takes the command line's values as a `BuildRequest`.

The typer command (`storekit.cli.build`) declares the options and help and calls `run`; so does
`main` for a plain command line, which `parse` reads here without importing typer (its import and the
command's set-up cost about 40 ms, a tenth of a 20-derivation chain). A plain line is the command
name, targets and the options in `OPTIONS`, each spelt `--name VALUE`, `--name=VALUE`, `-x VALUE` or
`-xVALUE`, with values that need no conversion rules: digits for numbers, nothing that starts with
`-`. Anything else (`--help`, an unknown or misspelt option, `--`, `-kq`, `-j -1`, no target) goes to
typer, which owns the messages. `tests/cli/test_cli_build_fast.py` checks that `OPTIONS` and
`BuildRequest` are the typer command's options, names, kinds and defaults.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storekit.cli._progress import progress_bar
from storekit.cli._stores import cli_config, local_store, opened_store, resolve_path

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


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """The values of a `storekit build` command line (names and defaults: the typer command's)."""

    targets: list[str]
    store: str | None = None
    jobs: int = 1
    builders: str | None = None
    keep_going: bool = False
    keep_failed: bool = False
    sandbox_path: list[str] | None = None
    substituters: str | None = None
    trusted_public_keys: str | None = None
    no_check_sigs: bool = False
    no_sandbox: bool = False
    timeout: float | None = None
    cores: int | None = None
    print_build_logs: bool = False
    out_link: str = "result"
    no_out_link: bool = False
    dry_run: bool = False
    check: bool = False
    quiet: bool = False
    as_json: bool = False


# --- the plain command line -----------------------------------------------------------------------------

#: Kinds of values: a flag, a string, a list of strings (repeatable), digits (`int0`: >= 0, `int1`:
#: >= 1), a non-negative decimal number.
FLAG, TEXT, TEXTS, INT0, INT1, SECONDS = "flag", "text", "texts", "int0", "int1", "seconds"

#: Every spelling of every option of `storekit build`: (BuildRequest field, kind).
OPTIONS: dict[str, tuple[str, str]] = {
    "--store": ("store", TEXT),
    "--jobs": ("jobs", INT0),
    "--max-jobs": ("jobs", INT0),
    "-j": ("jobs", INT0),
    "--builders": ("builders", TEXT),
    "--keep-going": ("keep_going", FLAG),
    "-k": ("keep_going", FLAG),
    "--keep-failed": ("keep_failed", FLAG),
    "-K": ("keep_failed", FLAG),
    "--sandbox-path": ("sandbox_path", TEXTS),
    "--substituters": ("substituters", TEXT),
    "--trusted-public-keys": ("trusted_public_keys", TEXT),
    "--no-check-sigs": ("no_check_sigs", FLAG),
    "--no-sandbox": ("no_sandbox", FLAG),
    "--timeout": ("timeout", SECONDS),
    "--cores": ("cores", INT1),
    "--print-build-logs": ("print_build_logs", FLAG),
    "-L": ("print_build_logs", FLAG),
    "--out-link": ("out_link", TEXT),
    "-o": ("out_link", TEXT),
    "--no-out-link": ("no_out_link", FLAG),
    "--dry-run": ("dry_run", FLAG),
    "--check": ("check", FLAG),
    "--quiet": ("quiet", FLAG),
    "-q": ("quiet", FLAG),
    "--json": ("as_json", FLAG),
}


def parse(args: list[str]) -> BuildRequest | None:
    """The request of a plain `build …` line (`args` after the program name), else None (typer's)."""
    if args[:1] != ["build"]:
        return None
    values: dict[str, Any] = {}
    targets: list[str] = []
    rest = iter(args[1:])
    for arg in rest:
        if not arg.startswith("-"):
            if not arg:
                return None
            targets.append(arg)
            continue
        name, value = _split(arg)
        spec = OPTIONS.get(name)
        if spec is None:
            return None
        dest, kind = spec
        if kind == FLAG:
            if value is not None:
                return None
            values[dest] = True
            continue
        if value is None:
            value = next(rest, None)
        converted = _convert(kind, value)
        if converted is None:
            return None
        values[dest] = [*values.get(dest, []), converted] if kind == TEXTS else converted
    return BuildRequest(targets, **values) if targets else None


def _split(arg: str) -> tuple[str, str | None]:
    """`--name=value` and `-xVALUE` as (name, value); a lone option as (name, None)."""
    if arg.startswith("--"):
        name, eq, value = arg.partition("=")
        return name, value if eq else None
    return arg[:2], arg[2:] or None


def _convert(kind: str, value: str | None) -> object:
    """`value` as `kind` wants it, or None when it takes typer's rules (or its error) to say."""
    if value is None or value.startswith("-"):
        return None
    if kind in (TEXT, TEXTS):
        return value
    if not value.isascii():  # `int()` and `float()` take other digits too; typer's rules decide
        return None
    if kind == SECONDS:
        return float(value) if value.replace(".", "", 1).isdigit() else None
    if not value.isdigit():
        return None
    number = int(value)
    return number if kind == INT0 or number >= 1 else None


def run_plain(request: BuildRequest) -> None:
    """`run`, ending as typer's standalone mode ends a command: Ctrl-C (or SIGTERM, which `main` makes
    one) exits 130 without a message, end of input prints `Aborted!`, a closed stdout exits 1."""
    import errno

    try:
        run(request)
    except KeyboardInterrupt:
        sys.exit(130)
    except EOFError:
        _echo("", err=True)
        _echo("Aborted!", err=True)
        sys.exit(1)
    except OSError as e:
        if e.errno != errno.EPIPE:
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)  # nothing more to say to a reader that has gone
        os.dup2(devnull, sys.stdout.fileno())
        os.dup2(devnull, sys.stderr.fileno())
        sys.exit(1)


def _echo(text: str, *, err: bool = False) -> None:
    """One line on stdout (or stderr), flushed, as `typer.echo` prints it: escape sequences are
    left out when the stream is not a terminal."""
    stream = sys.stderr if err else sys.stdout
    if "\x1b" in text and not stream.isatty():
        import re

        text = re.sub(r"\x1b\[[;?0-9]*[a-zA-Z]", "", text)
    stream.write(text + "\n")
    stream.flush()


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
    """Build derivations and their missing inputs; print their output paths."""
    from storekit.realise.driver import build
    from storekit.realise.runner import BuildOptions, find_bwrap
    from storekit.realise.sandbox import SandboxPath

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
    config = cli_config()
    specs = r.substituters if r.substituters is not None else " ".join(config.substituters)
    with ExitStack() as stack:
        s: LocalStore = stack.enter_context(local_store(r.store))
        wanted = [_target(s, t) for t in r.targets]
        sources = _sources(stack, specs, r.trusted_public_keys, r.no_check_sigs, config)
        if r.dry_run:
            _show_plan(s, wanted, sources)
            return
        if r.check:
            _check(s, wanted, options)
            return
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
        done = _done_outputs(plan, report, wanted)
        if not r.no_out_link:
            _link_results(s, done, r.out_link)
    _print_outputs(done, r.as_json)
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
        _echo(f"warning: {message}", err=True)

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
        _echo(json.dumps(rows, separators=(",", ":"), ensure_ascii=False))
        return
    for _, outs in done:
        for path in outs.values():
            _echo(path)


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
            _echo(f"these {len(goals)} derivations will be {verb}:", err=True)
            for g in goals:
                _echo(f"  {g.drv_path}", err=True)


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
                _echo(f"{r.output}: rebuilds bit for bit", err=True)
            else:
                differ.append(str(r.output))
                _echo(
                    f"{r.output}: differs (NAR {r.expected.sri} before, {r.got.sri} now): "
                    + ", ".join(r.differing[:20]),
                    err=True,
                )
    if differ:
        raise StorekitError(f"derivation may not be deterministic: {', '.join(differ)} differ when rebuilt")
