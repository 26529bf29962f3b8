"""What a pattern tells the kernel about itself, and the registry the site, the consumer and the CLI read.

Everything a user can set or send is declared here as a typed, bounded `Param`, so that links, forms, websocket
frames and command-line flags are all validated by the same code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .sim import Simulation

RESERVED_NAMES = frozenset({"seed", "do", "preset", "run", "until", "format"})
TEXT_RESERVED = frozenset(",:=+&#% ")  # separators of links and scripts: never inside a text value


class Engine(Protocol):
    """A pattern's pure state machine, driven by the kernel and speaking only in events.

    Which nodes exist now is the pattern's to say (`Pattern.targets`), not the engine's: a live command naming
    another is refused before it reaches the engine (`Pattern.check_targets`); a scripted one is the engine's to
    ignore, with a ``command.ignored`` event.
    """

    def __init__(self, sim: Simulation, params: Mapping[str, Any]) -> None: ...

    def start(self) -> None: ...

    def apply(self, command: str, args: Mapping[str, Any]) -> None: ...


def split_groups(value: str) -> list[list[str]]:
    """The groups a ``groups_of`` parameter's value lists: "s1.s2|s3" is [["s1", "s2"], ["s3"]]."""
    return [group.split(".") for group in value.split("|")]


@dataclass(frozen=True)
class Param:
    """A typed, bounded value: a pattern parameter or a command argument."""

    name: str
    kind: str  # "int" | "float" | "bool" | "choice" | "text"
    default: Any
    label: str = ""
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    group: str = ""  # the fieldset it belongs to on the page
    pattern: str = ""  # "text" only: the regular expression the whole value must match
    example: str = ""  # "text" only: a valid value, shown as the field's placeholder and in error messages
    # "text" only: the value is some of these joined by `separator` (the page offers them as checkboxes; the text
    # itself stays editable for variants such as "ring_hash-3")
    options: tuple[str, ...] = ()
    separator: str = ""
    # "text" only: the value splits the targets of this kind (`Pattern.targets`) into groups, "s1.s2|s3.s4.s5";
    # the page lets the learner put each one in a group by clicking it
    groups_of: str = ""
    # the kind of node the value names, a key of `Pattern.targets` (with groups_of: every member of every group):
    # a live command naming one that is not there now is refused, and the page offers those there as a picker
    target: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("int", "float", "bool", "choice", "text"):
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}")
        if self.kind == "text" and not (self.pattern and re.fullmatch(self.pattern, self.default)):
            raise ValueError(f"{self.name}: default {self.default!r} does not match {self.pattern!r}")
        if self.options and not (self.kind == "text" and self.separator):
            raise ValueError(f"{self.name}: options need a text parameter with a separator")
        if self.kind == "choice" and self.default not in self.choices:
            raise ValueError(f"{self.name}: default {self.default!r} is not one of {self.choices}")
        if self.kind in ("int", "float"):
            self.check(self.default)

    def parse(self, text: Any) -> Any:
        """Turn outside input (a string, or a JSON value) into a checked value, or raise ValueError."""
        if isinstance(text, str):
            text = text.strip()
            if len(text) > 64:
                raise ValueError(f"{self.name}: value is too long")
        if self.kind == "bool":
            if isinstance(text, bool):
                return text
            if isinstance(text, str) and text.lower() in ("1", "true", "on", "yes"):
                return True
            if isinstance(text, str) and text.lower() in ("0", "false", "off", "no"):
                return False
            raise ValueError(f"{self.name}: expected true or false, got {shown(text)}")
        if self.kind == "choice":
            if text in self.choices:
                return text
            raise ValueError(f"{self.name}: expected one of {', '.join(self.choices)}, got {shown(text)}")
        if self.kind == "text":
            if isinstance(text, str) and not TEXT_RESERVED.intersection(text) and re.fullmatch(self.pattern, text):
                return text
            like = f" like {self.example!r}" if self.example else ""
            raise ValueError(f"{self.name}: expected text{like}, got {shown(text)}")
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            raise ValueError(f"{self.name}: expected a number, got {shown(text)}")
        try:  # a JSON number stays as it came (check() refuses 2.5 for a whole number, inf and nan for any)
            if isinstance(text, str):
                value = int(text) if self.kind == "int" else float(text)
            else:
                value = float(text) if self.kind == "float" else text
        except (ValueError, OverflowError):
            kind = "a whole number" if self.kind == "int" else "a number"
            raise ValueError(f"{self.name}: expected {kind}, got {shown(text)}") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{self.name}: expected a finite number, got {value}")
        if self.kind == "int" and value != int(value):
            raise ValueError(f"{self.name}: expected a whole number, got {value}")
        if self.min is not None and value < self.min:
            raise ValueError(f"{self.name}: {value} is below the minimum {_num(self.min)}")
        if self.max is not None and value > self.max:
            raise ValueError(f"{self.name}: {value} is above the maximum {_num(self.max)}")
        return int(value) if self.kind == "int" else float(value) if self.kind == "float" else value

    def format(self, value: Any) -> str:
        """The canonical text of a value, as it appears in links and on the command line."""
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "float":
            return _num(value)
        return str(value)

    def names(self, value: Any) -> tuple[Any, ...]:
        """The nodes a value names: itself, or each member of its groups ("s1.s2|s3" names s1, s2 and s3)."""
        if self.groups_of:
            return tuple(name for group in split_groups(str(value)) for name in group)
        return (value,)

    def describe(self) -> dict[str, Any]:
        out = {"name": self.name, "kind": self.kind, "default": self.default, "label": self.label or self.name}
        for key in ("min", "max", "unit", "help", "group", "target"):
            if getattr(self, key) not in (None, ""):
                out[key] = getattr(self, key)
        if self.choices:
            out["choices"] = list(self.choices)
        if self.kind == "text":
            out["pattern"] = self.pattern
            if self.example:
                out["example"] = self.example
            if self.options:
                out["options"], out["separator"] = list(self.options), self.separator
        return out


