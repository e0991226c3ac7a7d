"""`storekit store`: Add, query, export, collect and check paths of a store (local by default).

Every command takes `--store SPEC` (see `storekit.cli._options`). Queries work on any store (local,
overlay, binary cache); garbage collection and verify work on local and overlay stores (on an overlay:
its upper store), optimise needs a local store. Paths may be given as store paths, paths inside them,
or symlinks to them (a `result` link or a GC root).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from storekit.cli._options import (
    JsonOption,
    PathArgument,
    PathsArgument,
    StoreOption,
    input_stream,
    open_cli_store,
    opened_store,
    output_stream,
    parse_size,
    print_json,
    read_input,
    require_local,
    resolve_path,
    show_bytes,
)
from storekit.cli.store_realisation import realisation
from storekit.cli.store_sign import sign
from storekit.errors import StoreError
from storekit.store.base import Store, ValidPathInfo
from storekit.storepath import StorePath

if TYPE_CHECKING:
    from storekit.store.gc import GcResult
    from storekit.store.local import LocalStore

__all__ = ["app", "path_info_json"]

NAME = "store"
HELP = "Add, query, export, garbage-collect, verify and optimise a store."
app = typer.Typer(no_args_is_help=True)


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
    with opened_store(store) as s:
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
    data = read_input(file)
    with opened_store(store) as s:
        refs = [resolve_path(s, r) for r in reference or []]
        typer.echo(s.add_text(name, data, refs))


# --- queries ---------------------------------------------------------------------------------------


@app.command("info")
def info(
    paths: PathsArgument,
    json_: Annotated[
        bool, typer.Option("--json", help="Print the JSON of `nix path-info --json`, byte for byte.")
    ] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Include the closures.")] = False,
    closure_size: Annotated[
        bool, typer.Option("--closure-size", "-S", help="Add the closure's total NAR size.")
    ] = False,
    store: StoreOption = None,
    json_format: Annotated[
        int,
        typer.Option(
            "--json-format",
            help="With --json: 0 Nix 2.8's list (default); 1 Nix 2.19's map by path; "
            "2, 3 the versioned {version, storeDir, info} forms by base name.",
            min=0,
            max=3,
        ),
    ] = 0,
) -> None:
    """Show what the store knows about paths: hash, size, references, deriver, signatures, CA."""
    with opened_store(store) as s:
        wanted = {resolve_path(s, p) for p in paths}
        if recursive:
            wanted = s.closure(wanted)
        infos = [s.query_path_info(p) for p in sorted(wanted, key=str)]
        sizes = {i.path: _closure_size(s, i.path) if closure_size else None for i in infos}
    if json_:
        from storekit.store import info_json

        doc = info_json.show([(i, sizes[i.path]) for i in infos], s.store_dir, json_format)
        typer.echo(info_json.render(doc, json_format), nl=False)  # Nix 2.8: no newline after it
        return
    for i in infos:
        typer.echo(_info_text(i, sizes[i.path]))


def _closure_size(store: Store, path: StorePath) -> int:
    return sum(store.query_path_info(p).nar_size for p in store.closure([path]))


def path_info_json(info: ValidPathInfo, closure_size: int | None = None) -> dict[str, Any]:
    """One object of Nix 2.8's `nix path-info --json` (its field order; impure fields included)."""
    from storekit.store.info_json import nix28_object

    return nix28_object(info, closure_size)


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
def closure(paths: PathsArgument, as_json: JsonOption = False, store: StoreOption = None) -> None:
    """Print the closure of paths, dependencies first (like `nix-store -qR`); --json: a list."""
    with opened_store(store) as s:
        roots = [resolve_path(s, p) for p in paths]
        found = [str(p) for p in reversed(s.topo_sort(s.closure(roots)))]
    _print_paths(found, as_json)


