"""`storekit store`: Add, query, export, collect and check paths of a store (local by default).

Every command takes `--store SPEC` (a store dir such as `/opt/store`, or a URI such as
`local?store=…&state=…&real=…`); without it, `$STOREKIT_STORE`, else the user's own store under
`$XDG_DATA_HOME/storekit`. Paths may be given as store paths, paths inside them, or symlinks to them
(a `result` link or a GC root).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from storekit.errors import InvalidStorePath, StoreError
from storekit.store.base import Store, ValidPathInfo
from storekit.store.uri import default_store_spec, open_store, parse_store_spec
from storekit.storepath import StorePath

NAME = "store"
HELP = "Add, query, export, garbage-collect, verify and optimise a store."
app = typer.Typer(no_args_is_help=True)

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Store spec: a store dir (/opt/store) or a URI (local?store=…). "
        "Default: $STOREKIT_STORE, else ~/.local/share/storekit/store.",
    ),
]
PathsArgument = Annotated[list[str], typer.Argument(help="Store paths (or paths in them, or links to them).")]


# --- opening stores and naming paths (also used by other command groups) ----------------------------


def open_cli_store(spec: str | None) -> Store:
    """Open the store a user named, or the default one; relative dirs are taken from the cwd."""
    if spec is None:
        return open_store(default_store_spec(os.environ))
    return open_store(parse_store_spec(spec, base_dir=os.getcwd()))


@contextmanager
def local_store(spec: str | None) -> Iterator[Any]:
    """The local store `spec` names (the commands that manage files on disk need one)."""
    from storekit.store.local import LocalStore

    store = open_cli_store(spec)
    try:
        if not isinstance(store, LocalStore):
            raise StoreError(f"'{store.uri}' is not a local store; this command needs one")
        yield store
    finally:
        store.close()


def resolve_path(store: Store, text: str) -> StorePath:
    """A store path from what a user typed: the path, a path inside it, or a symlink chain to it."""
    seen = 0
    current = text
    while not current.startswith(store.store_dir.path + "/"):
        if not os.path.islink(current) or seen > 40:
            raise InvalidStorePath(f"path '{text}' is not in the store dir '{store.store_dir}'")
        current = os.path.join(os.path.dirname(os.path.abspath(current)), os.readlink(current))
        seen += 1
    return store.parse_path(os.path.normpath(current))


def show_bytes(n: int) -> str:
    """Nix's `showBytes`."""
    return f"{n / (1024 * 1024):.2f} MiB"


# --- adding ----------------------------------------------------------------------------------------


@app.command("add")
def add(
    paths: Annotated[list[str], typer.Argument(help="Files or directories to add.")],
    name: Annotated[str | None, typer.Option(help="Name in the store (default: the base name).")] = None,
    store: StoreOption = None,
) -> None:
    """Add files or directories, printing their store paths (like `nix-store --add`)."""
    if name is not None and len(paths) > 1:
        raise StoreError("--name applies to one path; add the others separately")
    with _opened(store) as s:
        for path in paths:
            if not os.path.lexists(path):
                raise StoreError(f"cannot add '{path}': no such file or directory")
            typer.echo(s.add_path(os.path.abspath(path), name))


