"""Opening a store from its spec: the one factory that knows every store kind.

Apart from `specs` (parsing, pure) because every store module imports its spec type from there while
this module imports every store: together they were an import cycle. Store modules are imported on
first use, so opening a local store never loads the binary-cache or overlay code.
"""

from __future__ import annotations

from storekit.errors import StoreError
from storekit.store.s3_spec import S3CacheSpec
from storekit.store.specs import (
    FileCacheSpec,
    HttpCacheSpec,
    LocalStoreSpec,
    MemoryStoreSpec,
    OverlayStoreSpec,
    StoreSpec,
    parse_store_spec,
)
from storekit.storepath import StoreDir

TYPE_CHECKING = False  # no `typing` at run time: every command opens a store through here
if TYPE_CHECKING:
    from storekit.store.base import Store
    from storekit.store.overlay import OverlayStore


def open_store(spec: StoreSpec | str) -> Store:
    """Open the store a spec names (a string is parsed first, without a base dir)."""
    if isinstance(spec, str):
        spec = parse_store_spec(spec)
    if isinstance(spec, LocalStoreSpec):
        from storekit.store.local import LocalStore

        return LocalStore(spec)
    if isinstance(spec, MemoryStoreSpec):
        from storekit.store.memory import MemoryStore

        return MemoryStore(StoreDir(spec.store_dir))
    if isinstance(spec, FileCacheSpec | HttpCacheSpec):
        from storekit.store.binary_cache import open_binary_cache

        return open_binary_cache(spec)
    if isinstance(spec, S3CacheSpec):
        from storekit.store.s3 import open_s3_cache  # boto3 is loaded only when needed (s3_clients)

        return open_s3_cache(spec)
    if isinstance(spec, OverlayStoreSpec):
        return open_overlay(spec)
    raise StoreError(f"store '{spec}' cannot be opened yet: {type(spec).__name__} is not implemented")


def open_overlay(spec: OverlayStoreSpec) -> OverlayStore:
    """Open the lower store, then the upper one (closing the lower if that fails), as one overlay."""
    from storekit.store.overlay import OverlayStore

    lower = open_store(spec.lower)
    try:
        upper = open_store(spec.upper)
    except BaseException:
        lower.close()
        raise
    return OverlayStore(lower, upper, uri=str(spec))
