"""Relocating a large real path to a longer store dir, against `cp -a` of the same files (the floor).

The path is /usr/lib/x86_64-linux-gnu added to a local store as a source path (~1 GB of NAR: the NAR
holds every hard link's contents); `--quick` uses its perl/ subtree. Relocation scans every file for
the old store dir, writes the new path into the destination and hashes its NAR; the path names no
store path, so nothing is rewritten: what is measured is the scan, the hash and the writing, while
`cp -a` only copies. Between two local stores unchanged files are hard-linked (canonical files of
ours, as `storekit copy` does), so the default rows do not copy their bytes; the "files copied" row
copies every file (`copy_file_range`, like `cp -a`), and the "NAR stream" row takes the way every
other pair of stores takes (serialise, rewrite, restore). Target: at least 0.5x `cp -a`. Best of 2
with warm caches; every run starts from an empty destination.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench._harness import Row, best_of, run_cmd, work_dir
from storekit.relocate import Mode, relocate
from storekit.store.canonical import delete_path
from storekit.store.link import LinkMode
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for

TITLE = "Relocate a large path to a longer store dir (vs cp -a of the same files)"
FULL_TREE = Path("/usr/lib/x86_64-linux-gnu")
QUICK_TREE = FULL_TREE / "perl"


def run(quick: bool) -> list[Row]:
    tree = QUICK_TREE if quick else FULL_TREE
    repeat = 2
    work = work_dir("bench-relocate-")
    src = LocalStore(local_spec_for(str(work / "a" / "store")))
    path = src.add_path(str(tree), "libs")
    size = src.query_path_info(path).nar_size
    note = f"{size / 1e9:.2f} GB NAR of {tree}"
    dst_root = work / "b"

    def clean() -> None:
        if dst_root.exists():
            delete_path(str(dst_root))

    def move(mode: Mode, link: LinkMode) -> None:
        with LocalStore(local_spec_for(str(dst_root / "a-much-longer-store-dir"))) as dst:
            relocate(src, dst, [path], mode=mode, link=link)

    copy = ["cp", "-a", src.real_path(path), str(dst_root / "copy")]

    def cp() -> None:
        os.makedirs(dst_root, exist_ok=True)
        run_cmd(copy)

    cp_s = best_of(cp, repeat, setup=clean)
    ways = [
        ("keep-hash", Mode.KEEP_HASH, LinkMode.AUTO),
        ("keep-hash, files copied", Mode.KEEP_HASH, LinkMode.COPY),
        ("content-addressed", Mode.CONTENT_ADDRESSED, LinkMode.AUTO),
        ("keep-hash, NAR stream", Mode.KEEP_HASH, LinkMode.STREAM),
    ]
    rows = [
        Row(
            f"relocate ({label})",
            best_of(lambda m=mode, k=link: move(m, k), repeat, setup=clean),  # type: ignore[misc]
            "cp -a",
            cp_s,
            note,
        )
        for label, mode, link in ways
    ]
    clean()
    src.close()
    return rows
