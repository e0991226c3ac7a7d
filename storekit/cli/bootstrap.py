"""`storekit bootstrap`: build a staged, declarative bootstrap (Linux From Scratch) into a store.

A profile (`bootstrap/lfs/lfs.toml`, `mini.toml`, `lfs-debian.toml`) declares a seed of host tools
(stage 0) and stages of packages; every package is a derivation built in the sandbox. `plan` and
`status` show each package's `.drv`, output and state; `build` builds (and resumes); `verify` runs the
book's sanity checks; `sources` fills a mirror directory (`--from-debian`: from Debian's orig
tarballs, accepted only when they are the pinned bytes); `pin` writes sha256s into the profile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from storekit.bootstrap import stages
from storekit.bootstrap.config import LoadedProfile, load_profile, pin_sources, read_document
from storekit.bootstrap.driver import Bootstrap
from storekit.bootstrap.status import PackageState
from storekit.cli._options import KeepFailedOption, StoreOption, local_store
from storekit.cli._progress import stage_bars
from storekit.errors import StorekitError
from storekit.programs import which

NAME = "bootstrap"
HELP = "Build a staged, declarative bootstrap (Linux From Scratch) in the sandbox into a store."
app = typer.Typer(no_args_is_help=True)

ConfigArg = Annotated[str, typer.Argument(help="The profile, e.g. bootstrap/lfs/mini.toml.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON: {stages: [{name, packages: […]}]}.")]
MirrorOpt = Annotated[str | None, typer.Option("--mirror", help="Directory of source tarballs.")]
RootfsOption = Annotated[
    str | None,
    typer.Option("--rootfs", metavar="NAME", help="Which system tree ([[rootfs]] name; default: the last)."),
]


@contextmanager
def _bootstrap(config: str, store: str | None) -> Iterator[Bootstrap]:
    loaded = load_profile(config)
    with local_store(store) as s:
        yield Bootstrap(loaded, s)


def _cores(jobs: int, cores: int | None) -> int:
    return cores or max(1, (os.cpu_count() or 1) // jobs)


@app.command()
def init(
    directory: Annotated[str, typer.Argument(help="Where to write lfs/ (created if missing).")] = ".",
) -> None:
    """Write the profiles storekit ships (lfs/mini.toml, lfs.toml, …, their scripts) into DIRECTORY."""
    from storekit.bootstrap.profiles import write_profiles

    written = write_profiles(directory)
    for rel in written:
        # the profiles a user builds: not draft/ (never built), not seed.toml (the profiles share it)
        if rel.endswith(".toml") and rel.count("/") == 1 and not rel.endswith("/seed.toml"):
            typer.echo(os.path.join(directory, rel))
    typer.echo(f"wrote {len(written)} files under '{directory}'", err=True)


@app.command()
def seed(config: ConfigArg, store: StoreOption = None) -> None:
    """Make stage 0: the declared host tools, self-contained in one store path. Prints it."""
    with _bootstrap(config, store) as boot:
        for path in boot.manifest.missing:
            typer.echo(f"warning: the host lacks a library: {path}", err=True)
        boot.ensure_seed(lambda e: typer.echo(e.message, err=True))
        typer.echo(boot.plan.seed.out)


def _print_states(result: list[tuple[str, list[PackageState]]], as_json: bool) -> None:
    if as_json:
        doc = {"stages": [{"name": st, "packages": [p.to_json() for p in ps]} for st, ps in result]}
        typer.echo(json.dumps(doc, indent=2))
        return
    for stage, states in result:
        typer.echo(f"{stage}:")
        for p in states:
            took = f" {p.seconds:.0f}s" if p.seconds is not None else ""
            typer.echo(f"  {p.id:<20} {p.version:<12} {p.status:<13}{took:>7}  {p.outputs[0]}")
            if p.weak_pins:
                typer.echo(f"  {'':<20} weak pin (md5 only): {', '.join(p.weak_pins)}")
            if p.optional and p.status != "built":
                typer.echo(f"  {'':<20} optional: built only by build --until {p.id}")


@app.command()
def plan(config: ConfigArg, store: StoreOption = None, as_json: JsonOpt = False) -> None:
    """Stages and packages in build order, with their .drv, output path and status in the store."""
    with _bootstrap(config, store) as boot:
        _print_states(boot.status(), as_json)


@app.command()
def status(config: ConfigArg, store: StoreOption = None, as_json: JsonOpt = False) -> None:
    """Per package: built / to-build / substitutable, its output and how long its build took."""
    with _bootstrap(config, store) as boot:
        result = boot.status()
        _print_states(result, as_json)
        if not as_json:
            built = sum(p.status == "built" for _, ps in result for p in ps)
            total = sum(len(ps) for _, ps in result)
            typer.echo(f"{built} of {total} built; logs in {os.path.dirname(boot.package_log('x'))}")


@app.command()
def graph(
    config: ConfigArg,
    format: Annotated[str, typer.Option("--format", help="dot or svg (svg needs Graphviz's dot).")] = "dot",
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """The package graph: a cluster per stage, an edge per declared dependency and per stage input."""
    profile = load_profile(config).profile
    text = stages.to_dot(profile).encode()
    if format == "svg":
        dot = which("dot")
        if dot is None:
            raise StorekitError(
                "--format svg needs Graphviz's dot: apt-get install graphviz (or use --format dot)"
            )
        text = subprocess.run([dot, "-Tsvg"], input=text, capture_output=True, check=True).stdout
    elif format != "dot":
        raise StorekitError(f"unknown --format '{format}': use dot or svg")
    if output:
        with open(output, "wb") as f:
            f.write(text)
    else:
        sys.stdout.buffer.write(text)


@app.command("build")
def build_command(
    config: ConfigArg,
    store: StoreOption = None,
    mirror: MirrorOpt = None,
    until: Annotated[
        list[str] | None,
        typer.Option(
            "--until",
            help="Build only this stage, package or rootfs tree and what it needs (repeatable); "
            "an optional package (a long test suite) is built only when named.",
        ),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Packages built in parallel.")] = 1,
    cores: Annotated[int | None, typer.Option("--cores", min=1, help="NIX_BUILD_CORES per build.")] = None,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", "-k", help="Build what does not depend on a failure.")
    ] = False,
    timeout: Annotated[float | None, typer.Option("--timeout", min=0, help="Seconds per package.")] = None,
    keep_failed: KeepFailedOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Build the profile (the seed first), stage by stage; resumes where an earlier run stopped."""
    with _bootstrap(config, store) as boot, stage_bars(quiet) as show:
        summary = boot.build(mirror=mirror, until=until or (), jobs=jobs, cores=_cores(jobs, cores),
                             keep_going=keep_going, timeout=timeout, keep_failed=keep_failed,
                             progress=show)  # fmt: skip
        for pid, seconds in summary.built.items():
            typer.echo(f"built {pid} in {seconds:.0f}s", err=True)
        if summary.failed or summary.blocked:
            lines = [f"{pid}: {msg} (log: {boot.package_log(pid)})" for pid, msg in summary.failed.items()]
            if summary.blocked:
                lines.append("not built (they depend on a failure): " + ", ".join(summary.blocked))
            raise StorekitError(f"{len(summary.failed)} package(s) failed:\n" + "\n".join(lines))


