"""The world around a breaker: a downstream service with limited capacity, and the caller that protects itself
from it with a timeout, a concurrency limit, retries and the breaker.

A service serves ``concurrency`` calls at once and queues the rest (FIFO, bounded); a full queue answers with an
error at once. Latency is lognormal around a median, with an occasional tail (``tail_probability`` of the calls
take ``tail_multiplier`` times longer), all multiplied by a slow-mode factor. A service does not know that its
caller gave up: a call that timed out while queued is still served later, so work piles up under overload as it
does in production. An outage either answers every new call with an error after a millisecond ("error") or
swallows it without answer ("hang", like a dead host behind a live load balancer): the caller then waits for its
own timeout, which is what exhausts capacity upstream.

A caller (a `Hop`) counts its calls in flight, from the first attempt to the final answer, backoff waits
included. Beyond its limit it refuses new calls at once ("saturated"; the breaker never sees them: the limit sits
in front of it). Each attempt asks the breaker first; a rejected attempt is not retried (the breaker is telling
the caller to back off). A failed or timed-out attempt is retried up to ``retries`` times after
``retry_backoff * 2**(attempt - 1)`` seconds, each retry a new call asking the breaker again.

Speed tricks (this code runs for every call; each keeps the events exactly what the plain code gives):

- *Rounded once*: an outcome is counted in the second of its event's time, which the kernel has rounded already
  (`epoch_second` of the raw time would round it again).
- *Zero wait*: a call that starts at once is served with ``waited=0.0``, not the rounding of a difference known to
  be zero.
- *State read once*: `Hop._attempt` reads the breaker's state before and after asking it and hands it on to the
  event and the attempt, rather than asking the `Hop.state` property each time.
- *Positional calls*: `Hop._emit_outcome` and `Service._start` take their arguments by position (Python 3.11 does
  not inline calls with keyword arguments).
- *Settings converted once*: the slow-call duration in microseconds (`Hop.slow_micros`) and the place of each
  series in a per-second row (`COLUMN`) are worked out once, not per call.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from patterns.core.sim import Event, Simulation, micros

from .breaker import METRICS_ONLY, OPEN, Admission, Breaker, epoch_second

FAST_FAIL = 0.001  # seconds a down or full service takes to say no
HISTORY_SECONDS = 120  # per-second counts kept for charts and rates
LATENCY_SAMPLES = 1000  # durations kept for percentiles
SERIES = ("success", "failure", "timeout", "rejected", "saturated", "slow")  # outcomes, and the slow flag
COLUMN = {name: 1 + i for i, name in enumerate(SERIES)}  # a series' place in a per-second row
LET_THROUGH = Admission(True)  # what the users' own calls get: they have no breaker

Reply = Callable[[Any, bool, "str | None"], None]


class Ids:
    """Call ids, shared by every hop of a run."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> int:
        self.last += 1
        return self.last


class Work(NamedTuple):
    token: Any  # the caller's call id
    request: int
    reply: Reply
    arrived: float


class Service:
    """A downstream service: slots, a FIFO queue, a latency model and failure switches."""

    def __init__(self, sim: Simulation, name: str, params: Mapping[str, Any]):
        self.sim = sim
        self.name = name
        self.concurrency = params["service_concurrency"]
        self.queue_limit = params["service_queue"]
        self.failure_probability = params["failure_probability"]
        self.latency_median = params["latency_ms"] / 1000.0
        self.latency_spread = params["latency_spread"]
        self.tail_probability = params["tail_probability"]
        self.tail_multiplier = params["tail_multiplier"]
        self.slow_factor = 1.0
        self.outage: str | None = None  # None, "error" or "hang"
        self.downstream: Hop | None = None  # the next hop of a chain, called once this service's own work is done
        self.downstream_share = 1.0  # the share of its calls that need the next hop
        self.busy = 0
        self.queue: deque[Work] = deque()

    def settings(self) -> dict[str, Any]:
        return {
            "service": self.name,
            "outage": self.outage,
            "slow_factor": self.slow_factor,
            "failure_probability": self.failure_probability,
            "latency_ms": round(self.latency_median * 1000.0, 3),
        }

    def submit(self, token: Any, request: int, reply: Reply) -> None:
        """A call arrives; ``reply(token, ok, reason)`` is called once, later, unless the service hangs."""
        if self.outage is not None:
            if self.outage == "error":
                self.sim.schedule(FAST_FAIL, reply, token, False, "outage")
            return  # a hanging service never answers
        work = Work(token, request, reply, self.sim.now)
        if self.busy < self.concurrency:
            self._start(work, 0.0)
        elif len(self.queue) < self.queue_limit:
            self.queue.append(work)
        else:
            self.sim.schedule(FAST_FAIL, reply, token, False, "queue_full")

    def latency(self) -> float:
        rng = self.sim.rng
        body = self.latency_median * math.exp(self.latency_spread * rng.gauss(0.0, 1.0))
        tail = self.tail_multiplier if rng.random() < self.tail_probability else 1.0
        return body * tail * self.slow_factor

    def _start(self, work: Work, waited: float) -> None:
        self.busy += 1
        self.sim.emit("cb.serve", {"call": work.token, "service": self.name, "waited": waited})
        self.sim.schedule(self.latency(), self._worked, work)

    def _worked(self, work: Work) -> None:
        if self.sim.rng.random() < self.failure_probability:
            self._complete(work, False, "error")
        elif self.downstream is not None and self.sim.rng.random() < self.downstream_share:
            self.downstream.invoke(work.request, work.token, self._downstream_done, work)
        else:
            self._complete(work, True, None)

    def _downstream_done(self, work: Work, ok: bool, reason: str | None) -> None:
        self._complete(work, ok, None if ok else "downstream")

    def _complete(self, work: Work, ok: bool, reason: str | None) -> None:
        self.busy -= 1
        work.reply(work.token, ok, reason)
        while self.busy < self.concurrency and self.queue:
            work = self.queue.popleft()
            self._start(work, round(self.sim.now - work.arrived, 6))


