"""`python -m bench [--quick] [NAME…]`: run benchmark modules `bench/<NAME>.py` (each has `run(quick)`).

A module with `DEFAULT = False` (minutes long, or needing the network) runs only when named.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

from bench._harness import print_rows


def main() -> None:
    available = sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_")
    )
    parser = argparse.ArgumentParser(prog="just bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(available)})"
    )
    parser.add_argument("--quick", action="store_true", help="small data, for a smoke run")
    args = parser.parse_args()
    for name in args.names or available:
        if name not in available:
            parser.error(f"no benchmark '{name}' (have: {', '.join(available)})")
        module = importlib.import_module(f"bench.{name}")
        if not args.names and not getattr(module, "DEFAULT", True):
            continue
        print_rows(module.TITLE, module.run(quick=args.quick))
    print("\nratio = reference time / storekit time: above 1.00x storekit is faster.")


if __name__ == "__main__":
    main()