@app.command("verify")
def verify_command(
    config: ConfigArg,
    store: StoreOption = None,
    cores: Annotated[int | None, typer.Option("--cores", min=1)] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Check the system up to this stage, package or rootfs tree.")
    ] = None,
) -> None:
    """The book's sanity checks, in the sandbox, and the store's promises (no host paths, store loader)."""
    from storekit.bootstrap.verify import verify

    with _bootstrap(config, store) as boot:
        checks = verify(boot, until=until, cores=_cores(1, cores))
    for c in checks:
        typer.echo(f"{'ok' if c.ok else 'FAILED'}: {c.name}")
        if c.detail and not c.ok:
            typer.echo("  " + c.detail.replace("\n", "\n  "))
    failed = [c for c in checks if not c.ok]
    if failed:
        raise StorekitError(f"{len(failed)} check(s) failed")


@app.command()
def sources(
    config: ConfigArg,
    mirror: Annotated[str, typer.Option("--mirror", help="Directory to fill with the source tarballs.")],
    from_debian: Annotated[
        bool, typer.Option("--from-debian", help="Take Debian's orig tarballs (only the pinned bytes).")
    ] = False,
    apt_dir: Annotated[
        str | None, typer.Option("--apt-dir", help="Private apt state (default: MIRROR/.apt).")
    ] = None,
) -> None:
    """Fetch every source into the mirror, verified against its sha256 (or the book's md5)."""
    from storekit.bootstrap.debian import fetch_from_debian
    from storekit.bootstrap.sources import fetch_sources, unique_sources

    loaded: LoadedProfile = load_profile(config)
    wanted = unique_sources(loaded.profile)
    if from_debian:
        results = fetch_from_debian(wanted, mirror, apt_dir=apt_dir)
    else:
        results = fetch_sources(wanted, mirror)
    for r in results:
        typer.echo(
            f"{r.status:<8} {r.source.file}" + (f"  {r.detail}" if r.detail else ""), err=r.status == "failed"
        )
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise StorekitError(f"{len(failed)} of {len(results)} sources could not be put into '{mirror}'")


