"""Planning: stage visibility, order, `--until`, and derivations that change exactly when their inputs do.

The semantics under test (docs/bootstrap.md): a package's inputs are its declared predecessors in its
stage, the whole previous stage, the stages its stage lists in `inputs`, and its sources. Changing a
script, a version or a stage variable must give new `.drv` paths to exactly the packages that depend
on it, and leave every other `.drv` path as it was.
"""

from __future__ import annotations

import pytest
from nixoracle import NixStore

from storekit.bootstrap import stages
from storekit.bootstrap.config import LoadedProfile, parse_profile
from storekit.bootstrap.plan import make_plan, source_derivation
from storekit.derivation.aterm import print_aterm
from storekit.errors import ConfigError
from storekit.storepath import StoreDir

STORE = StoreDir("/opt/store")
MANIFEST = "0" * 64
SHA = "ab" * 32

PROFILE = f"""
[profile]
name = "t"

[[stages]]
name = "one"
env = {{ LFS_TGT = "x86_64-lfs-linux-gnu" }}
sandbox_paths = ["/bin/sh=@seed@/bin/sh"]

[[stages]]
name = "two"
env = {{ CC = "@a@/bin/cc" }}

[[stages]]
name = "three"
inputs = ["one"]

[packages.a]
stage = "one"
version = "1"
sources = [{{ url = "https://example.org/a-1.tar.gz", sha256 = "{SHA}" }}]

[packages.b]
stage = "one"
version = "2"
deps = ["a"]

[packages.x]
stage = "one"
version = "9"

[packages.c]
stage = "two"
version = "3"

[packages.d]
stage = "three"
version = "4"
"""


def loaded(text: str = PROFILE, scripts: dict[str, bytes] | None = None) -> LoadedProfile:
    profile = parse_profile(text, "t.toml")
    files = {"builder.sh": b"builder\n"}
    files.update({p.script: f"script of {p.id}\n".encode() for p in profile.packages.values()})
    files.update(scripts or {})
    return LoadedProfile(profile, files, "/nowhere")


def drv_paths(lp: LoadedProfile, manifest: str = MANIFEST) -> dict[str, str]:
    """Each package's .drv path and output path, together: a change must move both or neither."""
    plan = make_plan(lp, STORE, manifest)
    return {pid: f"{pp.planned.drv_path} {pp.planned.out}" for pid, pp in plan.packages.items()}


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {pid for pid in before if before[pid] != after[pid]}


def test_visible_inputs_follow_the_stage_rules() -> None:
    p = loaded().profile
    assert stages.visible_inputs(p, p.packages["a"]) == ["seed"]
    assert stages.visible_inputs(p, p.packages["b"]) == ["a", "seed"]
    # the whole previous stage, last built first (as if installed over each other); no seed
    assert stages.visible_inputs(p, p.packages["c"]) == ["x", "b", "a"]
    assert stages.visible_inputs(p, p.packages["d"]) == ["c", "x", "b", "a"]  # previous, then `inputs`


def test_order_puts_predecessors_first_and_reports_cycles() -> None:
    text = PROFILE.replace('version = "1"', 'version = "1"\ndeps = ["b"]')
    p = loaded().profile
    assert [[q.id for q in pkgs] for _, pkgs in stages.order(p)] == [["a", "b", "x"], ["c"], ["d"]]
    with pytest.raises(ConfigError, match=r"dependency cycle: (a -> b -> a|b -> a -> b)"):
        stages.order(parse_profile(text, "t.toml"))


def test_until_takes_what_the_target_needs() -> None:
    p = loaded().profile
    assert stages.until(p, "b") == {"a", "b"}
    assert stages.until(p, "one") == {"a", "b", "x"}
    assert stages.until(p, "c") == {"a", "b", "x", "c"}
    with pytest.raises(ConfigError, match="neither a stage"):
        stages.until(p, "nothing")
    assert stages.until(p, "b", "c") == {"a", "b", "x", "c"}  # several targets: the union
    assert stages.default(p) == set(p.packages)