@app.command("referrers")
def referrers(paths: PathsArgument, as_json: JsonOption = False, store: StoreOption = None) -> None:
    """Print the valid paths that refer to paths (like `nix-store -q --referrers`); --json: a list."""
    with opened_store(store) as s:
        found: set[StorePath] = set()
        for p in paths:
            found |= s.query_referrers(resolve_path(s, p))
    _print_paths(sorted(str(p) for p in found), as_json)


def _print_paths(paths: list[str], as_json: bool) -> None:
    if as_json:
        print_json(paths)
        return
    for path in paths:
        typer.echo(path)


app.command("sign")(sign)
app.command("realisation")(realisation)


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
    with opened_store(store) as s:
        wanted = [resolve_path(s, p) for p in paths]
        if output is None:
            export_paths(s, wanted, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            with output_stream(output) as f:
                export_paths(s, wanted, f)


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(help="An export ('-' for stdin).")] = "-",
    store: StoreOption = None,
) -> None:
    """Add the paths of a `nix-store --export` stream, printing each (like `nix-store --import`)."""
    from storekit.store.export import import_paths

    with input_stream(file) as f, opened_store(store) as s:
        imported = import_paths(s, f)
    for path in imported:
        typer.echo(path)


# --- garbage collection: local stores, and overlays (their upper store) ------------------------------


@app.command("add-root")
def add_root(
    path: PathArgument,
    link: Annotated[str, typer.Argument(help="The symlink to create (an indirect GC root).")],
    store: StoreOption = None,
) -> None:
    """Make LINK a symlink to PATH that keeps PATH's closure alive (like `nix-store --add-root`)."""
    from storekit.store.gc import add_root as add_root_
    from storekit.store.overlay import OverlayStore

    with opened_store(store) as s:
        wanted = resolve_path(s, path)
        if isinstance(s, OverlayStore):
            s.borrow([wanted])  # a lower path is rooted through its row in the upper database
        typer.echo(add_root_(_gc_store(s, "add-root"), wanted, link))


@app.command("roots")
def roots(as_json: JsonOption = False, store: StoreOption = None) -> None:
    """Print the GC roots as `LINK -> PATH` (like `nix-store --gc --print-roots`, runtime roots too)."""
    from storekit.store.gc import find_roots
    from storekit.store.runtime_roots import find_runtime_roots

    with opened_store(store) as s:
        local = _gc_store(s, "roots")
        found = find_roots(local)
        for rooted, where in find_runtime_roots(local).items():
            found.setdefault(rooted, set()).update(where)
    rows = [
        (link, str(p))
        for p, links in sorted(found.items(), key=lambda kv: str(kv[0]))
        for link in sorted(links)
    ]
    if as_json:
        print_json([{"link": link, "path": path} for link, path in rows])
        return
    for link, path in rows:
        typer.echo(f"{link} -> {path}")


@app.command("delete")
def delete(paths: PathsArgument, as_json: JsonOption = False, store: StoreOption = None) -> None:
    """Delete paths, refusing any that is a GC root or still referenced (like `nix-store --delete`)."""
    from storekit.store.gc import delete_paths
    from storekit.store.overlay import OverlayStore

    with opened_store(store) as s:
        wanted = [resolve_path(s, p) for p in paths]
        if isinstance(s, OverlayStore):
            result = s.delete(wanted)
        else:
            result = delete_paths(_gc_store(s, "delete"), wanted)
    _print_gc(result, as_json)


