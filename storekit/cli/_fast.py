"""`storekit hash path|file` answered without typer, when the command line is a plain one.

Scripts call `hash path` on many small files, one command each, so the command's fixed cost is most of
its time: importing typer (and click) costs several times what hashing a small file does, and more
than Nix takes for the whole command. A command line made only of paths and the flags below is parsed
here; anything else (`--help`, an unknown or misspelt flag, no path, an option given as `-x`) returns
None and goes to typer, which owns the messages. The flags and what they mean are the ones `hash.py`
declares (`FLAGS`), and `tests/cli/test_cli_fast.py` checks that both paths print the same bytes.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from storekit.hashing import Hash

#: flag -> encoding (`storekit.hashing.Base` values), as `storekit hash` declares them; the last wins
FLAGS = {"--base16": "base16", "--base32": "base32", "--base64": "base64", "--sri": "sri"}


def parse(args: list[str]) -> tuple[str, list[str], str, str, bool] | None:
    """(kind, paths, algo, base, json) for a plain `hash path|file …` command line, else None."""
    if len(args) < 2 or args[0] != "hash" or args[1] not in ("path", "file"):
        return None
    paths: list[str] = []
    algo, base, as_json = "sha256", "sri", False
    rest = iter(args[2:])
    for arg in rest:
        if arg in FLAGS:
            base = FLAGS[arg]
        elif arg == "--json":
            as_json = True
        elif arg == "--type":
            value = next(rest, None)
            if value is None:
                return None
            algo = value
        elif arg.startswith("--type="):
            algo = arg.removeprefix("--type=")
        elif arg.startswith("-") or not arg:
            return None
        else:
            paths.append(arg)
    return (args[1], paths, algo, base, as_json) if paths else None


def render(paths: list[str], hashes: list[str], as_json: bool) -> str:
    """What `storekit hash` prints for these (already formatted) hashes: one per line, or JSON."""
    if not as_json:
        return "".join(f"{h}\n" for h in hashes)
    import json
    from pathlib import Path  # the path as typer's `list[Path]` argument prints it

    document = [{"path": str(Path(p)), "hash": h} for p, h in zip(paths, hashes, strict=True)]
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def run(parsed: tuple[str, list[str], str, str, bool]) -> None:
    """Hash and print; errors propagate as `StorekitError`s to `main`'s boundary.

    The cyclic garbage collector is off for the rest of this short process: importing the hasher
    allocates enough to start collections (about 1 ms, as much as the hashing costs), which find
    nothing: modules and classes live to the end, and the walk's entries, buffers and generators are
    freed by reference counting as usual.
    """
    import gc

    gc.disable()
    from storekit.nar.fs import hash_file, hash_path

    kind, paths, algo, base, as_json = parsed
    hashes = [hash_path(p, algo)[0] if kind == "path" else hash_file(p, algo) for p in paths]
    shown = [_body(h, base) for h in hashes]
    sys.stdout.write(render(paths, shown, as_json))


def _body(h: Hash, base: str) -> str:
    """`h.format(Base(base), prefix=False)`, without `Base`, whose `enum` costs more than the hashing."""
    if base == "base16":
        return h.base16
    if base == "base32":
        return h.nix32
    return h.base64 if base == "base64" else h.sri
