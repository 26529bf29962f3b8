"""Linearizability of the clients' key-value history, checked live as each operation completes.

The model is one register per key (absent = None) with get, set, delete and compare-and-set. The check is the
Wing-Gong search as Lowe made it incremental ("Testing for linearizability", 2017), split by key:

- **Per key.** Linearizability is local (Herlihy & Wing): a history is linearizable iff its restriction to each
  object is (P-compositionality). Every operation touches one key, so each key is checked on its own.
- **Search nodes.** A node of the search is ``(state, writes, reads)``: the register's value, the writes still in
  flight already given a place in the order (with the result each got), and for each read in flight the values
  it could have returned so far. Completed operations are all linearized, so a node names only what is in flight;
  two paths reaching the same node have the same future, so each node is explored once (Lowe's memoization of
  the linearized set and the state, as in Knossos and Porcupine).
- **Reads are never placed ahead of time.** A read changes nothing, so along one path each read in flight may
  independently take effect at any moment since its invocation: it needs only the set of values the key held
  along the path, grown as writes take effect. Placing reads one by one would multiply the nodes by every value
  each read could get; this way only the writes in flight branch.
- **Just in time.** We keep the frontier of nodes and advance it at each completion (Lowe's just-in-time
  linearization): a write in flight is placed only when a completion may depend on it; placing it later is always
  allowed while it is in flight, so nothing is lost. A client stuck behind a partition for the rest of a run then
  costs a frontier twice as large, not a history searched again and again as it grows.
- **In flight at the end.** An operation that has not completed may have taken effect or not: it is placed only
  if that helps explain another's result.
- **Bounded work.** One completion may do at most `BUDGET` units of search (a node, and each value its reads
  carry). Beyond that the key's verdict is *undecided*, never a violation: the search starts again from an
  unknown value, the writes then in flight may take effect at any later moment or may have already (their results
  unchecked), the reads then in flight are dropped (nothing can observe a read), and later operations are checked
  from there. So no history can stall a run, and what is flagged is always a real anomaly.

Speed tricks, for the search runs at every completion: its counters are locals in the loop; a node's placed
writes are read as one dict made in C (no comprehension), and the writes in flight listed only if any op is in
flight; reads in flight are updated only if there are some; *blind writes* (a set, a delete: the same state
after and result on every state) are worked out once per completion, not once per node; an `Op` is made without
its generated ``__new__``.

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


_new_op = tuple.__new__  # an `Op` made without its generated __new__, whose Python frame costs twice the rest


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


Node = tuple[Any, frozenset, frozenset]
"""A search node: (state, writes, reads). ``writes``: the writes in flight already linearized, as (op id, result);
``reads``: every read in flight, as (op id, frozenset of the values it could have returned so far on this path)."""

NOTHING: frozenset = frozenset()
BUDGET = 20_000  # search work one completion may do (nodes, and the values their reads carry) before giving up


class _Unknown:
    """The value of a key whose search was given up: any value at all (a read of it may return anything)."""

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
    checked. The reads in flight then are dropped: a read changes nothing, so nothing else can observe it."""

    frontier: set[Node] = field(default_factory=lambda: {(None, NOTHING, NOTHING)})
    in_flight: dict[OpId, Op] = field(default_factory=dict)
    free: set[OpId] = field(default_factory=set)
    budget: int = BUDGET
    work: int = 0  # what the last completion did, as the budget counts it

    def invoke(self, op: Op) -> None:
        """An operation starts; a repeated invoke of one still in flight (a retry) keeps the first."""
        if op.id in self.in_flight:
            return
        self.in_flight[op.id] = op
        if op.op == "get":  # it may return the value the key holds now, on every path
            self.frontier = {(s, writes, reads | {(op.id, frozenset((s,)))}) for s, writes, reads in self.frontier}

    def complete(self, op: Op, result: Any) -> list[Any] | str | None:
        """Advance past ``op``'s completion: None if some order explains it, UNDECIDED if the search went over its
        budget (the key starts again from an unknown value), else the values ``op`` could have seen."""
        del self.in_flight[op.id]
        if op.id in self.free:
            self.free.discard(op.id)
            self.frontier = _retired(self.frontier, op)
            return None
        # The writes in flight, each with its (state after, result) if it is blind (the same on every state).
        writes = [(p, _blind(p)) for p in self.in_flight.values() if p.op != "get"] if self.in_flight else []
        reading = op.op == "get"
        blind = op.op in BLIND
        blind_after = _effect(None, op, result) if blind else None  # op's state after (or _NOT_PLACED), if blind
        reached: set[Node] = set()
        seen: set[Any] = set()  # the values op could have seen
        stack = list(self.frontier)
        explored = set(stack) if writes else set()  # with no write in flight nothing is pushed
        work, budget, op_id = len(stack), self.budget, op.id  # locals in the loop; `work` is stored at the end
        while stack:
            state, placed, reads = stack.pop()
            placed_ids = dict(placed) if placed else _NONE_PLACED  # op id -> result (a dict made in C: no loop)
            if reading:
                values = _result_of(reads, op_id)
                seen.update(values)
                if result in values or UNKNOWN in values:
                    reached.add((state, placed, _without(reads, op_id)))
                    continue  # placing more writes first only narrows what comes next
            else:
                earlier = placed_ids.get(op_id, _NOT_PLACED)
                if earlier is not _NOT_PLACED:  # op took effect before; its result was fixed then
                    if earlier is UNKNOWN or earlier == result:
                        reached.add((state, _without(placed, op_id), reads))
                    continue
                seen.add(state)
                after = blind_after if blind else _effect(state, op, result)
                if after is not _NOT_PLACED:
                    reached.add((after, placed, _seeing(reads, after) if reads else reads))
            if writes:  # or let another write in flight take effect first
                for other, effect in writes:
                    if other.id not in placed_ids:
                        after, got = effect or _speculate(state, other)
                        seeing = _seeing(reads, after) if reads else reads
                        node = (after, placed | {(other.id, got)}, seeing)
                        if node not in explored:
                            explored.add(node)
                            stack.append(node)
                            # A node's own weight, whichever path found it first: the total, hence where the search
                            # gives up, is the same in any order of the frontier (a set, ordered by string hashes).
                            work += 1 + sum(len(values) for _, values in seeing) if seeing else 1
            if work > budget:
                self.work = work
                self._give_up()
                return UNDECIDED
        self.work = work
        if reached:
            self.frontier = reached
            return None
        states = sorted(seen or {state for state, _, _ in self.frontier}, key=_order)
        self.frontier = _after_anomaly(self.frontier, op, result)
        return states

    def _give_up(self) -> None:
        """Start again from an unknown value: the writes in flight become free, the reads in flight are dropped."""
        self.frontier = {(UNKNOWN, NOTHING, NOTHING)}
        self.free = {oid for oid, op in self.in_flight.items() if op.op != "get"}
        self.in_flight = {oid: op for oid, op in self.in_flight.items() if oid in self.free}


