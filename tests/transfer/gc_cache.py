"""Binary caches written file by file for the cache GC tests: narinfos, NARs (some shared), listings,
realisations, debuginfo links and logs, in exactly the layout Nix writes (`nix copy --to file://`).

The NAR bytes are not real NARs: collection never reads them, and the interop tests cover real ones.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from storekit.hashing import Hash
from storekit.narinfo import NarInfo
from storekit.nixbase32 import encode
from storekit.store.cache_files import DirectoryFiles
from storekit.storepath import StoreDir, StorePath
from storekit.transfer.cache_gc import read_snapshot
from storekit.transfer.cache_gc_plan import integrity_problems

STORE_DIR = StoreDir("/opt/gc-store")


class FakeCache:
    """A `file://` cache in `root` for `STORE_DIR`, filled by `add`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "nar").mkdir(parents=True, exist_ok=True)
        (root / "nix-cache-info").write_text(f"StoreDir: {STORE_DIR}\n")
        self.paths: dict[str, StorePath] = {}

    @property
    def uri(self) -> str:
        return f"file://{self.root}?store={STORE_DIR}"

    def add(
        self,
        name: str,
        refs: tuple[StorePath, ...] = (),
        *,
        content: bytes | None = None,
        listing: bool = False,
        deriver: str | None = None,
    ) -> StorePath:
        """A path with a NAR file of `content` (equal contents share one NAR file, as in Nix's caches)."""
        path = StorePath(STORE_DIR, encode(Hash.of(name.encode()).digest[:20]), name)
        nar = content if content is not None else f"nar of {name}".encode() * 50
        nar_hash = Hash.of(nar)
        url = f"nar/{nar_hash.nix32}.nar"
        (self.root / url).write_bytes(nar)
        narinfo = NarInfo(
            store_path=path,
            url=url,
            nar_hash=nar_hash,
            nar_size=len(nar),
            compression="none",
            file_hash=nar_hash,
            file_size=len(nar),
            references=tuple(sorted(r.base_name for r in refs)),
            deriver=deriver,
        )
        (self.root / f"{path.hash_part}.narinfo").write_text(narinfo.to_text())
        if listing:
            (self.root / f"{path.hash_part}.ls").write_text('{"version":1,"root":{"type":"regular"}}')
        self.paths[name] = path
        return path

    def url_of(self, path: StorePath) -> str:
        text = (self.root / f"{path.hash_part}.narinfo").read_text()
        return next(line[5:] for line in text.splitlines() if line.startswith("URL: "))

    def realisation(self, drv_hash: str, out: StorePath) -> str:
        name = f"realisations/sha256:{drv_hash}!out.doi"
        (self.root / "realisations").mkdir(exist_ok=True)
        doc = {"id": f"sha256:{drv_hash}!out", "outPath": out.base_name, "signatures": [],
               "dependentRealisations": {}}  # fmt: skip
        (self.root / name).write_text(json.dumps(doc))
        return name

    def debuginfo(self, build_id: str, of: StorePath) -> str:
        name = f"debuginfo/{build_id}"
        (self.root / "debuginfo").mkdir(exist_ok=True)
        doc = {"archive": f"../{self.url_of(of)}", "member": f"lib/debug/.build-id/{build_id}.debug"}
        (self.root / name).write_text(json.dumps(doc))
        return name

    def log(self, drv: str) -> str:
        (self.root / "log").mkdir(exist_ok=True)
        (self.root / "log" / drv).write_text("build log\n")
        return f"log/{drv}"

    def files(self) -> set[str]:
        return {f.name for f in DirectoryFiles(str(self.root)).list_files()}

    def problems(self) -> list[str]:
        return integrity_problems(read_snapshot(DirectoryFiles(str(self.root)), STORE_DIR))

    def age_all(self, seconds: float) -> None:
        """Make every file look written `seconds` ago."""
        for f in DirectoryFiles(str(self.root)).list_files():
            past = os.stat(self.root / f.name).st_mtime - seconds
            os.utime(self.root / f.name, (past, past))


def random_cache(root: Path, seed: int, n: int = 24) -> tuple[FakeCache, list[StorePath]]:
    """A cache of `n` paths in a random DAG, with shared NARs, listings, realisations, debuginfo and logs;
    returns it and a random choice of paths to keep."""
    rng = random.Random(seed)
    cache = FakeCache(root)
    made: list[StorePath] = []
    for i in range(n):
        refs = tuple(rng.sample(made, k=min(len(made), rng.randint(0, 3))))
        shared = rng.random() < 0.25 and made
        content = f"shared {rng.randint(0, 2)}".encode() * 40 if shared else None
        drv = f"{encode(Hash.of(str(i).encode()).digest[:20])}-p{i}.drv"
        path = cache.add(f"p{i}", refs, content=content, listing=rng.random() < 0.3, deriver=drv)
        made.append(path)
        if rng.random() < 0.3:
            cache.realisation(f"{i:064x}", path)
        if rng.random() < 0.2:
            cache.debuginfo(f"{i:040x}", path)
        if rng.random() < 0.4:
            cache.log(drv)
    (root / "nar" / "0orphan.nar").write_bytes(b"left by a killed upload")
    return cache, rng.sample(made, k=3)
