"""A fuzzer for the inputs storekit does not trust: mutated NARs (restore, import into a store, listing)
and mutated ELF files (parsing, then an edit that grows the file).

Whatever the mutation, the outcome is a result or a `StorekitError` (the CLI's one `error:` line),
never another exception (a traceback: a bug), and nothing is written outside the target. The default
run tries a few dozen cases per input (a few seconds); `just fuzz` runs thousands
(`FUZZ_EXAMPLES=<n>`).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nar_trees import trees

from storekit.elf import SetRpath
from storekit.elf.fs import edit_file, read_facts
from storekit.errors import StorekitError
from storekit.hashing import Hash
from storekit.nar.fs import restore
from storekit.nar.listing import ls
from storekit.nar.writer import to_bytes
from storekit.store.base import ValidPathInfo
from storekit.store.content_address import source_ca
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

#: Lengths that break naive code: zero, around 2^31/2^32, 2^62, 2^63, 2^64 - 1.
_LENGTHS = [0, 1, 7, 255, 4096, 1 << 31, (1 << 32) - 1, 1 << 62, 1 << 63, (1 << 64) - 1]


@st.composite
def _mutated(draw: st.DrawFn, original: bytes, *, header: int | None = None) -> bytes:
    """`original` after a few mutations: byte flips, a u64 overwritten with a nasty length, a cut, a
    splice of its own bytes elsewhere. `header` confines most mutations to the first bytes (ELF headers)."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        zone = min(len(data), header) if header else len(data)
        kind = draw(st.sampled_from(["flip", "length", "cut", "splice"]))
        at = draw(st.integers(0, max(0, zone - 1)))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "length" and at + 8 <= len(data):
            data[at - at % 8 : at - at % 8 + 8] = draw(st.sampled_from(_LENGTHS)).to_bytes(8, "little")
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "splice":
            src = draw(st.integers(0, len(data) - 1))
            data[at:at] = data[src : src + draw(st.integers(1, 32))]
    return bytes(data)


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@st.composite
def _nar_mutants(draw: st.DrawFn) -> tuple[bytes, bytes]:
    original = to_bytes(draw(trees))
    return original, draw(_mutated(original))


@FUZZ
@given(case=_nar_mutants())
def test_mutated_nars_restore_or_refuse_inside_their_target(
    tmp_path: Path, case: tuple[bytes, bytes]
) -> None:
    _, nar = case
    work = tmp_path / f"w{os.urandom(4).hex()}"
    (work / "beside").mkdir(parents=True)
    (work / "beside" / "keep").write_bytes(b"keep")
    try:
        restore(io.BytesIO(nar), work / "out", nar_size=len(nar))
    except StorekitError:
        assert not os.path.lexists(work / "out")  # a refused restore leaves nothing
    assert (work / "beside" / "keep").read_bytes() == b"keep"
    assert [p for p in _listing(work) if not p.startswith("out")] == ["beside", "beside/keep"]
    with contextlib.suppress(StorekitError):
        ls(io.BytesIO(nar), recursive=True)
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    root = tmp_path_factory.mktemp("fuzzstore")
    return LocalStore(local_spec_for(str(root / "store"), state_dir=str(root / "var" / "nix")))


@FUZZ
@given(case=_nar_mutants())
def test_mutated_nars_import_or_refuse(store: LocalStore, case: tuple[bytes, bytes]) -> None:
    """Imported under the original's metadata (as from a cache): valid only if the bytes are the original."""
    original, nar = case
    nar_hash = Hash.of(original)
    path = store.store_dir.make_source_path("fuzz", nar_hash)
    info = ValidPathInfo(path, nar_hash, len(original), ca=source_ca(nar_hash))
    before = set(os.listdir(store.real_dir))
    try:
        store.add_from_nar(info, io.BytesIO(nar))
    except StorekitError:
        assert not store.is_valid_path(path) or nar == original or path.base_name in before
    else:
        assert b"".join(store.nar_from_path(path)) == original
    after = set(os.listdir(store.real_dir))
    assert after - before <= {path.base_name}


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The ELF test binaries of tests/elf/ (its fixtures module, found beside its tests)."""
    sys.path.insert(0, str(Path(__file__).parent / "elf"))
    return importlib.import_module("elf_fixtures").shared_fixtures(tmp_path_factory)


@FUZZ
@given(data=st.data(), name=st.sampled_from(["pie", "nopie", "lib/libans.so.1"]))
def test_mutated_elf_files_parse_and_edit_or_refuse(
    fx: Any, tmp_path: Path, data: st.DataObject, name: str
) -> None:
    original = fx.path(name).read_bytes()
    mutant = data.draw(_mutated(original, header=1024) | _mutated(original))
    work = tmp_path / f"w{os.urandom(4).hex()}"
    work.mkdir()
    target = work / "target"
    target.write_bytes(mutant)
    with contextlib.suppress(StorekitError):
        read_facts(str(target))
    try:
        edit_file(str(target), [SetRpath("/fuzz/" + "r" * 300)])
    except StorekitError:
        assert target.read_bytes() == mutant  # refused: not a byte written
    assert os.listdir(work) == ["target"]
    assert target.stat().st_size <= len(mutant) + (64 << 20)
    shutil.rmtree(work)
