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

lint:
    ruff check storekit tests bench scripts
    ruff format --check storekit tests bench scripts
    mypy
    shellcheck bootstrap/lfs/*.sh bootstrap/lfs/packages/*.sh bootstrap/lfs/draft/packages/*.sh

fmt:
    ruff format storekit tests bench
    ruff check --fix storekit tests bench

# Benchmarks against the real tools (nix, patchelf, cp), measured in the same run, printed as ratios.
bench *ARGS:
    python3 -m bench {{ARGS}}

# The Linux From Scratch book from Debian bookworm's orig tarballs (bootstrap/lfs/lfs-debian.toml: the
# chapters built so far, see docs/bootstrap.md), built into a store, checked, and its state shown.
# Hours of two cores; a failed or interrupted run resumes where it stopped. The store and the
# mirror default to /var/tmp (it survives a reboot, /tmp may not).
lfs-system STORE="/var/tmp/storekit-lfs/store" MIRROR="/var/tmp/storekit-lfs/sources":
    python3 -m storekit bootstrap sources bootstrap/lfs/lfs-debian.toml --mirror {{MIRROR}} --from-debian
    python3 -m storekit bootstrap build bootstrap/lfs/lfs-debian.toml --store {{STORE}} --mirror {{MIRROR}} -j 2 --cores 2 --keep-going
    python3 -m storekit bootstrap verify bootstrap/lfs/lfs-debian.toml --store {{STORE}}
    python3 -m storekit bootstrap status bootstrap/lfs/lfs-debian.toml --store {{STORE}}

# Chapter 5 alone (the cross toolchain, about 45 minutes), from the same profile and store.
lfs-toolchain STORE="/var/tmp/storekit-lfs/store" MIRROR="/var/tmp/storekit-lfs/sources":
    python3 -m storekit bootstrap sources bootstrap/lfs/lfs-debian.toml --mirror {{MIRROR}} --from-debian
    python3 -m storekit bootstrap build bootstrap/lfs/lfs-debian.toml --store {{STORE}} --mirror {{MIRROR}} -j 2 --cores 2 --until cross-toolchain
