"""`Frozen`: the base of the hand-written value classes on the start-up path of short commands.

`StorePath`, the store specs, the parsed `.drv` and their like were frozen dataclasses; a plain
`storekit build` of something built imports them all before it can answer, and `dataclasses` (with
inspect, ast and dis) plus the code it generates for each class cost it more than the rest of its
start-up. So they are written by hand, as `storekit.hashing.Hash` is: their own `__init__`, and from
this base what a frozen dataclass has: assignment and deletion refused (`FrozenInstanceError`),
equality and hash over the fields, a dataclass's `repr`, `replace` (for `dataclasses.replace`),
and copies and pickles made through `__init__`. A subclass lists its fields in `__slots__` and, in
order, in `__match_args__`, and sets them with `object.__setattr__`; the values compared most
(`StorePath`) define `__eq__` and `__hash__` themselves, which is faster, as does one whose
equality leaves a field out.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn, Self


class Frozen:
    """Refuses assignment; repr, copy and pickle by the fields named in `__match_args__`."""

    __slots__ = ()
    __match_args__: tuple[str, ...] = ()

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__match_args__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, Frozen):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes` made, through `__init__` (what `dataclasses.replace` did)."""
        fields = {name: getattr(self, name) for name in self.__match_args__}
        unknown = changes.keys() - fields.keys()
        if unknown:
            raise TypeError(f"{self.__class__.__qualname__} has no field(s) {', '.join(sorted(unknown))}")
        return self.__class__(**{**fields, **changes})

    __replace__ = replace  # `copy.replace` (Python 3.13)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{self.__class__.__qualname__}({fields})"

    def __reduce__(self) -> tuple[Callable[..., object], tuple[object, ...]]:
        """Copies and pickles are made through `__init__` (assignment is refused)."""
        return self.__class__, self._fields()

    if not TYPE_CHECKING:  # the type checker sees plain attributes

        def __setattr__(self, name: str, value: object) -> NoReturn:
            frozen_field(name)

        def __delattr__(self, name: str) -> NoReturn:
            frozen_field(name, delete=True)


_set = object.__setattr__


class Constant(Frozen):
    """One of a class's few named values (`FileIngestionMethod.FLAT`), as an enum member is one.

    It has a member's `name`, `value` and repr, and its identity: copies and pickles are the member
    itself, so `is` compares them. Not an `Enum`: `storepath`'s are on every command's start-up
    path, and importing `enum` cost a plain `storekit build` more than reading a `.drv` does. The
    members are made once, after the class (`FileIngestionMethod.FLAT = FileIngestionMethod("FLAT",
    "")`), and declared in it as `ClassVar`s for the type checker.
    """

    __slots__ = ("name", "value")
    __match_args__ = ("name", "value")
    name: str
    value: str

    def __init__(self, name: str, value: str) -> None:
        _set(self, "name", name)
        _set(self, "value", value)

    def __repr__(self) -> str:
        return f"<{self.__class__.__qualname__}.{self.name}: {self.value!r}>"

    def __str__(self) -> str:
        return f"{self.__class__.__qualname__}.{self.name}"

    def __reduce__(self) -> tuple[Callable[..., object], tuple[object, ...]]:
        return getattr, (self.__class__, self.name)


def frozen_field(name: str, *, delete: bool = False) -> NoReturn:
    """Raise what a frozen dataclass raises when a field is assigned or deleted (`dataclasses` is
    imported only here, on that error path)."""
    from dataclasses import FrozenInstanceError

    raise FrozenInstanceError(f"cannot {'delete' if delete else 'assign to'} field {name!r}")
