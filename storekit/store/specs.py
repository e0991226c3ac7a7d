"""Store specs: the strings users pass as `--store`, `--from` and `--to`, parsed into values.

Parsing is pure: a spec string (plus, for relative paths, the directory to resolve them against) in,
a frozen value out. Opening a spec is `storekit.store.open.open_store`, which the stores themselves
never import (they import their spec types from here).

storekit deliberately departs from Nix in one place: a plain path such as `/opt/store` names the store
dir itself, with its state in `/opt/var/nix` (as `/nix/store` keeps `/nix/var/nix`). Nix reads a
plain path as a chroot root instead; that meaning stays available as `local?root=/r`. Everything
else follows Nix's URI syntax so a Nix user's `local?store=…&state=…&real=…`, `file://…?store=…`
and `http(s)://…` strings mean the same thing here.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from storekit.errors import StoreError
from storekit.frozen import Frozen
from storekit.store.s3_spec import S3CacheSpec, parse_s3_spec
from storekit.storepath import DEFAULT_STORE_DIR, StoreDir

Params = tuple[tuple[str, str], ...]

COMPRESSIONS = ("xz", "zstd", "bzip2", "none")


_set = object.__setattr__


class LocalStoreSpec(Frozen):
    """A local store: logical `store_dir` (in hashes and the DB), physical `real_dir` (where files live).

    The specs are frozen values written by hand (`storekit.frozen`): every command parses one.
    """

    __slots__ = ("log_dir", "real_dir", "state_dir", "store_dir")
    __match_args__ = ("store_dir", "state_dir", "log_dir", "real_dir")
    store_dir: str
    state_dir: str
    log_dir: str
    real_dir: str

    def __init__(self, store_dir: str, state_dir: str, log_dir: str, real_dir: str) -> None:
        _set(self, "store_dir", store_dir)
        _set(self, "state_dir", state_dir)
        _set(self, "log_dir", log_dir)
        _set(self, "real_dir", real_dir)

    def __str__(self) -> str:
        parts = [("store", self.store_dir), ("state", self.state_dir), ("log", self.log_dir)]
        if self.real_dir != self.store_dir:
            parts.append(("real", self.real_dir))
        return "local?" + encode_query(tuple(parts))


class FileCacheSpec(Frozen):
    """A binary cache in a directory (`file:///dir?store=…&compression=…`)."""

    __slots__ = ("compression", "params", "path", "store_dir")
    __match_args__ = ("path", "store_dir", "compression", "params")
    path: str
    store_dir: str
    compression: str
    params: Params

    def __init__(self, path: str, store_dir: str, compression: str = "xz", params: Params = ()) -> None:
        _set(self, "path", path)
        _set(self, "store_dir", store_dir)
        _set(self, "compression", compression)
        _set(self, "params", params)

    def __str__(self) -> str:
        extra = (("compression", self.compression),) if self.compression != "xz" else ()
        return _with_query(f"file://{self.path}", self.store_dir, extra + self.params)


class HttpCacheSpec(Frozen):
    """A binary cache served over HTTP(S); `url` has no query string."""

    __slots__ = ("params", "store_dir", "url")
    __match_args__ = ("url", "store_dir", "params")
    url: str
    store_dir: str
    params: Params

    def __init__(self, url: str, store_dir: str, params: Params = ()) -> None:
        _set(self, "url", url)
        _set(self, "store_dir", store_dir)
        _set(self, "params", params)

    def __str__(self) -> str:
        return _with_query(self.url, self.store_dir, self.params)


class OverlayStoreSpec(Frozen):
    """Reads fall through to `lower` (read-only), writes go to `upper`."""

    __slots__ = ("lower", "upper")
    __match_args__ = ("lower", "upper")
    lower: StoreSpec
    upper: StoreSpec

    def __init__(self, lower: StoreSpec, upper: StoreSpec) -> None:
        _set(self, "lower", lower)
        _set(self, "upper", upper)

    @property
    def store_dir(self) -> str:
        return self.upper.store_dir

    def __str__(self) -> str:
        return "overlay?" + encode_query((("lower", str(self.lower)), ("upper", str(self.upper))))


class MemoryStoreSpec(Frozen):
    """A throw-away in-memory store (`memory://?store=…`), for tests and dry runs."""

    __slots__ = ("store_dir",)
    __match_args__ = ("store_dir",)
    store_dir: str

    def __init__(self, store_dir: str = DEFAULT_STORE_DIR) -> None:
        _set(self, "store_dir", store_dir)

    def __str__(self) -> str:
        return _with_query("memory://", self.store_dir, ())


StoreSpec = LocalStoreSpec | FileCacheSpec | HttpCacheSpec | S3CacheSpec | OverlayStoreSpec | MemoryStoreSpec


# --- parsing -----------------------------------------------------------------------------------------


def local_spec_for(
    store_dir: str, *, state_dir: str | None = None, log_dir: str | None = None, real_dir: str | None = None
) -> LocalStoreSpec:
    """The local store of `store_dir`; state and logs default to `<parent>/var/nix` and `…/var/log/nix`.

    Logs follow an explicit state dir (`<x>/var/nix` -> `<x>/var/log/nix`, anything else -> `<state>/log`)
    rather than the store dir: a user who moved the state somewhere writable (a rootless `real=` store
    for `/opt/store`) must not have builds write logs under `/opt`.
    """
    StoreDir(store_dir)  # validates: absolute, canonical, not "/"
    parent = posixpath.dirname(store_dir)
    if log_dir is None:
        log_dir = posixpath.join(parent, "var", "log", "nix") if state_dir is None else _log_beside(state_dir)
    return LocalStoreSpec(
        store_dir=store_dir,
        state_dir=_abs(state_dir or posixpath.join(parent, "var", "nix"), "state"),
        log_dir=_abs(log_dir, "log"),
        real_dir=_abs(real_dir or store_dir, "real"),
    )


def _log_beside(state_dir: str) -> str:
    head, tail = posixpath.split(state_dir.rstrip("/"))
    return posixpath.join(head, "log", "nix") if tail == "nix" else posixpath.join(state_dir, "log")


def parse_store_spec(text: str, *, base_dir: str | None = None) -> StoreSpec:
    """Parse a store spec; `base_dir` resolves relative plain paths (the CLI passes the cwd)."""
    if not text:
        raise StoreError("empty store spec: give a store dir such as /opt/store or a URI like local?store=…")
    uri, _, query = text.partition("?")
    params = _decode(query, text)
    if "://" in uri:
        return _parse_url(text, uri, params)
    if uri == "local":
        return _parse_local(text, dict(params))
    if uri == "overlay":
        return _parse_overlay(text, dict(params), base_dir)
    if "/" in uri:
        if query:
            raise StoreError(f"store spec '{text}': a plain path takes no parameters; use local?store=…&…")
        path = uri if uri.startswith("/") else _resolve(uri, base_dir, text)
        return local_spec_for(_canonical(path, text))
    raise StoreError(
        f"don't know how to open store '{text}': use a store dir (/opt/store), local?store=…, "
        "file:///dir?store=…, http(s)://host/…?store=…, s3://bucket?… or overlay?lower=…&upper=…"
    )


def default_store_spec(env: Mapping[str, str]) -> StoreSpec:
    """`$STOREKIT_STORE`, else a user-writable store under `$XDG_DATA_HOME/storekit` (no root needed)."""
    explicit = env.get("STOREKIT_STORE")
    if explicit:
        return parse_store_spec(explicit, base_dir=env.get("PWD"))
    data_home = env.get("XDG_DATA_HOME") or posixpath.join(env.get("HOME", "/"), ".local", "share")
    if not data_home.startswith("/"):
        raise StoreError(f"XDG_DATA_HOME '{data_home}' is not absolute; set STOREKIT_STORE or --store")
    return local_spec_for(posixpath.join(posixpath.normpath(data_home), "storekit", "store"))


def _parse_local(text: str, params: dict[str, str]) -> LocalStoreSpec:
    _check_known(text, params, {"store", "state", "log", "real", "root"})
    store_dir = _canonical(params.get("store", DEFAULT_STORE_DIR), text)
    root = params.get("root")
    if root is not None:
        root = _canonical(root, text)
        return local_spec_for(
            store_dir,
            state_dir=params.get("state", root + "/nix/var/nix"),
            log_dir=params.get("log", root + "/nix/var/log/nix"),
            real_dir=params.get("real", root + "/nix/store"),
        )
    return local_spec_for(
        store_dir, state_dir=params.get("state"), log_dir=params.get("log"), real_dir=params.get("real")
    )


def _parse_url(text: str, uri: str, params: Params) -> StoreSpec:
    scheme, _, rest = uri.partition("://")
    others = tuple((k, v) for k, v in params if k not in ("store", "compression"))
    store_dir = _canonical(dict(params).get("store", DEFAULT_STORE_DIR), text)
    if scheme == "file":
        if not rest.startswith("/"):
            raise StoreError(f"binary cache '{text}': file:// needs an absolute path (file:///dir)")
        compression = dict(params).get("compression", "xz")
        if compression not in COMPRESSIONS:
            raise StoreError(
                f"binary cache '{text}': unknown compression '{compression}' "
                f"(known: {', '.join(COMPRESSIONS)})"
            )
        return FileCacheSpec(_canonical(rest, text), store_dir, compression, others)
    if scheme in ("http", "https"):
        if not rest or rest.startswith("/"):
            raise StoreError(f"binary cache '{text}' has no host")
        return HttpCacheSpec(
            f"{scheme}://{rest.rstrip('/')}", store_dir, tuple((k, v) for k, v in params if k != "store")
        )
    if scheme == "memory":
        return MemoryStoreSpec(store_dir)
    if scheme == "s3":
        return parse_s3_spec(text, rest, params, store_dir)
    raise StoreError(f"don't know how to open store '{text}': unsupported scheme '{scheme}://'")


def _parse_overlay(text: str, params: dict[str, str], base_dir: str | None) -> OverlayStoreSpec:
    _check_known(text, params, {"lower", "upper"})
    missing = [k for k in ("lower", "upper") if not params.get(k)]
    if missing:
        raise StoreError(f"overlay store '{text}' needs {' and '.join(missing)}=<URL-encoded store spec>")
    lower = parse_store_spec(params["lower"], base_dir=base_dir)
    upper = parse_store_spec(params["upper"], base_dir=base_dir)
    if lower.store_dir != upper.store_dir:
        raise StoreError(
            f"overlay store '{text}': lower and upper must share a store dir "
            f"('{lower.store_dir}' vs '{upper.store_dir}')"
        )
    return OverlayStoreSpec(lower, upper)


# --- small pure pieces ---------------------------------------------------------------------------------


#: What `urllib.parse.quote(safe="/")` leaves as it is.
_UNENCODED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~/")


def _decode(query: str, text: str) -> Params:
    """The query's pairs, as `urllib.parse.parse_qsl` reads them (strictly, blank values kept).

    A query with nothing encoded (no `%`, no `+`), as store specs mostly are, is only split: importing
    `urllib.parse` (with `re` and `ipaddress`) costs every command's start-up a few ms.
    """
    if not query:
        return ()
    try:
        if "%" not in query and "+" not in query:
            return tuple(_split_field(field) for field in query.split("&"))
        import urllib.parse

        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError as e:
        raise StoreError(f"store spec '{text}' has a malformed query string: {e}") from e
    return tuple(pairs)


def _split_field(field: str) -> tuple[str, str]:
    """`name=value` of a query with nothing to decode; `parse_qsl`'s error for anything else."""
    name, eq, value = field.partition("=")
    if not eq:
        raise ValueError(f"bad query field: {field!r}")
    return name, value


