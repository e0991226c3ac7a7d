"""Binary caches as newer Nix writes them: narinfos sent with `Content-Encoding` (gzip, xz, zstd, br,
as Nix >= 2.32 may upload them), several signatures per narinfo, and both build-trace layouts
(`realisations/<hash>!<out>.doi` of Nix 2.8, `build-trace-v2/<drv>/<out>.doi` of newer Nix, whose
file is NixOS/nix's `unkeyed-with-signature.json` golden). A small HTTP server on 127.0.0.1 sends
the files with the header, as an S3 bucket or nginx would.
"""

from __future__ import annotations

import base64
import gzip
import http.server
import json
import lzma
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import brotli
import pytest
import zstandard
from nixgolden import read, store_data

from storekit.errors import SubstituteError
from storekit.realisation import DrvOutput
from storekit.signing import SecretKey
from storekit.store.open import open_store
from storekit.storepath import StoreDir
from storekit.transfer.copy import copy_closure

ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "xz": lzma.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "br": brotli.compress,
    "identity": lambda b: b,
}


class Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.encoding = "identity"
        self.override: bytes | None = None
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                file = server.root / urllib.parse.unquote(self.path).lstrip("/")
                if not file.is_file():
                    self.send_error(404)
                    return
                body = file.read_bytes()
                encoded = file.suffix in (".narinfo", ".doi")
                if encoded:
                    body = server.override or ENCODERS[server.encoding](body)
                self.send_response(200)
                if encoded and server.encoding != "identity":
                    self.send_header("Content-Encoding", server.encoding)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}?store=/nix/store"


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[tuple[Server, str, list[SecretKey]]]:
    """A cache for /nix/store (files made elsewhere) with one path signed by two keys."""
    keys = [SecretKey.generate("one-1"), SecretKey.generate("two-1")]
    key_files = []
    for k in keys:
        (tmp_path / k.name).write_text(str(k))
        key_files.append(str(tmp_path / k.name))
    local = f"local?store=/nix/store&state={tmp_path / 'state'}&real={tmp_path / 'real'}"
    cache_dir = tmp_path / "cache"
    with open_store(local) as src:
        path = src.add_text("hello.txt", b"hello\n")
        files = f"file://{cache_dir}?store=/nix/store&secret-key={key_files[0]}"
        with open_store(files) as dst:
            copy_closure(src, dst, [path])
        info = src.query_path_info(path)
    narinfo = cache_dir / f"{path.hash_part}.narinfo"
    narinfo.write_text(narinfo.read_text() + f"Sig: {keys[1].sign(info.fingerprint())}\n")
    server = Server(cache_dir)
    yield server, str(path), keys
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_narinfo_with_content_encoding_and_two_signatures(
    cache: tuple[Server, str, list[SecretKey]], encoding: str
) -> None:
    server, path, keys = cache
    server.encoding = encoding
    with open_store(server.url) as store:
        info = store.query_path_info(store.parse_path(path))
        assert {s.split(":", 1)[0] for s in info.sigs} == {"one-1", "two-1"}
        for sig in info.sigs:
            key = next(k for k in keys if sig.startswith(k.name + ":"))
            assert key.public_key().verify(info.fingerprint(), base64.b64decode(sig.split(":", 1)[1]))
        assert b"".join(store.nar_from_path(info.path))  # the NAR itself is sent plain


def test_unknown_encodings_and_bombs_are_refused(cache: tuple[Server, str, list[SecretKey]]) -> None:
    server, path, _ = cache
    server.encoding = "compress"
    server.override = b"whatever"
    with open_store(server.url) as store, pytest.raises(SubstituteError, match="Content-Encoding 'compress'"):
        store.query_path_info(store.parse_path(path))
    server.encoding = "xz"
    server.override = lzma.compress(b"\0" * (17 << 20))
    with open_store(server.url) as store, pytest.raises(SubstituteError, match="decodes to more than"):
        store.query_path_info(store.parse_path(path))


def test_both_build_trace_layouts_are_read(cache: tuple[Server, str, list[SecretKey]]) -> None:
    server, path, _ = cache
    sd = StoreDir("/nix/store")
    drv = sd.parse_path("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv")
    newer = server.root / "build-trace-v2" / drv.base_name / "foo.doi"
    newer.parent.mkdir(parents=True)
    newer.write_bytes(read(store_data("realisation", "unkeyed-with-signature.json")))
    old_id = "sha256:" + "6f869f9ea2823bda165e06076fd0de4366dead2c0e8d2dbbad277d4f15c373f5"
    older = server.root / "realisations" / f"{old_id}!out.doi"
    older.parent.mkdir(exist_ok=True)
    older.write_text(
        f'{{"dependentRealisations":{{}},"id":"{old_id}!out","outPath":"{Path(path).name}",'
        '"signatures":["one-1:AAAA"]}'
    )
    server.encoding = "br"
    with open_store(server.url) as store:
        found = store.query_realisation(DrvOutput("foo", drv_path=drv))  # type: ignore[attr-defined]
        assert found is not None and found.id == DrvOutput("foo", drv_path=drv)
        golden = json.loads(newer.read_text())
        assert found.out_path == sd.parse_base_name(golden["outPath"])
        assert found.signatures == ("asdf:" + "A" * 86 + "==",)
        old = store.query_realisation(DrvOutput("out", old_id))  # type: ignore[attr-defined]
        assert old is not None and str(old.out_path) == path and old.signatures == ("one-1:AAAA",)
        assert store.query_realisation(DrvOutput("dev", old_id)) is None  # type: ignore[attr-defined]