class HopStats:
    """Bounded history of one hop: totals, per-second counts of the last two minutes, recent durations."""

    def __init__(self) -> None:
        self.totals = dict.fromkeys(SERIES, 0)
        self.seconds: deque[list[int]] = deque(maxlen=HISTORY_SECONDS)  # [second, *counts in SERIES order]
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    def add(self, t: float, outcome: str, slow: bool, duration: float | None) -> None:
        """Count an outcome in the second of ``t``, its event's time (rounded already: its `epoch_second`)."""
        second = math.floor(t)
        if not self.seconds or self.seconds[-1][0] != second:
            self.seconds.append([second] + [0] * len(SERIES))
        bucket = self.seconds[-1]
        self.totals[outcome] += 1
        bucket[COLUMN[outcome]] += 1
        if slow:
            self.totals["slow"] += 1
            bucket[COLUMN["slow"]] += 1
        if duration is not None:
            self.latencies.append(duration)

    def per_second(self, last: int, span: int) -> dict[str, list[int]]:
        """Counts per series for each of the ``span`` seconds up to second ``last``."""
        first = last - span + 1
        rows = {b[0]: b for b in self.seconds if first <= b[0] <= last}
        return {
            name: [rows[s][1 + i] if s in rows else 0 for s in range(first, first + span)]
            for i, name in enumerate(SERIES)
        }

    def rates(self, now: float, span: int = 10) -> dict[str, float]:
        """Calls per second of each series over the last ``span`` seconds (fewer at the start of a run)."""
        last = epoch_second(now)
        first = max(0, last - span + 1)
        covered = now - first
        counts = self.per_second(last, last - first + 1)
        return {name: (sum(values) / covered if covered > 0 else 0.0) for name, values in counts.items()}

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100.0 * len(ordered)) - 1))]


class Invocation(NamedTuple):
    """One call a caller was asked to make, through all its attempts."""

    request: int
    parent: int | None  # the upstream call this one serves, in a chain
    reply: Reply | None
    token: Any


class Attempt(NamedTuple):
    call: int
    invocation: Invocation
    number: int
    start: float
    gen: int | None
    trial: bool
    state: str | None  # the breaker's state when it let the call through
    woke: bool  # this call moved a lazy breaker from OPEN to HALF_OPEN


class LastCall(NamedTuple):
    """The path of the latest call that finished, for the decision-flow diagram."""

    state: str | None
    woke: bool
    trial: bool
    outcome: str
    reason: str | None
    slow: bool
    recorded: bool
    moved_to: str | None  # the state its outcome moved the breaker to
    would_open: bool  # its outcome made a METRICS_ONLY breaker say it would open
    retried: bool


