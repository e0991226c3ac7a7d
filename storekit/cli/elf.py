"""`storekit elf`: Inspect and patch ELF files (rpath, interpreter, needed, soname).

Each patch command takes one or more FILEs and edits each all-or-nothing: a refused file stays
byte-for-byte as it was and the others are still patched; the errors are reported together.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from storekit.errors import ElfError

if TYPE_CHECKING:
    from storekit.elf.edits import Edit, RpathKind

NAME = "elf"
HELP = "Inspect and patch ELF files (rpath, interpreter, needed, soname)."
app = typer.Typer(no_args_is_help=True)

Files = Annotated[list[str], typer.Argument(help="ELF files to patch.", show_default=False)]
Output = Annotated[
    str | None, typer.Option("--output", "-o", help="Write the result here instead (one FILE only).")
]
InPlace = Annotated[
    bool,
    typer.Option(
        "--in-place",
        help="Grow files by writing only the changed bytes into them, not through a temp file and rename: "
        "much faster on whole trees, but a crash midway can leave a file half-written.",
    ),
]
ForceRpath = Annotated[
    bool, typer.Option("--force-rpath", help="Use DT_RPATH (searched before LD_LIBRARY_PATH).")
]
ForceRunpath = Annotated[bool, typer.Option("--force-runpath", help="Use DT_RUNPATH.")]


def _patch(
    files: list[str], output: str | None, edits_for: Callable[[str], list[Edit]], in_place: bool = False
) -> None:
    from storekit.elf.fs import edit_file

    if output is not None and len(files) != 1:
        raise typer.BadParameter("--output takes exactly one FILE")
    failures: list[ElfError] = []
    for f in files:
        try:
            edit_file(f, edits_for(f), output, atomic=not in_place)
        except ElfError as e:
            failures.append(e)
    if len(files) == 1 and failures:
        raise failures[0]
    if failures:
        lines = "\n".join(f"  {e}" for e in failures)
        raise ElfError(
            "", f"{len(failures)} of {len(files)} files were not patched (they are unchanged):\n{lines}"
        )


def _force(force_rpath: bool, force_runpath: bool) -> RpathKind | None:
    if force_rpath and force_runpath:
        raise typer.BadParameter("--force-rpath and --force-runpath exclude each other")
    return "rpath" if force_rpath else "runpath" if force_runpath else None


@app.command("print")
def print_(
    file: Annotated[str, typer.Argument(help="An ELF file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print the interpreter, rpath, runpath, needed libraries, soname, class, machine and type."""
    from storekit.elf.fs import read_facts

    facts = read_facts(file).to_json()
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    for key, value in facts.items():
        if key == "needed":
            for lib in value:
                typer.echo(f"needed: {lib}")
        elif value is not None:
            typer.echo(f"{key}: {value}")


@app.command("set-rpath")
def set_rpath(
    rpath: Annotated[str, typer.Argument(help="Directories, separated by ':'.")],
    files: Files,
    output: Output = None,
    in_place: InPlace = False,
    force_rpath: ForceRpath = False,
    force_runpath: ForceRunpath = False,
) -> None:
    """Set the rpath (keeping DT_RPATH or DT_RUNPATH as it is, DT_RUNPATH when there is none)."""
    from storekit.elf.edits import SetRpath

    force = _force(force_rpath, force_runpath)
    _patch(files, output, lambda _: [SetRpath(rpath, force)], in_place)


@app.command("add-rpath")
def add_rpath(
    rpath: Annotated[str, typer.Argument(help="Directories to append, separated by ':'.")],
    files: Files,
    output: Output = None,
    in_place: InPlace = False,
    force_rpath: ForceRpath = False,
    force_runpath: ForceRunpath = False,
) -> None:
    """Append directories to the rpath."""
    from storekit.elf.edits import AddRpath

    force = _force(force_rpath, force_runpath)
    _patch(files, output, lambda _: [AddRpath(rpath, force)], in_place)


@app.command("remove-rpath")
def remove_rpath(files: Files, output: Output = None, in_place: InPlace = False) -> None:
    """Remove DT_RPATH and DT_RUNPATH."""
    from storekit.elf.edits import RemoveRpath

    _patch(files, output, lambda _: [RemoveRpath()], in_place)


