"""Pure NAR serialisation: a tree of nodes (or a stream of reader events) in, NAR bytes out.

`fs.dump_path` streams from disk with the same tokens; this module is for NARs built in memory (tests,
synthetic store objects) and for re-serialising what `reader.read_nar` parsed, which must give back the
exact bytes that were read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from storekit.nar import format as fmt
from storekit.nar.reader import (
    Chunk,
    Directory,
    EntryStart,
    NarEvent,
    Regular,
    Symlink,
)


@dataclass(frozen=True, slots=True)
class File:
    """A regular file: its contents and whether the owner may execute it."""

    contents: bytes = b""
    executable: bool = False


@dataclass(frozen=True, slots=True)
class Link:
    """A symbolic link; the target is stored as written, never resolved."""

    target: bytes


@dataclass(frozen=True, slots=True)
class Dir:
    """A directory; entries are serialised in bytewise name order whatever the mapping's order."""

    entries: Mapping[bytes, Node] = field(default_factory=dict)


Node = File | Link | Dir


def serialize(node: Node) -> Iterator[bytes]:
    """The NAR of `node`, in pieces (header and magic first)."""
    yield fmt.HEADER
    yield from _node(node)


def to_bytes(node: Node) -> bytes:
    return b"".join(serialize(node))


def _node(node: Node) -> Iterator[bytes]:
    if isinstance(node, File):
        yield fmt.regular_header(len(node.contents), node.executable)
        yield node.contents + fmt.ZEROS[: fmt.padding(len(node.contents))] + fmt.CLOSE
    elif isinstance(node, Link):
        yield fmt.symlink_node(node.target)
    else:
        yield fmt.DIRECTORY_START
        for name in sorted(node.entries):
            problem = fmt.name_problem(name)
            if problem is not None:
                raise ValueError(f"cannot serialise file name {fmt.shown(name)} in a NAR: {problem}")
            yield fmt.entry_header(name)
            yield from _node(node.entries[name])
            yield fmt.CLOSE
        yield fmt.CLOSE


def write_events(events: Iterable[NarEvent]) -> Iterator[bytes]:
    """Serialise reader events back to NAR bytes: `write_events(read_nar(s))` reproduces `s`."""
    yield fmt.HEADER
    remaining = pad = 0
    for ev in events:
        if isinstance(ev, Chunk):
            yield ev.data
            remaining -= len(ev.data)
            if remaining == 0:
                yield fmt.ZEROS[:pad] + fmt.CLOSE
        elif isinstance(ev, Regular):
            yield fmt.regular_header(ev.size, ev.executable)
            remaining, pad = ev.size, fmt.padding(ev.size)
            if ev.size == 0:
                yield fmt.CLOSE
        elif isinstance(ev, EntryStart):
            yield fmt.entry_header(ev.name)
        elif isinstance(ev, Symlink):
            yield fmt.symlink_node(ev.target)
        elif isinstance(ev, Directory):
            yield fmt.DIRECTORY_START
        else:
            yield fmt.CLOSE
