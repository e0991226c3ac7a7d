"""Store specs: plain paths, Nix's URIs, the default store, and the errors users see."""

from __future__ import annotations

import urllib.parse

import pytest

from storekit.errors import StorekitError
from storekit.store.specs import (
    FileCacheSpec,
    HttpCacheSpec,
    LocalStoreSpec,
    MemoryStoreSpec,
    OverlayStoreSpec,
    default_store_spec,
    local_spec_for,
    parse_store_spec,
)


def test_plain_path_keeps_state_beside_the_store_dir() -> None:
    assert parse_store_spec("/opt/store") == LocalStoreSpec(
        "/opt/store", "/opt/var/nix", "/opt/var/log/nix", "/opt/store"
    )
    nix = parse_store_spec("/nix/store")
    assert isinstance(nix, LocalStoreSpec)
    assert (nix.state_dir, nix.log_dir) == ("/nix/var/nix", "/nix/var/log/nix")


def test_plain_path_is_normalised_and_relative_needs_a_base() -> None:
    spec = parse_store_spec("/opt//store/")
    assert isinstance(spec, LocalStoreSpec) and spec.store_dir == "/opt/store"
    rel = parse_store_spec("./s/store", base_dir="/home/u")
    assert isinstance(rel, LocalStoreSpec) and rel.store_dir == "/home/u/s/store"
    with pytest.raises(StorekitError, match="relative"):
        parse_store_spec("s/store")


def test_local_uri_with_state_log_and_real() -> None:
    spec = parse_store_spec("local?store=/opt/store&state=/var/lib/sk&log=/var/log/sk&real=/mnt/x/store")
    assert spec == LocalStoreSpec("/opt/store", "/var/lib/sk", "/var/log/sk", "/mnt/x/store")
    assert parse_store_spec(str(spec)) == spec


def test_local_uri_defaults_and_root() -> None:
    assert parse_store_spec("local?store=/opt/store") == parse_store_spec("/opt/store")
    assert parse_store_spec("local") == parse_store_spec("/nix/store")
    chroot = parse_store_spec("local?root=/r")
    assert chroot == LocalStoreSpec("/nix/store", "/r/nix/var/nix", "/r/nix/var/log/nix", "/r/nix/store")


def test_percent_encoded_values_are_decoded() -> None:
    spec = parse_store_spec("local?store=%2Fopt%2Fstore")
    assert isinstance(spec, LocalStoreSpec) and spec.store_dir == "/opt/store"


@pytest.mark.parametrize(
    "query",
    ["store=/opt/store&state=/s&log=/l", "store=/a&priority=", "store=/a&&b=c", "store", "x&y=1", "a=b=c"],
)
def test_a_query_with_nothing_encoded_reads_as_parse_qsl_reads_it(query: str) -> None:
    """Such queries are split without `urllib.parse` (start-up); pairs and errors are the same."""
    from storekit.store.specs import _decode

    try:
        expected: object = tuple(urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True))
    except ValueError as e:
        expected = f"store spec 'X' has a malformed query string: {e}"
    try:
        got: object = _decode(query, "X")
    except StorekitError as e:
        got = str(e)
    assert got == expected


@pytest.mark.parametrize(
    "params",
    [
        (),
        (("store", "/opt/store"), ("state", "/s_t.a-t~e")),
        (("store", "/a b"),),
        (("k", "é"), ("x", "a&b=c")),
    ],
)
def test_queries_are_encoded_as_urlencode_encodes_them(params: tuple[tuple[str, str], ...]) -> None:
    """Pairs with nothing to encode are joined without `urllib.parse` (start-up); the text is the same."""
    from storekit.store.specs import encode_query

    assert encode_query(params) == urllib.parse.urlencode(params, safe="/", quote_via=urllib.parse.quote)


def test_file_and_http_caches() -> None:
    f = parse_store_spec("file:///srv/cache?store=/opt/store&compression=zstd")
    assert f == FileCacheSpec("/srv/cache", "/opt/store", "zstd")
    assert parse_store_spec(str(f)) == f
    assert parse_store_spec("file:///srv/cache") == FileCacheSpec("/srv/cache", "/nix/store", "xz")
    h = parse_store_spec("https://cache.example.org/sub/?store=/opt/store&priority=30")
    assert h == HttpCacheSpec("https://cache.example.org/sub", "/opt/store", (("priority", "30"),))
    assert parse_store_spec(str(h)) == h


def test_overlay_of_url_encoded_specs() -> None:
    lower = "local?store=/opt/store&state=/lower/var"
    upper = "local?store=/opt/store&state=/upper/var&real=/upper/store"
    text = "overlay?" + urllib.parse.urlencode({"lower": lower, "upper": upper})
    spec = parse_store_spec(text)
    assert isinstance(spec, OverlayStoreSpec)
    assert spec.lower == parse_store_spec(lower)
    assert spec.upper == parse_store_spec(upper)
    assert spec.store_dir == "/opt/store"
    assert parse_store_spec(str(spec)) == spec


def test_memory_store() -> None:
    assert parse_store_spec("memory://?store=/opt/store") == MemoryStoreSpec("/opt/store")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty store spec"),
        ("daemon", "don't know how to open store 'daemon'"),
        ("ssh://host", "unsupported scheme"),
        ("local?stroe=/opt/store", "unknown parameter.*stroe"),
        ("local?store=relative", "not an absolute path"),
        ("local?store=/", "not an absolute path other than '/'"),
        ("file://relative/x", "absolute path"),
        ("file:///c?compression=lz4", "unknown compression 'lz4'"),
        ("http://?store=/x", "no host"),
        ("overlay?lower=/a/store", "needs upper="),
        ("overlay?lower=/a/store&upper=/b/other", "share a store dir"),
        ("/opt/store?state=/x", "takes no parameters"),
    ],
)
def test_bad_specs_say_what_to_do(text: str, message: str) -> None:
    with pytest.raises(StorekitError, match=message):
        parse_store_spec(text, base_dir="/cwd")


def test_default_store_from_env() -> None:
    assert default_store_spec({"STOREKIT_STORE": "/opt/store"}) == parse_store_spec("/opt/store")
    assert default_store_spec({"XDG_DATA_HOME": "/d", "HOME": "/h"}) == parse_store_spec("/d/storekit/store")
    assert default_store_spec({"HOME": "/home/u"}) == parse_store_spec("/home/u/.local/share/storekit/store")
    spec = default_store_spec({"HOME": "/home/u"})
    assert isinstance(spec, LocalStoreSpec) and spec.state_dir == "/home/u/.local/share/storekit/var/nix"


def test_specs_are_written_back_percent_encoded_as_nix_reads_them() -> None:
    spec = local_spec_for("/opt/my store", real_dir="/mnt/a+b store")
    text = str(spec)
    assert text == (
        "local?store=/opt/my%20store&state=/opt/var/nix&log=/opt/var/log/nix&real=/mnt/a%2Bb%20store"
    )
    assert parse_store_spec(text) == spec
    cache = FileCacheSpec("/srv/my cache", "/opt/my store")
    assert str(cache) == "file:///srv/my cache?store=/opt/my%20store"
    assert parse_store_spec(str(OverlayStoreSpec(spec, spec))) == OverlayStoreSpec(spec, spec)
