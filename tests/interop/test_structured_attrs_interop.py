"""Structured attributes against real Nix 2.8: the builder copies `.attrs.json` and `.attrs.sh` into its
output, so the same output path and NAR hash under storekit and under `nix-store --realise` (sandboxed)
mean byte-equal files. The attributes cover every JSON kind (strings with quotes, newlines and
non-ASCII text, integers past 32 bits, floats, Booleans, null, nested sets and lists, names that are
no shell names), an output placeholder, `exportReferencesGraph` (of a path and of a `.drv`) and
`outputChecks`, whose violations both refuse.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from build_oracle import (
    assert_same_infos,
    instantiate,
    oracle_real,
    oracle_uri,
    realise,
    run_nix,
    storekit,
)
from nixoracle import NixStore

pytestmark = pytest.mark.interop

EXPRESSION = r"""
{ bbdir }:
let
  bb = builtins.path { path = bbdir; name = "busybox"; };
  sys = builtins.currentSystem;
  dep = derivation {
    name = "dep"; system = sys; builder = "${bb}/busybox";
    args = [ "sh" "-c" "echo dep > $out" ];
  };
  # with structured attrs nothing but the fixed variables is in the environment: outputs come from
  # .attrs.json, read with busybox's sed
  script = body: ''
    set -e
    bb=${bb}/busybox
    out=$($bb sed 's/.*"outputs":{[^}]*"out":"\([^"]*\)".*/\1/' .attrs.json)
    ${body}
  '';
  mk = name: body: attrs: derivation ({
    inherit name;
    system = sys;
    builder = "${bb}/busybox";
    args = [ "sh" "-c" (script body) ];
    __structuredAttrs = true;
  } // attrs);
in {
  attrs = mk "attrs" ''
    dev=$($bb sed 's/.*"outputs":{"dev":"\([^"]*\)".*/\1/' .attrs.json)
    $bb mkdir $out
    $bb cp .attrs.json .attrs.sh $out/
    $bb env | $bb grep -v '^NIX_ATTRS_' | $bb sort > $out/env
    $bb ls -a . | $bb sort > $out/build-dir
    echo ${dep} > $out/dep
    echo dev > $dev
  '' {
    outputs = [ "out" "dev" ];
    text = "it's \"quoted\"\n\ttabbed \\ back/slash, ünïcode ✓, $dollar `tick`";
    empty = "";
    ints = [ 0 1 (-5) 2147483647 2147483648 4294967296 1099511627776 9007199254740993 ];
    big = 1099511627776;
    negative = -42;
    floats = [ 1.5 2.0 0.0001 0.00001 1.0e20 3.14159265358979 (-0.5) 1.0e15 123456789.0 ];
    half = 1.5;
    whole = 2.0;
    yes = true;
    no = false;
    nothing = null;
    nested = { a = { b = [ 1 { c = null; } ]; }; "with space" = "x"; };
    flat = { s = "v"; n = 7; t = true; f = false; z = null; };
    mixed = [ "a" 1 true null ];
    deep = [ [ 1 ] ];
    emptyList = [];
    emptySet = {};
    "not-a-shell-name" = "skipped in .attrs.sh";
    "1digit" = 1;
    self = placeholder "dev";
    dep = dep;
    exportReferencesGraph = { graph = [ dep ]; drvgraph = dep.drvPath; };
    outputChecks = {
      out = {
        allowedReferences = [ "out" "dev" dep dep.drvPath bb ];
        maxSize = 1000000;
        maxClosureSize = 10000000;
      };
      dev.disallowedRequisites = [ dep ];
    };
    impureEnvVars = [ "ignored_not_fixed" ];
  };
  # without structured attributes: the graph is a file in /build, and requisites leave out the output
  legacy = derivation {
    name = "legacy"; system = sys; builder = "${bb}/busybox";
    args = [ "sh" "-c" "${bb}/busybox cat graph drvgraph > $out" ];
    exportReferencesGraph = [ "graph" dep "drvgraph" dep.drvPath ];
    allowedRequisites = [ dep bb dep.drvPath ];
    disallowedReferences = [ "out" ];
  };
  # output placeholders in the env, the args and a passAsFile file become the output paths
  placeholders = derivation {
    name = "placeholders"; system = sys; builder = "${bb}/busybox";
    outputs = [ "out" "doc" ];
    args = [ "sh" "-c" ''
      echo ${placeholder "doc"} $prefix > $out
      ${bb}/busybox cat $notesPath >> $out
      echo > $doc
    '' ];
    prefix = "${placeholder "out"}/share";
    notes = "docs at ${placeholder "doc"}";
    passAsFile = [ "notes" ];
  };
  tooBig = mk "too-big" "echo 0123456789 > $out" { outputChecks.out.maxSize = 10; };
  notAllowed = mk "not-allowed" "echo ${dep} > $out" {
    outputChecks.out.allowedRequisites = [ "out" ];
  };
}
"""


@pytest.fixture
def expression(tmp_path: Path) -> Path:
    bbdir = tmp_path / "bbdir"
    bbdir.mkdir()
    shutil.copy("/bin/busybox", bbdir / "busybox")
    (tmp_path / "default.nix").write_text(EXPRESSION)
    return tmp_path


def both(nix_store: NixStore, expr: Path, attr: str) -> str:
    """Instantiate `attr` in both stores (the same .drv path, since the store dir is the same)."""
    args = ("--arg", "bbdir", str(expr / "bbdir"))
    drv = instantiate(nix_store, nix_store.uri, expr / "default.nix", attr, *args)
    assert instantiate(nix_store, oracle_uri(nix_store), expr / "default.nix", attr, *args) == drv
    return drv


def test_attrs_files_byte_equal_to_nix(nix_store: NixStore, expression: Path) -> None:
    drv = both(nix_store, expression, "attrs")
    built = storekit("build", drv, "--store", nix_store.uri).stdout.split()
    nix_built = realise(nix_store, oracle_uri(nix_store), drv).stdout.split()
    assert sorted(built) == sorted(nix_built)
    assert_same_infos(nix_store, built)
    out = next(p for p in built if not p.endswith("-dev"))
    ours, theirs = Path(out), oracle_real(nix_store) / Path(out).name
    for name in (".attrs.json", ".attrs.sh", "env", "build-dir"):
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name
    sh = (ours / ".attrs.sh").read_text()
    assert "declare big=0\n" in sh and "declare -a floats=" not in sh and "not-a-shell-name" not in sh
    text = (ours / ".attrs.json").read_text()
    assert '"graph":[{"closureSize":' in text
    # Nix 2.8 wrote the floats into __json with "%g"; nlohmann::json prints them its own way
    assert '"floats":[1.5,2,0.0001,1e-05,1e+20,3.14159,-0.5,1e+15,123457000.0]' in text


def test_legacy_export_references_graph_like_nix(nix_store: NixStore, expression: Path) -> None:
    drv = both(nix_store, expression, "legacy")
    (out,) = storekit("build", drv, "--store", nix_store.uri).stdout.split()
    assert realise(nix_store, oracle_uri(nix_store), drv).stdout.split() == [out]
    assert_same_infos(nix_store, [out])
    assert (oracle_real(nix_store) / Path(out).name).read_bytes() == Path(out).read_bytes()


REFUSALS = [
    ("tooBig", "is too large at 128 bytes; limit is 10 bytes"),
    ("notAllowed", "is not allowed to refer to"),
]


def test_placeholders_rewritten_like_nix(nix_store: NixStore, expression: Path) -> None:
    drv = both(nix_store, expression, "placeholders")
    built = storekit("build", drv, "--store", nix_store.uri).stdout.split()
    assert sorted(realise(nix_store, oracle_uri(nix_store), drv).stdout.split()) == sorted(built)
    assert_same_infos(nix_store, built)
    out = next(p for p in built if not p.endswith("-doc"))
    doc = next(p for p in built if p.endswith("-doc"))
    assert Path(out).read_text() == f"{doc} {out}/share\ndocs at {doc}"


@pytest.mark.parametrize(("attr", "message"), REFUSALS)
def test_output_checks_refuse_like_nix(
    nix_store: NixStore, expression: Path, attr: str, message: str
) -> None:
    drv = both(nix_store, expression, attr)
    failed = storekit("build", drv, "--store", nix_store.uri, check=False)
    assert failed.returncode == 1 and message in failed.stderr, failed.stderr
    nix = realise(nix_store, oracle_uri(nix_store), drv, check=False)
    assert nix.returncode != 0 and message in nix.stderr, nix.stderr
    # nothing was registered
    out = run_nix(nix_store, ["nix-store", "--store", nix_store.uri, "-q", "--outputs", drv]).stdout.strip()
    valid = run_nix(nix_store, ["nix-store", "--store", nix_store.uri, "--check-validity", out], check=False)
    assert valid.returncode != 0
