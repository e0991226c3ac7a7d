"""Reading `.drv` files from disk: the one derivation module that touches the file system.

A store dir is *logical* (the prefix written inside `.drv` files and hashed into paths); the files may
live elsewhere (a copy, a `real=` store, a test fixture). So a `.drv` is located by its logical path,
and inputs are read from the directory where the file actually is, by base name.
"""

from __future__ import annotations

import os

from storekit.derivation.aterm import parse
from storekit.errors import DerivationParseError, StorekitError
from storekit.storepath import StoreDir

# `storekit build` reads `.drv` files through this module before it knows whether anything needs
# building (`storekit.realise.valid`): no `pathlib`, `dataclasses` or `typing` at import.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from storekit.derivation.hashing import Lookup
    from storekit.derivation.model import Derivation


def read_text(file: str | os.PathLike[str]) -> str:
    """Read a text file so that bytes which are not UTF-8 survive (as surrogate escapes)."""
    try:
        with open(file, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")
    except OSError as e:
        raise StorekitError(f"cannot read '{file}': {e.strerror or e}") from e


def read_derivation(file: str | os.PathLike[str]) -> Derivation:
    """Parse the `.drv` at `file`; a parse error names the file."""
    text = read_text(file)
    try:
        return parse(text)
    except DerivationParseError as e:
        raise DerivationParseError(f"{file}: {e.reason}", text, e.span) from e


class DrvFile:
    """A `.drv` file on disk and the logical store path it stands for."""

    __slots__ = ("file", "path", "store_dir")

    def __init__(self, file: Path, store_dir: StoreDir, path: str) -> None:
        self.file = file
        self.store_dir = store_dir
        self.path = path

    def __repr__(self) -> str:
        return f"DrvFile(file={self.file!r}, store_dir={self.store_dir!r}, path={self.path!r})"

    def lookup(self) -> Lookup:
        """Read input derivations from the directory this file is in."""
        directory = self.file.parent

        def read(drv_path: str) -> Derivation:
            return read_derivation(directory / os.path.basename(drv_path))

        return read


def locate(file: str, store_dir: str | None = None) -> DrvFile:
    """Where `file` is and which store path it is: in `store_dir`, else in the directory holding it.

    A symlink to a `.drv` (a GC root, say) is followed, so its target's directory is the store dir.
    """
    from pathlib import Path

    real = Path(os.path.abspath(file))
    if real.is_symlink():
        real = Path(os.path.realpath(real))
    if not real.is_file():
        raise StorekitError(f"cannot read '{file}': no such file")
    if store_dir is None and real.parent == Path("/"):
        raise StorekitError(f"'{file}' is not inside a store dir; name one with --store-dir")
    sd = StoreDir(store_dir if store_dir is not None else str(real.parent))
    return DrvFile(real, sd, f"{sd.path}/{real.name}")
