"""The per-file rules of relocation: text, binary padding, refusals, and ELF files compiled by gcc.

Binary and text cases are pure (bytes in, bytes out). ELF cases compile a library and programs
whose RUNPATH, interpreter or `.rodata` name a fake old store dir, relocate the bytes and run the
result from the new store dir.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storekit.elf import parse
from storekit.relocate.rewrite import rewrite_file
from storekit.relocate.rules import (
    SHEBANG_LIMIT,
    Rules,
    find_dir,
    is_text,
    rewrite_free,
)

OLD = b"/tmp/old-store-for-relocation-tests/with/a/long/store"
SHORT = b"/tmp/s"
LONG = b"/tmp/a-much-longer-store-for-relocation-tests/with/a/long/store"
EQUAL = b"/tmp/new-store-for-relocation-tests/with/a/long/store"
H1 = b"a" * 32
H2 = b"b" * 32


def rules(new: bytes = LONG, hashes: dict[bytes, bytes] | None = None, unsafe: bool = False) -> Rules:
    return Rules(OLD, new, hashes or {}, unsafe)


def test_store_dir_counts_only_as_a_whole_path_component() -> None:
    parts = [OLD + b"/x ", b"/home" + OLD + b" ", OLD + b"2 ", b"x" + OLD + b" ", OLD]
    data = b"".join(parts)
    assert find_dir(data, OLD) == [0, len(data) - len(OLD)]
    assert rewrite_free(data, rules()) == b"".join([LONG + b"/x ", *parts[1:4], LONG])


def test_text_is_rewritten_freely_with_every_length() -> None:
    text = b"#!/bin/sh\nexec " + OLD + b"/" + H1 + b'-x/bin/x "$@" # ' + OLD + b"\n"
    for new in (SHORT, EQUAL, LONG):
        out = rewrite_file("bin/x", text, rules(new, {H1: H2}))
        assert out.kind == "text" and not out.blockers
        assert out.data == text.replace(OLD, new).replace(H1, H2)


def test_binary_shorter_store_dir_is_padded_on_the_left() -> None:
    data = b"\0\x01head\0" + OLD + b"/" + H1 + b"-lib/lib\0tail\0" + OLD + b"\0"
    out = rewrite_file("share/blob", data, rules(SHORT))
    assert out.kind == "binary" and out.data is not None and not out.blockers
    pad = b"/" * (len(OLD) - len(SHORT))
    assert out.data == data.replace(OLD, pad + SHORT)
    assert len(out.data) == len(data)


def test_binary_equal_length_is_replaced_in_place() -> None:
    data = b"\0\xff" + OLD + b"/x\0"
    assert rewrite_file("f", data, rules(EQUAL)).data == data.replace(OLD, EQUAL)


def test_binary_that_would_grow_is_refused_at_each_offset() -> None:
    data = b"\0\x02" + OLD + b"/x\0\0" + OLD + b"\0"
    out = rewrite_file("share/blob", data, rules(LONG))
    assert out.data is None
    assert [(b.file, b.offset) for b in out.blockers] == [("share/blob", 2), ("share/blob", data.rindex(OLD))]
    assert all("grow by" in b.why for b in out.blockers)


def test_allow_unsafe_grows_binary_data_and_warns() -> None:
    data = b"\0\x02" + OLD + b"/x\0"
    out = rewrite_file("share/blob", data, rules(LONG, unsafe=True))
    assert out.data == data.replace(OLD, LONG) and not out.blockers
    assert out.warnings and "--allow-unsafe" in out.warnings[0]


def test_padding_left_by_a_shorter_relocation_is_taken_back() -> None:
    data = b"\0\x01" + OLD + b"/lib\0"
    there = rewrite_file("f", data, Rules(OLD, SHORT)).data
    assert there is not None
    back = rewrite_file("f", there, Rules(SHORT, OLD))
    assert back.data == data and not back.blockers


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.one_of(st.binary(max_size=12), st.just(OLD), st.just(OLD + b"/lib")), max_size=8),
    new=st.sampled_from([SHORT, EQUAL, b"/x"]),
)
def test_there_and_back_gives_the_original_bytes(pieces: list[bytes], new: bytes) -> None:
    data = b"\0DATA" + b"\0".join(pieces) + b"\0"  # no container magic at the start
    there = rewrite_file("f", data, Rules(OLD, new))
    assert not there.blockers
    moved = data if there.data is None else there.data
    if find_dir(data, OLD) and b"\0" in data:
        assert not find_dir(moved, OLD)
    back = rewrite_file("f", moved, Rules(new, OLD))
    assert not back.blockers
    assert (moved if back.data is None else back.data) == data


def test_hash_parts_are_rewritten_anywhere_at_the_same_length() -> None:
    data = b"\0\x01" + H1 + b"\0" + OLD + b"/" + H1 + b"-x\0"
    out = rewrite_file("f", data, rules(SHORT, {H1: H2}))
    assert (
        out.data is not None and len(out.data) == len(data) and H1 not in out.data and out.data.count(H2) == 2
    )


def test_compressed_data_refuses_any_change() -> None:
    blob = gzip.compress(b"x" * 100, mtime=0) + OLD + b"/lib"
    out = rewrite_file("share/x.gz", blob, rules(SHORT))
    assert out.data is None and out.blockers and "gzip" in out.blockers[0].why
    assert rewrite_file("share/y.gz", gzip.compress(b"x", mtime=0), rules(SHORT)).data is None


def test_text_is_decided_by_content_not_name() -> None:
    assert is_text(b"plain text \xc3\xa9\n")
    assert not is_text(b"has a \0 NUL")
    assert not is_text(b"\xff\xfe latin-1 \xe9")
    assert is_text("é".encode() * 5000)  # a multibyte character cut at the probe's end


def test_shebang_longer_than_the_kernel_reads_is_refused_or_warned() -> None:
    script = b"#!" + OLD + b"/" + H1 + b"-sh/bin/sh\necho\n"
    base = len(script.split(b"\n")[0])
    warn_dir = b"/" + b"w" * (128 - base + len(OLD))
    warned = rewrite_file("bin/s", script, rules(warn_dir))
    assert warned.data is not None and warned.warnings and "5.1" in warned.warnings[0]
    long_dir = b"/" + b"l" * (SHEBANG_LIMIT + 1 - base + len(OLD))
    refused = rewrite_file("bin/s", script, rules(long_dir))
    assert refused.data is None and refused.blockers[0].offset == 0
    assert rewrite_file("bin/s", script, rules(long_dir, unsafe=True)).data is not None


# --- ELF files, compiled here -------------------------------------------------------------------


def gcc(*argv: str | Path) -> None:
    proc = subprocess.run(["gcc", *map(str, argv)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def elfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A library in a fake old store path, and programs naming it (RUNPATH, interpreter, .rodata)."""
    root = tmp_path_factory.mktemp("relocelf")
    lib_dir = Path(os.fsdecode(OLD)) / (os.fsdecode(H1) + "-lib") / "lib"
    src = root / "src"
    src.mkdir()
    (src / "lib.c").write_text('const char *greet(void) { return "hello"; }\n')
    (src / "main.c").write_text(
        "#include <stdio.h>\nconst char *greet(void);\nint main(void){puts(greet());}\n"
    )
    (src / "self.c").write_text(f'#include <stdio.h>\nint main(void){{puts("{os.fsdecode(OLD)}/self");}}\n')
    out = {"lib": root / "libgreet.so"}
    gcc("-shared", "-fPIC", "-Wl,-soname,libgreet.so", "-o", out["lib"], src / "lib.c")
    ldso = Path(os.fsdecode(OLD)) / (os.fsdecode(H2) + "-glibc") / "lib" / "ld-linux-x86-64.so.2"
    common = [src / "main.c", out["lib"], f"-Wl,-rpath,{lib_dir}", "-Wl,--enable-new-dtags"]
    out["runpath"] = root / "runpath"
    gcc("-o", out["runpath"], *common)
    out["interp"] = root / "interp"
    gcc("-o", out["interp"], *common, f"-Wl,--dynamic-linker={ldso}")
    out["rodata"] = root / "rodata"
    gcc("-o", out["rodata"], src / "self.c")
    return out