class Hop:
    """A caller and the breaker in front of one service (``breaker`` is None for the users calling a chain)."""

    def __init__(
        self,
        sim: Simulation,
        service: Service,
        breaker: Breaker | None,
        ids: Ids,
        *,
        timeout: float,
        limit: int,
        retries: int,
        retry_backoff: float,
        slow_call: float,
    ):
        self.sim = sim
        self.name = service.name
        self.service = service
        self.breaker = breaker
        self.ids = ids
        self.timeout = timeout
        self.limit = limit  # 0: unlimited
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.slow_call = slow_call
        self.slow_micros = micros(slow_call)
        self.in_flight = 0
        self.pending: dict[int, Attempt] = {}
        self.stats = HopStats()
        self.last: LastCall | None = None

    @property
    def state(self) -> str | None:
        return self.breaker.state if self.breaker is not None else None

    def invoke(self, request: int, parent: int | None = None, reply: Reply | None = None, token: Any = None) -> None:
        """Make a call; ``reply(token, ok, reason)`` is called once with its final result."""
        invocation = Invocation(request, parent, reply, token)
        if self.limit and self.in_flight >= self.limit:
            call = self.ids.next()
            self._emit_call(call, invocation, 1, self.state, False)
            self._refuse(call, invocation, 1, "saturated", "caller_limit", None, False)
            return
        self.in_flight += 1
        self._attempt(invocation, 1)

    def _attempt(self, invocation: Invocation, number: int) -> None:
        call = self.ids.next()
        breaker = self.breaker
        if breaker is None:
            admission, state, woke = LET_THROUGH, None, False
        else:
            before = breaker.state
            admission = breaker.admit()
            state = breaker.state
            woke = before == OPEN and state != OPEN
        self._emit_call(call, invocation, number, state, admission.trial)
        if not admission.admitted:
            self.in_flight -= 1
            self._refuse(call, invocation, number, "rejected", admission.reason, admission.remaining, woke)
            return
        self.pending[call] = Attempt(
            call, invocation, number, self.sim.now, admission.gen, admission.trial, state, woke
        )
        self.sim.schedule(self.timeout, self._timed_out, call)
        self.service.submit(call, invocation.request, self._responded)

    def _emit_call(self, call: int, invocation: Invocation, number: int, state: str | None, trial: bool) -> None:
        self.sim.emit(
            "cb.call",
            {
                "call": call,
                "request": invocation.request,
                "parent": invocation.parent,
                "hop": self.name,
                "attempt": number,
                "state": state,
                "trial": trial,
            },
        )

    def _refuse(
        self,
        call: int,
        invocation: Invocation,
        number: int,
        outcome: str,
        reason: str | None,
        remaining: float | None,
        woke: bool,
    ) -> None:
        """A call that never reached the service: rejected by the breaker or refused by the caller's limit."""
        event = self._emit_outcome(call, invocation, number, outcome, reason, False, None, False, remaining)
        self.stats.add(event.t, outcome, False, None)
        self.last = LastCall(self.state, woke, False, outcome, reason, False, False, None, False, False)
        self._reply(invocation, False, outcome)

    def _responded(self, call: int, ok: bool, reason: str | None) -> None:
        attempt = self.pending.pop(call, None)
        if attempt is not None:  # otherwise the caller gave up on it already
            self._resolve(attempt, "success" if ok else "failure", reason)

    def _timed_out(self, call: int) -> None:
        attempt = self.pending.pop(call, None)
        if attempt is not None:
            self._resolve(attempt, "timeout", "timeout")

    def _resolve(self, attempt: Attempt, outcome: str, reason: str | None) -> None:
        duration = self.sim.now - attempt.start
        slow = micros(duration) > self.slow_micros  # strictly longer, in the kernel's grain (see breaker.py)
        breaker = self.breaker
        recorded = breaker is not None and breaker.accepts(attempt.gen)
        invocation = attempt.invocation
        event = self._emit_outcome(
            attempt.call, invocation, attempt.number, outcome, reason, slow, round(duration, 6), recorded, None
        )
        self.stats.add(event.t, outcome, slow, duration)
        moved_to, would_open = None, False
        if recorded:
            gen = breaker.gen
            breaker.record(outcome != "success", slow)
            moved_to = breaker.state if breaker.gen != gen else None
            would_open = breaker.state == METRICS_ONLY and breaker.would_open
        retry = outcome != "success" and attempt.number <= self.retries
        self.last = LastCall(
            attempt.state, attempt.woke, attempt.trial, outcome, reason, slow, recorded, moved_to, would_open, retry
        )
        if retry:
            delay = self.retry_backoff * 2 ** (attempt.number - 1)
            self.sim.emit(
                "cb.retry",
                {
                    "call": attempt.call,
                    "request": invocation.request,
                    "hop": self.name,
                    "attempt": attempt.number + 1,
                    "delay": round(delay, 6),
                },
            )
            self.sim.schedule(delay, self._attempt, invocation, attempt.number + 1)
            return
        self.in_flight -= 1
        self._reply(invocation, outcome == "success", None if outcome == "success" else outcome)

    def _emit_outcome(
        self,
        call: int,
        invocation: Invocation,
        number: int,
        outcome: str,
        reason: str | None,
        slow: bool,
        duration: float | None,
        recorded: bool,
        remaining: float | None,
    ) -> Event:
        """One ``outcome`` event (``duration`` rounded already); a call that never reached the service is neither
        slow, timed nor recorded."""
        return self.sim.emit(
            "cb.outcome",
            {
                "call": call,
                "request": invocation.request,
                "hop": self.name,
                "attempt": number,
                "outcome": outcome,
                "reason": reason,
                "slow": slow,
                "duration": duration,
                "recorded": recorded,
                "remaining": remaining,
            },
        )

    @staticmethod
    def _reply(invocation: Invocation, ok: bool, reason: str | None) -> None:
        if invocation.reply is not None:
            invocation.reply(invocation.token, ok, reason)
