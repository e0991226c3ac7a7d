"""A tiny static program that starts the builder the way Nix does: `argv[0]` is the builder's base name.

Nix calls `execve(builder, [baseNameOf(builder), args…], env)`. bubblewrap can only `execvp` its
command with `argv[0]` equal to the path it runs, and for a multi-call binary such as busybox (which
picks its applet from `argv[0]`) or a program that prints `$0`, that difference changes what gets
built. So bwrap runs this trampoline instead, from a memfd passed in as `/proc/self/fd/N` (nothing is
written to disk or made visible in the sandbox), called as `trampoline BUILDER ARGV0 ARGS…`:

    close_range(3, ~0, 0)                 # the builder inherits only stdin/out/err, as in Nix
    execve(argv[1], &argv[2], envp)
    write(2, "storekit: cannot execute the builder\n"); exit_group(127)

The machine code is assembled by hand below (x86-64 only); on other machines `program()` returns None
and the builder is run directly, with `argv[0]` being its full path.
"""

from __future__ import annotations

import functools
import struct

_LOAD_ADDRESS = 0x400000
_ELF_HEADER_SIZE = 64
_PROGRAM_HEADER_SIZE = 56
MESSAGE = b"storekit: cannot execute the builder\n"

# x86-64, System V process entry: [rsp] = argc, [rsp+8] = argv[0], ..., then NULL, then envp.
_X86_64_HEAD = bytes.fromhex(
    "b8b4010000"  # mov eax, 436          ; close_range
    "bf03000000"  # mov edi, 3
    "beffffffff"  # mov esi, 0xffffffff
    "31d2"  # xor edx, edx
    "0f05"  # syscall                     ; failure (old kernel) is ignored
    "488b0c24"  # mov rcx, [rsp]          ; argc
    "488b7c2410"  # mov rdi, [rsp+16]     ; argv[1]: the builder
    "488d742418"  # lea rsi, [rsp+24]     ; &argv[2]: its argv, starting with argv[0]
    "488d54cc10"  # lea rdx, [rsp+rcx*8+16] ; envp
    "b83b000000"  # mov eax, 59           ; execve
    "0f05"  # syscall
    "b801000000"  # mov eax, 1            ; write
    "bf02000000"  # mov edi, 2
)
_X86_64_LEA_RSI_RIP = b"\x48\x8d\x35"  # lea rsi, [rip+disp32] ; the message
_X86_64_TAIL = bytes.fromhex(
    "0f05"  # syscall
    "b8e7000000"  # mov eax, 231          ; exit_group
    "bf7f000000"  # mov edi, 127
    "0f05"  # syscall
)


def _x86_64_code() -> bytes:
    mov_edx_len = b"\xba" + struct.pack("<I", len(MESSAGE))
    # The message follows the tail; rip points after the lea when it runs.
    disp = len(mov_edx_len) + len(_X86_64_TAIL)
    lea = _X86_64_LEA_RSI_RIP + struct.pack("<i", disp)
    return _X86_64_HEAD + lea + mov_edx_len + _X86_64_TAIL + MESSAGE


def _elf(machine: int, code: bytes) -> bytes:
    """A static ELF64 executable with one read+execute segment holding the whole file."""
    entry = _LOAD_ADDRESS + _ELF_HEADER_SIZE + _PROGRAM_HEADER_SIZE
    size = _ELF_HEADER_SIZE + _PROGRAM_HEADER_SIZE + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little-endian, version 1, SysV
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        2,  # ET_EXEC
        machine,
        1,
        entry,
        _ELF_HEADER_SIZE,  # program headers right after this header
        0,  # no section headers
        0,
        _ELF_HEADER_SIZE,
        _PROGRAM_HEADER_SIZE,
        1,
        0,
        0,
        0,
    )
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, _LOAD_ADDRESS, _LOAD_ADDRESS, size, size, 0x1000)
    return header + segment + code


@functools.cache
def program(machine: str) -> bytes | None:
    """The trampoline for `machine` (`platform.machine()`), or None where there is none."""
    if machine in ("x86_64", "amd64"):
        return _elf(62, _x86_64_code())
    return None
