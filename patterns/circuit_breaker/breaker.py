"""The breaker itself: a pure state machine that decides, call by call, whether to let a call through.

It follows what resilience4j, Polly, gobreaker and pybreaker do, so that a production breaker's settings can be
replayed here:

- CLOSED records every outcome and trips to OPEN, at the outcome that crosses the line, by one of three policies:
  a count window of the last N calls, a time window of the last N seconds kept in one-second buckets, or a run of
  consecutive failures. Window policies trip when the failure rate or the slow-call rate reaches its threshold
  (``>=``), once at least ``minimum_calls`` are in the window (capped at the window size for a count window, as
  resilience4j does).
- OPEN rejects every call until its wait is over, a call at its very end included (resilience4j's
  ``isAfter``: the wait is over strictly after it ends); each reopen from HALF_OPEN multiplies the wait
  (exponential backoff up to a cap), and closing resets it. The move to HALF_OPEN happens on a timer at the end of
  the wait ("automatic") or lazily, on the first call after it.
- HALF_OPEN admits ``half_open_calls`` trial calls and rejects the rest. By the "rate" rule it decides once all
  trial outcomes are in (rates against the thresholds); by the "any_failure" rule the first failed trial reopens
  and that many successes close. An optional maximum wait reopens it if the trials do not finish in time.
- FORCED_OPEN, DISABLED and METRICS_ONLY are manual states, left only by another command.

A call is slow when it lasted strictly longer than the slow-call duration, both taken in whole microseconds
(the kernel's grain), so a timeout equal to that duration is never slow, whatever the float noise in its length.

Which state records an outcome is a setting. By default ("admitting_state") only the state (the "generation")
that admitted the call records it, as gobreaker does: a slow call admitted while CLOSED that returns after the
breaker opened does not count as a half-open trial. By "current_state" an outcome counts in whatever state the
breaker is in when the call ends, as in resilience4j: that late call fills one of HALF_OPEN's trial outcomes
(and a call let through while DISABLED counts if the breaker was reset meanwhile). OPEN, FORCED_OPEN and
DISABLED never record.

Time comes from the simulation; a breaker has at most one timer (the end of the OPEN wait or of the HALF_OPEN
limit), called off by any move.

Speed tricks (a breaker is asked and told once per call; each keeps the events exactly what the plain code gives):

- *Running sums*: both windows keep the sums of their calls, failures and slow calls as outcomes come and go, so
  judging an outcome reads three numbers instead of building a `Tally` (or summing the buckets).
- *Numbers on a verdict*: the counts and rounded rates that a transition or ``would_open`` event shows are built
  only when a line is crossed (`_numbers`), not for every outcome.
- *Settings read once*: the effective minimum and the recording rule are taken from the config when the breaker
  is built (a breaker's config never changes).
- *One admission per generation*: every call let through outside HALF_OPEN gets the same `Admission`, built at
  each move (`admission`); the fixed rejections are module constants.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from patterns.core.sim import TIME_DIGITS, Simulation, Timer, micros

CLOSED, OPEN, HALF_OPEN = "CLOSED", "OPEN", "HALF_OPEN"
FORCED_OPEN, DISABLED, METRICS_ONLY = "FORCED_OPEN", "DISABLED", "METRICS_ONLY"
STATES = (CLOSED, OPEN, HALF_OPEN, FORCED_OPEN, DISABLED, METRICS_ONLY)

POLICIES = ("count_window", "time_window", "consecutive")
HALF_OPEN_RULES = ("rate", "any_failure")
RECORDING_RULES = ("admitting_state", "current_state")
RECORDING_STATES = (CLOSED, HALF_OPEN, METRICS_ONLY)


def epoch_second(now: float) -> int:
    """The one-second bucket of a time, taken from its rounded event time so outside replays agree."""
    return math.floor(round(now, 6))


@dataclass(frozen=True)
class BreakerConfig:
    """Every setting of a breaker, in seconds and percent."""

    policy: str
    window_size: int  # calls (count window) or seconds (time window)
    minimum_calls: int
    failure_threshold: float
    slow_threshold: float
    slow_call: float
    consecutive_failures: int
    open_wait: float
    backoff_multiplier: float
    max_open_wait: float
    automatic_half_open: bool
    half_open_calls: int
    half_open_rule: str
    max_half_open: float  # 0: no limit
    recording_rule: str = "admitting_state"

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> BreakerConfig:
        return cls(
            policy=params["policy"],
            window_size=params["window_size"],
            minimum_calls=params["minimum_calls"],
            failure_threshold=params["failure_threshold"],
            slow_threshold=params["slow_threshold"],
            slow_call=params["slow_call_ms"] / 1000.0,
            consecutive_failures=params["consecutive_failures"],
            open_wait=params["open_wait_s"],
            backoff_multiplier=params["backoff_multiplier"],
            max_open_wait=params["max_open_wait_s"],
            automatic_half_open=params["half_open_transition"] == "automatic",
            half_open_calls=params["half_open_calls"],
            half_open_rule=params["half_open_rule"],
            max_half_open=params["max_half_open_s"],
            recording_rule=params["recording_rule"],
        )

    @property
    def effective_minimum(self) -> int:
        """A count window can never hold more than its size, so its minimum is capped there (resilience4j)."""
        if self.policy == "count_window":
            return min(self.minimum_calls, self.window_size)
        return self.minimum_calls

    def wait_after(self, reopens: int) -> float:
        """The OPEN wait after ``reopens`` consecutive reopens from HALF_OPEN; never below the base wait."""
        cap = max(self.max_open_wait, self.open_wait)
        return min(self.open_wait * self.backoff_multiplier ** min(reopens, 64), cap)


class Admission(NamedTuple):
    """The breaker's answer to one call. ``gen`` is the generation that let it through (None if none did)."""

    admitted: bool
    reason: str | None = None  # why it was rejected
    remaining: float | None = None  # seconds left of the OPEN wait, for a rejection by OPEN
    gen: int | None = None
    trial: bool = False


