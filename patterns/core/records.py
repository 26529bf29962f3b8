"""Named tuples built at C speed, for the records an engine makes for every message.

Calling a named tuple class runs the Python ``__new__`` that `collections.namedtuple` generates; `tuple.__new__`
with the class and the fields makes the same object in a C call, in half the time. Engines that make several
records per message (the network's messages, the message queue's frames) build those this way ("direct build").
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TypeVar

T = TypeVar("T", bound=tuple)


def direct_builder(cls: type[T]) -> Callable[[tuple], T]:
    """``build((a, b, ...))`` makes what ``cls(a, b, ...)`` makes: every field given, in the declared order (no
    defaults, and no check of the count: a record made per message is made at one or two places)."""
    return partial(tuple.__new__, cls)
