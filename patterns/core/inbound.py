"""Checks on a websocket frame and a run id before anything else reads them.

A frame is bounded in bytes (what crosses the wire, not characters) and in nesting depth (counted before
`json.loads`, which would recurse into ``[[[[...`` until the interpreter gives up); its numbers must be finite
(``Infinity``, ``NaN`` and ``1e400`` are refused here, so nothing downstream meets them); its strings must be
encodable (no lone surrogates from ``\\ud800`` escapes, which would fail only later, when a reply is sent).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .scenario import ScenarioError

RUN_ID = re.compile(r"[A-Za-z0-9_-]{16}")  # what secrets.token_urlsafe(12) yields, and nothing else
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def valid_run_id(value: Any) -> bool:
    return isinstance(value, str) and RUN_ID.fullmatch(value) is not None


def load_frame(text: str, *, max_bytes: int, max_depth: int) -> Any:
    """The JSON value of a text frame, or ScenarioError saying what is wrong with it."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ScenarioError([f"that message is too large ({size} bytes; at most {max_bytes})"])
    if nesting_depth(text) > max_depth:
        raise ScenarioError([f"that message is nested too deeply (at most {max_depth} levels)"])
    try:
        value = json.loads(text, parse_constant=_not_finite, parse_float=_finite_float)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except ScenarioError:
        raise
    except UnicodeEncodeError:
        raise ScenarioError(["that message holds text that is not valid Unicode"]) from None
    except ValueError:  # malformed JSON, or an integer too long to read
        raise ScenarioError(["that message is not JSON"]) from None
    return value


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest, brackets inside strings not counted; cheap, and never recursive."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _not_finite(name: str) -> float:
    raise ScenarioError([f"numbers must be finite, not {name}"])


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ScenarioError([f"numbers must be finite, not {text[:20]}"])
    return number