# x as an optional package (a long test suite): built only when named
OPTIONAL = PROFILE.replace('version = "9"', 'version = "9"\noptional = true')


def test_an_optional_package_is_built_only_when_named() -> None:
    p = loaded(OPTIONAL).profile
    assert stages.default(p) == {"a", "b", "c", "d"}
    assert stages.until(p, "one") == {"a", "b"}  # its stage does not stand for it
    assert stages.until(p, "x") == {"x"}
    assert stages.until(p, "x", "c") == {"a", "b", "x", "c"}
    # a later stage does not see it: its inputs are what a plain build makes
    assert stages.visible_inputs(p, p.packages["c"]) == ["b", "a"]
    assert stages.visible_inputs(p, p.packages["d"]) == ["c", "b", "a"]


def test_nothing_built_by_default_may_need_an_optional_package() -> None:
    text = OPTIONAL.replace('version = "2"\ndeps = ["a"]', 'version = "2"\ndeps = ["a", "x"]')
    with pytest.raises(ConfigError, match=r"packages\.b\.deps\[1\].*'x' is optional"):
        parse_profile(text, "t.toml")
    only = PROFILE.replace('version = "3"', 'version = "3"\noptional = true')
    with pytest.raises(ConfigError, match=r"stages\.two.*has no packages"):
        parse_profile(only, "t.toml")


def test_downstream_of_a_failure() -> None:
    p = loaded().profile
    assert stages.downstream(p, ["x"]) == {"x", "c", "d"}
    assert stages.downstream(p, ["c"]) == {"c", "d"}


def test_the_derivation_of_a_package() -> None:
    plan = make_plan(loaded(), STORE, MANIFEST)
    pp = plan.packages["b"]
    drv = pp.planned.drv
    seed = str(plan.seed.out)
    assert drv.builder == f"{seed}/bin/bash"
    assert drv.env["inputs"] == f"{plan.packages['a'].planned.out} {seed}"
    assert drv.env["pkg_a"] == str(plan.packages["a"].planned.out)
    assert drv.env["LFS_TGT"] == "x86_64-lfs-linux-gnu"
    assert drv.env["sandboxPaths"] == f"/bin/sh={seed}/bin/sh"
    assert drv.env["out"] == str(pp.planned.out)
    assert set(drv.input_drvs) == {str(plan.packages["a"].planned.drv_path), str(plan.seed.drv_path)}
    assert plan.packages["c"].planned.drv.env["CC"] == f"{plan.packages['a'].planned.out}/bin/cc"
    assert str(pp.planned.drv_path).endswith("-b-2.drv")
    # every .drv the plan needs is in it, and its text is a Derivation that round-trips
    for path, d in plan.derivations.items():
        assert path.endswith(".drv") and print_aterm(d).startswith("Derive(")


def test_a_package_adds_sandbox_paths_to_its_stage_s_for_itself_only() -> None:
    text = PROFILE.replace('version = "2"', 'version = "2"\nsandbox_paths = ["/bin/cat=@a@/bin/cat"]')
    plan = make_plan(loaded(text), STORE, MANIFEST)
    seed, a = str(plan.seed.out), str(plan.packages["a"].planned.out)
    assert plan.packages["b"].planned.drv.env["sandboxPaths"] == f"/bin/sh={seed}/bin/sh /bin/cat={a}/bin/cat"
    assert plan.packages["x"].planned.drv.env["sandboxPaths"] == f"/bin/sh={seed}/bin/sh"
    assert changed(drv_paths(loaded()), drv_paths(loaded(text))) == {"b", "c", "d"}
    with pytest.raises(ConfigError) as e:
        loaded(text.replace("/bin/cat=@a@/bin/cat", "bin/cat"))
    assert e.value.key == "packages.b.sandbox_paths[0]" and "must be '/TARGET=SOURCE'" in str(e.value)
    with pytest.raises(ConfigError) as e:
        make_plan(loaded(text.replace("@a@/bin/cat", "@x@/bin/cat")), STORE, MANIFEST)
    assert e.value.key == "packages.b.sandbox_paths" and "'@x@' is not among the inputs of 'b'" in str(
        e.value
    )


