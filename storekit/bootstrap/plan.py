"""A profile as derivations: pure, from the profile's bytes and the seed's manifest to `.drv` values.

Three kinds of derivation, all ordinary Nix 2.8 derivations with the paths Nix would compute:

- **sources**: fixed-output `builtin:fetchurl` derivations, exactly as Nix's `<nix/fetchurl.nix>`
  writes them (flat sha256 of the file). Their output path depends only on the file name and hash, so
  a new URL or mirror rebuilds nothing downstream. storekit realises them from a mirror directory.
- **the seed** (stage 0): an input-addressed derivation whose builder is `builtin:storekit-seed` and
  whose environment lists the declared host tools and the sha256 of everything copied (`manifest`).
  Its output path is therefore known before it is made, the tools can be patched to run from it, and
  a changed host (a new gcc from apt) is a new seed, so everything after it rebuilds.
- **packages**: run the generic builder (`builder.sh`, a text path) with the seed's bash; inputs are
  those `stages.visible_inputs` names, the package's sources, and its script (a text path). The
  environment carries a `pkg_<id>` variable per input and the stage's and package's variables, with
  `@id@` replaced by that input's store path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from storekit.bootstrap import stages
from storekit.bootstrap.model import SEED, LoadedProfile, Package, Profile, SeedSpec, Source
from storekit.bootstrap.rootfs import rootfs_env, rootfs_package
from storekit.derivation.hashing import instantiate
from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import ConfigError
from storekit.hashing import Hash
from storekit.storepath import FileIngestionMethod, StoreDir, StorePath

SEED_NAME = "bootstrap-seed"
VERIFY = "verify"
#: Bump when `seed.make_seed` changes what it makes from the same host files.
SEED_FORMAT = "2"  # 2: env wrappers keep the caller's settings
SEED_BUILDER = "builtin:storekit-seed"
FETCHURL_BUILDER = "builtin:fetchurl"
IMPURE_ENV = "http_proxy https_proxy ftp_proxy all_proxy no_proxy"
_PLACEHOLDER = re.compile(r"@([a-z0-9][a-z0-9+._-]*)@")


@dataclass(frozen=True, slots=True)
class Planned:
    """One derivation of the plan: its `.drv` path, the complete derivation and its `out` path."""

    drv_path: StorePath
    drv: Derivation
    out: StorePath


@dataclass(frozen=True, slots=True)
class PackagePlan:
    package: Package
    planned: Planned
    sources: tuple[tuple[Source, Planned], ...]
    inputs: tuple[str, ...]
    """Ids of the visible inputs (`seed` included when visible), in PATH order."""


@dataclass(frozen=True, slots=True)
class Plan:
    profile: Profile
    store_dir: StoreDir
    seed: Planned
    texts: Mapping[StorePath, bytes]
    """The builder and scripts as text paths, to add before writing the `.drv` files."""
    stages: tuple[tuple[str, tuple[PackagePlan, ...]], ...]
    derivations: Mapping[str, Derivation]
    """Every `.drv` of the plan by path (sources, seed, packages)."""
    verify: PackagePlan | None = None
    """The sanity checks, a derivation like a package of the verified stage."""
    rootfs: tuple[PackagePlan, ...] = ()
    """The systems as trees (`[rootfs]`), each after its stage; their inputs are the packages listed."""

    @property
    def packages(self) -> dict[str, PackagePlan]:
        return {pp.package.id: pp for _, pps in self.stages for pp in pps}


def source_derivation(source: Source, store_dir: StoreDir, file: str = "") -> Planned:
    """The fixed-output derivation `<nix/fetchurl.nix>` would write for `source` (`file`: the profile)."""
    digest = pinned_hash(source, file)
    env = {
        "builder": FETCHURL_BUILDER,
        "executable": "",
        "impureEnvVars": IMPURE_ENV,
        "name": source.file,
        "outputHash": digest.base16,
        "outputHashAlgo": digest.algo,
        "outputHashMode": "flat",
        "preferLocalBuild": "1",
        "system": "builtin",
        "unpack": "",
        "url": source.urls[0],
        "urls": " ".join(source.urls),
    }
    template = Derivation(
        outputs={"out": DerivationOutput.fixed(FileIngestionMethod.FLAT, digest)},
        system="builtin",
        builder=FETCHURL_BUILDER,
        env=env,
    )
    path, drv = instantiate(template, store_dir, _no_inputs)
    return Planned(path, drv, store_dir.parse_path(drv.outputs["out"].path))


def pinned_hash(source: Source, file: str = "") -> Hash:
    """The hash that fixes a source's output: its sha256, else (a weak pin) the book's md5.

    Nix accepts md5 for fixed outputs (`outputHashAlgo = "md5"`); the path differs from the sha256
    one, so `pin` upgrading a weak pin changes the source's path and its dependents, as it must.
    """
    if source.sha256 is not None:
        return Hash.parse(source.sha256, "sha256")
    if source.md5 is not None:
        return Hash.parse(source.md5, "md5")
    raise ConfigError(
        file,
        f"{source.key}.sha256",
        "is not pinned: fill the mirror (storekit bootstrap sources) "
        "and run storekit bootstrap pin, or write the sha256 (or md5) the project publishes",
    )


def seed_derivation(spec: SeedSpec, manifest: str, system: str, store_dir: StoreDir) -> Planned:
    """Stage 0 as an input-addressed derivation; `manifest` is the sha256 of what it copies (seed.py)."""
    env = {
        "builder": SEED_BUILDER,
        "compilers": " ".join(spec.compilers),
        "debianPackages": " ".join(spec.debian_packages),
        "exclude": " ".join(spec.exclude),
        "files": " ".join(spec.files),
        "manifest": manifest,
        "name": SEED_NAME,
        "sh": spec.sh,
        "storekitSeedFormat": SEED_FORMAT,
        "system": system,
        "tools": " ".join(spec.tools),
    }
    for command, pairs in spec.wrap:
        env["wrap_" + command] = " ".join(f"{k}={v}" for k, v in pairs)
    template = Derivation(outputs={"out": DerivationOutput()}, system=system, builder=SEED_BUILDER, env=env)
    path, drv = instantiate(template, store_dir, _no_inputs)
    return Planned(path, drv, store_dir.parse_path(drv.outputs["out"].path))


def _no_inputs(path: str) -> Derivation:
    raise AssertionError(f"unexpected input derivation {path}")


def text_path(store_dir: StoreDir, relative: str, data: bytes) -> StorePath:
    """Where a builder or script goes: a text path named after the file (`m4.sh`)."""
    name = relative.rsplit("/", 1)[-1]
    return store_dir.make_text_path(name, Hash.of(data))


def make_plan(loaded: LoadedProfile, store_dir: StoreDir, seed_manifest: str) -> Plan:
    """Every derivation of the profile, in build order. Pure: no store is read or written."""
    profile = loaded.profile
    _require_pins(profile)
    seed = seed_derivation(profile.seed, seed_manifest, profile.system, store_dir)
    derivations: dict[str, Derivation] = {str(seed.drv_path): seed.drv}
    texts = {text_path(store_dir, rel, data): data for rel, data in loaded.files.items()}
    text_of = {rel: text_path(store_dir, rel, data) for rel, data in loaded.files.items()}
    done: dict[str, Planned] = {SEED: seed}
    planned_stages = []
    for stage, packages in stages.order(profile):
        plans = []
        for pkg in packages:
            pp = _package(profile, pkg, done, text_of, store_dir, derivations)
            done[pkg.id] = pp.planned
            plans.append(pp)
        planned_stages.append((stage.name, tuple(plans)))
    verify = None
    if profile.verify is not None:
        pkg = verify_package(profile)
        verify = _package(profile, pkg, done, text_of, store_dir, derivations)
    rootfs = []
    for spec in profile.rootfs:
        files = {
            path: store_dir.make_text_path(path.rsplit("/", 1)[-1], Hash.of(text.encode()))
            for path, text in spec.files
        }
        texts.update({files[path]: text.encode() for path, text in spec.files})
        extra = (
            rootfs_env(spec, {k: str(v) for k, v in files.items()}),
            tuple(str(p) for p in files.values()),
        )
        pkg = rootfs_package(spec, profile.name)
        members = list(spec.packages)
        tree = _package(profile, pkg, done, text_of, store_dir, derivations, members, extra, tree=True)
        rootfs.append(tree)
    return Plan(profile, store_dir, seed, texts, tuple(planned_stages), derivations, verify, tuple(rootfs))


def _require_pins(profile: Profile) -> None:
    """One error naming every unpinned source: a source's output path needs its sha256.

    Found one at a time, a profile with many would take as many runs to learn what is missing.
    """
    unpinned = sorted(
        {
            s.file: s
            for p in profile.packages.values()
            for s in p.sources
            if s.sha256 is None and s.md5 is None
        }.values(),
        key=lambda s: s.key,
    )
    if not unpinned:
        return
    shown = ", ".join(s.file for s in unpinned[:8]) + (
        f" and {len(unpinned) - 8} more" if len(unpinned) > 8 else ""
    )
    raise ConfigError(
        profile.file,
        f"{unpinned[0].key}.sha256",
        f"{len(unpinned)} source file(s) are not pinned ({shown}): fill the mirror (storekit bootstrap "
        "sources) and run storekit bootstrap pin, or write the sha256 each project publishes",
    )


def verify_package(profile: Profile) -> Package:
    """`[verify]` as a package of its stage that comes after every other package of that stage."""
    assert profile.verify is not None
    stage = profile.verify.stage
    built = dict((s.name, pkgs) for s, pkgs in stages.order(profile))[stage]
    deps = tuple(p.id for p in reversed(built))  # last built first on PATH, like a later stage sees it
    return Package(VERIFY, VERIFY, profile.name, stage, profile.verify.script, deps)


def _package(
    profile: Profile,
    pkg: Package,
    done: Mapping[str, Planned],
    text_of: Mapping[str, StorePath],
    store_dir: StoreDir,
    derivations: dict[str, Derivation],
    only: list[str] | None = None,
    extra: tuple[dict[str, str], tuple[str, ...]] = ({}, ()),
    *,
    tree: bool = False,
) -> PackagePlan:
    """A package's derivation; `only` replaces its visible inputs, `extra` adds env and input sources.

    A `tree` (a rootfs) runs with the seed's tools alone (PATH, no sandbox paths): it only links its
    inputs and writes text files, which needs `find` and `ln` whether or not the stage has built
    them yet, and the verify checks show that nothing of the seed ends up in it.
    """
    inputs = stages.visible_inputs(profile, pkg) if only is None else only
    sources = []
    for source in pkg.sources:
        planned = source_derivation(source, store_dir, profile.file)
        derivations[str(planned.drv_path)] = planned.drv
        sources.append((source, planned))
    by_file = {s.file: p.out for s, p in sources}
    paths = {i: str(done[i].out) for i in inputs}
    seed_out = str(done[SEED].out)
    env = _env(profile, pkg, inputs, paths, seed_out, tree)
    env["src"] = str(sources[0][1].out) if sources else ""
    env["srcs"] = " ".join(str(p.out) for _, p in sources)
    env["patches"] = " ".join(_patch(by_file, p) for p in pkg.patches)
    env["script"] = str(text_of[pkg.script])
    env.update({k: _resolver(profile, pkg, paths, seed_out)(v, f"{pkg.id}.{k}") for k, v in extra[0].items()})
    builder_text = str(text_of[profile.builder])
    input_drvs = {str(done[i].drv_path): ("out",) for i in inputs}
    input_drvs[str(done[SEED].drv_path)] = ("out",)
    input_drvs.update({str(p.drv_path): ("out",) for _, p in sources})
    template = Derivation(
        outputs={"out": DerivationOutput()},
        input_drvs=input_drvs,
        input_srcs=(builder_text, env["script"], *extra[1]),
        system=profile.system,
        builder=f"{seed_out}/bin/bash",
        args=("-e", builder_text),
        env=env,
    )
    drv_path, drv = instantiate(template, store_dir, derivations.__getitem__)
    derivations[str(drv_path)] = drv
    planned = Planned(drv_path, drv, store_dir.parse_path(drv.outputs["out"].path))
    return PackagePlan(pkg, planned, tuple(sources), tuple(inputs))


def _env(
    profile: Profile, pkg: Package, inputs: list[str], paths: dict[str, str], seed: str, tree: bool = False
) -> dict[str, str]:
    stage = profile.stage(pkg.stage)
    check = stage.check if pkg.check is None else pkg.check
    env = {
        "name": f"{pkg.id}-{pkg.version}",
        "pname": pkg.name,
        "version": pkg.version,
        "stage": pkg.stage,
        "system": profile.system,
        "builder": f"{seed}/bin/bash",
        "seed": seed,
        "inputs": seed if tree else " ".join(paths[i] for i in inputs),
        "doCheck": "1" if check else "",
        "allowedTestFailures": " ".join(pkg.allowed_test_failures),
        "hostPaths": "\n".join(profile.host_paths),
        "hostPathsAllowed": "\n".join((*profile.allowed_host_paths, *pkg.allowed_host_paths)),
        "out": "",
    }
    env.update({"pkg_" + re.sub(r"[^A-Za-z0-9_]", "_", i): paths[i] for i in inputs})
    resolve = _resolver(profile, pkg, paths, seed)
    sandbox = [] if tree else [resolve(p, f"stages.{stage.name}.sandbox_paths") for p in stage.sandbox_paths]
    sandbox += [resolve(p, f"packages.{pkg.id}.sandbox_paths") for p in pkg.sandbox_paths]
    env["sandboxPaths"] = " ".join(sandbox)
    if stage.dep_flags and not tree:
        env.update(_dep_flags([paths[d] for d in pkg.deps]))
    for key, value in stage.env:
        env[key] = resolve(value, f"stages.{stage.name}.env.{key}")
    for key, value in pkg.env:
        env[key] = resolve(value, f"packages.{pkg.id}.env.{key}")
    return env


def _dep_flags(deps: list[str]) -> dict[str, str]:
    """The compiler and linker flags that make `deps` (store paths) what a build compiles against.

    Written into the derivation rather than computed by the builder, so the stages before (whose
    builder does its own `LFS_INPUT_FLAGS`) keep their derivations.
    """
    return {
        "NIX_CFLAGS_COMPILE": " ".join(f"-isystem {d}/include" for d in deps),
        "NIX_LDFLAGS": " ".join(f"-L{d}/lib -Wl,-rpath,{d}/lib" for d in deps),
    }


def _resolver(profile: Profile, pkg: Package, paths: dict[str, str], seed: str) -> Callable[[str, str], str]:
    def resolve(value: str, key: str) -> str:
        def sub(m: re.Match[str]) -> str:
            ident = m.group(1)
            if ident == SEED:
                return seed
            if ident not in paths:
                raise ConfigError(
                    profile.file,
                    key,
                    f"'@{ident}@' is not among the inputs of '{pkg.id}' (visible: {', '.join(paths)})",
                )
            return paths[ident]

        return _PLACEHOLDER.sub(sub, value)

    return resolve


def _patch(by_file: Mapping[str, StorePath], patch: str) -> str:
    """`FILE[:MEMBER][#pN]` with FILE replaced by the source's store path."""
    body = re.sub(r"#p[0-9]$", "", patch)
    file, sep, inner = body.partition(":")
    return f"{by_file[file]}{sep}{inner}{patch[len(body) :]}"
