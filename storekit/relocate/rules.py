"""The length rules for rewriting a file's bytes for another store dir, and their outcomes, purely.

Two kinds of strings change. Hash parts (content-addressed mode) keep their length, so they are
replaced in place anywhere, as Nix's RewritingSink does. The store dir usually changes length, and
what a file can absorb depends on what it is, decided by content, never by name:

- text (no NUL byte, UTF-8 at the start): rewritten freely, every prefix at once by one scan, so
  replacements never compound;
- ELF: the dynamic strings (interpreter, rpath/runpath, needed, soname) may grow through the ELF
  editor (`relocate.elfstrings`, which builds on these rules); every other occurrence follows the
  binary rules;
- other binary data: a shorter store dir is padded on the left with `/` (`//opt/s/…` names the
  same file as `/opt/s/…`) so that the string keeps its length and its end (a tail-merged string
  sharing those bytes stays valid); a longer one may take the room of such padding left by an
  earlier relocation (so A -> B -> A gives back the original bytes); anything else would have to
  grow inside data whose lengths and offsets may be encoded elsewhere, and is refused, naming the
  file and offset (Spack's rule). Checksummed containers (gzip, zip, xz, …) refuse any change.

A store dir counts only as whole path components: `/nix/store` in `/home/u/nix/store` or
`/nix/store2` is left alone, in `PATH=/nix/store/…` or `:/nix/store/…` it is rewritten.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from storekit.references import RewritingSink

_NAME_BYTES = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+-._?=")
#: A store dir right after one of these is the tail of a longer path (`/home/u/nix/store`).
_COMPONENT_BYTES = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-._")
#: Linux reads at most this much of a `#!` line before 5.1 (127 characters), and since 5.1 (255).
SHEBANG_OLD_LIMIT = 127
SHEBANG_LIMIT = 255
_TEXT_PROBE = 8192
_CONTAINERS = (
    (b"\x1f\x8b", "gzip-compressed"),
    (b"BZh", "bzip2-compressed"),
    (b"\xfd7zXZ\x00", "xz-compressed"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
    (b"PK\x03\x04", "zip"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
)


@dataclass(frozen=True, slots=True)
class Rules:
    """What relocating one store path rewrites: its old store dir, and (content-addressed mode) the
    hash parts of its references, each to a replacement of the same length."""

    old_dir: bytes
    new_dir: bytes
    hash_parts: Mapping[bytes, bytes] = field(default_factory=dict)
    unsafe: bool = False

    @property
    def moves_dir(self) -> bool:
        return self.old_dir != self.new_dir

    @property
    def growth(self) -> int:
        return len(self.new_dir) - len(self.old_dir)


@dataclass(frozen=True, slots=True)
class Blocker:
    """A place that cannot be relocated safely: `file` inside the store path, byte `offset`, why."""

    file: str
    offset: int
    why: str


FileKind = Literal["text", "elf", "binary"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The new contents (None: unchanged), what blocked, and what the user should know."""

    data: bytes | None
    kind: FileKind
    blockers: tuple[Blocker, ...] = ()
    warnings: tuple[str, ...] = ()


# --- finding -------------------------------------------------------------------------------------


def find_dir(data: bytes | bytearray | mmap.mmap, old_dir: bytes, start: int = 0) -> list[int]:
    """Offsets of `old_dir` as a whole path component (not inside a longer name on either side)."""
    found: list[int] = []
    n = len(old_dir)
    i = data.find(old_dir, start)
    while i >= 0:
        end = i + n
        if (end == len(data) or data[end] not in _NAME_BYTES) and (
            i == 0 or data[i - 1] not in _COMPONENT_BYTES
        ):
            found.append(i)
            i = data.find(old_dir, end)
        else:
            i = data.find(old_dir, i + 1)
    return found


def find_all(data: bytes, needle: bytes) -> list[int]:
    """Offsets of `needle`, leftmost first and never overlapping (as Nix's RewritingSink matches)."""
    found: list[int] = []
    i = data.find(needle)
    while i >= 0:
        found.append(i)
        i = data.find(needle, i + len(needle))
    return found


def replace_hash_parts(data: bytes, hash_parts: Mapping[bytes, bytes]) -> bytes:
    """Every old hash part replaced by its new one; lengths are equal, so offsets do not move."""
    if not hash_parts or not any(h in data for h in hash_parts):
        return data
    sink = RewritingSink(hash_parts)
    return sink.feed(data) + sink.flush()