def test_dep_flags_give_the_compilers_the_own_stage_deps_only() -> None:
    """A `dep_flags` stage links against the deps it names, never the earlier stages' libraries."""
    stage = 'name = "three"\ninputs = ["one"]'
    text = PROFILE.replace(stage, stage + "\ndep_flags = true")
    text += '\n[packages.e]\nstage = "three"\nversion = "5"\ndeps = ["d"]\n'
    plan = make_plan(loaded(text), STORE, MANIFEST)
    d = str(plan.packages["d"].planned.out)
    env = plan.packages["e"].planned.drv.env
    assert env["NIX_CFLAGS_COMPILE"] == f"-isystem {d}/include"
    assert env["NIX_LDFLAGS"] == f"-L{d}/lib -Wl,-rpath,{d}/lib"
    assert plan.packages["d"].planned.drv.env["NIX_LDFLAGS"] == ""  # no deps: nothing, not the stages
    # a stage without it is planned as before: no variables, the same derivations
    assert "NIX_LDFLAGS" not in plan.packages["c"].planned.drv.env
    assert drv_paths(loaded())["c"] == drv_paths(loaded(text))["c"]


def test_a_script_change_rebuilds_that_package_and_what_depends_on_it() -> None:
    before = drv_paths(loaded())
    after = drv_paths(loaded(scripts={"packages/b.sh": b"script of b, edited\n"}))
    assert changed(before, after) == {"b", "c", "d"}


def test_a_version_change_rebuilds_exactly_its_dependents() -> None:
    before = drv_paths(loaded())
    assert changed(before, drv_paths(loaded(PROFILE.replace('version = "9"', 'version = "10"')))) == {
        "x",
        "c",
        "d",
    }
    assert changed(before, drv_paths(loaded(PROFILE.replace('version = "3"', 'version = "3.1"')))) == {
        "c",
        "d",
    }


def test_a_stage_variable_change_rebuilds_that_stage_and_later_ones() -> None:
    before = drv_paths(loaded())
    two = PROFILE.replace('CC = "@a@/bin/cc"', 'CC = "@a@/bin/gcc"')
    assert changed(before, drv_paths(loaded(two))) == {"c", "d"}
    one = PROFILE.replace('LFS_TGT = "x86_64-lfs-linux-gnu"', 'LFS_TGT = "x86_64-pc-linux-gnu"')
    assert changed(before, drv_paths(loaded(one))) == {"a", "b", "x", "c", "d"}


def out_paths(lp: LoadedProfile) -> dict[str, str]:
    plan = make_plan(lp, STORE, MANIFEST)
    return {pid: str(pp.planned.out) for pid, pp in plan.packages.items()}


def test_a_new_source_url_rebuilds_nothing_but_a_new_hash_does() -> None:
    before = out_paths(loaded())
    moved = PROFILE.replace("https://example.org/a-1.tar.gz", "https://mirror.example.org/a-1.tar.gz")
    # the .drv files name the new source .drv, but a fixed output counts by its content: same outputs
    assert changed(before, out_paths(loaded(moved))) == set()
    drvs = {pid: v.split()[0] for pid, v in drv_paths(loaded()).items()}
    moved_drvs = {pid: v.split()[0] for pid, v in drv_paths(loaded(moved)).items()}
    assert changed(drvs, moved_drvs) == {"a", "b", "c", "d"}
    rehashed = PROFILE.replace(SHA, "cd" * 32)
    assert changed(before, out_paths(loaded(rehashed))) == {"a", "b", "c", "d"}


def test_a_new_seed_rebuilds_everything() -> None:
    before = drv_paths(loaded())
    assert changed(before, drv_paths(loaded(), "1" * 64)) == set(before)