def encode_query(params: Params) -> str:
    """The one encoder of store URIs' queries: percent-encoded as Nix decodes them (`%20` for a space).

    Every spec's `__str__` writes through it, so a spec printed by storekit is read back the same by
    storekit and by real Nix (`storekit nix-conf` hands `str(spec)` to Nix). Pairs with nothing to
    encode, as a local store's mostly are, are joined without `urllib.parse` (start-up: see `_decode`).
    """
    if all(_UNENCODED.issuperset(k) and _UNENCODED.issuperset(v) for k, v in params):
        return "&".join(f"{k}={v}" for k, v in params)
    import urllib.parse

    return urllib.parse.urlencode(params, safe="/", quote_via=urllib.parse.quote)


def _with_query(base: str, store_dir: str, params: Params) -> str:
    full = (("store", store_dir), *params) if store_dir != DEFAULT_STORE_DIR else params
    return f"{base}?{encode_query(full)}" if full else base


def _check_known(text: str, params: Mapping[str, str], known: set[str]) -> None:
    unknown = sorted(set(params) - known)
    if unknown:
        raise StoreError(
            f"store spec '{text}': unknown parameter(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )


def _canonical(path: str, text: str) -> str:
    """Normalise an absolute directory (`/opt//store/` -> `/opt/store`); refuse relative paths and `/`."""
    norm = "/" + posixpath.normpath(path).lstrip("/") if path.startswith("/") else ""
    if not norm or norm == "/":
        raise StoreError(f"store spec '{text}': '{path}' is not an absolute path other than '/'")
    return norm


def _abs(path: str, what: str) -> str:
    if not path.startswith("/"):
        raise StoreError(f"{what} directory '{path}' must be an absolute path")
    return posixpath.normpath(path)


def _resolve(path: str, base_dir: str | None, text: str) -> str:
    if base_dir is None:
        raise StoreError(f"store spec '{text}' is a relative path; give an absolute one")
    return posixpath.normpath(posixpath.join(base_dir, path))