@app.command()
def pin(
    config: ConfigArg,
    mirror: Annotated[
        str | None, typer.Option("--mirror", help="Directory holding the source tarballs.")
    ] = None,
    from_debian: Annotated[
        bool,
        typer.Option(
            "--from-debian", help="Move Debian pins whose version is gone to the version Debian has now."
        ),
    ] = False,
    apt_dir: Annotated[
        str | None, typer.Option("--apt-dir", help="Private apt state (default: /var/tmp/storekit-apt).")
    ] = None,
) -> None:
    """Write each source's sha256 into the profile (comments and layout kept).

    With --mirror: computed from the files there (a weak md5 pin becomes a sha256). With --from-debian:
    a source whose Debian version is gone gets the version, URL and sha256 of Debian's current one,
    from the signed source index, so only the packages that use it (and their dependents) rebuild.
    """
    if from_debian:
        _pin_from_debian(config, apt_dir or "/var/tmp/storekit-apt")
        return
    if mirror is None:
        raise StorekitError("pin needs --mirror DIR (files to hash) or --from-debian")
    from storekit.bootstrap.sources import file_digest, mirror_file

    loaded = load_profile(config)
    problems: list[str] = []

    def digest(_pid: str, _i: int, source: Any) -> str | None:
        path = mirror_file(mirror, source)
        if not os.path.exists(path):
            return None
        if source.md5 is not None and file_digest(path, "md5") != source.md5:
            problems.append(
                f"{source.key}: {source.file} does not have the book's md5 {source.md5}; not pinned"
            )
            return None
        return file_digest(path)

    document = read_document(config)
    changed = pin_sources(document, digest, loaded.profile)
    if changed:
        with open(config, "w", encoding="utf-8") as f:
            f.write(document.as_string())
    typer.echo(f"pinned {len(changed)} source(s) in {config}", err=True)
    for line in problems:
        typer.echo(f"warning: {line}", err=True)


