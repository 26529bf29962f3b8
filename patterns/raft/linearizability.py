"""Linearizability of the clients' key-value history, checked live as each operation completes.

The model is one register per key (absent = None) with get, set, delete and compare-and-set. The check is the
Wing-Gong search as Lowe made it incremental ("Testing for linearizability", 2017), split by key:

- **Per key.** Linearizability is local (Herlihy & Wing): a history is linearizable iff its restriction to each
  object is. Every operation touches one key, so each key is checked on its own and the search never mixes keys.
- **Search nodes.** A node of the search is ``(state, linearized)``: the register's value and the operations
  already given a place in the order. Two paths reaching the same node have the same future, so each node is
  explored once (Lowe's memoization). Operations that have completed are always all linearized, so a node only
  needs to name the linearized operations *still in flight*, with the result each got.
- **Segments.** At a point where no operation on the key is in flight, every operation completed before it is
  ordered before it and every later one after it, so the set of values the key may hold there is all the future
  needs: the frontier collapses to plain states and the history before it is never searched again. Between two
  such points we do not restart the search over the segment at each completion: we keep its frontier and advance
  it event by event (Lowe's just-in-time linearization). An in-flight operation is placed only when something
  forces it (its own completion, or another's that may have seen it); placing it later is always allowed while
  it is in flight, so nothing is lost. A client stuck behind a partition for the rest of a run then costs a
  frontier twice as large, not a segment searched again and again as it grows.
- **In flight at the end.** An operation that has not completed may have taken effect or not: it is placed only
  if that helps explain another's result.

Each completion that leaves no node is a violation, reported at that completion with the values the key could
have held. The search then carries on both from what the key held and from what the client saw (a stale read
may have been the anomaly, or the write it missed), so one anomaly is reported once, not again at every later
operation on the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

OPS = ("get", "set", "delete", "cas")

OpId = tuple[str, int]  # (client, seq): retries of one operation share it


class Op(NamedTuple):
    """One operation (a named tuple: made for every invoke, at a third of a frozen dataclass's cost)."""

    id: OpId
    op: str
    key: str
    value: Any = None
    expected: Any = None


def apply(state: Any, op: Op) -> tuple[Any, Any]:
    """The register: (new state, result) of one operation taking effect on ``state``."""
    if op.op == "get":
        return state, state
    if op.op == "set":
        return op.value, "ok"
    if op.op == "delete":
        return None, "ok"
    if state == op.expected:
        return op.value, True
    return state, False


Node = tuple[Any, frozenset]  # (state, frozenset of (op id, result) for linearized operations still in flight)

BUDGET = 20_000  # search nodes one completion may visit before the key's verdict is given up as undecided


class _Unknown:
    """The value of a key whose search was given up: any value at all (a get on it may return anything)."""

    __slots__ = ()

    def __reduce__(self) -> str:
        return "UNKNOWN"  # unpickles as this very object, so that ``is`` still finds it

    def __repr__(self) -> str:
        return "unknown"


UNKNOWN = _Unknown()
UNDECIDED = "undecided"  # what `KeyHistory.complete` returns when it gave up


@dataclass
class KeyHistory:
    """One key: the operations in flight and the frontier of the search since the last quiet point.

    ``free`` names the writes in flight when the search was last given up: they may take effect at any moment
    until they complete, or may have done so already (the unknown value covers it), and their results are not
    checked. The reads in flight then are simply dropped: a read changes nothing, so it can never be observed."""

    frontier: set[Node] = field(default_factory=lambda: {(None, frozenset())})
    in_flight: dict[OpId, Op] = field(default_factory=dict)
    free: set[OpId] = field(default_factory=set)
    budget: int = BUDGET
    work: int = 0  # nodes visited by the last completion (what the budget bounds)

    def complete(self, op: Op, result: Any) -> list[Any] | str | None:
        """Advance past ``op``'s completion: None if some order explains it, UNDECIDED if the search went over its
        budget (the key starts again from an unknown value), else the states ``op`` could have seen."""
        del self.in_flight[op.id]
        others = list(self.in_flight.values())
        if op.id in self.free:
            self.free.discard(op.id)
            self.frontier = _retired(self.frontier, op)
            return None
        reached: set[Node] = set()
        seen_before: set[Any] = set()  # the states op could have taken effect on
        stack = list(self.frontier)
        explored = set(stack) if others else set()  # with no other operation in flight nothing is pushed
        self.work, budget = len(stack), self.budget
        while stack:
            state, placed = stack.pop()
            earlier = _result_of(placed, op.id)
            if earlier is not _NOT_PLACED:  # op took effect before; its result was fixed then
                if earlier is UNKNOWN or earlier == result:
                    reached.add((state, _without(placed, op.id)))
                continue
            seen_before.add(state)
            after = _effect(state, op, result)
            if after is not _NOT_PLACED:
                reached.add((after, placed))
            placed_ids = {oid for oid, _ in placed} if others else ()
            for other in others:  # or let another operation in flight take effect first
                if other.id not in placed_ids:
                    after, got = _speculate(state, other)
                    node = (after, placed | {(other.id, got)})
                    if node not in explored:
                        explored.add(node)
                        stack.append(node)
                        self.work += 1
            if self.work > budget:
                self._give_up()
                return UNDECIDED
        if reached:
            self.frontier = reached
            return None
        states = sorted(seen_before or {state for state, _ in self.frontier}, key=_order)
        self.frontier = {
            (after, _without(placed, op.id))
            for state, placed in self.frontier
            for after in (state, _as_seen(state, op, result))
        }
        return states

    def _give_up(self) -> None:
        """Start again from an unknown value: the writes in flight become free, the reads in flight are dropped."""
        self.frontier = {(UNKNOWN, frozenset())}
        self.free = {oid for oid, op in self.in_flight.items() if op.op != "get"}
        self.in_flight = {oid: op for oid, op in self.in_flight.items() if oid in self.free}


def _effect(state: Any, op: Op, result: Any) -> Any:
    """The state after ``op`` takes effect on ``state`` and returns ``result``, or _NOT_PLACED if it cannot."""
    if state is UNKNOWN:
        if op.op == "get":
            return result  # the unknown value was what the read saw
        if op.op == "cas":
            return op.value if result is True else UNKNOWN
    after, got = apply(state, op)
    return after if got == result else _NOT_PLACED


def _speculate(state: Any, op: Op) -> tuple[Any, Any]:
    """(state after, result) of an operation in flight placed before another's completion."""
    if state is UNKNOWN and op.op in ("get", "cas"):
        return UNKNOWN, UNKNOWN  # any result; a cas may have written or not, which the unknown value covers
    return apply(state, op)


def _retired(frontier: set[Node], op: Op) -> set[Node]:
    """The frontier once a free write completes: it took effect where it was placed, or now, or before the search
    was given up (no effect from here)."""
    out: set[Node] = set()
    for state, placed in frontier:
        if _result_of(placed, op.id) is not _NOT_PLACED:
            out.add((state, _without(placed, op.id)))
        else:
            out.add((state, placed))
            out.add((_speculate(state, op)[0], placed))
    return out


_NOT_PLACED = object()


def _result_of(placed: frozenset, op_id: OpId) -> Any:
    """The result ``op_id`` got when it was placed, or _NOT_PLACED (a plain loop: ``placed`` is mostly empty)."""
    for placed_id, result in placed:
        if placed_id == op_id:
            return result
    return _NOT_PLACED


def _as_seen(state: Any, op: Op, result: Any) -> Any:
    """After an anomaly, the state the client's answer implies (a read's value, a successful cas's write)."""
    if op.op == "get":
        return result
    if op.op == "cas" and result is True:
        return op.value
    return state


def _without(placed: frozenset, op_id: OpId) -> frozenset:
    return frozenset(p for p in placed if p[0] != op_id)


def _order(value: Any) -> tuple[bool, str]:
    return (value is not None, str(value))


@dataclass
class KVHistory:
    """All keys of a run. `invoke` and `complete` mirror the client.invoke and client.complete events; `undecided`
    lists, in order, each time a key's search was given up (what `complete` then returned as the verdict)."""

    keys: dict[str, KeyHistory] = field(default_factory=dict)
    checked: int = 0  # completions checked
    budget: int = BUDGET  # per completion, for every key
    undecided: list[str] = field(default_factory=list)

    def invoke(self, client: str, seq: int, op: str, key: str, value: Any = None, expected: Any = None) -> None:
        """An operation starts; a repeated invoke of one still in flight (a retry) keeps the first."""
        if op not in OPS:
            return
        history = self.keys.get(key)
        if history is None:
            history = self.keys[key] = KeyHistory(budget=self.budget)
        history.in_flight.setdefault((client, seq), Op((client, seq), op, key, value, expected))

    def complete(self, client: str, seq: int, key: str, result: Any) -> str | None:
        """An operation returns; a plain-words explanation if no order of the operations on its key explains it.
        When the search gives up instead, the explanation of that goes to `undecided` and None is returned."""
        history = self.keys.get(key)
        op = history.in_flight.get((client, seq)) if history else None
        if op is None:  # never invoked in this history, completed twice, or dropped when a search gave up
            return None
        self.checked += 1
        in_flight = len(history.in_flight) - 1
        states = history.complete(op, result)
        if states is None:
            return None
        if states is UNDECIDED:
            self.undecided.append(
                f"gave up on key {key} at {client}'s {describe(op)} (seq {seq}): over {history.budget} orders of "
                f"the {in_flight} other operations in flight to try; those are no longer checked, later ones are"
            )
            return None
        return (
            f"{client}'s {describe(op)} (seq {seq}) returned {_shown(result)}, but no order of the operations on "
            f"key {key} gives that: at any moment it could have taken effect, {key} was "
            f"{' or '.join(_shown(s) for s in states)}"
        )


def describe(op: Op) -> str:
    if op.op == "set":
        return f"set {op.key}={_shown(op.value)}"
    if op.op == "cas":
        return f"cas {op.key} from {_shown(op.expected)} to {_shown(op.value)}"
    return f"{op.op} {op.key}"


def _shown(value: Any) -> str:
    if value is None:
        return "absent"
    if value is True or value is False:
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)
