"""Scenarios and the readable, hand-editable query strings that carry them in links.

A link looks like ``?seed=7&failure_rate=0.3&do=12.5:outage:on=true&do=40:outage:on=false``: the seed, every
parameter that differs from its default, and the script of timed perturbations in order. ``preset=SLUG`` may stand
in for a preset's seed, parameters and script; anything written beside it overrides or extends it, and ``skip=``
leaves out one of its steps (written as ``do=`` writes it). Decoding never
raises anything but `ScenarioError`, whose message names every bad part.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from .registry import Command, Pattern
from .registry import shown as _shown

MAX_SEED = 2**32 - 1
TIME_STEP = 0.001  # script times are whole milliseconds, so that their text form round-trips exactly


class ScenarioError(ValueError):
    """A link, form or command that cannot be turned into a scenario; `problems` says each thing wrong."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Action:
    """One scripted perturbation: at virtual time ``t``, apply ``command`` with ``args`` (in declared order)."""

    t: float
    command: str
    args: tuple[tuple[str, Any], ...] = ()

    def text(self, pattern: Pattern) -> str:
        """The step as a link writes it (a ``do=`` or ``skip=`` value): ``T:command[:arg=value,...]``."""
        by_name = {a.name: a for a in pattern.command(self.command).args}
        args = ",".join(f"{name}={by_name[name].format(value)}" for name, value in self.args)
        return f"{format_time(self.t)}:{self.command}" + (f":{args}" if args else "")


@dataclass(frozen=True)
class Scenario:
    pattern: str
    seed: int
    params: tuple[tuple[str, Any], ...]
    script: tuple[Action, ...] = ()
    preset: str = ""  # the preset it started from, whose story the page tells; the simulation never reads it

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.params)

    def with_action(self, action: Action) -> Scenario:
        """The scenario with ``action`` added at its time, after every action at or before it.

        Scripted actions after it stay: a preset is a story the learner perturbs, not one the first click erases.
        """
        at = bisect.bisect_right([a.t for a in self.script], action.t)
        return replace(self, script=(*self.script[:at], action, *self.script[at:]))


def format_time(t: float) -> str:
    return f"{t:.3f}".rstrip("0").rstrip(".")


def action_time(now: float) -> float:
    """The first whole millisecond at or after ``now``: where a live perturbation lands."""
    t = float(format_time(math.ceil(now / TIME_STEP) * TIME_STEP))
    while t < now:
        t = float(format_time(t + TIME_STEP))
    return t


def default_scenario(pattern: Pattern, seed: int = 1) -> Scenario:
    return Scenario(pattern.slug, seed, tuple(pattern.defaults().items()))


def encode(pattern: Pattern, scenario: Scenario) -> str:
    """The canonical query string (no leading ``?``): seed, non-default parameters, script.

    A scenario started from a preset is written as ``preset=SLUG`` and what differs from it (``skip=`` for each of
    the preset's steps it has not, ``do=`` for each step it adds), so that the link keeps the preset's story;
    when that cannot say the same, it is written in full.
    """
    if pattern.preset(scenario.preset) is not None:
        base = decode(pattern, [("preset", scenario.preset)])
        extra = Counter(scenario.script)
        extra.subtract(base.script)
        missing = Counter({action: -count for action, count in extra.items() if count < 0})
        skips = []
        for action in base.script:  # in the preset's order
            if missing[action] > 0:
                missing[action] -= 1
                skips.append(("skip", action.text(pattern)))
        pairs = [("preset", scenario.preset), *skips, *_differences(pattern, scenario, base, extra, from_preset=True)]
        if decode(pattern, pairs, max_actions=len(base.script) + len(scenario.script)) == scenario:
            return urlencode(pairs, safe=":,=")
    pairs = _differences(pattern, scenario, default_scenario(pattern), Counter(scenario.script), from_preset=False)
    return urlencode(pairs, safe=":,=")