def test_placeholders_must_name_visible_inputs() -> None:
    text = PROFILE.replace('CC = "@a@/bin/cc"', 'CC = "@d@/bin/cc"')
    with pytest.raises(ConfigError) as e:
        make_plan(loaded(text), STORE, MANIFEST)
    assert e.value.key == "stages.two.env.CC"
    assert "'@d@' is not among the inputs of 'c'" in str(e.value)


def test_an_unpinned_source_stops_the_plan_with_what_to_do() -> None:
    with pytest.raises(ConfigError) as e:
        make_plan(loaded(PROFILE.replace(f', sha256 = "{SHA}"', "")), STORE, MANIFEST)
    assert e.value.key == "packages.a.sources[0].sha256"
    assert "storekit bootstrap pin" in str(e.value)


def test_every_unpinned_source_is_named_at_once() -> None:
    """A profile with many unpinned files (lfs.toml before `pin`) says all of them in one error."""
    two = PROFILE.replace(f', sha256 = "{SHA}"', "").replace(
        'version = "3"', 'version = "3"\nsources = [{ url = "https://example.org/c-3.tar.xz" }]'
    )
    with pytest.raises(ConfigError) as e:
        make_plan(loaded(two), STORE, MANIFEST)
    assert "2 source file(s) are not pinned (a-1.tar.gz, c-3.tar.xz)" in str(e.value)


def test_the_graph_in_dot() -> None:
    dot = stages.to_dot(loaded().profile)
    assert dot.startswith('digraph "t" {')
    assert '"a" -> "b";' in dot
    assert 'subgraph "cluster_two"' in dot
    assert '"x" -> "d" [ltail="cluster_one", lhead="cluster_three", style=dashed];' in dot


def test_a_source_is_the_fixed_output_derivation_nix_fetchurl_writes(nix_store: NixStore) -> None:
    url = "https://ftp.gnu.org/gnu/m4/m4-1.4.19.tar.xz"
    sha = "63aede5c6d33b6d9b13511cd0be2cac046f2e70fd0a07aa9573a04a82783af96"
    expr = f'import <nix/fetchurl.nix> {{ url = "{url}"; sha256 = "{sha}"; }}'
    nix_drv = nix_store.text("nix-instantiate", "--expr", expr, store_flag=False)
    p = parse_profile(
        f'[profile]\nname="t"\n[[stages]]\nname="s"\n[packages.m4]\nstage="s"\nversion="1"\n'
        f'sources=[{{url="{url}", sha256="{sha}"}}]\n',
        "t.toml",
    )
    planned = source_derivation(p.packages["m4"].sources[0], StoreDir(nix_store.store_dir))
    assert str(planned.drv_path) == nix_drv
    with open(nix_drv) as f:
        assert print_aterm(planned.drv) == f.read()
    fixed = nix_store.text(
        "nix-store", "--print-fixed-path", "sha256", sha, "m4-1.4.19.tar.xz", store_flag=False
    )
    assert str(planned.out) == fixed


def test_a_weak_pin_is_the_md5_fixed_output_nix_fetchurl_writes(nix_store: NixStore) -> None:
    """A source with only the book's md5 plans (lfs.toml offline): the same .drv and path as Nix's."""
    url = "https://ftp.gnu.org/gnu/m4/m4-1.4.19.tar.xz"
    md5 = "0d90823e1426f1da2fd872df0311298d"
    expr = f'import <nix/fetchurl.nix> {{ url = "{url}"; md5 = "{md5}"; }}'
    nix_drv = nix_store.text("nix-instantiate", "--expr", expr, store_flag=False)
    p = parse_profile(
        f'[profile]\nname="t"\n[[stages]]\nname="s"\n[packages.m4]\nstage="s"\nversion="1"\n'
        f'sources=[{{url="{url}", md5="{md5}"}}]\n',
        "t.toml",
    )
    planned = source_derivation(p.packages["m4"].sources[0], StoreDir(nix_store.store_dir))
    assert str(planned.drv_path) == nix_drv
    fixed = nix_store.text(
        "nix-store", "--print-fixed-path", "md5", md5, "m4-1.4.19.tar.xz", store_flag=False
    )
    assert str(planned.out) == fixed
