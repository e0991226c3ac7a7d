"""`python -m bench [--quick] [NAME…]`: run benchmark modules `bench/<NAME>.py` (each has `run(quick)`).

A module with `DEFAULT = False` (minutes long, or needing the network) runs only when named.

The CLI rows run storekit as a user has it: a wheel of this checkout installed into a fresh venv,
made once per run (`bench._harness.storekit_argv`). The in-process rows import the checkout itself,
whose bytecode is compiled first, as pip does when it installs a wheel: with
`PYTHONDONTWRITEBYTECODE` set (or a read-only tree) they would otherwise compile every module they
import, a cost no installed storekit pays.
"""

from __future__ import annotations

import argparse
import compileall
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
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "storekit", quiet=1)
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