def install(tmp: Path, new: bytes, elfs: dict[str, Path], program: str, data: bytes) -> Path:
    """Lay out the new store dir: the library, the host's ld.so, and the relocated program."""
    new_dir = Path(os.fsdecode(new))
    lib = new_dir / (os.fsdecode(H1) + "-lib") / "lib"
    lib.mkdir(parents=True)
    shutil.copy(elfs["lib"], lib / "libgreet.so")
    glibc = new_dir / (os.fsdecode(H2) + "-glibc") / "lib"
    glibc.mkdir(parents=True)
    shutil.copy("/lib64/ld-linux-x86-64.so.2", glibc / "ld-linux-x86-64.so.2")
    target = new_dir / "bin" / program
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    target.chmod(0o755)
    return target


def relocated(tmp: Path, program: str, elfs: dict[str, Path], length: str) -> tuple[bytes, bytes]:
    """The program's bytes rewritten for a new store dir under `tmp` (same, shorter, longer length)."""
    base = os.fsencode(tmp)
    new = {"shorter": base + b"/s", "equal": base + b"/" + b"e" * (len(OLD) - len(base) - 1)}.get(
        length, base + b"/" + b"l" * (len(OLD) + 10)
    )
    assert {"shorter": len(new) < len(OLD), "equal": len(new) == len(OLD)}.get(length, len(new) > len(OLD))
    out = rewrite_file(f"bin/{program}", elfs[program].read_bytes(), Rules(OLD, new))
    assert out.kind == "elf" and not out.blockers, out.blockers
    assert out.data is not None and not find_dir(out.data, OLD)
    return new, out.data


def run(path: Path) -> str:
    env = {"PATH": "/usr/bin:/bin", "LD_BIND_NOW": "1", "LD_WARN": "1"}
    proc = subprocess.run([str(path)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout


@pytest.mark.parametrize("length", ["shorter", "equal", "longer"])
@pytest.mark.parametrize("program", ["runpath", "interp"])
def test_elf_runs_from_the_new_store_dir(
    tmp_path_factory: pytest.TempPathFactory, elfs: dict[str, Path], program: str, length: str
) -> None:
    base = tmp_path_factory.mktemp("r")  # shorter than a test's tmp_path, so all three lengths fit
    new, data = relocated(base, program, elfs, length)
    target = install(base, new, elfs, program, data)
    assert run(target) == "hello\n"
    facts = parse(data).facts()
    assert facts.runpath is not None and facts.runpath.replace("/", "").endswith(
        (os.fsdecode(new) + "/" + os.fsdecode(H1) + "-lib/lib").replace("/", "")
    )
    if length != "longer":
        assert len(data) == elfs[program].stat().st_size


def test_elf_string_outside_the_loader_strings_cannot_grow(elfs: dict[str, Path]) -> None:
    data = elfs["rodata"].read_bytes()
    out = rewrite_file("bin/rodata", data, Rules(OLD, LONG))
    assert out.data is None
    [blocker] = out.blockers
    assert blocker.offset == data.index(OLD) and "section .rodata" in blocker.why
    shorter = rewrite_file("bin/rodata", data, Rules(OLD, SHORT))
    assert shorter.data is not None and not shorter.blockers and len(shorter.data) == len(data)
