"""Stories: a preset told as chapters, each reached at a virtual time or at an event, each stating a checkable fact.

A chapter is plain declarative data (no lambdas), so that presets pickle, print and can be shown on a page: where
it is reached (`at` a virtual time, or `after` the first event matching a `Match` once the previous chapter is
reached), what the learner reads, what to highlight in which diagram, whether the run pauses there, and the
`claims` its text makes, which `check` verifies against the run's events so that no story tells what did not
happen. A `StoryTracker` is fed a run's events as they come and says which chapter is reached and when, and
whether the run has left the script (a perturbation the preset does not make).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .registry import Pattern, Preset
from .scenario import Action, Scenario, decode
from .sim import Event

OFF_SCRIPT = "You changed the run: the story's remaining steps may not happen as told."
NOT_REACHED = "not reached"

_OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda value, options: value in options,
}


@dataclass(frozen=True)
class Match:
    """Events of one type whose fields satisfy every condition ``(field, op, value)``; op is one of `_OPS`."""

    type: str
    where: tuple[tuple[str, str, Any], ...] = ()

    def __post_init__(self) -> None:
        for condition in self.where:
            if len(condition) != 3 or condition[1] not in _OPS:
                raise ValueError(f"{self.type}: condition {condition!r} should be (field, op, value), op in {_OPS}")

    def matches(self, event: Event) -> bool:
        if event.type != self.type:
            return False
        for name, op, value in self.where:
            if name not in event.fields:
                return False
            try:
                if not _OPS[op](event.fields[name], value):
                    return False
            except TypeError:
                return False
        return True

    def text(self) -> str:
        return self.type + (f" where {_conditions(self.where)}" if self.where else "")


def _conditions(where_: Iterable[tuple[str, str, Any]]) -> str:
    return " and ".join(f"{name} {op} {value!r}" for name, op, value in where_)


def where(type: str, **equal: Any) -> Match:
    """The common case: an event type with fields equal to the given values."""
    return Match(type, tuple((name, "==", value) for name, value in equal.items()))


@dataclass(frozen=True)
class Claim:
    """A fact a chapter states, checked on the events up to the moment the chapter is reached.

    ``count``: the number of events matching ``match`` (since the story began, or since the previous chapter
    with ``since_previous``) compares with ``value`` by ``op``. ``latest``: the newest event matching ``match``
    exists and its fields satisfy ``expect`` (the newest new leader is s3, in term 2).
    """

    kind: str  # "count" | "latest"
    match: Match
    op: str = ">="
    value: int = 1
    since_previous: bool = False
    expect: tuple[tuple[str, str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("count", "latest") or self.op not in _OPS:
            raise ValueError(f"claim: unknown kind {self.kind!r} or op {self.op!r}")
        Match(self.match.type, self.expect)  # validates the conditions

    def holds(self, events: Sequence[Event]) -> bool:
        if self.kind == "latest":
            newest = next((e for e in reversed(events) if self.match.matches(e)), None)
            return newest is not None and Match(newest.type, self.expect).matches(newest)
        return _OPS[self.op](sum(1 for e in events if self.match.matches(e)), self.value)

    def text(self) -> str:
        scope = " since the previous chapter" if self.since_previous else ""
        if self.kind == "latest":
            return f"the latest {self.match.text()}{scope} has {_conditions(self.expect)}"
        return f"the number of {self.match.text()}{scope} {self.op} {self.value}"


def count(match: Match, op: str = ">=", value: int = 1, *, since_previous: bool = False) -> Claim:
    return Claim("count", match, op, value, since_previous)


def latest(match: Match, *, since_previous: bool = False, **expect: Any) -> Claim:
    """The newest event matching ``match`` has these field values."""
    return Claim("latest", match, since_previous=since_previous, expect=tuple((k, "==", v) for k, v in expect.items()))


@dataclass(frozen=True)
class Chapter:
    """One step of a story; exactly one of ``at`` (virtual seconds) and ``after`` (an event) says when."""

    text: str
    at: float | None = None
    after: Match | None = None
    highlight: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (diagram name, Mermaid node or edge ids)
    pause: bool = True
    claims: tuple[Claim, ...] = ()

    def __post_init__(self) -> None:
        if (self.at is None) == (self.after is None):
            raise ValueError(f"chapter {self.text[:30]!r}: give exactly one of at= and after=")

    def when(self) -> str:
        return f"at {self.at:g} s" if self.at is not None else f"at the first {self.after.text()}"


@dataclass(frozen=True)
class Reached:
    t: float
    seq: int  # the events with a sequence number below this one are what the chapter's claims speak of


class StoryTracker:
    """Follows a run's events through a preset's chapters. Pure and small: it pickles with the run if need be.

    ``scripted`` are the preset's own actions (as decoded, with every argument); a ``command`` event that is not
    one of them is a perturbation the story did not plan, and from then on the tracker is `off_script`.
    """

    def __init__(self, preset: Preset, scripted: Iterable[Action] = (), *, off_script: bool = False):
        self.preset = preset
        self.chapters: tuple[Chapter, ...] = preset.chapters
        self.reached: list[Reached] = []
        self.off_script = off_script
        self._scripted = {(a.t, a.command, a.args) for a in scripted}
        self._seen_seq = -1

    @property
    def current(self) -> int | None:
        """The index of the chapter last reached (None before the first)."""
        return len(self.reached) - 1 if self.reached else None

    def feed(self, events: Iterable[Event], now: float) -> list[int]:
        """Take the run's next events (in order) and its current time; returns the chapters newly reached."""
        new: list[int] = []
        for event in events:
            if event.seq <= self._seen_seq:
                continue  # already seen: re-simulated after a seek
            self._seen_seq = event.seq
            new.extend(self._by_time(event.t, event.seq, inclusive=False))
            if event.type == "command" and not self._is_scripted(event):
                self.off_script = True
            chapter = self._next()
            if chapter is not None and chapter.after is not None and chapter.after.matches(event):
                self.reached.append(Reached(event.t, event.seq + 1))
                new.append(len(self.reached) - 1)
        new.extend(self._by_time(now, self._seen_seq + 1, inclusive=True))
        return new

    def rewind(self, t: float, last_seq: int) -> None:
        """After a seek back to ``t`` (where ``last_seq`` is the newest event): forget the chapters after it."""
        self.reached = [r for r in self.reached if r.t <= t]
        self._seen_seq = last_seq

    def _next(self) -> Chapter | None:
        return self.chapters[len(self.reached)] if len(self.reached) < len(self.chapters) else None

    def _by_time(self, t: float, seq: int, *, inclusive: bool) -> list[int]:
        """Time-pinned chapters due by ``t``: before an event at ``t`` (strictly earlier) or at the clock ``t``.
        A chapter at T speaks of everything that happened up to and at T."""
        new = []
        while (chapter := self._next()) is not None and chapter.at is not None:
            if not (chapter.at < t or (inclusive and chapter.at <= t)):
                break
            floor = self.reached[-1].t if self.reached else 0.0
            self.reached.append(Reached(max(chapter.at, floor), seq))
            new.append(len(self.reached) - 1)
        return new

    def _is_scripted(self, event: Event) -> bool:
        args = tuple((event.fields.get("args") or {}).items())
        return (round(event.t, 3), event.fields.get("command"), args) in self._scripted


