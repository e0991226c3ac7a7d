"""The cache GC planner alone, on snapshots made in memory: what is kept, what goes, in which waves."""

from __future__ import annotations

import pytest

from storekit.errors import StoreError
from storekit.store.cache_files import CacheFile
from storekit.transfer.cache_gc import parse_duration
from storekit.transfer.cache_gc_plan import CachedPath, Snapshot, closure, plan_gc

NOW = 1_000_000.0


def h(c: str) -> str:
    return c * 32


def snapshot(
    paths: dict[str, tuple[str, str]],
    *,
    mtimes: dict[str, float] | None = None,
    extra: tuple[str, ...] = (),
    **links: dict[str, str],
) -> Snapshot:
    """Paths by letter: (NAR file, referenced letters); every named file exists, 100 bytes, old."""
    cached = {
        h(c): CachedPath(h(c), f"{h(c)}-{c}", nar, frozenset(h(r) for r in refs if r != c), f"{h(c)}-{c}.drv")
        for c, (nar, refs) in paths.items()
    }
    names = {f"{k}.narinfo" for k in cached} | {p.url for p in cached.values()} | set(extra)
    names |= set(links.get("realisations", {})) | set(links.get("debuginfo", {}))
    files = {n: CacheFile(n, 100, (mtimes or {}).get(n, 0.0)) for n in names}
    return Snapshot(files, cached, links.get("realisations", {}), links.get("debuginfo", {}))


def test_keeps_the_closure_and_a_nar_shared_with_a_kept_path() -> None:
    # a -> b, c -> b; d has the same contents as a (one NAR file); e is alone
    snap = snapshot(
        {
            "a": ("nar/1.nar", "b"),
            "b": ("nar/2.nar", ""),
            "c": ("nar/3.nar", "b"),
            "d": ("nar/1.nar", ""),
            "e": ("nar/5.nar", ""),
        }
    )
    plan = plan_gc(snap, [h("a")], cutoff=None, now=NOW)
    assert plan.kept == {h("a"), h("b")}
    gone = {d.name for d in plan.deletions}
    assert gone == {f"{h(c)}.narinfo" for c in "cde"} | {"nar/3.nar", "nar/5.nar"}
    assert plan.bytes == 500


def test_a_shared_nar_goes_with_the_last_narinfo_naming_it() -> None:
    snap = snapshot({"a": ("nar/1.nar", ""), "d": ("nar/1.nar", ""), "k": ("nar/9.nar", "")})
    plan = plan_gc(snap, [h("k")], cutoff=None, now=NOW)
    waves = {d.name: d.wave for d in plan.deletions}
    assert waves["nar/1.nar"] > max(waves[f"{h('a')}.narinfo"], waves[f"{h('d')}.narinfo"])


def test_referrers_go_in_earlier_waves_than_their_references() -> None:
    # x -> y -> z, x -> z, and w -> z; all unreachable from k
    snap = snapshot(
        {
            "x": ("nar/x.nar", "yz"),
            "y": ("nar/y.nar", "z"),
            "z": ("nar/z.nar", ""),
            "w": ("nar/w.nar", "z"),
            "k": ("nar/k.nar", ""),
        }
    )
    plan = plan_gc(snap, [h("k")], cutoff=None, now=NOW)
    wave = {d.path[-1]: d.wave for d in plan.deletions if d.kind == "narinfo"}
    assert wave["x"] < wave["y"] < wave["z"] and wave["w"] < wave["z"]
    nar_waves = [d.wave for d in plan.deletions if d.kind == "nar"]
    assert min(nar_waves) > max(wave.values())
    assert [d.wave for d in plan.deletions] == sorted(d.wave for d in plan.deletions)


def test_links_go_before_what_they_point_at() -> None:
    snap = snapshot(
        {"a": ("nar/a.nar", ""), "k": ("nar/k.nar", "")},
        realisations={"realisations/x!out.doi": h("a"), "realisations/y!out.doi": h("k")},
        debuginfo={"debuginfo/1": "nar/a.nar", "debuginfo/2": "nar/k.nar"},
    )
    plan = plan_gc(snap, [h("k")], cutoff=None, now=NOW)
    wave = {d.name: d.wave for d in plan.deletions}
    assert set(wave) == {"realisations/x!out.doi", "debuginfo/1", f"{h('a')}.narinfo", "nar/a.nar"}
    assert wave["realisations/x!out.doi"] < wave[f"{h('a')}.narinfo"] < wave["nar/a.nar"]
    assert wave["debuginfo/1"] < wave["nar/a.nar"]


def test_keep_since_keeps_recent_paths_with_their_closures_and_recent_orphans() -> None:
    snap = snapshot(
        {"a": ("nar/a.nar", "b"), "b": ("nar/b.nar", ""), "c": ("nar/c.nar", ""), "k": ("nar/k.nar", "")},
        extra=("nar/orphannew.nar", "nar/orphanold.nar"),
        mtimes={"nar/a.nar": NOW - 10, "nar/orphannew.nar": NOW - 5},
    )
    plan = plan_gc(snap, [h("k")], cutoff=NOW - 60, now=NOW)
    assert plan.kept == {h("a"), h("b"), h("k")}
    assert {d.name for d in plan.deletions} == {f"{h('c')}.narinfo", "nar/c.nar", "nar/orphanold.nar"}


def test_listings_logs_and_temp_files_and_nothing_outside_the_layout() -> None:
    snap = snapshot(
        {"a": ("nar/a.nar", ""), "k": ("nar/k.nar", "")},
        extra=(
            f"{h('a')}.ls",
            f"{h('k')}.ls",
            f"{h('q')}.ls",
            f"log/{h('a')}-a.drv",
            f"log/{h('k')}-k.drv",
            "nar/.tmp-1-old",
            "nar/.tmp-2-new",
            "nar/lru.json",
            "log/x.txt",
            "lru.sqlite",
        ),
        mtimes={"nar/.tmp-2-new": NOW - 3600},
    )
    plan = plan_gc(snap, [h("k")], cutoff=None, now=NOW)
    kinds = {d.name: d.kind for d in plan.deletions}
    assert kinds == {
        f"{h('a')}.narinfo": "narinfo",
        f"{h('a')}.ls": "listing",
        "nar/a.nar": "nar",
        f"{h('q')}.ls": "listing",
        f"log/{h('a')}-a.drv": "log",
        "nar/.tmp-1-old": "temp",
    }


def test_a_reference_cycle_is_refused() -> None:
    snap = snapshot({"a": ("nar/a.nar", "b"), "b": ("nar/b.nar", "a"), "k": ("nar/k.nar", "")})
    with pytest.raises(StoreError, match="cycle"):
        plan_gc(snap, [h("k")], cutoff=None, now=NOW)


def test_closure_skips_references_without_narinfo() -> None:
    snap = snapshot({"a": ("nar/a.nar", "bz"), "b": ("nar/b.nar", "")})
    assert closure(snap, [h("a")]) == {h("a"), h("b")}


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("1w2d", 9 * 86400), ("90m", 5400), ("0s", 0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "1y", "1d 2h", "-1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)
