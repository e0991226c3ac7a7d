# storekit's everyday recipes. `just --list` shows them.

set shell := ["bash", "-eu", "-o", "pipefail", "-c"]

# Every recipe runs in the project's own virtual environment (made by ./setup.sh): its python, its
# storekit, its pytest, and nothing from the machine's site-packages.
export PATH := justfile_directory() / ".venv/bin" + ":" + env_var("PATH")
export VIRTUAL_ENV := justfile_directory() / ".venv"

# The demo: the core on real data under an /opt/store-like store dir, no root needed.
demo:
    bash scripts/demo.sh

# The default test run (slow tests excluded; `just test-slow` runs them). The CI bootstrap profile
# builds alone afterwards: its configure scripts sit in directories deeper than PATH_MAX for a
# moment, which makes real Nix 2.8's GC fail on any store (it cannot read their /proc/<pid>/cwd).
test *ARGS:
    python -m pytest -n 2 -m 'not slow and not bootstrap' {{ARGS}}
    python -m pytest -m 'bootstrap and not slow' {{ARGS}} || test $? -eq 5

test-slow *ARGS:
    python -m pytest -m slow {{ARGS}}

# The input fuzzer (mutated NARs and ELF files, tests/test_fuzz_inputs.py) at length: EXAMPLES cases per input.
fuzz EXAMPLES="5000":
    FUZZ_EXAMPLES={{EXAMPLES}} python -m pytest -n 0 -p no:randomly tests/test_fuzz_inputs.py -q

# Lint: ruff, strict mypy, exact dependencies (deptry: storekit imports only its runtime
# dependencies and uses them all; tests, bench and scripts import only declared packages), shellcheck.
lint:
    ruff check storekit tests bench scripts
    ruff format --check storekit tests bench scripts
    mypy
    deptry storekit
    deptry tests bench scripts --exclude '\.venv|\.git' --ignore DEP002,DEP004
    shellcheck setup.sh .ci/run scripts/*.sh
    python scripts/check_imports.py
    shellcheck bootstrap/lfs/*.sh bootstrap/lfs/packages/*.sh
    # the bootscripts bootscripts.sh writes (heredocs, which shellcheck does not read in place)
    d=$(mktemp -d) && out=$d bash bootstrap/lfs/packages/bootscripts.sh && shellcheck -s sh $(find $d -type f ! -path '*/sysconfig/*'); s=$?; rm -rf $d; exit $s

fmt:
    ruff format storekit tests bench scripts
    ruff check --fix storekit tests bench scripts

# Benchmarks against the real tools (nix, patchelf, cp), measured in the same run, printed as ratios.
bench *ARGS:
    python -m bench {{ARGS}}

# The Linux From Scratch book from Debian bookworm's orig tarballs (bootstrap/lfs/lfs-debian.toml: the
# chapters built so far, see docs/bootstrap.md), built into a store, checked, and its state shown.
# Hours of two cores; a failed or interrupted run resumes where it stopped. The store and the
# mirror default to /var/tmp (it survives a reboot, /tmp may not).
lfs-system STORE="/var/tmp/storekit-lfs/store" MIRROR="/var/tmp/storekit-lfs/sources":
    python -m storekit bootstrap sources bootstrap/lfs/lfs-debian.toml --mirror {{MIRROR}} --from-debian
    python -m storekit bootstrap build bootstrap/lfs/lfs-debian.toml --store {{STORE}} --mirror {{MIRROR}} -j 2 --cores 2 --keep-going
    python -m storekit bootstrap verify bootstrap/lfs/lfs-debian.toml --store {{STORE}}
    python -m storekit bootstrap status bootstrap/lfs/lfs-debian.toml --store {{STORE}}

# Chapter 5 alone (the cross toolchain, about 45 minutes), from the same profile and store.
lfs-toolchain STORE="/var/tmp/storekit-lfs/store" MIRROR="/var/tmp/storekit-lfs/sources":
    python -m storekit bootstrap sources bootstrap/lfs/lfs-debian.toml --mirror {{MIRROR}} --from-debian
    python -m storekit bootstrap build bootstrap/lfs/lfs-debian.toml --store {{STORE}} --mirror {{MIRROR}} -j 2 --cores 2 --until cross-toolchain
