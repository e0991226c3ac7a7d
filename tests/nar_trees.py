"""Shared by the NAR tests: hypothesis strategies for file trees, and writing a tree to disk.

Trees are `storekit.nar.writer` nodes, so one generated value can be serialised in memory and
materialised on disk, and the two compared (with real Nix as the judge in tests/interop/).
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import strategies as st

from storekit.nar import format as fmt
from storekit.nar.writer import Dir, File, Link, Node, to_bytes

# Names: ASCII, unicode (UTF-8 encoded) and raw non-UTF-8 bytes; never empty, '.', '..', '/' or NUL.
_name_bytes = st.one_of(
    st.text(alphabet="abcxyzAZ019._-+=?", min_size=1, max_size=8).map(str.encode),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
        min_size=1,
        max_size=6,
    ).map(str.encode),
    st.binary(min_size=1, max_size=6).map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"~")),
)
names = _name_bytes.filter(lambda n: n not in (b".", b"..") and len(n) <= 255)

contents = st.one_of(
    st.just(b""),
    st.binary(max_size=40),
    st.integers(min_value=1, max_value=20_000).map(
        lambda n: bytes(range(256)) * (n // 256) + b"x" * (n % 256)
    ),
)
files = st.builds(File, contents=contents, executable=st.booleans())
links = st.builds(
    Link,
    target=st.one_of(
        st.sampled_from([b"a", b"../x", b"/etc/passwd", b"./d/e", "ünï".encode()]),
        st.binary(min_size=1, max_size=30).map(lambda b: b.replace(b"\0", b"z")),
    ),
)


def _dirs(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.dictionaries(names, children, max_size=5).map(lambda d: Dir(d))


trees: st.SearchStrategy[Node] = st.recursive(st.one_of(files, links), _dirs, max_leaves=12)
dir_trees: st.SearchStrategy[Node] = _dirs(trees)


def materialize(node: Node, path: str | bytes | Path) -> None:
    """Create `node` at `path` (which must not exist); owner-execute is set exactly for executables."""
    p = os.fsencode(path)
    if isinstance(node, File):
        with open(p, "wb") as f:
            f.write(node.contents)
        os.chmod(p, 0o755 if node.executable else 0o644)
    elif isinstance(node, Link):
        os.symlink(node.target, p)
    else:
        os.mkdir(p)
        for name, child in node.entries.items():
            materialize(child, p + b"/" + name)


def paths_in(node: Node, prefix: str = "") -> list[str]:
    """Every path inside `node` as `nix nar ls` names them (`""` is the root), for ls/cat checks."""
    out = [prefix]
    if isinstance(node, Dir):
        for name, child in node.entries.items():
            out += paths_in(child, prefix + "/" + os.fsdecode(name))
    return out


# --- malformed archives, each with the offset where a reader must stop ------------------------------


def dir_nar(entries: list[tuple[bytes, bytes]]) -> tuple[bytes, list[int]]:
    """A directory NAR from raw (name, node bytes) entries, unchecked; returns it and each name's offset."""
    out = bytearray(fmt.HEADER + fmt.DIRECTORY_START)
    offsets = []
    for name, node in entries:
        out += fmt.ENTRY_START
        offsets.append(len(out))
        out += fmt.string(name) + fmt.NODE + node + fmt.CLOSE
    out += fmt.CLOSE
    return bytes(out), offsets


def node_bytes(node: Node) -> bytes:
    """A node's serialisation without the NAR magic, to splice into hand-built archives."""
    return to_bytes(node)[len(fmt.HEADER) :]


X = node_bytes(File(b"x"))


def _bad_name(name: bytes) -> tuple[bytes, int]:
    nar, offsets = dir_nar([(name, X)])
    return nar, offsets[0]


def _unsorted() -> tuple[bytes, int]:
    nar, offsets = dir_nar([(b"b", X), (b"a", X)])
    return nar, offsets[1]


def _duplicate() -> tuple[bytes, int]:
    nar, offsets = dir_nar([(b"a", node_bytes(Link(b"/"))), (b"a", node_bytes(Dir({b"f": File(b"x")})))])
    return nar, offsets[1]


def _name_padding() -> tuple[bytes, int]:
    nar, offsets = dir_nar([(b"abc", X)])
    bad = offsets[0] + 8 + 3 + 2  # length field, "abc", then the third padding byte
    return nar[:bad] + b"\x01" + nar[bad + 1 :], bad


def _contents_padding() -> tuple[bytes, int]:
    nar = to_bytes(File(b"x"))
    bad = len(fmt.HEADER) + len(fmt.regular_header(1, False)) + 1 + 4
    return nar[:bad] + b"\xff" + nar[bad + 1 :], bad


def _unknown_type() -> tuple[bytes, int]:
    at = len(fmt.HEADER) + len(fmt.OPEN + fmt.TYPE)
    return fmt.HEADER + fmt.OPEN + fmt.TYPE + fmt.string(b"fifo") + fmt.CLOSE, at


def _executable_value() -> tuple[bytes, int]:
    head = fmt.HEADER + fmt.OPEN + fmt.TYPE + fmt.REGULAR + fmt.EXECUTABLE
    return head + fmt.string(b"yes") + fmt.CONTENTS + fmt.u64(0) + fmt.CLOSE, len(head)


def _executable_after_contents() -> tuple[bytes, int]:
    head = fmt.HEADER + fmt.regular_header(0, False)
    return head + fmt.EXECUTABLE + fmt.EMPTY + fmt.CLOSE, len(head)


def _empty_target() -> tuple[bytes, int]:
    head = fmt.HEADER + fmt.OPEN + fmt.TYPE + fmt.SYMLINK + fmt.TARGET
    return head + fmt.EMPTY + fmt.CLOSE, len(head)


def _huge_name() -> tuple[bytes, int]:
    head = fmt.HEADER + fmt.DIRECTORY_START + fmt.ENTRY_START
    return head + fmt.u64(1 << 62) + b"a" * 8, len(head)


def _bad_magic() -> tuple[bytes, int]:
    return fmt.string(b"nix-archive-2") + X, 0


def _trailing() -> tuple[bytes, int]:
    nar = to_bytes(Dir({b"a": File(b"x")}))
    return nar + bytes(8), len(nar)


def _entry_without_close() -> tuple[bytes, int]:
    head = fmt.HEADER + fmt.DIRECTORY_START + fmt.entry_header(b"a") + X
    return head + fmt.CLOSE, len(head) + len(fmt.CLOSE)


MALFORMED = {
    "empty name": lambda: _bad_name(b""),
    "dot": lambda: _bad_name(b"."),
    "dotdot": lambda: _bad_name(b".."),
    "slash": lambda: _bad_name(b"a/b"),
    "nul": lambda: _bad_name(b"a\0b"),
    "unsorted": _unsorted,
    "duplicate through symlink": _duplicate,
    "name padding": _name_padding,
    "contents padding": _contents_padding,
    "unknown type": _unknown_type,
    "executable value": _executable_value,
    "executable after contents": _executable_after_contents,
    "empty symlink target": _empty_target,
    "huge name": _huge_name,
    "bad magic": _bad_magic,
    "trailing garbage": _trailing,
    "entry not closed": _entry_without_close,
}