@app.command("add-text")
def add_text(
    name: Annotated[str, typer.Argument(help="Name in the store (e.g. foo.drv).")],
    file: Annotated[str, typer.Argument(help="File holding the text ('-' for stdin).")] = "-",
    reference: Annotated[
        list[str] | None, typer.Option("--reference", "-r", help="A store path the text refers to.")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Add a text file (a `.drv`, a `builtins.toFile`) with its references; prints its path."""
    data = sys.stdin.buffer.read() if file == "-" else open(file, "rb").read()  # noqa: SIM115
    with _opened(store) as s:
        refs = [resolve_path(s, r) for r in reference or []]
        typer.echo(s.add_text(name, data, refs))


# --- queries ---------------------------------------------------------------------------------------


@app.command("info")
def info(
    paths: PathsArgument,
    json_: Annotated[bool, typer.Option("--json", help="Print `nix path-info --json`'s JSON.")] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Include the closures.")] = False,
    closure_size: Annotated[
        bool, typer.Option("--closure-size", "-S", help="Add the closure's total NAR size.")
    ] = False,
    store: StoreOption = None,
) -> None:
    """Show what the store knows about paths: hash, size, references, deriver, signatures, CA."""
    with _opened(store) as s:
        wanted = {resolve_path(s, p) for p in paths}
        if recursive:
            wanted = s.closure(wanted)
        infos = [s.query_path_info(p) for p in sorted(wanted, key=str)]
        sizes = {i.path: sum(s.query_path_info(p).nar_size for p in s.closure([i.path])) for i in infos}
        if json_:
            rows = [path_info_json(i, sizes[i.path] if closure_size else None) for i in infos]
            typer.echo(json.dumps(rows, separators=(",", ":"), ensure_ascii=False))
            return
        for i in infos:
            typer.echo(_info_text(i, sizes[i.path] if closure_size else None))


def path_info_json(info: ValidPathInfo, closure_size: int | None = None) -> dict[str, Any]:
    """One object of `nix path-info --json` (Nix 2.8 field order; impure fields included)."""
    out: dict[str, Any] = {
        "path": str(info.path),
        "narHash": info.nar_hash.sri,
        "narSize": info.nar_size,
        "references": sorted(str(r) for r in info.references),
    }
    if info.ca:
        out["ca"] = info.ca
    if closure_size is not None:
        out["closureSize"] = closure_size
    if info.deriver:
        out["deriver"] = str(info.deriver)
    if info.registration_time:
        out["registrationTime"] = info.registration_time
    if info.ultimate:
        out["ultimate"] = True
    if info.sigs:
        out["signatures"] = sorted(info.sigs)
    return out


def _info_text(info: ValidPathInfo, closure_size: int | None) -> str:
    lines = [
        f"StorePath: {info.path}",
        f"NarHash: {info.nar_hash}",
        f"NarSize: {info.nar_size}",
        "References: " + " ".join(sorted(r.base_name for r in info.references)),
    ]
    if closure_size is not None:
        lines.append(f"ClosureSize: {closure_size}")
    if info.deriver:
        lines.append(f"Deriver: {info.deriver.base_name}")
    lines += [f"Sig: {sig}" for sig in sorted(info.sigs)]
    if info.ca:
        lines.append(f"CA: {info.ca}")
    return "\n".join(lines) + "\n"


@app.command("closure")
def closure(paths: PathsArgument, store: StoreOption = None) -> None:
    """Print the closure of paths, dependencies first (like `nix-store -qR`)."""
    with _opened(store) as s:
        roots = [resolve_path(s, p) for p in paths]
        for path in reversed(s.topo_sort(s.closure(roots))):
            typer.echo(path)


@app.command("referrers")
def referrers(paths: PathsArgument, store: StoreOption = None) -> None:
    """Print the valid paths that refer to paths (like `nix-store -q --referrers`)."""
    with _opened(store) as s:
        found: set[StorePath] = set()
        for p in paths:
            found |= s.query_referrers(resolve_path(s, p))
        for path in sorted(found, key=str):
            typer.echo(path)


# --- export / import -------------------------------------------------------------------------------


@app.command("export")
def export(
    paths: PathsArgument,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Write paths with their metadata in `nix-store --export` format (`nix-store --import` reads it)."""
    from storekit.store.export import export_paths

    if output is None and sys.stdout.isatty():
        raise StoreError("refusing to write an export to a terminal; redirect stdout or use --output")
    with _opened(store) as s:
        wanted = [resolve_path(s, p) for p in paths]
        if output is None:
            export_paths(s, wanted, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            with open(output, "wb") as f:
                export_paths(s, wanted, f)


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(help="An export ('-' for stdin).")] = "-",
    store: StoreOption = None,
) -> None:
    """Add the paths of a `nix-store --export` stream, printing each (like `nix-store --import`)."""
    from storekit.store.export import import_paths

    with _opened(store) as s:
        if file == "-":
            imported = import_paths(s, sys.stdin.buffer)
        else:
            with open(file, "rb") as f:
                imported = import_paths(s, f)
        for path in imported:
            typer.echo(path)


# --- garbage collection ----------------------------------------------------------------------------


@app.command("add-root")
def add_root(
    path: Annotated[str, typer.Argument(help="The store path to keep.")],
    link: Annotated[str, typer.Argument(help="The symlink to create (an indirect GC root).")],
    store: StoreOption = None,
) -> None:
    """Make LINK a symlink to PATH that keeps PATH's closure alive (like `nix-store --add-root`)."""
    from storekit.store.gc import add_root as add_root_

    with local_store(store) as s:
        typer.echo(add_root_(s, resolve_path(s, path), link))


@app.command("roots")
def roots(store: StoreOption = None) -> None:
    """Print the GC roots as `LINK -> PATH` (like `nix-store --gc --print-roots`, without runtime roots)."""
    from storekit.store.gc import find_roots

    with local_store(store) as s:
        for path, links in sorted(find_roots(s).items(), key=lambda kv: str(kv[0])):
            for link in sorted(links):
                typer.echo(f"{link} -> {path}")


@app.command("delete")
def delete(paths: PathsArgument, store: StoreOption = None) -> None:
    """Delete paths, refusing any that is a GC root or still referenced (like `nix-store --delete`)."""
    from storekit.store.gc import delete_paths

    with local_store(store) as s:
        result = delete_paths(s, [resolve_path(s, p) for p in paths])
        for path in result.paths:
            typer.echo(f"deleting '{path}'", err=True)
        typer.echo(f"{len(result.paths)} store paths deleted, {show_bytes(result.bytes_freed)} freed")


@app.command("gc")
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would be deleted.")] = False,
    max_freed: Annotated[int | None, typer.Option(help="Stop after freeing this many bytes.")] = None,
    store: StoreOption = None,
) -> None:
    """Delete every path not reachable from a GC root, then unused `.links` (like `nix-store --gc`)."""
    from storekit.store.gc import collect_garbage

    with local_store(store) as s:
        result = collect_garbage(s, dry_run=dry_run, max_freed=max_freed)
    for path in result.paths:
        typer.echo(path if dry_run else f"deleting '{path}'", err=not dry_run)
    verb = "would be deleted" if dry_run else "deleted"
    freed = "would be freed" if dry_run else "freed"
    typer.echo(f"{len(result.paths)} store paths {verb}, {show_bytes(result.bytes_freed)} {freed}")