def _differences(
    pattern: Pattern, scenario: Scenario, base: Scenario, extra: Counter, *, from_preset: bool
) -> list[tuple[str, str]]:
    """The pairs that turn ``base`` into ``scenario``: the seed (unless the preset's), parameters, ``extra`` actions."""
    pairs: list[tuple[str, str]] = []
    if scenario.seed != base.seed or not from_preset:
        pairs.append(("seed", str(scenario.seed)))
    for param in pattern.params:
        value = scenario.values[param.name]
        if value != base.values[param.name]:
            pairs.append((param.name, param.format(value)))
    for action in scenario.script:
        if extra[action] > 0:
            extra[action] -= 1
            pairs.append(("do", action.text(pattern)))
    return pairs


def decode_query(pattern: Pattern, query: str, *, ignore: Iterable[str] = (), limits: Mapping[str, int]) -> Scenario:
    if len(query) > limits["MAX_QUERY_LENGTH"]:
        raise ScenarioError([f"the link is too long ({len(query)} characters; at most {limits['MAX_QUERY_LENGTH']})"])
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=limits["MAX_SCRIPT_ACTIONS"] + 100)
    except ValueError as exc:
        raise ScenarioError([f"the link cannot be read: {exc}"]) from None
    return decode(pattern, pairs, ignore=ignore, max_actions=limits["MAX_SCRIPT_ACTIONS"])


def decode(
    pattern: Pattern, pairs: Iterable[tuple[str, str]], *, ignore: Iterable[str] = (), max_actions: int = 200
) -> Scenario:
    """Build a scenario from ``(name, text)`` pairs, collecting every problem before giving up."""
    problems: list[str] = []
    ignored = set(ignore)
    pairs = [(k, v) for k, v in pairs if k not in ignored]
    seed, values, planned, script, story = 1, pattern.defaults(), [], [], ""

    preset_slugs = [v for k, v in pairs if k == "preset"]
    if preset_slugs:
        preset = pattern.preset(preset_slugs[-1])
        if preset is None:
            names = ", ".join(p.slug for p in pattern.presets) or "none"
            problems.append(f"preset: no preset {_shown(preset_slugs[-1])} (known: {names})")
        else:
            seed, story = preset.seed, preset.slug
            values.update(preset.params)
            planned = [
                Action(float(t), name, _ordered_args(pattern.command(name), args)) for t, name, args in preset.script
            ]

    seen: set[str] = set()
    skipped: list[Action] = []
    for key, text in pairs:
        if key == "preset":
            continue
        if key == "seed":
            seed = _parse_seed(text, problems)
        elif key == "do":
            if len(planned) + len(script) >= max_actions:
                problems.append(f"do: too many perturbations (at most {max_actions})")
                break
            action = _parse_action(pattern, text, problems)
            if action is not None:
                script.append(action)
        elif key == "skip":
            action = _parse_action(pattern, text, problems, key)
            if action is not None:
                skipped.append(action)
        elif (param := pattern.param(key)) is not None:
            if key in seen:
                problems.append(f"{key}: given more than once")
                continue
            seen.add(key)
            try:
                values[key] = param.parse(text)
            except ValueError as exc:
                problems.append(str(exc))
        else:
            problems.append(f"{_shown(key)}: not a parameter of {pattern.title} (see the form for the ones there are)")
        if len(problems) >= 10:
            break
    for action in skipped:  # one of the preset's steps left out
        if action in planned:
            planned.remove(action)
        else:
            problems.append(f"skip: {action.text(pattern)} is not a step of the preset")
    script = sorted(planned + script, key=lambda a: a.t)  # stable: actions at the same time keep their written order
    if not problems:
        problems = pattern.conflicts(values, script)[:10]
    if problems:
        raise ScenarioError(problems)
    return Scenario(pattern.slug, seed, tuple((p.name, values[p.name]) for p in pattern.params), tuple(script), story)


