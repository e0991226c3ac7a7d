"""Derivations against real Nix 2.8 as the oracle, in a store whose store dir is not /nix/store.

Real Nix instantiates the derivations (`nix-instantiate`) and shows them (`nix show-derivation`);
storekit must reproduce the `.drv` bytes, the JSON, the output paths and the `.drv` path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storekit.derivation import Derivation
from storekit.derivation.aterm import parse, print_aterm
from storekit.derivation.hashing import check, drv_path, instantiate, output_paths
from storekit.derivation.json import dumps, from_json, loads, to_json
from storekit.hashing import Hash
from storekit.storepath import StoreDir

pytestmark = pytest.mark.interop

CASES = Path(__file__).parent.parent / "data" / "derivations" / "cases.nix"
REPO = Path(__file__).parent.parent.parent
FEATURES = ("--extra-experimental-features", "ca-derivations impure-derivations")


def read(path: str | Path) -> str:
    return Path(path).read_bytes().decode("utf-8", "surrogateescape")


def instantiate_nix(nix_store, *args: str) -> list[str]:  # type: ignore[no-untyped-def]
    out = nix_store.run("nix-instantiate", *FEATURES, *args)
    # Nix prints `path.drv!output` for a derivation without an `out` output.
    return [line.split("!")[0] for line in os.fsdecode(out).split()]


def nix_show(nix_store, *paths: str, recursive: bool = False) -> bytes:  # type: ignore[no-untyped-def]
    return nix_store.run("nix", "show-derivation", *FEATURES, *(["-r"] if recursive else []), *paths)


def lookup(path: str) -> Derivation:
    return parse(read(path))


def storekit(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "storekit", *args], capture_output=True, env=env, check=False
    )


def assert_like_nix(nix_store, path: str) -> None:  # type: ignore[no-untyped-def]
    """Everything storekit computes about the `.drv` at `path` equals what Nix wrote and prints."""
    store = StoreDir(nix_store.store_dir)
    text = read(path)
    drv = parse(text)
    assert print_aterm(drv) == text
    assert check(path, drv, store, lookup) == []
    assert str(drv_path(drv, store, name=Path(path).name[33:-4])) == path
    known = {o: out.path for o, out in drv.outputs.items() if out.path}
    assert {o: str(p) for o, p in output_paths(drv, store, lookup).items()} == known
    assert (dumps(to_json(path, drv)) + "\n").encode("utf-8", "surrogateescape") == nix_show(nix_store, path)


def test_all_cases_under_another_store_dir(nix_store) -> None:  # type: ignore[no-untyped-def]
    roots = instantiate_nix(nix_store, str(CASES))
    closure = nix_store.text("nix-store", "--query", "--requisites", *roots).split()
    drvs = [p for p in closure if p.endswith(".drv")]
    assert len(drvs) >= 20
    for path in drvs:
        assert_like_nix(nix_store, path)
    proc = storekit("drv", "show", "-r", *roots)
    assert proc.stdout == nix_show(nix_store, *roots, recursive=True)


def test_show_several_paths_sorted_and_deduplicated(nix_store) -> None:  # type: ignore[no-untyped-def]
    roots = instantiate_nix(nix_store, str(CASES), "-A", "chain3", "-A", "simple", "-A", "fodSha1")
    args = [roots[2], roots[0], roots[1], roots[0]]
    proc = storekit("drv", "show", *args)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == nix_show(nix_store, *args)


def test_print_of_nix_json_is_the_drv(nix_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (root,) = instantiate_nix(nix_store, str(CASES), "-A", "escapes")
    shown = tmp_path / "shown.json"
    shown.write_bytes(nix_show(nix_store, root))
    proc = storekit("drv", "print", str(shown))
    assert proc.stdout == Path(root).read_bytes()
    assert from_json(loads(read(shown)))[1] == lookup(root)


def test_drv_check_passes_and_fails_on_tampered_copy(nix_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (root,) = instantiate_nix(nix_store, str(CASES), "-A", "diamond")
    ok = storekit("drv", "check", root)
    assert ok.returncode == 0, ok.stderr.decode()
    copy = tmp_path / "store"
    copy.mkdir()
    for p in nix_store.text("nix-store", "--query", "--requisites", root).split():
        if p.endswith(".drv"):
            shutil.copy(p, copy)
    target = copy / Path(root).name
    assert storekit("drv", "check", "--store-dir", nix_store.store_dir, str(target)).returncode == 0
    # Change what the derivation builds, leaving its recorded output path alone.
    target.chmod(0o644)
    target.write_bytes(target.read_bytes().replace(b'("name","diamond")', b'("name","diamond"),("z","1")'))
    bad = storekit("drv", "check", "--store-dir", nix_store.store_dir, str(target))
    assert bad.returncode == 1
    assert b"output 'out' is" in bad.stderr and bad.stderr.count(b"\n") == 1


# --- generated derivations ---------------------------------------------------------------------------

RESERVED = {"name", "system", "builder", "args", "outputs", "outputHash", "outputHashAlgo", "outputHashMode"}


def nix_string(s: str) -> str:
    """A Nix string literal for `s` (CR must be escaped: Nix's lexer turns raw CR into LF)."""
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "$": "\\$"}
    return '"' + "".join(escapes.get(c, c) for c in s) + '"'


