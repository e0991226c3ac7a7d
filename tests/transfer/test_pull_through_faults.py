"""Bad upstreams of a pull-through cache: each is dropped for the request, with the reason in the log.

A `BadUpstream` on 127.0.0.1 relays the real origin but spoils one thing (a tampered NAR, a forged
or untrusted signature, a body cut short, no answer at all, a body that stops mid-way). Listed
first, before the good origin, it must cost the client nothing: the leaf logs why it dropped it,
fetches from the origin, and its cache dir holds only verified files. Listed alone, the leaf answers
404 and keeps nothing, not even a temp file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pull_fixtures import (
    BadUpstream,
    client_copy,
    get,
    nar_files,
    origin_store,
    pull_server,
    running,
    verify_cache_dir,
)

from storekit.transfer.serve import CacheServer

REASONS = {
    "tampered-nar": "hash mismatch in file",
    "forged-signature": "lacks a valid signature by a trusted key",
    "untrusted-signature": "it has signatures by intruder-1",
    "truncated-nar": "the connection broke",  # after resuming with Range as often as allowed
    "hang": "(read timeout)",
    "stall-nar": "(read timeout)",
}


@pytest.mark.parametrize("mode", BadUpstream.MODES)
def test_a_bad_upstream_is_dropped_and_the_next_one_serves(tmp_path: Path, mode: str) -> None:
    store, dep, top = origin_store()
    log: list[str] = []
    with running(CacheServer(store)) as origin, running(BadUpstream(origin.url, mode)) as bad:
        leaf = pull_server(tmp_path / "leaf", [bad.url, origin.url], log=log, timeout=1.0)
        with running(leaf):
            got = client_copy(leaf.url, [top])
    assert b"".join(got.nar_from_path(top)) == b"".join(store.nar_from_path(top))
    dropped = [line for line in log if "dropped" in line]
    assert dropped and all(bad.url in line for line in dropped), log
    assert any(REASONS[mode] in line for line in dropped), dropped
    assert verify_cache_dir(tmp_path / "leaf") == {str(dep), str(top)}


@pytest.mark.parametrize("mode", BadUpstream.MODES)
def test_a_bad_upstream_alone_gives_404_and_leaves_nothing(tmp_path: Path, mode: str) -> None:
    store, _, top = origin_store()
    log: list[str] = []
    with running(CacheServer(store)) as origin, running(BadUpstream(origin.url, mode)) as bad:
        leaf = pull_server(tmp_path / "leaf", [bad.url], log=log, timeout=1.0)
        with running(leaf):
            assert get(f"{leaf.url}/{top.hash_part}.narinfo")[0] == 404
            assert get(f"{leaf.url}/{top.hash_part}.narinfo")[0] == 404  # tried again, refused again
    assert sum(REASONS[mode] in line for line in log) == 2, log
    assert list(Path(tmp_path / "leaf").glob("*.narinfo")) == []
    assert nar_files(tmp_path / "leaf") == []


def test_a_tampered_compressed_nar_is_refused_too(tmp_path: Path) -> None:
    """xz made on the fly has no FileHash: the decompressed NAR's hash (or the xz check) catches it."""
    store, dep, top = origin_store()
    log: list[str] = []
    with (
        running(CacheServer(store, compression="xz")) as origin,
        running(BadUpstream(origin.url, "tampered-nar")) as bad,
    ):
        leaf = pull_server(tmp_path / "leaf", [bad.url], log=log, timeout=5.0)
        with running(leaf):
            assert get(f"{leaf.url}/{top.hash_part}.narinfo")[0] == 404
    dropped = [line for line in log if "dropped" in line]
    assert dropped and ("hash mismatch in NAR" in dropped[0] or "cannot decompress" in dropped[0]), log
    assert nar_files(tmp_path / "leaf") == []
    assert verify_cache_dir(tmp_path / "leaf") == set()
    del dep
