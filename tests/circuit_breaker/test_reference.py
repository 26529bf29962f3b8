"""The breaker against a small resilience4j-style state machine, call by call, on seeded random runs.

The reference is written from resilience4j's CircuitBreakerStateMachine, reduced to what these runs use: a count
window or consecutive failures, thresholds met at ``>=``, OPEN left strictly after its wait (``isAfter``) or by a
timer at its end, HALF_OPEN's permitted calls and optional maximum wait, backoff of the wait, DISABLED and reset.
Time is whole microseconds. Its recording rule is either resilience4j's (an outcome counts in the state the
breaker is in when the call ends) or the project's default (only in the state that let the call through).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import pytest

from patterns.circuit_breaker.breaker import CLOSED, DISABLED, Breaker, BreakerConfig
from patterns.core.sim import Simulation

US = 1_000_000


class Reference:
    def __init__(self, p: dict[str, Any]):
        self.p = p
        self.state = "CLOSED"
        self.episode = 0
        self.reopens = 0
        self.until = 0  # µs: the end of the OPEN wait
        self.deadline = 0  # µs: the end of HALF_OPEN's maximum wait
        self._fresh()

    def _fresh(self) -> None:
        self.window: deque[tuple[bool, bool]] = deque(maxlen=self.p["window_size"])
        self.in_a_row = 0
        self.permits = self.p["half_open_calls"]
        self.trials: list[tuple[bool, bool]] = []

    def _to(self, state: str, now: int) -> None:
        if state == "OPEN":
            self.reopens = self.reopens + 1 if self.state == "HALF_OPEN" else 0
            p = self.p
            wait = min(p["open_wait_s"] * p["backoff_multiplier"] ** self.reopens, p["max_open_wait_s"])
            self.until = now + round(wait * US)
        if state == "CLOSED":
            self.reopens = 0
        if state == "HALF_OPEN":
            self.deadline = now + round(self.p["max_half_open_s"] * US)
        self.state = state
        self.episode += 1
        self._fresh()

    def advance(self, now: int) -> None:
        """The timers due by ``now``, each at its own time."""
        while True:
            if self.state == "OPEN" and self.p["half_open_transition"] == "automatic" and self.until <= now:
                self._to("HALF_OPEN", self.until)
            elif self.state == "HALF_OPEN" and self.p["max_half_open_s"] > 0 and self.deadline <= now:
                self._to("OPEN", self.deadline)
            else:
                return

    def acquire(self, now: int) -> tuple[bool, bool]:
        """(permitted, as a trial)."""
        if self.state == "OPEN" and now > self.until:  # isAfter
            self._to("HALF_OPEN", now)
        if self.state in ("CLOSED", "DISABLED"):
            return True, False
        if self.state == "HALF_OPEN" and self.permits > 0:
            self.permits -= 1
            return True, True
        return False, False

    def on_result(self, episode: int, failed: bool, slow: bool, now: int, rule: str) -> bool:
        """Record an outcome if the rule says so; whether it did."""
        if self.state not in ("CLOSED", "HALF_OPEN") or (rule == "admitting_state" and episode != self.episode):
            return False
        p = self.p
        if self.state == "HALF_OPEN":
            self.trials.append((failed, slow))
            done = len(self.trials) >= p["half_open_calls"]
            if p["half_open_rule"] == "any_failure":
                if failed or done:
                    self._to("OPEN" if failed else "CLOSED", now)
            elif done:
                self._to("OPEN" if self._over(self.trials) else "CLOSED", now)
            return True
        if p["policy"] == "consecutive":
            self.in_a_row = self.in_a_row + 1 if failed else 0
            if self.in_a_row >= p["consecutive_failures"]:
                self._to("OPEN", now)
            return True
        self.window.append((failed, slow))
        if len(self.window) >= min(p["minimum_calls"], p["window_size"]) and self._over(list(self.window)):
            self._to("OPEN", now)
        return True

    def _over(self, results: list[tuple[bool, bool]]) -> bool:
        calls = len(results)
        failures, slow = sum(f for f, _ in results), sum(s for _, s in results)
        return (
            failures * 100.0 / calls >= self.p["failure_threshold"] or slow * 100.0 / calls >= self.p["slow_threshold"]
        )


def random_params(rng: random.Random, rule: str) -> dict[str, Any]:
    return {
        "policy": rng.choice(["count_window", "consecutive"]),
        "window_size": rng.randint(1, 6),
        "minimum_calls": rng.randint(1, 6),
        "failure_threshold": rng.choice([30.0, 50.0, 100.0]),
        "slow_threshold": rng.choice([50.0, 100.0]),
        "slow_call_ms": 500.0,
        "consecutive_failures": rng.randint(1, 4),
        "open_wait_s": rng.choice([0.2, 0.5]),
        "backoff_multiplier": rng.choice([1.0, 2.0]),
        "max_open_wait_s": 1.0,
        "half_open_transition": rng.choice(["lazy", "automatic"]),
        "half_open_calls": rng.randint(1, 3),
        "half_open_rule": rng.choice(["rate", "any_failure"]),
        "max_half_open_s": rng.choice([0.0, 0.3]),
        "recording_rule": rule,
    }


def play(seed: int, rule: str) -> int:
    """One random run, compared op by op; returns how many outcomes were recorded by a later state than the one
    that let their call through (the calls on which the two rules differ)."""
    rng = random.Random(seed)
    p = random_params(rng, rule)
    sim = Simulation(seed)
    breaker = Breaker(sim, "S", BreakerConfig.from_params(p))
    ref = Reference(p)
    in_flight: list[tuple[int | None, int]] = []  # (the breaker's generation, the reference's episode)
    late = 0
    now = 0
    for step in range(400):
        now += rng.choice([0, 1_000, 10_000, 50_000, 100_000, 200_000, 300_000])  # a millisecond grid: many ties
        sim.run_until(now / US)
        ref.advance(now)
        assert breaker.state == ref.state, (seed, step, "timer")
        roll = rng.random()
        if roll < 0.45:
            admission = breaker.admit()
            assert (admission.admitted, admission.trial) == ref.acquire(now), (seed, step)
            if admission.admitted:
                in_flight.append((admission.gen, ref.episode))
        elif roll < 0.93 and in_flight:
            gen, episode = in_flight.pop(rng.randrange(len(in_flight)))
            failed, slow = rng.random() < 0.5, rng.random() < 0.3
            recorded = breaker.accepts(gen)
            if recorded:
                late += gen != breaker.gen
                breaker.record(failed, slow)
            assert recorded == ref.on_result(episode, failed, slow, now, rule), (seed, step)
        elif roll < 0.97:
            breaker.command(DISABLED)
            ref._to("DISABLED", now)
        else:
            breaker.command(CLOSED)
            ref._to("CLOSED", now)
        assert breaker.state == ref.state, (seed, step)
        if breaker.state == "CLOSED" and p["policy"] == "count_window":
            tally = breaker.window_tally()
            assert (tally.calls, tally.failures, tally.slow) == (
                len(ref.window),
                sum(f for f, _ in ref.window),
                sum(s for _, s in ref.window),
            )
    return late


@pytest.mark.parametrize("rule", ["admitting_state", "current_state"])
def test_the_breaker_moves_as_the_reference_does_call_by_call(rule):
    late = sum(play(seed, rule) for seed in range(150))
    assert (late > 50) == (rule == "current_state")  # the runs do reach the cases where the rules differ