def in_group(group: str, *params: Param) -> tuple[Param, ...]:
    return tuple(replace(p, group=group) for p in params)


@dataclass(frozen=True)
class Command:
    """A perturbation a user can apply to a running simulation."""

    name: str
    label: str
    args: tuple[Param, ...] = ()
    help: str = ""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "help": self.help, "args": [a.describe() for a in self.args]}


@dataclass(frozen=True)
class EventType:
    name: str
    help: str
    fields: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"type": self.name, "help": self.help, "fields": dict(self.fields)}


COMMAND_EVENT = EventType(
    "command",
    "A perturbation, live or scripted, emitted by the kernel just before the engine applies it.",
    {"command": "the command's name", "args": "its arguments, name to value"},
)
IGNORED_EVENT = EventType(
    "command.ignored",
    "A command that did nothing (its target is not there, or it does not apply now), emitted by the engine.",
    {"command": "the command's name", "reason": "why it did nothing"},
)
KERNEL_EVENTS = (COMMAND_EVENT, IGNORED_EVENT)  # every pattern's, named alike: events are `area.what` or `command`


@dataclass(frozen=True)
class Preset:
    """A named scenario that tells one story; `script` items are ``(time, command, {arg: value})``."""

    slug: str
    title: str
    story: str
    params: Mapping[str, Any] = field(default_factory=dict)
    script: tuple[tuple[float, str, Mapping[str, Any]], ...] = ()
    seed: int = 1
    section: str = ""  # the heading it is listed under on the page, for patterns with several views
    chapters: tuple[Any, ...] = ()  # its story told step by step: `patterns.core.story.Chapter`s


@dataclass(frozen=True)
class Drawing:
    """What one diagram looks like now.

    ``mermaid`` is re-rendered by the browser only when its text changes; ``nodes`` and ``edges`` name Mermaid
    node ids and edge ids (declared as ``A e1@--> B``) to mark as active, applied to the rendered SVG in place.
    ``svg`` is for ready-made pictures (charts) that are swapped as they are.
    """

    mermaid: str = ""
    nodes: tuple[str, ...] = ()
    edges: tuple[str, ...] = ()
    svg: str = ""
    caption: str = ""
    # node id -> text shown when that node is clicked or activated by keyboard; its first line is the heading
    details: Mapping[str, str] = field(default_factory=dict)
    # node or edge id -> its label now (lines split by "\n"), written by the page into the rendered Mermaid SVG on
    # every frame, so that ``mermaid`` can carry placeholders and change only with the structure
    values: Mapping[str, str] = field(default_factory=dict)
    # messages on the wire (patterns/core/motion.py), glided by the page between frames
    tokens: tuple[Mapping[str, Any], ...] = ()
    # subgraph id -> its name: the page shows one of these parts of ``mermaid`` at a time, with a picker
    views: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeActions:
    """The commands a diagram node offers when it is clicked, so that a learner steers by touching the picture.

    ``node`` is a regular expression over Mermaid node ids (a full match); the target's name is its first group,
    or ``name`` when the node does not carry it. Each command's ``arg`` gets ``value`` with ``{name}`` replaced by
    the target's name and ``{others}`` by the other targets of the same kind joined by dots (for "isolate": a
    partition of the node against the rest). A node is offered actions only while its target exists (see
    `Pattern.targets`); commands without ``arg`` are offered as they are.
    """

    kind: str  # what the target is ("server"): `Pattern.targets` lists the ones that exist now by this kind
    label: str  # heading of the actions: "Server", "Breaker in front of"
    node: str
    commands: tuple[str, ...]
    arg: str = ""
    name: str = ""
    value: str = "{name}"
    diagrams: tuple[str, ...] = ()  # the diagrams whose nodes these are (every diagram when empty)


def no_targets(engine: Any) -> Mapping[str, tuple[str, ...]]:
    return {}


@dataclass(frozen=True)
class Diagram:
    name: str
    title: str
    draw: Callable[[Any], Drawing]
    wide: bool = False  # takes the whole width of the page: for wide flows and sequence diagrams


