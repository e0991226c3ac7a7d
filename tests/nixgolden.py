"""Where NixOS/nix's own golden test data is: `../shared/nix-golden` beside the checkout.

The files are the oracle for Nix versions newer than the 2.8 installed here (see its SOURCES.md). They
are read in place, never copied into the project; a test that needs them skips, naming the path, when
they are absent. In a git worktree the directory is looked up beside the main checkout too, and
`$STOREKIT_NIX_GOLDEN` names another place.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def _candidates() -> list[Path]:
    found = [REPO.parent / "shared" / "nix-golden"]
    git = REPO / ".git"
    if git.is_file():  # a worktree: "gitdir: <main>/.git/worktrees/<name>"
        gitdir = Path(git.read_text().removeprefix("gitdir:").strip())
        main = next((p.parent for p in gitdir.parents if p.name == ".git"), None)
        if main is not None:
            found.append(main.parent / "shared" / "nix-golden")
    if os.environ.get("STOREKIT_NIX_GOLDEN"):
        found.insert(0, Path(os.environ["STOREKIT_NIX_GOLDEN"]))
    return found


@cache
def golden_root() -> Path | None:
    return next((p for p in _candidates() if (p / "SOURCES.md").is_file()), None)


def golden_dir(*parts: str) -> Path:
    """`nix-golden/<parts>`, or skip the test: the data lives beside the checkout, not in it."""
    root = golden_root()
    if root is None:
        pytest.skip(f"Nix's golden test data is absent ({_candidates()[0]}); see tests/nixgolden.py")
    return root.joinpath(*parts)


SCHEMA_BASE = "https://nix.dev/manual/nix/latest/protocols/json/schema/"
ABSENT = REPO / "nix-golden-is-absent"


def golden_files(subdir: str, pattern: str) -> list[Path]:
    """For parametrising at collection time: the files; one stand-in that skips when the data is absent."""
    root = golden_root()
    return sorted((root / "libstore-tests-data" / subdir).glob(pattern)) if root is not None else [ABSENT]


def golden_id(path: Path) -> str:
    return "absent" if path == ABSENT else str(path.relative_to(path.parents[1]))


def read(path: Path) -> bytes:
    """The bytes of a golden file (skipping when the data is absent)."""
    golden_dir()
    return path.read_bytes()


def validator(schema_file: str) -> Any:
    """A jsonschema validator for one of Nix's JSON schemas (YAML), its `$ref`s to the others resolved."""
    import jsonschema
    import yaml
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    # The files say draft-04 but use `const` and `$defs` (2019 and later): Nix's own docs tooling reads
    # them as the current draft, so this does too (under draft 4 `const` would be silently ignored).
    directory = golden_dir("json-schema")
    resources = []
    for file in directory.glob("*.yaml"):
        contents = yaml.safe_load(file.read_text())
        resource = Resource(contents=contents, specification=DRAFT202012)
        resources += [(SCHEMA_BASE + file.name, resource), (file.name, resource)]
    registry: Registry[Any] = Registry().with_resources(resources)
    schema = registry.contents(SCHEMA_BASE + schema_file)
    cls = jsonschema.Draft202012Validator
    return cls(schema, registry=registry)


def store_data(*parts: str) -> Path:
    return golden_dir("libstore-tests-data", *parts)
