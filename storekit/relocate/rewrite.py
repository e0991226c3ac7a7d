"""Rewriting one file for another store dir: pick the rules by what the file is, decided by content.

ELF files go to `elfstrings` (their dynamic strings may grow through the ELF editor), text, checksummed
containers and other binary data to the rules in `rules`. Kept apart from those rules because
`elfstrings` builds on them: the dispatcher sits above both, so neither imports the other's caller.
"""

from __future__ import annotations

from storekit.relocate.elfstrings import rewrite_elf
from storekit.relocate.rules import (
    Outcome,
    Rules,
    container_kind,
    find_dir,
    is_text,
    replace_hash_parts,
    rewrite_container,
    rewrite_in_place,
    rewrite_text,
    unsafe_or_blocked,
)


def rewrite_file(name: str, data: bytes, rules: Rules) -> Outcome:
    """Relocate the contents of the regular file `name` (its path inside the store path)."""
    if not rules.moves_dir:  # make-content-addressed within one store dir: hash parts only
        hashed = replace_hash_parts(data, rules.hash_parts)
        return Outcome(None if hashed is data else hashed, "binary")
    if data[:4] == b"\x7fELF":
        return rewrite_elf(name, data, rules)
    if is_text(data):  # before the magic numbers: a text file may well start with "BZh"
        return rewrite_text(name, data, rules)
    container = container_kind(data)
    if container is not None:
        return rewrite_container(name, data, rules, container)
    hashed = replace_hash_parts(data, rules.hash_parts)
    hits = find_dir(hashed, rules.old_dir)
    if not hits:
        return Outcome(None if hashed is data else hashed, "binary")
    buf = bytearray(hashed)
    pending = rewrite_in_place(buf, hits, rules)
    if not pending:
        return Outcome(bytes(buf), "binary")
    why = (
        f"the store dir would grow by {rules.growth} bytes inside binary data "
        "(a length or offset may be encoded elsewhere in the file)"
    )
    return unsafe_or_blocked(name, bytes(buf), pending, why, rules, "binary")