_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00") | st.sampled_from(
    '"\\\n\r\t${}' + "\udcff\udc80"
)
_text = st.text(_chars, max_size=12)
_names = st.from_regex(r"[0-9A-Za-z+._?=-][0-9A-Za-z+._?=-]{0,30}", fullmatch=True).filter(
    lambda n: not n.endswith(".drv")
)
_outputs = st.lists(
    st.sampled_from(["out", "dev", "lib", "bin", "doc", "man"]), min_size=1, max_size=4, unique=True
)
_fixed = st.tuples(
    st.sampled_from(["md5", "sha1", "sha256", "sha512"]),
    st.booleans(),
    st.sampled_from(["base16", "nix32", "sri"]),
    st.binary(min_size=64, max_size=64),
)


def fixed_attrs(spec: tuple[str, bool, str, bytes]) -> str:
    algo, recursive, form, digest = spec
    h = Hash(algo, digest[: {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}[algo]])
    given_hash = {"base16": h.base16, "nix32": h.nix32, "sri": h.sri}[form]
    mode = 'outputHashMode = "recursive"; ' if recursive else ""
    return f'outputHash = "{given_hash}"; outputHashAlgo = "{algo}"; {mode}'


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=_names,
    args=st.lists(_text, max_size=4),
    env=st.dictionaries(_text, _text, max_size=5),
    outputs=_outputs,
    fixed=st.none() | _fixed,
)
def test_generated_derivations(nix_store, name, args, env, outputs, fixed) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in env.items() if k not in RESERVED and k not in outputs and not k.startswith("__")}
    attrs = "".join(f"{nix_string(k)} = {nix_string(v)}; " for k, v in env.items())
    if fixed is None:
        attrs += f"outputs = [{' '.join(nix_string(o) for o in outputs)}]; "
    else:
        attrs += fixed_attrs(fixed)
    expr = (
        f'derivation {{ name = {nix_string(name)}; system = "x86_64-linux"; builder = "/bin/sh"; '
        f"args = [{' '.join(nix_string(a) for a in args)}]; {attrs}}}"
    )
    (path,) = instantiate_nix(nix_store, "-E", expr)
    assert_like_nix(nix_store, path)
    drv = lookup(path)
    template = drv.replace(
        outputs={o: out.with_path("") for o, out in drv.outputs.items()},
        env={k: v for k, v in drv.env.items() if k not in drv.outputs},
    )
    got_path, got = instantiate(template, StoreDir(nix_store.store_dir), lookup)
    assert (str(got_path), got) == (path, drv)
