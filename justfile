# storekit's everyday recipes. `just --list` shows them.

set shell := ["bash", "-eu", "-o", "pipefail", "-c"]

# The demo: the core on real data under an /opt/store-like store dir, no root needed.
demo:
    bash scripts/demo.sh

# The default test run (slow tests excluded; `just test-slow` runs them). The CI bootstrap profile
# builds alone afterwards: its configure scripts sit in directories deeper than PATH_MAX for a
# moment, which makes real Nix 2.8's GC fail on any store (it cannot read their /proc/<pid>/cwd).
test *ARGS:
    python3 -m pytest -n 2 -m 'not slow and not bootstrap' {{ARGS}}
    python3 -m pytest -m 'bootstrap and not slow' {{ARGS}} || test $? -eq 5

test-slow *ARGS:
    python3 -m pytest -m slow {{ARGS}}

# The input fuzzer (mutated NARs and ELF files, tests/test_fuzz_inputs.py) at length: EXAMPLES cases per input.
fuzz EXAMPLES="5000":
    FUZZ_EXAMPLES={{EXAMPLES}} python3 -m pytest -n 0 -p no:randomly tests/test_fuzz_inputs.py -q

lint:
    ruff check storekit tests bench scripts
    ruff format --check storekit tests bench scripts
    mypy

fmt:
    ruff format storekit tests bench
    ruff check --fix storekit tests bench

# Benchmarks against the real tools (nix, patchelf, cp), measured in the same run, printed as ratios.
bench *ARGS:
    python3 -m bench {{ARGS}}

# LFS chapters 5 and 6 (the cross toolchain, the temporary tools) from Debian bookworm's orig
# tarballs, built into a store and checked with the book's sanity checks: about 1.5 hours of two
# cores (docs/bootstrap.md). A failed or interrupted run resumes where it stopped.
lfs-toolchain STORE="/tmp/storekit-lfs/store" MIRROR="/tmp/storekit-lfs/sources":
    python3 -m storekit bootstrap sources bootstrap/lfs/lfs-debian.toml --mirror {{MIRROR}} --from-debian
    python3 -m storekit bootstrap build bootstrap/lfs/lfs-debian.toml --store {{STORE}} --mirror {{MIRROR}} -j 2 --cores 2 --keep-going
    python3 -m storekit bootstrap verify bootstrap/lfs/lfs-debian.toml --store {{STORE}}
    python3 -m storekit bootstrap status bootstrap/lfs/lfs-debian.toml --store {{STORE}}