def no_conflicts(values: Mapping[str, Any], script: Sequence[Any]) -> list[str]:
    return []


@dataclass(frozen=True)
class Pattern:
    slug: str
    title: str
    summary: str
    engine: Callable[[Simulation, Mapping[str, Any]], Engine]
    params: tuple[Param, ...]
    commands: tuple[Command, ...]
    event_types: tuple[EventType, ...]
    diagrams: tuple[Diagram, ...]
    metrics: Callable[[Any], Mapping[str, Any]]
    presets: tuple[Preset, ...] = ()
    explain_template: str = ""
    order: int = 100
    # What is valid alone but not together: (parameter values, the script's actions in time order) -> one message
    # per problem, naming the parameter or the action at fault (say, a command naming a server the run never has;
    # `scenario.never_there` helps). Links, forms and the CLI all decode through it.
    conflicts: Callable[[Mapping[str, Any], Sequence[Any]], list[str]] = no_conflicts
    # which targets exist now, by kind ("server" -> ("s1", "s2")): the page offers node actions and fills the
    # target pickers of its forms with these only, so that nothing lists a node that is not there; the player
    # refuses a live command whose arguments (`Param.target`) name any other
    targets: Callable[[Any], Mapping[str, tuple[str, ...]]] = no_targets
    node_actions: tuple[NodeActions, ...] = ()
    focus: tuple[str, ...] = ()  # the diagrams shown in the first screen's workspace (the first one when empty)
    routine: tuple[str, ...] = ()  # high-volume event types (heartbeats, deliveries) the log hides by default

    def __post_init__(self) -> None:
        for names, what in (([p.name for p in self.params], "parameter"), ([c.name for c in self.commands], "command")):
            if len(set(names)) != len(names):
                raise ValueError(f"{self.slug}: duplicate {what} names")
        clash = RESERVED_NAMES.intersection(p.name for p in self.params)
        if clash:
            raise ValueError(f"{self.slug}: parameter names {sorted(clash)} are reserved")
        for actions in self.node_actions:
            re.compile(actions.node)
            for name in actions.commands:
                if self.command(name) is None:
                    raise ValueError(f"{self.slug}: node actions name an unknown command {name!r}")
        unknown = set(self.focus) - {d.name for d in self.diagrams}
        if unknown:
            raise ValueError(f"{self.slug}: focus names unknown diagrams {sorted(unknown)}")

    @property
    def focus_diagrams(self) -> tuple[str, ...]:
        return self.focus or tuple(d.name for d in self.diagrams[:1])

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def command(self, name: str) -> Command | None:
        return next((c for c in self.commands if c.name == name), None)

    def preset(self, slug: str) -> Preset | None:
        return next((p for p in self.presets if p.slug == slug), None)

    def check_targets(self, engine: Any, command: str, args: Sequence[tuple[str, Any]]) -> None:
        """Refuse (ValueError) a command whose arguments name a node that is not there now, by `targets`.

        Only live commands are checked: a scripted step runs at its time whatever is there, and the engine
        ignores it with an event, so that a link replays the same stream for everyone.
        """
        spec = self.command(command)
        named = [arg for arg in (spec.args if spec else ()) if arg.target]
        present = self.targets(engine) if named else {}
        values = dict(args)
        for arg in named:
            there = present.get(arg.target, ())
            for name in arg.names(values.get(arg.name, arg.default)):
                if name not in there:
                    listed = ", ".join(map(str, there)) or "none"
                    raise ValueError(f"{command}: there is no {arg.target} {name} now (there are: {listed})")

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    @property
    def all_event_types(self) -> tuple[EventType, ...]:
        """The kernel's event types (a command applied, a command ignored) and the pattern's own."""
        return (*KERNEL_EVENTS, *self.event_types)

    def describe(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "title": self.title,
            "summary": self.summary,
            "parameters": [p.describe() for p in self.params],
            "commands": [c.describe() for c in self.commands],
            "event_types": [e.describe() for e in self.all_event_types],
            "presets": [
                {"slug": p.slug, "title": p.title, "story": p.story, **({"section": p.section} if p.section else {})}
                for p in self.presets
            ],
            "diagrams": [{"name": d.name, "title": d.title} for d in self.diagrams],
        }


_REGISTRY: dict[str, Pattern] = {}


def register(pattern: Pattern) -> Pattern:
    existing = _REGISTRY.get(pattern.slug)
    if existing is not None and existing is not pattern:
        raise ValueError(f"pattern {pattern.slug!r} is already registered")
    _REGISTRY[pattern.slug] = pattern
    return pattern


def get_pattern(slug: str) -> Pattern | None:
    return _REGISTRY.get(slug)


def all_patterns() -> list[Pattern]:
    return sorted(_REGISTRY.values(), key=lambda p: (p.order, p.slug))


def _num(value: float) -> str:
    """Shortest text for a number: 0.5, 10, 1e-05 (never 10.0)."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