@app.command("export")
def export_command(
    config: ConfigArg,
    output: Annotated[
        str, typer.Option("--output", "-o", help="lfs.tar, lfs.tar.gz, lfs.tar.xz or lfs.tar.zst")
    ],
    store: StoreOption = None,
    rootfs: RootfsOption = None,
) -> None:
    """Write the built system (the profile's [rootfs] and its closure) as a reproducible tarball.

    Owners are root:root and the ownership manifest's modes (setuid programs, a sticky /tmp) are
    applied; entries are sorted and every mtime is 1, so two exports of one build are the same bytes.
    """
    from storekit.bootstrap.export import export

    with _bootstrap(config, store) as boot:
        done = export(boot, output, rootfs)
    typer.echo(
        f"wrote {done.path}: {done.entries} entries, {done.store_paths} store paths, "
        f"{done.modes_applied} modes from the ownership manifest",
        err=True,
    )
    typer.echo(f"sha256 {done.sha256}")


@app.command("enter", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def enter_command(
    ctx: typer.Context,
    config: ConfigArg,
    store: StoreOption = None,
    rootfs: RootfsOption = None,
) -> None:
    """Run a login shell, or the command after `--`, with the built system as / (bubblewrap, no root).

    Like the book's `chroot $LFS`: the system's /usr, /etc … read-only, the store at its path, fresh
    /dev and /proc, tmpfs on /tmp, /run, /root and /home; inside, you are uid 0. Exits with the
    command's status.
    """
    from storekit.bootstrap.enter import enter_argv

    with _bootstrap(config, store) as boot:
        argv = enter_argv(boot, list(ctx.args), os.environ.get("TERM"), rootfs)
    raise typer.Exit(subprocess.run(argv, check=False).returncode)


def _pin_from_debian(config: str, apt_dir: str) -> None:
    from storekit.bootstrap.debian import apt_showsrc, prepare_apt
    from storekit.bootstrap.debian_index import Move, apply_moves, find_move, parse_showsrc

    profile = load_profile(config).profile
    showsrc = apt_showsrc(prepare_apt(apt_dir))
    records: dict[str, list[Any]] = {}
    moves: list[Move] = []
    for pkg in profile.packages.values():
        for source in pkg.sources:
            if source.debian is None:
                continue
            name = source.debian.partition("=")[0]
            if name not in records:
                records[name] = parse_showsrc(showsrc(name))
            move = find_move(source, records[name])
            if move is not None and all(m.old_file != move.old_file for m in moves):
                moves.append(move)
    document = read_document(config)
    changed = apply_moves(document, profile, moves)
    for move in moves:
        typer.echo(move.describe(), err=True)
    if changed:
        with open(config, "w", encoding="utf-8") as f:
            f.write(document.as_string())
    typer.echo(f"moved {len(moves)} Debian file(s), {len(changed)} source(s) in {config}", err=True)


@app.command("check")
def check_command(
    config: ConfigArg,
    packages: Annotated[
        list[str] | None, typer.Argument(help="Packages to check (default: all built).")
    ] = None,
    store: StoreOption = None,
    cores: Annotated[int | None, typer.Option("--cores", min=1)] = None,
) -> None:
    """Rebuild built packages and compare NAR hashes (like nix-build --check); name the files that differ."""
    from storekit.bootstrap.reproduce import check_packages

    with _bootstrap(config, store) as boot:
        found = check_packages(
            boot,
            packages or (),
            cores=_cores(1, cores),
            progress=lambda p: typer.echo(f"checking {p}", err=True),
        )
    checked = [c for c in found if c.result is not None]
    for c in found:
        if c.result is None:
            typer.echo(f"skipped  {c.id} (not built)")
        elif c.result.same:
            typer.echo(f"same     {c.id} ({c.result.seconds:.0f}s)")
        else:
            shown = ", ".join(c.result.differing[:10]) + (" …" if len(c.result.differing) > 10 else "")
            typer.echo(f"differs  {c.id}: {shown}")
    same = sum(c.result.same for c in checked if c.result is not None)
    typer.echo(f"{same} of {len(checked)} package(s) rebuild bit for bit", err=True)
    if same != len(checked):
        raise StorekitError(f"{len(checked) - same} package(s) do not rebuild bit for bit")
