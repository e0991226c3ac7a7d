"""`nix nar ls` and `nix nar cat` on a NAR stream, with Nix 2.8's paths, text and JSON byte for byte.

Paths inside a NAR are Nix's: `""` is the root, anything else must be absolute and each component
must name an entry of a directory (symlinks are never followed, `/d/` and `//d` do not exist). Listing
reads the stream once and keeps only the part of the tree it was asked about; `cat` streams the file's
contents as they are read, then reads on to the end so a corrupt archive still fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from storekit.bytestreams import ByteSource
from storekit.errors import InvalidValue
from storekit.nar.reader import (
    Chunk,
    Directory,
    DirectoryEnd,
    EntryEnd,
    EntryStart,
    NarEvent,
    Regular,
    Symlink,
    read_nar,
)


@dataclass(frozen=True, slots=True)
class ListedFile:
    size: int
    executable: bool
    nar_offset: int


@dataclass(frozen=True, slots=True)
class ListedSymlink:
    target: bytes


@dataclass(frozen=True, slots=True)
class ListedDirectory:
    """Entries in NAR (bytewise) order; filled while the stream is read, then left alone."""

    entries: dict[bytes, Listed] = field(default_factory=dict)


Listed = ListedFile | ListedSymlink | ListedDirectory


@dataclass(frozen=True, slots=True)
class NarListing:
    """What `nix nar ls` shows for `path`: the node there with all that is below it."""

    path: str
    node: Listed
    recursive: bool = False

    def json(self) -> bytes:
        """`nix nar ls --json` output (no trailing newline, as Nix prints it)."""
        return _json(self.node, self.recursive)

    def text(self, *, long: bool = False, directory: bool = False) -> bytes:
        """`nix nar ls [-l] [-d]` output, one line per entry."""
        lines: list[bytes] = []
        top = b"." if isinstance(self.node, ListedDirectory) else os.fsencode(_base_name(self.path))
        _text_node(self.node, top, directory, long, self.recursive, lines)
        return b"".join(line + b"\n" for line in lines)


def ls(stream: ByteSource, path: str = "/", recursive: bool = False) -> NarListing:
    """List `path` in the NAR on `stream` (`/` and `""` both mean the root, as in `nix nar ls`)."""
    if path == "/":
        path = ""
    target = _components(path)
    root = _build(read_nar(stream), target)
    node = _resolve(root, target)
    if node is None:
        raise InvalidValue(f"path '{path}' does not exist in NAR")
    return NarListing(path, node, recursive)


def cat(stream: ByteSource, path: str) -> Iterator[bytes]:
    """The contents of the regular file at `path` (`""` is the root; `/` names nothing, as in Nix)."""
    target = _components(path)
    names: list[bytes] = []
    found = False
    remaining = 0
    for ev in read_nar(stream):
        if type(ev) is Chunk:
            if remaining:
                remaining -= len(ev.data)
                yield ev.data
        elif type(ev) is EntryStart:
            names.append(ev.name)
        elif type(ev) is EntryEnd:
            names.pop()
        elif names == target:
            if type(ev) is not Regular:
                raise InvalidValue(f"path '{path}' is not a regular file")
            found, remaining = True, ev.size
    if not found:
        raise InvalidValue(f"path '{path}' does not exist")


# --- paths -----------------------------------------------------------------------------------------


def _components(path: str) -> list[bytes]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise InvalidValue(f"not an absolute path: '{path}'")
    return [os.fsencode(c) for c in path[1:].split("/")]


def _base_name(path: str) -> str:
    """Nix's `baseNameOf`: the last component, ignoring one trailing slash."""
    if not path:
        return ""
    last = len(path) - 1
    if path[last] == "/" and last > 0:
        last -= 1
    return path[path.rfind("/", 0, last + 1) + 1 : last + 1]


def _resolve(root: Listed | None, target: list[bytes]) -> Listed | None:
    node = root
    for name in target:
        if not isinstance(node, ListedDirectory):
            return None
        node = node.entries.get(name)
    return node