def tracker_for(pattern: Pattern, scenario: Scenario) -> StoryTracker | None:
    """The tracker of the story a scenario tells (None without one); it starts off the script if the scenario
    already differs from its preset (another seed, other parameters, a step added or cut)."""
    preset = pattern.preset(scenario.preset)
    if preset is None or not preset.chapters:
        return None
    planned = decode(pattern, [("preset", preset.slug)])
    differs = (planned.seed, planned.params, planned.script) != (scenario.seed, scenario.params, scenario.script)
    return StoryTracker(preset, planned.script, off_script=differs)


def check(preset: Preset, events: Sequence[Event], now: float) -> list[str]:
    """Every way the run ``events`` (up to virtual time ``now``) does not tell ``preset``'s story: a chapter never
    reached, or a claim that is false when its chapter is reached. Empty when the story is true."""
    tracker = StoryTracker(preset)
    tracker.feed(events, now)
    problems = []
    for index, chapter in enumerate(preset.chapters):
        name = f"{preset.slug} chapter {index + 1} ({chapter.when()})"
        if index >= len(tracker.reached):
            problems.append(f"{name}: not reached by {now:g} s")
            continue
        upto = tracker.reached[index].seq
        start = tracker.reached[index - 1].seq if index else 0
        for claim in chapter.claims:
            window = [e for e in events if (start if claim.since_previous else 0) <= e.seq < upto]
            if not claim.holds(window):
                problems.append(f"{name}: false claim: {claim.text()}")
    return problems


def frame(tracker: StoryTracker) -> dict[str, Any]:
    """What a page shows of the story now: the chapters with their reached times, the current one and its
    highlights, and the notice once the run has left the script. JSON-ready."""
    current = tracker.current
    chapter = tracker.chapters[current] if current is not None else None
    return {
        "preset": tracker.preset.slug,
        "count": len(tracker.chapters),
        "current": current,
        "text": chapter.text if chapter else "",
        "highlight": {name: list(ids) for name, ids in chapter.highlight} if chapter else {},
        "pause": bool(chapter and chapter.pause),
        "chapters": [
            {
                "text": c.text,
                "when": c.when(),
                "t": tracker.reached[i].t if i < len(tracker.reached) else None,
                "at": c.at,  # where the timeline shows a chapter pinned to a time before it is reached
                "pause": c.pause,
            }
            for i, c in enumerate(tracker.chapters)
        ],
        "next": len(tracker.reached) if len(tracker.reached) < len(tracker.chapters) else None,
        "off_script": tracker.off_script,
        "notice": OFF_SCRIPT if tracker.off_script else "",
    }


def describe(preset: Preset) -> list[dict[str, Any]]:
    """A preset's chapters as JSON-ready data, for ``simulate --describe``."""
    return [
        {
            "text": c.text,
            "when": c.when(),
            "pause": c.pause,
            "highlight": {name: list(ids) for name, ids in c.highlight},
            "claims": [claim.text() for claim in c.claims],
        }
        for c in preset.chapters
    ]


def with_chapters(presets: Iterable[Preset], stories: Mapping[str, tuple[Chapter, ...]]) -> tuple[Preset, ...]:
    """The presets with their stories attached by slug; a story naming no preset is an error, not a silent loss."""
    presets = tuple(presets)
    unknown = sorted(set(stories) - {p.slug for p in presets})
    if unknown:
        raise ValueError(f"stories for unknown presets: {', '.join(unknown)}")
    return tuple(replace(p, chapters=stories[p.slug]) if p.slug in stories else p for p in presets)
