"""One way for every engine to run a command: a method named after it, taking the command's arguments.

The kernel validates a command against the pattern's declared `Command` before the engine sees it, so an engine
only has to say what each command does: ``apply("crash", {"server": "s1"})`` calls ``self._do_crash(server="s1")``.
A reader finds a command's effect by its name, and `tests/core/test_layout.py` checks that every declared command
has its method with exactly the declared arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

PREFIX = "_do_"


def handler(engine: object, command: str) -> Callable[..., None] | None:
    """The engine's method for ``command``, or None."""
    return getattr(engine, PREFIX + command, None)


class Commands:
    """Mixin for engines: `apply` calls ``self._do_<command>(**args)``."""

    def apply(self, command: str, args: Mapping[str, Any]) -> None:
        method = handler(self, command)
        if method is None:
            raise ValueError(f"unknown command {command!r}")
        method(**args)
