"""The shared message network: latency, loss, duplication, partitions, link cuts and node crashes.

Engines that exchange messages (Raft, message queues) hand every message to a `Network` instead of calling each
other, so that the faults a visitor injects act on all patterns the same way. The network is pure and
deterministic: its only inputs are the simulation's clock, its seeded `rng` and its queue, and everything it
schedules is a bound method, so a `Simulation` with messages on the wire pickles into a snapshot.

Decisions worth knowing:

- Reachability is checked when a message is sent *and* again when it arrives. A message already on the wire when
  its link is cut, its endpoints are partitioned or its receiver crashes is lost on arrival, as real packets in
  flight are. A message sent while the receiver is down still travels (the sender cannot know) and is dropped on
  arrival only if the receiver is still down then. Messages a node sent before crashing are still delivered.
- `partition(groups)`: nodes not named in any group form one more group together (the remainder), so
  ``partition([["a"]])`` isolates ``a`` from everyone else. Nodes added later join the remainder too.
- `heal()` makes the network whole again: it ends the partition and restores every cut link. It does not restart
  crashed nodes or change rates.
- Every perturbation returns True and emits its event when it changes something; a call that changes nothing
  (crashing a crashed node, cutting a cut link) returns False and emits nothing.
- Message fates (`net.send`, `net.deliver`, `net.drop`, `net.duplicate`) are emitted only with ``trace=True``,
  because a busy run sends thousands; a *manual* drop is a user perturbation and is always emitted.
- A duplicate is rolled only for a message that made it onto the wire; it is a new message (own id, own latency
  sample, ``duplicate=True``) and is not rolled for loss again. Payloads are opaque and never appear in events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .records import direct_builder
from .registry import EventType
from .sim import TIME_DIGITS, Simulation

DISTRIBUTIONS = ("fixed", "uniform", "exponential", "lognormal")
DROP_REASONS = ("loss", "partition", "cut", "crashed", "manual")
LINK_STATES = ("ok", "cut", "partitioned", "lossy")
LATENCY_LIMITS = {"base": 3600.0, "spread": 3600.0, "sigma": 4.0}  # beyond these, runs stall or floats overflow

_LINK = {"src": "sending node", "dst": "receiving node"}
_MSG = {"id": "message id", **_LINK}
EVENT_TYPES = (
    EventType(
        "net.partition",
        "The network split into groups that cannot reach each other.",
        {"groups": "list of node lists, unlisted nodes together in the last group"},
    ),
    EventType("net.heal", "The partition ended and every cut link was restored."),
    EventType("net.cut", "A link was cut.", {**_LINK, "both_ways": "true if dst -> src was cut too"}),
    EventType("net.restore", "A cut link was restored.", {**_LINK, "both_ways": "true if dst -> src too"}),
    EventType("net.crash", "A node crashed: it sends and receives nothing.", {"node": "the node"}),
    EventType("net.restart", "A crashed node is up again.", {"node": "the node"}),
    EventType(
        "net.config",
        "A rate or latency changed, for the whole network or for one link.",
        {
            "setting": "latency | drop_rate | duplicate_rate",
            "src": "link source, null for the default",
            "dst": "link destination, null for the default",
            "both_ways": "true if dst -> src too",
            "value": "the new rate, latency as a dict, or null when a link override was removed",
        },
    ),
    EventType(
        "net.send",
        "A message was handed to the network (trace only).",
        {**_MSG, "deliver_at": "arrival time, null if it was dropped at once"},
    ),
    EventType("net.deliver", "A message reached its receiver (trace only).", {**_MSG, "sent_at": "send time"}),
    EventType(
        "net.drop",
        "A message was lost (trace only, except manual drops).",
        {**_MSG, "reason": " | ".join(DROP_REASONS)},
    ),
    EventType(
        "net.duplicate",
        "The network duplicated a message (trace only).",
        {**_MSG, "of": "id of the original", "deliver_at": "arrival time of the copy"},
    ),
)


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """One-way delay = ``base`` seconds + jitter drawn from ``dist``.

    - ``fixed``: no jitter (``spread`` and ``sigma`` ignored, no random draw).
    - ``uniform``: uniform in ``[0, spread]``.
    - ``exponential``: exponential with mean ``spread`` (memoryless queueing delay; long tail).
    - ``lognormal``: ``spread * exp(N(0, sigma))``, so ``spread`` is the median jitter and ``sigma`` the tail
      weight (measured network delays look like this).

    ``base`` and ``spread`` are seconds from 0 to 3600; ``sigma`` is from 0 to 4 (larger overflows floats).

    Any jitter lets later messages overtake earlier ones on the same link unless the network is ``fifo``.
    """

    base: float = 0.01
    dist: str = "fixed"
    spread: float = 0.0
    sigma: float = 0.5

    def __post_init__(self) -> None:
        if self.dist not in DISTRIBUTIONS:
            raise ValueError(f"latency distribution must be one of {', '.join(DISTRIBUTIONS)}, not {self.dist!r}")
        for name, limit in LATENCY_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= limit:
                raise ValueError(f"latency {name} must be a number from 0 to {limit:g}, not {value!r}")

    def sample(self, rng: Any) -> float:
        if self.dist == "uniform":  # the draw and the float of ``rng.uniform(0.0, spread)``, one call fewer
            return self.base + self.spread * rng.random()
        if self.dist == "exponential":
            return self.base + (rng.expovariate(1.0 / self.spread) if self.spread else 0.0)
        if self.dist == "lognormal":
            return self.base + self.spread * rng.lognormvariate(0.0, self.sigma)
        return self.base

    def describe(self) -> dict[str, Any]:
        return {"base": self.base, "dist": self.dist, "spread": self.spread, "sigma": self.sigma}


class Message(NamedTuple):
    """What the receiver gets. ``deliver_at`` is None for a message dropped as it was sent.

    A named tuple rather than a frozen dataclass: it is as immutable and is made for every message sent, at a
    fifth of the cost (a frozen dataclass sets each field through ``object.__setattr__``)."""

    id: int
    src: str
    dst: str
    payload: Any
    sent_at: float
    deliver_at: float | None
    duplicate: bool = False


_new_message = direct_builder(Message)  # one per send: see `patterns.core.records`


class Network:
    """Nodes named by short strings, and the links between them with their faults."""

    def __init__(
        self,
        sim: Simulation,
        nodes: list[str] | tuple[str, ...] = (),
        *,
        latency: LatencyModel | None = None,
        drop_rate: float = 0.0,
        duplicate_rate: float = 0.0,
        fifo: bool = False,
        trace: bool = False,
    ):
        self.sim = sim
        self.fifo = fifo
        self.trace = trace
        self.latency = LatencyModel() if latency is None else _model(latency)
        self.drop_rate = _rate("drop_rate", drop_rate)
        self.duplicate_rate = _rate("duplicate_rate", duplicate_rate)
        self._nodes: list[str] = []
        self._down: dict[str, bool] = {}  # crashed nodes (a dict, never a set: see the kernel's docstring)
        self._partition: list[list[str]] = []  # listed groups; empty when whole
        self._group: dict[str, int] = {}  # listed node -> group index; unlisted nodes are the remainder
        self._cuts: dict[tuple[str, str], bool] = {}  # directed links that are cut
        self._link_latency: dict[tuple[str, str], LatencyModel] = {}
        self._link_drop: dict[tuple[str, str], float] = {}
        self._last_arrival: dict[tuple[str, str], float] = {}  # for fifo
        self._in_flight: dict[int, tuple[Message, Callable[[Message], Any]]] = {}  # insertion order = id order
        self._next_id = 1
        self._vetted: Callable[[Message], Any] | None = None  # the deliver callable last checked
        self._whole = True  # no node down, no partition, no cut: nothing but loss can stop a message
        # whole, and no loss or duplication anywhere: a message sent goes straight onto the wire
        self._sure = not self.drop_rate and not self.duplicate_rate
        self._arriver = self._arrive  # one bound method for every arrival queued, not one made per message
        self.counts = {"sent": 0, "duplicated": 0, "delivered": 0, "dropped": 0}
        for node in nodes:
            self.add_node(node)

    # -- nodes ------------------------------------------------------------------------------------------------
    @property
    def nodes(self) -> list[str]:
        return list(self._nodes)

    def add_node(self, node: str) -> None:
        """Add a node, up and connected (while partitioned it joins the remainder group)."""
        if not isinstance(node, str) or not node:
            raise ValueError(f"a node name must be a non-empty string, not {node!r}")
        if node in self._down:
            raise ValueError(f"node {node!r} already exists")
        self._nodes.append(node)
        self._down[node] = False

    def is_up(self, node: str) -> bool:
        return not self._down[self._known(node)]

    def crash(self, node: str) -> bool:
        if self._down[self._known(node)]:
            return False
        self._down[node] = True
        self._whole = self._sure = False
        self.sim.emit("net.crash", {"node": node})
        return True

    def restart(self, node: str) -> bool:
        if not self._down[self._known(node)]:
            return False
        self._down[node] = False
        self._check_whole()
        self.sim.emit("net.restart", {"node": node})
        return True

    # -- partitions and cuts ----------------------------------------------------------------------------------
    def partition(self, groups: list[list[str]]) -> bool:
        """Split the network; replaces any earlier partition. Unlisted nodes form one more group together."""
        if not isinstance(groups, (list, tuple)) or not all(isinstance(g, (list, tuple)) and g for g in groups):
            raise ValueError(f"a partition is a list of non-empty lists of nodes, not {groups!r}")
        if not groups:
            raise ValueError("a partition needs at least one group")
        seen: dict[str, int] = {}
        for index, group in enumerate(groups):
            for node in group:
                if self._known(node) in seen:
                    raise ValueError(f"node {node!r} is in more than one group")
                seen[node] = index
        listed = [[node for node in self._nodes if seen.get(node) == i] for i in range(len(groups))]
        if listed == self._partition:
            return False
        self._partition, self._group = listed, {node: seen[node] for node in self._nodes if node in seen}
        self._check_whole()
        self.sim.emit("net.partition", {"groups": self.groups()})
        return True

    def heal(self) -> bool:
        """End the partition and restore every cut link."""
        if not self._partition and not self._cuts:
            return False
        self._partition, self._group, self._cuts = [], {}, {}
        self._check_whole()
        self.sim.emit("net.heal")
        return True

    def cut(self, a: str, b: str, *, both_ways: bool = True) -> bool:
        return self._set_cut("net.cut", a, b, both_ways, cut=True)

    def restore(self, a: str, b: str, *, both_ways: bool = True) -> bool:
        """Undo a cut; a partition between ``a`` and ``b`` still blocks them."""
        return self._set_cut("net.restore", a, b, both_ways, cut=False)

    def _set_cut(self, event: str, a: str, b: str, both_ways: bool, *, cut: bool) -> bool:
        pairs = self._pairs(a, b, both_ways)
        changed = [pair for pair in pairs if (pair in self._cuts) != cut]
        for pair in changed:
            if cut:
                self._cuts[pair] = True
            else:
                del self._cuts[pair]
        if changed:
            self._check_whole()
            self.sim.emit(event, {"src": a, "dst": b, "both_ways": both_ways})
        return bool(changed)

    # -- rates and latency ------------------------------------------------------------------------------------
    def set_latency(self, model: LatencyModel) -> bool:
        return self._set_default("latency", "latency", _model(model))

    def set_drop_rate(self, rate: float) -> bool:
        return self._set_default("drop_rate", "drop_rate", _rate("drop_rate", rate))

    def set_duplicate_rate(self, rate: float) -> bool:
        return self._set_default("duplicate_rate", "duplicate_rate", _rate("duplicate_rate", rate))

    def set_link_latency(self, a: str, b: str, model: LatencyModel | None, *, both_ways: bool = True) -> bool:
        """Override the latency of one link (None removes the override)."""
        value = None if model is None else _model(model)
        return self._set_override("latency", self._link_latency, a, b, both_ways, value)

    def set_link_drop_rate(self, a: str, b: str, rate: float | None, *, both_ways: bool = True) -> bool:
        """Override the drop rate of one link (None removes the override)."""
        value = None if rate is None else _rate("drop_rate", rate)
        return self._set_override("drop_rate", self._link_drop, a, b, both_ways, value)

    def _set_default(self, setting: str, attribute: str, value: Any) -> bool:
        if getattr(self, attribute) == value:
            return False
        setattr(self, attribute, value)
        self._check_whole()
        self._emit_config(setting, None, None, False, value)
        return True

    def _set_override(self, setting: str, table: dict, a: str, b: str, both_ways: bool, value: Any) -> bool:
        pairs = [pair for pair in self._pairs(a, b, both_ways) if table.get(pair) != value]
        for pair in pairs:
            if value is None:
                del table[pair]
            else:
                table[pair] = value
        if pairs:
            self._check_whole()
            self._emit_config(setting, a, b, both_ways, value)
        return bool(pairs)

    def _emit_config(self, setting: str, src: str | None, dst: str | None, both_ways: bool, value: Any) -> None:
        shown = value.describe() if isinstance(value, LatencyModel) else value
        self.sim.emit(
            "net.config", {"setting": setting, "src": src, "dst": dst, "both_ways": both_ways, "value": shown}
        )

    # -- messages ---------------------------------------------------------------------------------------------
    def send(self, src: str, dst: str, payload: Any, deliver: Callable[[Message], Any]) -> Message:
        """Put a message on the wire; ``deliver(message)`` is called when it arrives, unless it is lost."""
        down = self._down
        try:  # both ends known, in two lookups (every message is checked)
            known = src in down and dst in down
        except TypeError:  # unhashable: not a node name; `_known` says so
            known = False
        if not known:
            self._known(src)
            self._known(dst)
        if deliver is not self._vetted:  # a sender that passes the same callable every time has it vetted once
            _check_deliver(deliver)
            self._vetted = deliver
        if self._sure:  # "sure send": nothing can stop, lose or copy it, so none of the fates below is looked at
            return self._launch(src, dst, payload, deliver, True, None)
        reason = None if self._whole else ("crashed" if down[src] else self._blocked(src, dst))
        drop_rate = self._link_drop.get((src, dst), self.drop_rate) if self._link_drop else self.drop_rate
        if reason is None and drop_rate and self._roll(drop_rate):  # a rate of 0 draws nothing: no roll at all
            reason = "loss"
        message = self._launch(src, dst, payload, deliver, reason is None, None)
        if reason is not None:
            self._lose(message, reason)
        elif self.duplicate_rate and self._roll(self.duplicate_rate):
            self._launch(src, dst, payload, deliver, True, message.id)
        return message

    def in_flight(self) -> list[Message]:
        """Messages on the wire (neither delivered nor dropped), oldest id first."""
        return [message for message, _ in self._in_flight.values()]

    def on_wire(self, message_id: int) -> bool:
        """Is this message still on the wire (neither delivered nor lost yet)?"""
        return message_id in self._in_flight

    def drop(self, message_id: int) -> Message:
        """Lose one message on the wire on purpose."""
        if not isinstance(message_id, int) or message_id not in self._in_flight:
            raise ValueError(f"message {message_id!r} is not in flight")
        message, _ = self._in_flight.pop(message_id)
        self.counts["dropped"] += 1
        self.sim.emit("net.drop", {"id": message.id, "src": message.src, "dst": message.dst, "reason": "manual"})
        return message

    def _launch(self, src, dst, payload, deliver, on_wire: bool, duplicate_of: int | None) -> Message:
        sim = self.sim
        now = sim.now
        message_id = self._next_id
        self._next_id = message_id + 1
        deliver_at = None
        if on_wire:
            model = self._link_latency.get((src, dst), self.latency) if self._link_latency else self.latency
            deliver_at = now + model.sample(sim.rng)
            if self.fifo:
                link = (src, dst)
                last = self._last_arrival.get(link)
                if last is not None and last > deliver_at:  # FIFO: never before the link's previous arrival
                    deliver_at = last
                self._last_arrival[link] = deliver_at
            sim._push(deliver_at, self._arriver, (message_id,))  # finite and not before now: no checks to pay
        message = _new_message((message_id, src, dst, payload, now, deliver_at, duplicate_of is not None))
        if on_wire:
            self._in_flight[message_id] = (message, deliver)
        if duplicate_of is None:
            self.counts["sent"] += 1
            if self.trace:
                sim.emit("net.send", {"id": message_id, "src": src, "dst": dst, "deliver_at": _shown(deliver_at)})
        else:
            self.counts["duplicated"] += 1
            if self.trace:
                shown = _shown(deliver_at)
                sim.emit(
                    "net.duplicate", {"id": message_id, "src": src, "dst": dst, "of": duplicate_of, "deliver_at": shown}
                )
        return message

    def _arrive(self, message_id: int) -> None:
        entry = self._in_flight.pop(message_id, None)
        if entry is None:  # dropped by hand while on the wire
            return
        message, deliver = entry
        if not self._whole:
            reason = "crashed" if self._down[message.dst] else self._blocked(message.src, message.dst)
            if reason is not None:
                self._lose(message, reason)
                return
        self.counts["delivered"] += 1
        if self.trace:
            shown = _shown(message.sent_at)
            self.sim.emit("net.deliver", {"id": message.id, "src": message.src, "dst": message.dst, "sent_at": shown})
        deliver(message)

    def _lose(self, message: Message, reason: str) -> None:
        self.counts["dropped"] += 1
        if self.trace:
            self.sim.emit("net.drop", {"id": message.id, "src": message.src, "dst": message.dst, "reason": reason})

    def _roll(self, probability: float) -> bool:
        """True with ``probability``; draws nothing when the answer is certain, so 0 leaves the rng alone."""
        return probability >= 1.0 or (probability > 0.0 and self.sim.rng.random() < probability)

    # -- queries ----------------------------------------------------------------------------------------------
    def reachable(self, a: str, b: str) -> bool:
        """Would a message sent from ``a`` to ``b`` now get there if nothing changed (ignoring random loss)?"""
        self._known(a)
        self._known(b)
        return not self._down[a] and not self._down[b] and self._blocked(a, b) is None

    def groups(self) -> list[list[str]]:
        """The partition groups as listed (members in node order), then the remainder; one group when whole."""
        remainder = [node for node in self._nodes if node not in self._group]
        return [list(group) for group in self._partition] + ([remainder] if remainder else [])

    def links(self) -> list[tuple[str, str, str]]:
        """Every unordered pair ``(a, b, state)`` in node order; state is the worst of either direction:
        partitioned, then cut, then lossy (drop rate > 0), else ok. Crashed nodes are reported by `is_up`."""
        out = []
        for i, a in enumerate(self._nodes):
            for b in self._nodes[i + 1 :]:
                blocked = {self._blocked(a, b), self._blocked(b, a)}
                if "partition" in blocked:
                    state = "partitioned"
                elif "cut" in blocked:
                    state = "cut"
                elif self._link_drop.get((a, b), self.drop_rate) or self._link_drop.get((b, a), self.drop_rate):
                    state = "lossy"
                else:
                    state = "ok"
                out.append((a, b, state))
        return out

    def _check_whole(self) -> None:
        """Recompute `_whole` and `_sure` after a fault or a rate changed or ended. Every change of `_down`,
        `_group`, `_cuts` or of a drop or duplicate rate calls this (a crash just clears both flags), so `send` and
        `_arrive` may skip the checks they make that the flags answer: they would find nothing then, and they draw
        no random number either way (a rate of 0 draws nothing)."""
        self._whole = not self._group and not self._cuts and not any(self._down.values())
        self._sure = self._whole and not self.drop_rate and not self._link_drop and not self.duplicate_rate

    def _blocked(self, src: str, dst: str) -> str | None:
        """Why the network itself stops ``src`` -> ``dst`` now, or None (the usual case is answered first)."""
        if self._group:
            remainder = len(self._partition)
            if self._group.get(src, remainder) != self._group.get(dst, remainder):
                return "partition"
        return "cut" if self._cuts and (src, dst) in self._cuts else None

    def _known(self, node: Any) -> str:
        if not isinstance(node, str) or node not in self._down:
            raise ValueError(f"unknown node {node!r}; the nodes are {', '.join(self._nodes) or '(none)'}")
        return node

    def _pairs(self, a: str, b: str, both_ways: bool) -> list[tuple[str, str]]:
        self._known(a)
        self._known(b)
        if a == b:
            raise ValueError(f"a link joins two different nodes, not {a!r} to itself")
        return [(a, b), (b, a)] if both_ways else [(a, b)]


def _shown(t: float | None) -> float | None:
    """Times in events are rounded like the event's own ``t``, so that their text is stable."""
    return None if t is None else round(t, TIME_DIGITS)


def _rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number between 0 and 1, not {value!r}")
    return float(value)


def _model(model: Any) -> LatencyModel:
    if not isinstance(model, LatencyModel):
        raise ValueError(f"latency must be a LatencyModel, not {model!r}")
    return model


def _check_deliver(deliver: Any) -> None:
    """Refuse what would make the simulation unpicklable, at the call that caused it rather than at snapshot."""
    name = getattr(deliver, "__qualname__", "")
    if not callable(deliver) or "<lambda>" in name or "<locals>" in name:
        raise ValueError(f"deliver must be a bound method or a module-level function, not {deliver!r}")