def _build(events: Iterator[NarEvent], target: list[bytes]) -> Listed | None:
    """The tree restricted to `target`'s ancestors (one child each) and everything below `target`."""
    root: Listed | None = None
    names: list[bytes] = []
    dirs: list[dict[bytes, Listed] | None] = []
    for ev in events:
        if type(ev) is Chunk:
            continue
        if type(ev) is EntryStart:
            names.append(ev.name)
            continue
        if type(ev) is EntryEnd:
            names.pop()
            continue
        if type(ev) is DirectoryEnd:
            dirs.pop()
            continue
        node: Listed
        if type(ev) is Regular:
            node = ListedFile(ev.size, ev.executable, ev.contents_offset)
        elif type(ev) is Symlink:
            node = ListedSymlink(ev.target)
        else:
            assert type(ev) is Directory
            node = ListedDirectory()
        depth = min(len(names), len(target))
        keep = names[:depth] == target[:depth]
        if type(ev) is Directory:
            dirs.append(node.entries if keep and isinstance(node, ListedDirectory) else None)
        if not keep:
            continue
        if not names:
            root = node
        else:
            parent = dirs[-2] if type(ev) is Directory else dirs[-1]
            if parent is not None:
                parent[names[-1]] = node
    return root


# --- output ----------------------------------------------------------------------------------------


def _text_node(
    node: Listed, rel: bytes, show_dir: bool, long: bool, recursive: bool, out: list[bytes]
) -> None:
    """Nix's `doPath`: a directory shows its entries unless `-d`; anything else shows itself.

    Recursive listings walk with an explicit stack: a NAR's depth is input.
    """
    stack: list[Iterator[tuple[bytes, Listed]]] = []
    if isinstance(node, ListedDirectory) and not show_dir:
        stack.append(_children(node, rel))
    else:
        _text_file(node, rel, long, out)
        if recursive and isinstance(node, ListedDirectory):
            stack.append(_children(node, rel))
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        child_rel, child = item
        _text_file(child, child_rel, long, out)
        if recursive and isinstance(child, ListedDirectory):
            stack.append(_children(child, child_rel))


def _children(node: ListedDirectory, rel: bytes) -> Iterator[tuple[bytes, Listed]]:
    return ((rel + b"/" + name, child) for name, child in node.entries.items())


def _text_file(node: Listed, rel: bytes, long: bool, out: list[bytes]) -> None:
    """Nix's `showFile`: one line, with `ls -l`-like columns when `long`."""
    if long:
        if isinstance(node, ListedFile):
            mode, size = (b"-r-xr-xr-x" if node.executable else b"-r--r--r--"), node.size
        else:
            mode, size = (b"lrwxrwxrwx" if isinstance(node, ListedSymlink) else b"dr-xr-xr-x"), 0
        line = mode + b" " + b"%20d" % size + b" " + rel
        if isinstance(node, ListedSymlink):
            line += b" -> " + node.target
        out.append(line)
    else:
        out.append(rel)


_DIR_JSON = b'{"type":"directory","entries":{'


def _json(node: Listed, recursive: bool) -> bytes:
    """Nix's JSON listing; without `recursive` a directory's entries are `{}`. Iterative (depth is input)."""
    if not isinstance(node, ListedDirectory):
        return _json_leaf(node)
    out = [_DIR_JSON]
    stack = [iter(node.entries.items())]
    first = [True]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            first.pop()
            out.append(b"}}")
            continue
        name, child = item
        if not first[-1]:
            out.append(b",")
        first[-1] = False
        out.append(json_string(name) + b":")
        if not recursive:
            out.append(b"{}")
        elif isinstance(child, ListedDirectory):
            out.append(_DIR_JSON)
            stack.append(iter(child.entries.items()))
            first.append(True)
        else:
            out.append(_json_leaf(child))
    return b"".join(out)


def _json_leaf(node: ListedFile | ListedSymlink) -> bytes:
    if isinstance(node, ListedFile):
        parts = [b'{"type":"regular","size":%d' % node.size]
        if node.executable:
            parts.append(b',"executable":true')
        if node.nar_offset:
            parts.append(b',"narOffset":%d' % node.nar_offset)
        return b"".join(parts) + b"}"
    return b'{"type":"symlink","target":' + json_string(node.target) + b"}"


def _escape(c: int) -> bytes:
    special = {ord('"'): b'\\"', ord("\\"): b"\\\\", ord("\n"): b"\\n", ord("\r"): b"\\r", ord("\t"): b"\\t"}
    if c in special:
        return special[c]
    return b"\\u%04x" % c if c < 32 else bytes([c])


_JSON_ESCAPES = [_escape(c) for c in range(256)]


def json_string(data: bytes) -> bytes:
    """A JSON string as Nix's `toJSON` writes it: bytes kept, only `"`, `\\` and controls escaped."""
    escapes = _JSON_ESCAPES
    return b'"' + b"".join([escapes[c] for c in data]) + b'"'
