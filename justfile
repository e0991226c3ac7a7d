# storekit's everyday recipes. `just --list` shows them.

set shell := ["bash", "-eu", "-o", "pipefail", "-c"]

# The demo: the core on real data under an /opt/store-like store dir, no root needed.
demo:
    bash scripts/demo.sh

# The default test run (slow tests excluded; `just test-slow` runs them).
test *ARGS:
    python3 -m pytest -n 2 {{ARGS}}

test-slow *ARGS:
    python3 -m pytest -m slow {{ARGS}}

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
