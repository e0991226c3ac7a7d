"""NAR wire primitives: Nix's padded strings and the fixed tokens of archive.cc's grammar.

Every token is `u64le(len) + bytes + zero padding to a multiple of 8`. The tokens are precomputed and
the ones that always appear together are glued, so writers emit one bytes object per node header and
readers compare whole headers in one go.
"""

from __future__ import annotations

import struct

MAGIC = b"nix-archive-1"

#: A guard on token lengths a reader accepts for names and symlink targets (Linux allows 255-byte names and
#: 4095-byte targets); without it a corrupt length field would make a reader allocate gigabytes.
MAX_NAME = 4096
MAX_TARGET = 65536

_U64 = struct.Struct("<Q")
ZEROS = bytes(8)


def u64(n: int) -> bytes:
    return _U64.pack(n)


def read_u64(data: bytes | bytearray | memoryview, offset: int = 0) -> int:
    value: int = _U64.unpack_from(data, offset)[0]
    return value


def padding(n: int) -> int:
    """How many zero bytes follow `n` bytes of string data to reach a multiple of 8."""
    return -n % 8


def string(data: bytes) -> bytes:
    """A NAR string: length, data, zero padding."""
    return _U64.pack(len(data)) + data + ZEROS[: padding(len(data))]


def name_problem(name: bytes) -> str | None:
    """Why `name` cannot be a directory entry (Nix's restore rules), or None when it can."""
    if not name:
        return "it is empty"
    if name in (b".", b".."):
        return "'.' and '..' are not allowed"
    if b"/" in name:
        return "it contains '/'"
    if b"\0" in name:
        return "it contains a NUL byte"
    return None


def shown(data: bytes) -> str:
    """Bytes from an archive, quoted for an error message (undecodable and control bytes as escapes)."""
    text = data.decode("utf-8", "backslashreplace")
    return "'" + "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text) + "'"


# --- tokens ------------------------------------------------------------------------------------------

OPEN = string(b"(")
CLOSE = string(b")")
TYPE = string(b"type")
REGULAR = string(b"regular")
DIRECTORY = string(b"directory")
SYMLINK = string(b"symlink")
EXECUTABLE = string(b"executable")
EMPTY = string(b"")
CONTENTS = string(b"contents")
TARGET = string(b"target")
ENTRY = string(b"entry")
NAME = string(b"name")
NODE = string(b"node")

HEADER = string(MAGIC)

#: `( type regular contents` (the content length follows), and the executable variant.
REGULAR_START = OPEN + TYPE + REGULAR + CONTENTS
EXECUTABLE_START = OPEN + TYPE + REGULAR + EXECUTABLE + EMPTY + CONTENTS
#: `( type symlink target` (the target string follows).
SYMLINK_START = OPEN + TYPE + SYMLINK + TARGET
#: `( type directory`: entries or `)` follow.
DIRECTORY_START = OPEN + TYPE + DIRECTORY
#: `entry ( name` (the name string follows), and what closes the name before the node.
ENTRY_START = ENTRY + OPEN + NAME
#: `)` closing a node and `)` closing the entry that held it.
ENTRY_END = CLOSE + CLOSE


def regular_header(size: int, executable: bool) -> bytes:
    """Everything of a regular file's node before its contents."""
    return (EXECUTABLE_START if executable else REGULAR_START) + _U64.pack(size)


def file_nar(contents: bytes, executable: bool = False) -> bytes:
    """The whole NAR of one regular file holding `contents` (a text path's, say), made in memory."""
    return (
        HEADER
        + regular_header(len(contents), executable)
        + contents
        + ZEROS[: padding(len(contents))]
        + CLOSE
    )


def symlink_node(target: bytes) -> bytes:
    return SYMLINK_START + string(target) + CLOSE


def entry_header(name: bytes) -> bytes:
    """`entry ( name <name> node`: what comes before an entry's node."""
    return ENTRY_START + string(name) + NODE
