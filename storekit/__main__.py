"""`python -m storekit` runs the CLI."""

from __future__ import annotations

from storekit.cli import main

if __name__ == "__main__":
    main()
