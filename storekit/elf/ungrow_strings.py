"""Un-growing's string work: the strings an edit wants, found in (or put back into) the original
dynamic string table, and the check that every symbol and version record still reads its name there.

Growth `X`es the strings no reference reads any more (see `strtab`); a string set back goes over
its `X`s again, so relocating A -> longer B -> A gives the original bytes.
"""

from __future__ import annotations

from storekit.elf import versions
from storekit.elf.edits import Desired
from storekit.elf.format import (
    DT_STRSZ,
    DT_STRTAB,
    SHF_ALLOC,
    SHT_DYNAMIC,
    SHT_DYNSYM,
    SHT_GNU_VERDEF,
    SHT_GNU_VERNEED,
    SHT_STRTAB,
    STRING_TAGS,
    Dyn,
)
from storekit.elf.inspect import ElfFile


def strings_in_original(
    elf: ElfFile, state: Desired, old_table: bytearray, table_vaddr: int, table_size: int
) -> list[Dyn] | None:
    """The final entries, every string found in the original table (None if one is not there).

    Growth clears the strings the old table no longer serves, so a string set back is looked for
    first as it is, then in a run of NUL bytes (its cleared place) long enough to take it.
    """
    out: list[Dyn] = []
    taken: list[tuple[int, int]] = []
    refs: set[int] | None = None
    for e in state.entries:
        if e.tag == DT_STRTAB:
            out.append(Dyn(e.tag, table_vaddr))
        elif e.tag == DT_STRSZ:
            out.append(Dyn(e.tag, table_size))
        elif e.text is not None or e.tag in STRING_TAGS:
            text = e.text if e.text is not None else elf.string(e.val)
            needle = text + b"\0"  # where it points now if the old table has it there, else the first one
            found = e.val if old_table.startswith(needle, e.val) else old_table.find(needle)
            if found < 0 and text and b"\0X" in old_table:
                refs = _references(elf) if refs is None else refs
                found = -1 if refs is None else _cleared_place(old_table, text, refs, taken)
            if found < 0:
                return None
            out.append(Dyn(e.tag, found))
        else:
            out.append(Dyn(e.tag, e.val))
    return out


def names_string(d: Dyn) -> bool:
    return d.tag in STRING_TAGS


def string_at(table: bytearray, offset: int) -> bytes:
    end = table.find(b"\0", offset)
    return bytes(table[offset : end if end >= 0 else len(table)])


def _x_runs(table: bytearray) -> list[tuple[int, int]]:
    """The runs of `X`s that start right after a NUL: (start, end)."""
    runs = []
    pos = table.find(b"\0X")
    while pos >= 0:
        start = end = pos + 1
        while end < len(table) and table[end] == 0x58:
            end += 1
        runs.append((start, end))
        pos = table.find(b"\0X", end)
    return runs


def _cleared_place(table: bytearray, text: bytes, refs: set[int], taken: list[tuple[int, int]]) -> int:
    """Where `text` goes back into a string growth cleared (a run of `X`s after a NUL, possibly
    followed by the kept tail the string shared with a symbol name): a run it fills exactly first,
    else a wholly cleared run long enough (the rest padded with NULs)."""
    if not text:
        return -1
    runs = _x_runs(table)
    free = [
        (p, q)
        for p, q in runs
        if not any(r in refs for r in range(p, q)) and not any(p < b and a < q for a, b in taken)
    ]
    end = len(text)
    for p, q in free:  # the string that was there: the Xs and the tail it shares make `text`
        if (
            q - p <= end
            and p + end < len(table)
            and table[p + end] == 0
            and table[q : p + end] == text[q - p :]
        ):
            table[p:q] = text[: q - p]
            taken.append((p, q))
            return p
    for p, q in free:
        if q - p > end and table[q : q + 1] == b"\0":
            table[p:q] = text + bytes(q - p - end)
            taken.append((p, q))
            return p
    return -1


def _references(elf: ElfFile) -> set[int] | None:
    """Every string offset that symbols and version records name, None when they cannot be listed."""
    refs = set(versions.verdef_names(elf))
    needed = versions.read_verneed(elf)
    for entry in needed.entries if needed is not None else ():
        refs |= {entry.file, *(a.name for a in entry.auxes)}
    count = versions.dynsym_count(elf)
    if count is None or _unknown_users(elf):
        return None
    refs.update(versions.symbol_name_offsets(elf, count))
    return refs


def refs_agree(elf: ElfFile, old_table: bytes) -> bool:
    """Every string that symbols and version records name reads the same in the original table."""
    refs = _references(elf)
    if refs is None:
        return False
    for r in refs:
        end = old_table.find(b"\0", r)
        if r >= len(old_table) or end < 0 or old_table[r:end] != elf.string(r):
            return False
    return True


def _unknown_users(elf: ElfFile) -> bool:
    """Whether a section of a kind not read here (e.g. prelink's .gnu.liblist) names dynamic strings."""
    known = (SHT_DYNSYM, SHT_DYNAMIC, SHT_GNU_VERDEF, SHT_GNU_VERNEED)
    tables = {i for i, s in enumerate(elf.sections) if s.type == SHT_STRTAB and s.flags & SHF_ALLOC}
    return any(s.link in tables and s.type not in known for s in elf.sections if s.type)
