"""The one exception hierarchy of storekit.

Every error a user can cause (bad input, a missing path, a failed build) is a `StorekitError` whose
message is meant for that user: what went wrong, where, and what to do. The CLI catches the root once
and prints `error: <message>`; anything else that escapes is a bug and keeps its traceback.

Value errors also inherit `ValueError`, so pure-core callers can treat a bad hash or a malformed NAR
like any other bad value.
"""

from __future__ import annotations


class StorekitError(Exception):
    """Root of every error storekit raises on purpose."""


# --- values (core) -------------------------------------------------------------------------------


class InvalidValue(StorekitError, ValueError):
    """A value (hash, path, name, format) that does not parse."""


class InvalidHash(InvalidValue):
    """A hash string in no known encoding, of the wrong length, or of an unknown algorithm."""


class InvalidStorePath(InvalidValue):
    """A string that is not a store path of the given store dir, or whose name breaks Nix's rules."""


class DependencyCycle(InvalidValue):
    """Values that depend on each other in a circle (`storekit.graph.toposort`); `cycle` ends where it starts.

    Callers that know what the values are (store paths, derivations, packages) translate it into their
    own error, naming them in their terms.
    """

    def __init__(self, cycle: tuple[object, ...]) -> None:
        self.cycle = cycle
        super().__init__("dependency cycle: " + " -> ".join(map(str, cycle)))


class HashMismatch(StorekitError):
    """Content whose hash differs from the one expected. The message carries both hashes."""

    def __init__(self, what: str, expected: str, got: str) -> None:
        super().__init__(f"hash mismatch in {what}: specified {expected}, got {got}")
        self.what = what
        self.expected = expected
        self.got = got


class NarFormatError(InvalidValue):
    """A NAR that breaks the grammar or one of the safety rules; `offset` is the byte where it broke."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at NAR byte offset {offset})")
        self.offset = offset


class DerivationParseError(InvalidValue):
    """A `.drv` (ATerm) or derivation JSON that does not parse; `span` is (start, end) in the text."""

    def __init__(self, message: str, text: str = "", span: tuple[int, int] = (0, 0)) -> None:
        self.reason = message
        self.span = span
        if text:
            message = f"{message}\n{_caret(text, span)}"
        super().__init__(message)


class InvalidDerivation(InvalidValue):
    """A derivation that parses but breaks Nix's rules: mixed output kinds, wrong output or .drv paths."""


class NarInfoError(InvalidValue):
    """A narinfo or nix-cache-info file that does not parse."""


class WireFormatError(InvalidValue):
    """Bytes of Nix's wire protocols that do not decode; `offset` is where the bad value starts."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at wire byte offset {offset})")
        self.offset = offset


class SignatureError(StorekitError):
    """A bad key, a missing or untrusted signature."""


def _caret(text: str, span: tuple[int, int]) -> str:
    """Show the offending part of `text` with a caret line under it, like pypa/packaging's tokenizer."""
    start, end = span
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    if line_end == -1:
        line_end = len(text)
    window_start = max(line_start, start - 60)
    window_end = min(line_end, max(end, start + 1) + 20)
    prefix = "..." if window_start > line_start else ""
    suffix = "..." if window_end < line_end else ""
    shown = prefix + text[window_start:window_end] + suffix
    width = max(1, min(end, window_end) - start)
    return f"    {shown}\n    {' ' * (len(prefix) + start - window_start)}{'~' * width}"


# --- files on disk --------------------------------------------------------------------------------


class FileSystemError(StorekitError):
    """A file or directory that cannot be read, archived or written (missing, unsupported type, denied).

    `path` names it; the message says what was being done and the OS's reason, like Nix's
    `getting status of '/x': No such file or directory`.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


# --- stores ----------------------------------------------------------------------------------------


class StoreError(StorekitError):
    """A store that cannot do what was asked (bad spec, bad layout, locked, inconsistent)."""


class PathNotValid(StoreError):
    """A store path that is not valid in the store asked about."""

    def __init__(self, path: str, store: str = "") -> None:
        where = f" in store '{store}'" if store else ""
        super().__init__(f"path '{path}' is not valid{where}")
        self.path = path


class SubstituteError(StoreError):
    """A substituter that could not provide a path (missing, untrusted, corrupt)."""


# --- builds -----------------------------------------------------------------------------------------


class BuildError(StorekitError):
    """A derivation whose build failed; `log_tail` holds the last lines of its log."""

    def __init__(self, drv: str, message: str, log_tail: str = "") -> None:
        text = f"builder for '{drv}' failed: {message}"
        if log_tail:
            text += "\nlast log lines:\n" + log_tail
        super().__init__(text)
        self.drv = drv
        self.log_tail = log_tail


class BuildsFailed(BuildError):
    """Several builds of one run failed (or were not attempted); the message lists each."""

    def __init__(self, drvs: tuple[str, ...], message: str) -> None:
        StorekitError.__init__(self, message)
        self.drv = ", ".join(drvs)
        self.log_tail = ""


class SandboxError(BuildError):
    """The sandbox could not be set up (bubblewrap missing, namespaces refused).

    `transient` when setting it up again may work: bubblewrap could not configure the loopback
    interface of the new network namespace (its netlink request failed, as happens now and then on
    a loaded machine); the builder never ran."""

    transient: bool = False


# --- ELF, relocation, config ------------------------------------------------------------------------


class ElfError(StorekitError):
    """An ELF file that cannot be read or edited; `path` names it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class ElfPatchError(ElfError):
    """An ELF edit refused before any byte was written."""


class RelocationError(StorekitError):
    """A closure that cannot be moved to another store dir safely; `blockers` lists (file, offset, why)."""

    def __init__(self, message: str, blockers: tuple[tuple[str, int, str], ...] = ()) -> None:
        lines = [message, *(f"  {f} at offset {o}: {why}" for f, o, why in blockers)]
        super().__init__("\n".join(lines))
        self.blockers = blockers


class ConfigError(StorekitError):
    """A configuration file (TOML) that is malformed or breaks the schema; names file and key."""

    def __init__(self, file: str, key: str, message: str) -> None:
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {message}")
        self.file = file
        self.key = key


# --- remote machines ----------------------------------------------------------------------------------


class RemoteError(StorekitError):
    """A remote machine (an `ssh://` store or builder) that could not be reached or misbehaved; names it."""

    def __init__(self, host: str, message: str) -> None:
        super().__init__(message)
        self.host = host