FORCED_OPEN_REJECTION = Admission(False, "forced_open")
HALF_OPEN_FULL_REJECTION = Admission(False, "half_open_full")


class Tally(NamedTuple):
    """What the breaker is judging: recorded calls, failed ones, slow ones, and the rates they make."""

    calls: int
    failures: int
    slow: int

    @property
    def failure_rate(self) -> float:
        return self.failures * 100.0 / self.calls if self.calls else 0.0

    @property
    def slow_rate(self) -> float:
        return self.slow * 100.0 / self.calls if self.calls else 0.0

    def fields(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "failures": self.failures,
            "slow_calls": self.slow,
            "failure_rate": round(self.failure_rate, 2),
            "slow_rate": round(self.slow_rate, 2),
        }


class CountWindow:
    """The outcomes of the last ``size`` recorded calls, with their running sums (``calls``, ``failures``,
    ``slow``), what the breaker judges after each outcome."""

    def __init__(self, size: int):
        self.ring: deque[tuple[bool, bool]] = deque(maxlen=size)
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def add(self, now: float, failed: bool, slow: bool) -> None:
        if self.calls == self.ring.maxlen:
            old_failed, old_slow = self.ring[0]
            self.failures -= old_failed
            self.slow -= old_slow
        else:
            self.calls += 1
        self.ring.append((failed, slow))
        self.failures += failed
        self.slow += slow

    def tally(self, now: float) -> Tally:
        return Tally(self.calls, self.failures, self.slow)


class TimeWindow:
    """Outcomes of the last ``size`` seconds in one-second buckets: a call drops out ``size`` seconds after its
    second began, as in resilience4j's time-based window. The running sums (``calls``, ``failures``, ``slow``)
    are those of the buckets kept, which are the live ones right after an `add`; `tally` tells them at any time."""

    def __init__(self, size: int):
        self.size = size
        self.buckets: deque[list[int]] = deque()  # [second, calls, failures, slow], oldest first
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def add(self, now: float, failed: bool, slow: bool) -> None:
        second = epoch_second(now)
        buckets = self.buckets
        while buckets and buckets[0][0] <= second - self.size:
            _second, calls, failures, slow_calls = buckets.popleft()
            self.calls -= calls
            self.failures -= failures
            self.slow -= slow_calls
        if not buckets or buckets[-1][0] != second:
            buckets.append([second, 0, 0, 0])
        bucket = buckets[-1]
        bucket[1] += 1
        bucket[2] += failed
        bucket[3] += slow
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def tally(self, now: float) -> Tally:
        oldest = epoch_second(now) - self.size
        live = [b for b in self.buckets if b[0] > oldest]
        return Tally(sum(b[1] for b in live), sum(b[2] for b in live), sum(b[3] for b in live))


