"""SQLite for storekit's databases: the interpreter's C module, without the `sqlite3` package's own code.

`import sqlite3` runs `sqlite3/dbapi2.py`, which imports `datetime` and `collections.abc` to register
adapters and converters for dates (deprecated since Python 3.12; storekit stores none). That is a
tenth of the start-up of a `storekit build` with nothing to build, a command scripts run often
(`python -m bench startup`). The names below are the package's own objects (`sqlite3.Error is
_sqlite3.Error`), so what this module raises is what code importing `sqlite3` catches. On an
interpreter without CPython's `_sqlite3`, the package.
"""

from __future__ import annotations

try:
    from _sqlite3 import Connection, Error, IntegrityError, connect
except ImportError:  # pragma: no cover - not CPython
    from sqlite3 import Connection, Error, IntegrityError, connect

__all__ = ["Connection", "Error", "IntegrityError", "connect"]
