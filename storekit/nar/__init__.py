"""Nix archives (NAR): the canonical serialisation of a file system object that store paths hash.

`format` holds the wire tokens, `writer` serialises in memory, `reader` parses a stream into events,
`fs` dumps, hashes and restores on disk (the only module here that touches it), `listing` answers
`nix nar ls` and `nix nar cat`.
"""

from __future__ import annotations