def _effect(state: Any, op: Op, result: Any) -> Any:
    """The state after ``op`` takes effect on ``state`` and returns ``result``, or _NOT_PLACED if it cannot."""
    if state is UNKNOWN and op.op == "cas":
        return op.value if result is True else UNKNOWN
    after, got = apply(state, op)
    return after if got == result else _NOT_PLACED


BLIND = ("set", "delete")  # writes whose state after and result are the same on every state


def _blind(op: Op) -> tuple[Any, Any] | None:
    """(state after, result) of a blind write, the same wherever it is placed; None for one that reads the state."""
    return apply(None, op) if op.op in BLIND else None


def _speculate(state: Any, op: Op) -> tuple[Any, Any]:
    """(state after, result) of a write in flight placed before another operation's completion."""
    if state is UNKNOWN and op.op == "cas":
        return UNKNOWN, UNKNOWN  # either result; whether it wrote, the unknown value covers
    return apply(state, op)


def _seeing(reads: frozenset, value: Any) -> frozenset:
    """The reads in flight once the key holds ``value``: each may return it too (the search's loop calls it only
    with reads in flight: mostly there are none)."""
    if not reads:
        return reads
    return frozenset((oid, values if value in values else values | {value}) for oid, values in reads)


def _retired(frontier: set[Node], op: Op) -> set[Node]:
    """The frontier once a free write completes: it took effect where it was placed, or now, or before the search
    was given up (no effect from here)."""
    out: set[Node] = set()
    for state, placed, reads in frontier:
        if _result_of(placed, op.id) is not _NOT_PLACED:
            out.add((state, _without(placed, op.id), reads))
        else:
            out.add((state, placed, reads))
            after = _speculate(state, op)[0]
            out.add((after, placed, _seeing(reads, after)))
    return out


def _after_anomaly(frontier: set[Node], op: Op, result: Any) -> set[Node]:
    """Where the search carries on after ``op`` explained by no order: from what the key held, and from what the
    client's answer implies (a read's value, a successful cas's write)."""
    out: set[Node] = set()
    for state, placed, reads in frontier:
        placed, reads = _without(placed, op.id), _without(reads, op.id)
        for after in (state, _as_seen(state, op, result)):
            out.add((after, placed, _seeing(reads, after)))
    return out


_NOT_PLACED = object()
_NONE_PLACED: dict[OpId, Any] = {}  # `placed` of a node with none, as a dict (read only)


def _result_of(placed: frozenset, op_id: OpId) -> Any:
    """What ``op_id`` is paired with in ``placed`` (its result, or a read's values), or _NOT_PLACED (a plain loop:
    ``placed`` is mostly small)."""
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
        history.invoke(_new_op(Op, ((client, seq), op, key, value, expected)))

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
                f"gave up on key {key} at {client}'s {describe(op)} (seq {seq}): the search for an order of it and "
                f"the {in_flight} other operations in flight went over its budget of {history.budget} steps; "
                "those are no longer checked, later ones are"
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