@app.command("shrink-rpath")
def shrink_rpath(
    files: Files,
    output: Output = None,
    allowed_prefixes: Annotated[
        str | None,
        typer.Option(
            "--allowed-prefixes", help="Keep only absolute directories under these (':'-separated)."
        ),
    ] = None,
    in_place: InPlace = False,
) -> None:
    """Keep only the rpath directories that provide a NEEDED library (relative entries are kept)."""
    from storekit.elf.edits import SetRpath, shrink_rpath
    from storekit.elf.fs import library_provider, open_elf

    prefixes = [p for p in (allowed_prefixes or "").split(":") if p]

    def edits(f: str) -> list[Edit]:
        with open_elf(f) as elf:
            facts = elf.facts()
            machine = elf.header.machine
        current = facts.runpath if facts.runpath is not None else facts.rpath
        if current is None:
            return []
        provides = library_provider(facts.elf_class, machine)
        return [SetRpath(shrink_rpath(current, facts.needed, provides, prefixes))]

    _patch(files, output, edits, in_place)


@app.command("set-interpreter")
def set_interpreter(
    interpreter: Annotated[str, typer.Argument(help="Path of the dynamic loader.")],
    files: Files,
    output: Output = None,
    in_place: InPlace = False,
) -> None:
    """Set the program interpreter (PT_INTERP)."""
    from storekit.elf.edits import SetInterpreter

    _patch(files, output, lambda _: [SetInterpreter(interpreter)], in_place)


@app.command("add-needed")
def add_needed(
    library: Annotated[str, typer.Argument(help="Library name, e.g. libfoo.so.1.")],
    files: Files,
    output: Output = None,
    in_place: InPlace = False,
) -> None:
    """Add a DT_NEEDED entry (after the existing ones; nothing if it is already there)."""
    from storekit.elf.edits import AddNeeded

    _patch(files, output, lambda _: [AddNeeded(library)], in_place)


@app.command("remove-needed")
def remove_needed(
    library: Annotated[str, typer.Argument(help="Library name as the file names it.")],
    files: Files,
    output: Output = None,
    in_place: InPlace = False,
) -> None:
    """Remove a DT_NEEDED entry and the library's symbol version requirements."""
    from storekit.elf.edits import RemoveNeeded

    _patch(files, output, lambda _: [RemoveNeeded(library)], in_place)


@app.command("replace-needed")
def replace_needed(
    old: Annotated[str, typer.Argument(help="Library name as the file names it.")],
    new: Annotated[str, typer.Argument(help="New library name.")],
    files: Files,
    output: Output = None,
    in_place: InPlace = False,
) -> None:
    """Replace a DT_NEEDED entry (and rename the library in the symbol version requirements)."""
    from storekit.elf.edits import ReplaceNeeded

    _patch(files, output, lambda _: [ReplaceNeeded(old, new)], in_place)


@app.command("set-soname")
def set_soname(
    soname: Annotated[str, typer.Argument(help="The new DT_SONAME.")],
    files: Files,
    output: Output = None,
    in_place: InPlace = False,
) -> None:
    """Set DT_SONAME (added when missing)."""
    from storekit.elf.edits import SetSoname

    _patch(files, output, lambda _: [SetSoname(soname)], in_place)


@app.command("rewrite-prefix")
def rewrite_prefix(
    paths: Annotated[list[str], typer.Argument(help="Files and directory trees.", show_default=False)],
    old: Annotated[str, typer.Option("--from", help="The old prefix, e.g. /nix/store.", show_default=False)],
    new: Annotated[str, typer.Option("--to", help="The new prefix, e.g. /opt/store.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    in_place: InPlace = False,
) -> None:
    """Replace a leading directory in the interpreter, rpaths and absolute NEEDED names of every ELF file.

    Exits with status 1 when any file was refused (each refused file is left unchanged).
    """
    from storekit.elf.tree import rewrite_prefix as run

    report = run(paths, old, new, atomic=not in_place)
    if as_json:
        payload = {
            "changed": list(report.changed),
            "unchanged": report.unchanged,
            "not_elf": report.not_elf,
            "refused": [{"path": p, "reason": r} for p, r in report.refused],
        }
        typer.echo(json.dumps(payload, indent=2))
    else:
        typer.echo(report.summary())
        for path, reason in report.refused:
            typer.echo(f"refused: {path}: {reason}")
    if report.refused:
        raise typer.Exit(1)
