"""`ls`/`cat` on NAR streams: Nix's path rules, and listings that describe the archive they came from.

The exact text and JSON are compared with `nix nar ls` in tests/interop/test_nar_interop.py.
"""

from __future__ import annotations

import io
import json
import os

import pytest
from hypothesis import given, settings
from nar_trees import dir_trees, paths_in, trees

from storekit.errors import InvalidValue, NarFormatError
from storekit.nar.listing import Listed, ListedDirectory, ListedFile, ListedSymlink, cat, ls
from storekit.nar.writer import Dir, File, Link, Node, to_bytes

TREE = Dir({b"a": File(b"hello\n"), b"d": Dir({b"e": Dir(), b"x": File(b"#!", True)}), b"l": Link(b"a")})
NAR = to_bytes(TREE)


def lookup(node: Node, path: str) -> Node:
    for name in path.split("/")[1:] if path else []:
        assert isinstance(node, Dir)
        node = node.entries[os.fsencode(name)]
    return node


def check(listed: Listed, node: Node, nar: bytes) -> None:
    """`listed` says what `node` is, and a file's nar_offset points at its contents in `nar`."""
    if isinstance(node, File):
        assert isinstance(listed, ListedFile)
        assert (listed.size, listed.executable) == (len(node.contents), node.executable)
        assert nar[listed.nar_offset : listed.nar_offset + listed.size] == node.contents
    elif isinstance(node, Link):
        assert listed == ListedSymlink(node.target)
    else:
        assert isinstance(listed, ListedDirectory)
        assert list(listed.entries) == sorted(node.entries)
        for name, child in listed.entries.items():
            check(child, node.entries[name], nar)


@settings(max_examples=60, deadline=None)
@given(tree=trees)
def test_every_path_lists_and_cats_what_is_there(tree: Node) -> None:
    nar = to_bytes(tree)
    for path in paths_in(tree):
        node = lookup(tree, path)
        listing = ls(io.BytesIO(nar), path, recursive=True)
        check(listing.node, node, nar)
        if isinstance(node, File):
            assert b"".join(cat(io.BytesIO(nar), path)) == node.contents
        else:
            with pytest.raises(InvalidValue, match="is not a regular file"):
                b"".join(cat(io.BytesIO(nar), path))


@settings(max_examples=40, deadline=None)
@given(tree=dir_trees)
def test_json_is_json_describing_the_tree(tree: Node) -> None:
    nar = to_bytes(tree)
    doc = json.loads(ls(io.BytesIO(nar), "/", recursive=True).json().decode("utf-8", "surrogateescape"))

    def same(d: dict[str, object], node: Node) -> None:
        if isinstance(node, File):
            assert d["type"] == "regular" and d["size"] == len(node.contents)
            assert d.get("executable", False) == node.executable
        elif isinstance(node, Link):
            assert d == {"type": "symlink", "target": node.target.decode("utf-8", "surrogateescape")}
        else:
            entries = d["entries"]
            assert isinstance(entries, dict)
            assert [os.fsencode(k) for k in entries] == sorted(node.entries)
            for k, v in entries.items():
                same(v, node.entries[os.fsencode(k)])

    same(doc, tree)


def test_root_spellings() -> None:
    assert ls(io.BytesIO(NAR), "/").node == ls(io.BytesIO(NAR), "").node
    assert isinstance(ls(io.BytesIO(NAR), "/").node, ListedDirectory)
    file_nar = to_bytes(File(b"root"))
    assert b"".join(cat(io.BytesIO(file_nar), "")) == b"root"
    with pytest.raises(InvalidValue, match="path '/' does not exist"):
        b"".join(cat(io.BytesIO(file_nar), "/"))  # as in Nix: '/' is a child named ''


@pytest.mark.parametrize("path", ["/d/", "//d", "/l/x", "/a/b", "/nope", "/.", "/d/../a"])
def test_paths_nix_does_not_find(path: str) -> None:
    with pytest.raises(InvalidValue, match="does not exist"):
        ls(io.BytesIO(NAR), path)
    with pytest.raises(InvalidValue, match="does not exist"):
        b"".join(cat(io.BytesIO(NAR), path))


def test_relative_path_is_refused_before_reading() -> None:
    with pytest.raises(InvalidValue, match="not an absolute path: 'd'"):
        ls(io.BytesIO(b"not even a NAR"), "d")


def test_text_listing_shapes() -> None:
    listing = ls(io.BytesIO(NAR), "/", recursive=True)
    assert listing.text().splitlines() == [b"./a", b"./d", b"./d/e", b"./d/x", b"./l"]
    long = ls(io.BytesIO(NAR), "/d/x").text(long=True)
    assert long.startswith(b"-r-xr-xr-x ") and long.endswith(b" 2 x\n")
    assert ls(io.BytesIO(NAR), "/d").text(directory=True) == b".\n"


def test_cat_still_validates_the_rest_of_the_archive() -> None:
    bad = NAR[:-8] + b"\x01" + NAR[-7:]  # the final ')' becomes an unknown token
    out = []
    with pytest.raises(NarFormatError):
        for chunk in cat(io.BytesIO(bad), "/a"):
            out.append(chunk)
    assert out == [b"hello\n"]