def rewrite_free(data: bytes, rules: Rules) -> bytes:
    """Text rules: every occurrence replaced whatever the lengths (symlink targets, text files)."""
    data = replace_hash_parts(data, rules.hash_parts)
    hits = find_dir(data, rules.old_dir)
    if not hits:
        return data
    n = len(rules.old_dir)
    parts: list[bytes] = []
    done = 0
    for i in hits:
        parts += (data[done:i], rules.new_dir)
        done = i + n
    parts.append(data[done:])
    return b"".join(parts)


# --- classifying -----------------------------------------------------------------------------------


def is_text(data: bytes) -> bool:
    """No NUL byte anywhere and UTF-8 at the start (a multibyte character may be cut at the probe's end)."""
    if b"\0" in data:
        return False
    head = data[:_TEXT_PROBE]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return len(data) > _TEXT_PROBE and e.reason == "unexpected end of data"
    return True


def container_kind(data: bytes) -> str | None:
    for magic, kind in _CONTAINERS:
        if data.startswith(magic):
            return kind
    return None


# --- rewriting one file ------------------------------------------------------------------------------


def rewrite_in_place(buf: bytearray, hits: list[int], rules: Rules) -> list[int]:
    """Apply every replacement that keeps the length of `buf`; return the offsets that must grow.

    Shorter: `old` becomes `/…/` + `new`, ending where `old` ended. Longer: only over slashes that
    pad the occurrence on the left (left by an earlier relocation to a shorter store dir).
    """
    old, new = rules.old_dir, rules.new_dir
    grow = len(new) - len(old)
    pending: list[int] = []
    floor = 0  # never take padding from bytes an earlier replacement wrote
    for i in hits:
        end = i + len(old)
        if grow <= 0:
            buf[i:end] = b"/" * -grow + new
        elif i - grow >= floor and buf[i - grow : i] == b"/" * grow:
            buf[i - grow : end] = new
        else:
            pending.append(i)
            continue
        floor = end
    return pending


def unsafe_or_blocked(
    name: str, data: bytes, pending: list[int], why: str, rules: Rules, kind: FileKind
) -> Outcome:
    """Refuse the occurrences in `pending`, or with --allow-unsafe, grow the file as if it were text."""
    blockers = tuple(Blocker(name, i, why) for i in pending)
    if not rules.unsafe:
        return Outcome(None, kind, blockers)
    forced = rewrite_free(data, rules)
    warnings = tuple(
        f"{name} at offset {b.offset}: rewritten anyway (--allow-unsafe): {why}" for b in blockers
    )
    return Outcome(forced, kind, (), warnings)


def rewrite_container(name: str, data: bytes, rules: Rules, kind: str) -> Outcome:
    """Checksummed or compressed data: any change breaks it, so every occurrence blocks."""
    hits = [(i, "the store dir") for i in find_dir(data, rules.old_dir)]
    hits += [(m.start(), "a store path hash part") for m in _hash_pattern(rules).finditer(data)]
    if not hits:
        return Outcome(None, "binary")
    pending = sorted(i for i, _ in hits)
    why = f"inside {kind} data, where any change breaks a checksum or the compressed stream"
    return unsafe_or_blocked(name, data, pending, why, rules, "binary")


def _hash_pattern(rules: Rules) -> re.Pattern[bytes]:
    if not rules.hash_parts:
        return re.compile(b"(?!)")
    return re.compile(b"|".join(re.escape(h) for h in sorted(rules.hash_parts)))


def rewrite_text(name: str, data: bytes, rules: Rules) -> Outcome:
    new = rewrite_free(data, rules)
    if new == data:
        return Outcome(None, "text")
    blockers, warnings = _check_shebang(name, data, new)
    if blockers and rules.unsafe:
        return Outcome(new, "text", (), tuple(f"{b.file}: {b.why} (--allow-unsafe)" for b in blockers))
    return Outcome(None if blockers else new, "text", blockers, warnings)


def _check_shebang(name: str, old: bytes, new: bytes) -> tuple[tuple[Blocker, ...], tuple[str, ...]]:
    """A `#!` line that relocation pushes past what the kernel reads would run the wrong program."""
    if not new.startswith(b"#!"):
        return (), ()
    before, after = _first_line_len(old), _first_line_len(new)
    if after > SHEBANG_LIMIT >= before:
        why = (
            f"its #! line would be {after} bytes, longer than the {SHEBANG_LIMIT} bytes Linux reads; "
            "use a shorter store dir or start it through /usr/bin/env"
        )
        return (Blocker(name, 0, why),), ()
    if after > SHEBANG_OLD_LIMIT >= before:
        return (), (
            f"{name}: its #! line becomes {after} bytes; Linux kernels before 5.1 read only "
            f"{SHEBANG_OLD_LIMIT} and would truncate it",
        )
    return (), ()


def _first_line_len(data: bytes) -> int:
    end = data.find(b"\n")
    return len(data) if end < 0 else end
