"""Stores: where store paths live. `Store` is the interface; `open_store(spec)` opens one by its spec.

`LocalStore` (storekit.store.local) is a directory plus Nix 2.8's SQLite database; `MemoryStore`
(storekit.store.memory) is for tests. Garbage collection, verification, optimisation and the export
format are in their own modules (gc, verify, optimise, export) and work on a `LocalStore`/`Store`.
"""

from __future__ import annotations

from storekit.store.base import Store, ValidPathInfo
from storekit.store.open import open_store
from storekit.store.specs import StoreSpec, default_store_spec, parse_store_spec

__all__ = ["Store", "StoreSpec", "ValidPathInfo", "default_store_spec", "open_store", "parse_store_spec"]