# --- verify / optimise -----------------------------------------------------------------------------


@app.command("verify")
def verify(
    check_contents: Annotated[bool, typer.Option(help="Also hash every path and `.links` entry.")] = False,
    repair: Annotated[bool, typer.Option(help="Fix what can be fixed.")] = False,
    store: StoreOption = None,
) -> None:
    """Check that valid paths exist and (with --check-contents) are unmodified (`nix-store --verify`)."""
    from storekit.store.verify import verify_store

    with local_store(store) as s:
        report = verify_store(s, check_contents=check_contents, repair=repair)
    for line in report.fixed:
        typer.echo(line, err=True)
    for line in report.errors:
        typer.echo(f"error: {line}", err=True)
    if not report.ok:
        raise StoreError(f"store '{s.uri}' has {len(report.errors)} problem(s); see above")
    typer.echo(f"checked {report.checked} paths: ok")


@app.command("optimise")
def optimise(
    store: Annotated[
        list[str] | None,
        typer.Option("--store", help="A store to deduplicate; repeat to share files across stores."),
    ] = None,
) -> None:
    """Replace identical files by hard links to one copy in `.links` (like `nix-store --optimise`)."""
    from storekit.store.local import LocalStore
    from storekit.store.optimise import optimise_stores

    specs: list[str | None] = list(store) if store else [None]
    opened = [open_cli_store(spec) for spec in specs]
    try:
        locals_ = [s for s in opened if isinstance(s, LocalStore)]
        if len(locals_) != len(opened):
            raise StoreError("optimise works on local stores only")
        stats = optimise_stores(locals_)
    finally:
        for s in opened:
            s.close()
    typer.echo(f"{show_bytes(stats.bytes_freed)} freed by hard-linking {stats.files_linked} files")


@contextmanager
def _opened(spec: str | None) -> Iterator[Store]:
    store = open_cli_store(spec)
    try:
        yield store
    finally:
        store.close()