def never_there(script: Iterable[Action], arg: str, names: Callable[[int], Sequence[str]], adds: str) -> list[str]:
    """Problems for scripted actions whose ``arg`` names a node the run cannot have by then (``crash s9`` in a
    5-server cluster): ``names(k)`` are the names there can be once ``k`` actions ``adds`` have run. A name that
    may exist passes; whether it still does when the action runs is the engine's to say (it ignores it, with an
    event)."""
    problems: list[str] = []
    added = 0
    for action in script:
        if action.command == adds:
            added += 1
            continue
        value = dict(action.args).get(arg)
        known = names(added)
        if value is not None and value not in known:
            problems.append(
                f"do {format_time(action.t)}: {action.command} names {arg} {value}, which this run does not have "
                f"(by then it has {', '.join(known) or 'none'})"
            )
    return problems


def numbered(prefix: str, count: int) -> Callable[[int], list[str]]:
    """`never_there`'s ``names`` for nodes called prefix1, prefix2, ..., ``count`` at the start, each one added
    taking the next number."""
    return lambda added: [f"{prefix}{index}" for index in range(1, count + added + 1)]


def parse_command(pattern: Pattern, name: Any, raw_args: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """Validate a command and its arguments from a form or websocket frame."""
    command = pattern.command(name) if isinstance(name, str) else None
    if command is None:
        raise ScenarioError([f"command: {_shown(name)} is not a command of {pattern.title}"])
    problems: list[str] = []
    values: dict[str, Any] = {}
    for arg in command.args:
        if arg.name not in raw_args:
            values[arg.name] = arg.default
            continue
        try:
            values[arg.name] = arg.parse(raw_args[arg.name])
        except ValueError as exc:
            problems.append(f"{command.name} {exc}")
    if problems:
        raise ScenarioError(problems)
    return command.name, tuple(values.items())


def _parse_seed(text: str, problems: list[str]) -> int:
    digits = text.strip()
    if re.fullmatch(r"[0-9]{1,10}", digits) and int(digits) <= MAX_SEED:
        return int(digits)
    problems.append(f"seed: expected a whole number from 0 to {MAX_SEED}, got {_shown(text)}")
    return 1


def _parse_action(pattern: Pattern, text: str, problems: list[str], key: str = "do") -> Action | None:
    """``T:command`` or ``T:command:arg=value,arg=value`` (the value of a ``key`` pair: ``do`` or ``skip``)."""
    parts = text.split(":", 2)
    if len(parts) < 2:
        problems.append(f"{key}: {_shown(text)} should look like TIME:COMMAND[:ARG=VALUE,...]")
        return None
    try:
        t = float(parts[0])
    except ValueError:
        t = -1.0
    if not (math.isfinite(t) and t >= 0) or len(parts[0]) > 16:
        problems.append(f"{key}: time {_shown(parts[0])} should be a number of seconds >= 0")
        return None
    raw: dict[str, str] = {}
    for item in parts[2].split(",") if len(parts) == 3 and parts[2] else []:
        name, sep, value = item.partition("=")
        if not sep:
            problems.append(f"{key}: argument {_shown(item)} should look like NAME=VALUE")
            return None
        raw[name.strip()] = value
    try:
        name, args = parse_command(pattern, parts[1].strip(), raw)
    except ScenarioError as exc:
        problems.extend(f"{key} {format_time(t)}: {p}" for p in exc.problems)
        return None
    command = pattern.command(name)
    unknown = sorted(set(raw) - {a.name for a in command.args})
    if unknown:
        problems.append(f"{key} {format_time(t)}: {name} has no argument {', '.join(map(_shown, unknown))}")
        return None
    return Action(float(format_time(t)), name, args)


def _ordered_args(command: Command | None, args: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    if command is None:
        raise ValueError("a preset names an unknown command")
    return tuple((a.name, args.get(a.name, a.default)) for a in command.args)