class Breaker:
    """One breaker in front of one service; ``hop`` names the service it protects in its events."""

    def __init__(self, sim: Simulation, hop: str, config: BreakerConfig, state: str = CLOSED):
        self.sim = sim
        self.hop = hop
        self.config = config
        self.minimum = config.effective_minimum
        self.any_generation = config.recording_rule == "current_state"
        self.initial = state
        self.state = state
        self.gen = 0
        self.entered_at = sim.now
        self.open_until: float | None = None
        self.reopens = 0  # consecutive reopens from HALF_OPEN since the last close: the backoff exponent
        self.transitions: dict[tuple[str, str, bool], int] = {}  # (from, to, by command) -> count, first seen first
        self._timer: Timer | None = None
        self._fresh_counts()

    def _fresh_counts(self) -> None:
        size = self.config.window_size
        self.window = TimeWindow(size) if self.config.policy == "time_window" else CountWindow(size)
        self.consecutive = 0
        self.trials_admitted = 0
        self.trials = Tally(0, 0, 0)
        self.would_open = False
        self.admission = Admission(True, None, None, self.gen, False)  # for every call let through outside trials

    # -- asking ---------------------------------------------------------------------------------------------------
    def admit(self) -> Admission:
        """Let a call through or reject it, now. A lazy OPEN breaker whose wait is over turns HALF_OPEN here."""
        now = self.sim.now
        if self.state == OPEN and micros(now) > micros(self.open_until):
            self._half_open()
        state = self.state
        if state in (CLOSED, METRICS_ONLY, DISABLED):
            return self.admission
        if state == FORCED_OPEN:
            return FORCED_OPEN_REJECTION
        if state == OPEN:
            return Admission(False, "open", (micros(self.open_until) - micros(now)) / 1e6)
        if self.trials_admitted < self.config.half_open_calls:
            self.trials_admitted += 1
            return Admission(True, None, None, self.gen, True)
        return HALF_OPEN_FULL_REJECTION

    def accepts(self, gen: int | None) -> bool:
        """Whether the outcome of a call let through in generation ``gen`` counts now (see the recording rule)."""
        if gen is None or self.state not in RECORDING_STATES:
            return False
        return self.any_generation or gen == self.gen

    def window_tally(self) -> Tally:
        """What CLOSED (or METRICS_ONLY) is judging now; the trials so far in HALF_OPEN."""
        return self.trials if self.state == HALF_OPEN else self.window.tally(self.sim.now)

    # -- recording ------------------------------------------------------------------------------------------------
    def record(self, failed: bool, slow: bool) -> None:
        """Count one outcome of the current generation and move if it crosses a line."""
        if self.state == HALF_OPEN:
            self._record_trial(failed, slow)
            return
        verdict = self._judge(failed, slow)
        if self.state == CLOSED:
            if verdict:
                self._open(verdict, self._numbers())
            return
        if verdict and not self.would_open:  # METRICS_ONLY: say it once per crossing, never act
            self.sim.emit("cb.would_open", {"hop": self.hop, "reason": verdict, **self._numbers()})
        self.would_open = verdict is not None

    def _judge(self, failed: bool, slow: bool) -> str | None:
        """Count the outcome; the line it crosses, if any."""
        config = self.config
        if config.policy == "consecutive":
            self.consecutive = self.consecutive + 1 if failed else 0
            return "consecutive_failures" if self.consecutive >= config.consecutive_failures else None
        window = self.window
        window.add(self.sim.now, failed, slow)
        if window.calls < self.minimum:
            return None
        return self._rates_verdict(window.calls, window.failures, window.slow)

    def _numbers(self) -> dict[str, Any]:
        """The counts `_judge` has just judged, as a crossing's event shows them."""
        if self.config.policy == "consecutive":
            return {"consecutive": self.consecutive}
        window = self.window
        return Tally(window.calls, window.failures, window.slow).fields()

    def _rates_verdict(self, calls: int, failures: int, slow: int) -> str | None:
        """The rate at or over its threshold (`Tally`'s rates; ``calls`` >= 1: the outcome just counted)."""
        if failures * 100.0 / calls >= self.config.failure_threshold:
            return "failure_rate"
        if slow * 100.0 / calls >= self.config.slow_threshold:
            return "slow_rate"
        return None

    def _record_trial(self, failed: bool, slow: bool) -> None:
        trials = self.trials = Tally(self.trials.calls + 1, self.trials.failures + failed, self.trials.slow + slow)
        done = trials.calls >= self.config.half_open_calls
        if self.config.half_open_rule == "any_failure":
            if failed:
                self._open("trial_failure", trials.fields())
            elif done:
                self._to(CLOSED, "trials_passed", trials.fields())
        elif done:
            verdict = self._rates_verdict(*trials)
            if verdict:
                self._open(verdict, trials.fields())
            else:
                self._to(CLOSED, "trials_passed", trials.fields())

    # -- moving ---------------------------------------------------------------------------------------------------
    def command(self, state: str) -> None:
        """A manual move; it always happens (a reset of a CLOSED breaker clears its window and its backoff)."""
        self._to(state, "command", {})

    def _open(self, reason: str, numbers: dict[str, Any]) -> None:
        self.reopens = self.reopens + 1 if self.state == HALF_OPEN else 0
        wait = self.config.wait_after(self.reopens)
        self.open_until = round(self.sim.now + wait, TIME_DIGITS)  # an instant of the kernel's grain
        self._to(OPEN, reason, {**numbers, "wait": round(wait, 6), "until": self.open_until})
        if self.config.automatic_half_open:
            self._timer = self.sim.schedule_at(self.open_until, self._half_open)

    def _half_open(self) -> None:
        self._to(HALF_OPEN, "wait_elapsed", {})
        if self.config.max_half_open > 0:
            deadline = round(self.sim.now + self.config.max_half_open, TIME_DIGITS)
            self._timer = self.sim.schedule_at(deadline, self._half_open_expired)

    def _half_open_expired(self) -> None:
        self._open("half_open_timeout", self.trials.fields())

    def _to(self, state: str, reason: str, numbers: dict[str, Any]) -> None:
        before = self.state
        if state == CLOSED:
            self.reopens = 0
        if state != OPEN:
            self.open_until = None
        self.state = state
        self.gen += 1
        self.sim.cancel(self._timer)
        self._timer = None
        self.entered_at = self.sim.now
        key = (before, state, reason == "command")
        self.transitions[key] = self.transitions.get(key, 0) + 1
        self._fresh_counts()
        self.sim.emit("cb.transition", {"hop": self.hop, "from": before, "to": state, "reason": reason, **numbers})
