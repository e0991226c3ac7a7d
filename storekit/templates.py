"""storekit's flake templates as package data: list them, read them, write one into a directory.

The templates live once, in the repository's `templates/` (the root `flake.nix` serves them to
`nix flake init -t`); `storekit/templates` is a symlink to it, so a checkout, an editable install and a
wheel all read the same files. `templates/templates.toml` names them and describes them for both.

Writing follows Nix 2.8's `nix flake init` (src/nix/flake.cc, CmdFlakeInitCommon) so the two tools make
the same directory: regular files get the default mode (0666 less the umask: Nix 2.8 drops the
executable bit), symlinks stay symlinks, a file that already exists with the same bytes is left alone,
one that differs is refused, and in a git work tree the new files are added with `--intent-to-add` so a
git flake sees them. Unlike Nix, every conflict is found before the first byte is written.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import tomlkit
import tomlkit.exceptions

from storekit.errors import ConfigError, FileSystemError, StorekitError
from storekit.programs import which

INDEX = "templates.toml"


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    description: str


class Kind(Enum):
    FILE = "file"
    SYMLINK = "symlink"


@dataclass(frozen=True, slots=True)
class TemplateFile:
    """One entry of a template: `path` is relative (with `/`), `data` the contents or the link target."""

    path: str
    kind: Kind
    data: bytes


def templates_root() -> Path:
    """The directory holding `templates.toml` and one directory per template (package data)."""
    root = Path(__file__).resolve().parent / "templates"
    if not (root / INDEX).is_file():
        raise StorekitError(
            f"storekit's templates are missing ({root / INDEX} not found); reinstall storekit"
        )
    return root


# --- the index (pure) ---------------------------------------------------------------------------------


def parse_index(text: str, file: str) -> tuple[Template, ...]:
    """Templates from `templates.toml` (one table per template, each with a `description`), by name."""
    try:
        document = tomlkit.parse(text).unwrap()
    except tomlkit.exceptions.ParseError as e:
        raise ConfigError(file, "", f"not valid TOML: {e}") from e
    templates = []
    for name, table in document.items():
        if not isinstance(table, dict) or not isinstance(table.get("description"), str):
            raise ConfigError(file, name, 'must be a table with a string description = "…"')
        templates.append(Template(name, table["description"]))
    return tuple(sorted(templates, key=lambda t: t.name))


def list_templates(root: Path | None = None) -> tuple[Template, ...]:
    root = root or templates_root()
    return parse_index((root / INDEX).read_text(encoding="utf-8"), str(root / INDEX))


def find_template(name: str, root: Path | None = None) -> Template:
    templates = list_templates(root)
    for template in templates:
        if template.name == name:
            return template
    known = ", ".join(t.name for t in templates)
    raise StorekitError(f"no template named '{name}' (templates: {known}); see `storekit template list`")


# --- reading a template ----------------------------------------------------------------------------


def template_files(name: str, root: Path | None = None) -> tuple[TemplateFile, ...]:
    """The entries of template `name`, sorted by path; directories are implied by the paths."""
    root = root or templates_root()
    find_template(name, root)
    base = root / name
    files: list[TemplateFile] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for entry in sorted(filenames) + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            full = Path(dirpath) / entry
            rel = full.relative_to(base).as_posix()
            if full.is_symlink():
                files.append(TemplateFile(rel, Kind.SYMLINK, os.fsencode(os.readlink(full))))
            elif full.is_file():
                files.append(TemplateFile(rel, Kind.FILE, full.read_bytes()))
            else:
                raise FileSystemError(str(full), f"template file '{full}' has an unsupported type")
    return tuple(sorted(files, key=lambda f: f.path))


# --- writing a template into a directory ------------------------------------------------------------


def plan_init(files: Sequence[TemplateFile], dest: Path) -> tuple[TemplateFile, ...]:
    """The entries still to write into `dest`; raises if an existing entry differs (nothing written)."""
    todo = []
    for f in files:
        target = dest / f.path
        if not os.path.lexists(target):
            todo.append(f)
            continue
        if _existing_matches(f, target):
            continue
        what = "symlink" if f.kind is Kind.SYMLINK else "file"
        raise FileSystemError(
            str(target),
            f"refusing to overwrite existing {what} '{target}': it differs from the template's; "
            "move it away or merge it by hand, then run again",
        )
    return tuple(todo)


def write_files(files: Sequence[TemplateFile], dest: Path) -> tuple[Path, ...]:
    """Write entries under `dest` as `nix flake init` does: default modes, symlinks as symlinks."""
    written = []
    for f in files:
        target = dest / f.path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if f.kind is Kind.SYMLINK:
                os.symlink(os.fsdecode(f.data), target)
            else:
                with open(target, "xb") as out:
                    out.write(f.data)
        except OSError as e:
            raise FileSystemError(str(target), f"cannot write '{target}': {e.strerror}") from e
        written.append(target)
    return tuple(written)


def git_intent_to_add(dest: Path, written: Sequence[Path]) -> None:
    """In a git work tree, `git add --intent-to-add` the new files, as Nix does, so a git flake sees them."""
    if not written or not (dest / ".git").exists() or which("git") is None:
        return
    argv = ["git", "-C", str(dest), "add", "--intent-to-add", "--force", "--"]
    argv += [str(p.relative_to(dest)) for p in written]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StorekitError(f"`{' '.join(argv)}` failed: {proc.stderr.strip()}")


def init_template(name: str, dest: Path, root: Path | None = None) -> tuple[Path, ...]:
    """Write template `name` into `dest` (created if missing); return the paths written."""
    files = template_files(name, root)
    todo = plan_init(files, dest)
    written = write_files(todo, dest)
    git_intent_to_add(dest, written)
    return written


def _existing_matches(f: TemplateFile, target: Path) -> bool:
    try:
        if f.kind is Kind.SYMLINK:
            return target.is_symlink() and os.fsencode(os.readlink(target)) == f.data
        return target.is_file() and target.read_bytes() == f.data
    except OSError as e:
        raise FileSystemError(str(target), f"cannot read '{target}': {e.strerror}") from e
