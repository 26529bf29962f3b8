"""Clients of the key-value store: one outstanding operation each, retried until it completes.

A client sends its operation to the server it believes leads (at first any server). A follower answers with a
redirect and its own leader hint; a client that hears nothing within its timeout sends the *same* (client, seq)
to another server, so that a write which did commit before the answer was lost is not applied twice (the state
machine's sessions answer the retry from memory). Operations arrive as a Poisson process: after each
completion, the next one comes an exponential think time later (none is drawn while one is pending, whether the
process or a scripted `client_request` started it).
"""

from __future__ import annotations

from bisect import bisect
from itertools import accumulate
from typing import Any

from patterns.core.arrivals import PoissonArrivals
from patterns.core.sim import Timer

WRITE_OPS = (("set", 0.6), ("delete", 0.15), ("cas", 0.25))
WRITE_NAMES = [name for name, _ in WRITE_OPS]
WRITE_CUMULATIVE = list(accumulate(weight for _, weight in WRITE_OPS))


class Client:
    def __init__(self, cluster: Any, client_id: str, rate: float):
        self.cluster = cluster
        self.sim = cluster.sim
        self.id = client_id
        self.arrivals = PoissonArrivals(self.sim, rate, self._arrive, repeat=False)
        self.pending: dict[str, Any] | None = None
        self.completed = 0
        self.leader_hint: str | None = None
        self.seq = 0
        self.seen: dict[str, str | None] = {}  # the last value this client saw per key: its guess for a cas
        self._attempt = 0  # numbers the sends, so that a redirect for an earlier one is recognised
        self._timers: list[Timer] = []  # the current send's timeout and any wait before a retry
        self._target: str | None = None

    # -- workload ---------------------------------------------------------------------------------------------
    @property
    def rate(self) -> float:
        return self.arrivals.rate

    def set_rate(self, rate: float) -> None:
        self.arrivals.rate = rate
        if self.pending is None:
            self.arrivals.start()

    def _arrive(self) -> None:
        rng = self.sim.rng
        key = f"k{rng.randint(1, self.cluster.params['keys'])}"
        read = rng.random() < self.cluster.params["read_share"]
        op = "get" if read else _weighted(rng.random())
        self.invoke(op, key, f"{self.id}.{self.seq + 1}")

    def invoke(self, op: str, key: str, value: str) -> None:
        """Start one operation (the caller checks that none is pending)."""
        self.arrivals.stop()
        self.seq += 1
        self.pending = {
            "op": op,
            "key": key,
            "value": value if op in ("set", "cas") else None,
            "expected": self.seen.get(key) if op == "cas" else None,
            "seq": self.seq,
        }
        self.cluster.judge(self.sim.emit("client.invoke", {"client": self.id, **_described(self.pending)}))
        self._send(self.leader_hint)

    # -- talking to servers -----------------------------------------------------------------------------------
    def _send(self, target: str | None) -> None:
        servers = self.cluster.servers
        if target not in servers:
            others = [s for s in servers if s != self._target] or list(servers)
            target = others[self.sim.rng.randrange(len(others))]
        self._target = target
        self._attempt += 1
        self._cancel_timers()
        request = {**self.pending, "attempt": self._attempt}
        self.cluster.send_client(self.id, target, request)
        timeout = self.cluster.params["client_timeout_ms"] / 1000.0
        self._timers.append(self.sim.schedule(timeout, self._timed_out))

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            self.sim.cancel(timer)
        self._timers.clear()

    def _timed_out(self) -> None:
        self.leader_hint = None
        self._send(None)  # another server, chosen at random

    def receive(self, reply: dict[str, Any]) -> None:
        if self.pending is None or reply["seq"] != self.pending["seq"]:
            return  # the answer to an operation already completed (a retry's twin)
        if reply["ok"]:
            self.leader_hint = reply["server"]
            self._complete(reply["result"])
            return
        # A redirect for an attempt already given up, or a network duplicate: acting on it would put two requests
        # on the wire at once, and a pair of stale hints could bounce them back and forth.
        if reply["attempt"] != self._attempt:
            return
        hint = reply["leader"]
        self.leader_hint = hint
        if hint is not None and hint != self._target:
            self._send(hint)
        else:  # nobody knows a leader yet: wait a heartbeat before asking another server
            self._timers.append(self.sim.schedule(self.cluster.params["heartbeat_ms"] / 1000.0, self._send, None))

    def _complete(self, result: Any) -> None:
        op = self.pending
        self.pending = None
        self._attempt += 1
        self._cancel_timers()
        self.completed += 1  # the engine's count of client operations is the sum of these
        if op["op"] == "get":
            self.seen[op["key"]] = result
        elif op["op"] == "set" or (op["op"] == "cas" and result is True):
            self.seen[op["key"]] = op["value"]
        elif op["op"] == "delete":
            self.seen[op["key"]] = None
        self.cluster.judge(self.sim.emit("client.complete", {"client": self.id, **_described(op), "result": result}))
        self.arrivals.start()


def _described(op: dict[str, Any]) -> dict[str, Any]:
    """An operation's fields as its events carry them: ``seq`` is the event's own number, so ``op_seq`` here."""
    return {"op": op["op"], "key": op["key"], "value": op["value"], "expected": op["expected"], "op_seq": op["seq"]}


def _weighted(draw: float) -> str:
    """*Hand-written ``random.choices``*: a write by WRITE_OPS' weights from one uniform draw, picked exactly as
    ``rng.choices(WRITE_NAMES, cum_weights=WRITE_CUMULATIVE)`` picks it (the same bisection of the same draw, so the
    same write) without that call's setup, because it runs for every operation."""
    return WRITE_NAMES[bisect(WRITE_CUMULATIVE, draw * WRITE_CUMULATIVE[-1], 0, len(WRITE_NAMES) - 1)]
