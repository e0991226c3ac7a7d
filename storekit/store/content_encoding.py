"""HTTP `Content-Encoding` of a binary cache's small files (narinfo, nix-cache-info, realisations).

Nix can upload narinfos compressed and served with `Content-Encoding` (`narinfo-compression`; Nix >=
2.32 also sends `br`), and a client that ignores the header reads garbage. Decoding is bounded: a
narinfo is a few hundred bytes, so more than `MAX_DECODED` after decoding is refused before it is
all allocated (a small compressed file can expand without limit).
"""

from __future__ import annotations

import lzma
import zlib

from storekit.errors import SubstituteError

MAX_DECODED = 16 << 20
ENCODINGS = ("gzip", "x-gzip", "deflate", "xz", "zstd", "br", "identity")


def decode_body(data: bytes, encoding: str | None, where: str, limit: int = MAX_DECODED) -> bytes:
    """`data` as sent with `Content-Encoding: encoding`, decoded; refused past `limit` bytes."""
    name = (encoding or "identity").strip().lower()
    try:
        if name == "identity":
            out = data
        elif name in ("gzip", "x-gzip"):
            out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, limit + 1)
        elif name == "deflate":
            out = zlib.decompressobj().decompress(data, limit + 1)
        elif name == "xz":
            out = lzma.LZMADecompressor().decompress(data, max_length=limit + 1)
        elif name == "zstd":
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True) as reader:
                out = reader.read(limit + 1)
        elif name == "br":
            import brotli

            out = brotli.Decompressor().process(data, output_buffer_limit=limit + 1)
        else:
            raise SubstituteError(
                f"'{where}' is sent with Content-Encoding '{encoding}', which storekit cannot decode "
                f"(known: {', '.join(ENCODINGS)})"
            )
    except SubstituteError:
        raise
    except Exception as e:  # each library has its own error type; all mean a corrupt body
        raise SubstituteError(f"'{where}' does not decode as {name}: {e}") from e
    if len(out) > limit:
        raise SubstituteError(f"'{where}' decodes to more than {limit} bytes; refusing it")
    return out