@app.command("gc")
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would be deleted.")] = False,
    max_freed: Annotated[
        int | None,
        typer.Option(
            parser=parse_size,
            metavar="SIZE",
            help="Stop after freeing this many bytes (a number, or with K, M, G or T: 512M, 2G).",
        ),
    ] = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Delete every path not reachable from a GC root, then unused `.links` (like `nix-store --gc`)."""
    from storekit.realise.builddir import reclaim
    from storekit.store.gc import collect_garbage
    from storekit.store.overlay import OverlayStore

    if not dry_run:
        reclaim()  # build dirs (in the temp dir) of builds killed before they cleaned up
    with opened_store(store) as s:
        if isinstance(s, OverlayStore):
            result = s.collect_garbage(dry_run=dry_run, max_freed=max_freed)
        else:
            result = collect_garbage(_gc_store(s, "gc"), dry_run=dry_run, max_freed=max_freed)
    _print_gc(result, as_json)


def _gc_store(store: Store, command: str) -> LocalStore:
    """The local store whose roots and files `command` works on: the store, or an overlay's upper."""
    from storekit.store.local import LocalStore
    from storekit.store.overlay import OverlayStore

    local = store.upper if isinstance(store, OverlayStore) else store
    if isinstance(local, LocalStore):
        return local
    raise StoreError(
        f"'{store.uri}' is not a local or overlay store: `store {command}` manages the files of a "
        "store on this machine"
    )


def _print_gc(result: GcResult, as_json: bool) -> None:
    """Nix's output: what is deleted on stderr, the summary on stdout (a dry run lists paths on stdout)."""
    if as_json:
        print_json({"paths": list(result.paths), "bytesFreed": result.bytes_freed, "dryRun": result.dry_run})
        return
    for path in result.paths:
        typer.echo(path if result.dry_run else f"deleting '{path}'", err=not result.dry_run)
    verb, freed = ("would be deleted", "would be freed") if result.dry_run else ("deleted", "freed")
    typer.echo(f"{len(result.paths)} store paths {verb}, {show_bytes(result.bytes_freed)} {freed}")


# --- verify (local and overlay stores) / optimise (local stores) ---------------------------------------


@app.command("verify")
def verify(
    check_contents: Annotated[bool, typer.Option(help="Also hash every path and `.links` entry.")] = False,
    repair: Annotated[bool, typer.Option(help="Fix what can be fixed.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report {checked, ok, errors, fixed} as JSON.")
    ] = False,
    store: StoreOption = None,
) -> None:
    """Check that valid paths exist and (with --check-contents) are unmodified (`nix-store --verify`).

    On an overlay this checks the upper store; rows it borrowed must still be valid in the lower.
    """
    from storekit.store.overlay import OverlayStore
    from storekit.store.verify import verify_store

    with opened_store(store) as s:
        if isinstance(s, OverlayStore):
            report = s.verify(check_contents=check_contents, repair=repair)
        else:
            local = require_local(s, "store verify")
            report = verify_store(local, check_contents=check_contents, repair=repair)
    if as_json:
        print_json(
            {"checked": report.checked, "ok": report.ok, "errors": report.errors, "fixed": report.fixed}
        )
    else:
        for line in report.fixed:
            typer.echo(line, err=True)
        for line in report.errors:
            typer.echo(f"error: {line}", err=True)
    if not report.ok:
        shown = "in the report" if as_json else "above"
        raise StoreError(f"store '{s.uri}' has {len(report.errors)} problem(s); see {shown}")
    if not as_json:
        typer.echo(f"checked {report.checked} paths: ok")


@app.command("optimise")
def optimise(
    store: Annotated[
        list[str] | None,
        typer.Option(
            "--store",
            help="A store to deduplicate, in the forms --store takes everywhere; repeat to share files "
            "across stores. Default: your store, as for --store.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {filesLinked, bytesFreed, blocksFreed} as JSON.")
    ] = False,
) -> None:
    """Replace identical files by hard links to one copy in `.links` (like `nix-store --optimise`)."""
    from storekit.store.optimise import optimise_stores

    specs: list[str | None] = list(store) if store else [None]
    opened: list[Store] = []
    try:
        for spec in specs:
            opened.append(open_cli_store(spec))
        stats = optimise_stores([require_local(s, "store optimise") for s in opened])
    finally:
        for s in opened:
            s.close()
    if as_json:
        print_json(
            {
                "filesLinked": stats.files_linked,
                "bytesFreed": stats.bytes_freed,
                "blocksFreed": stats.blocks_freed,
            }
        )
        return
    typer.echo(f"{show_bytes(stats.bytes_freed)} freed by hard-linking {stats.files_linked} files")
