"""Every trip and recovery rule, call by call, and an outside replay of the breaker from its events alone.

The first half builds outcome sequences that are known in advance (see `outcome_script`) and asserts the exact
call at which each transition happens. The second half is an independent re-implementation of the rules that
reads nothing but the JSON event stream (and the configuration) and checks that every transition happens exactly
at the event where it must: not one call early, not one call late, and never without a cause.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from patterns.circuit_breaker.breaker import POLICIES
from patterns.circuit_breaker.pattern import PATTERN
from patterns.core.sim import micros

from .test_engine import QUIET, chaos_script, make_params, of_type, outcome_script, preset_script, run, timeline

COUNT10 = {**QUIET, "window_size": 10, "minimum_calls": 10, "failure_threshold": 50.0, "open_wait_s": 3.0}
TRIP10 = "FFFFFFFFFF"  # ten failures at 1..10 s: with COUNT10 the breaker opens at 10.01 s, until 13.01 s


def story(codes: str, until: float | None = None, start: float = 1.0, spacing: float = 1.0, **params: Any) -> str:
    end = until if until is not None else start + len(codes) * spacing + 2
    return timeline(run(end, outcome_script(codes, start, spacing), **{**COUNT10, **params})[2])


# -- closed: count window ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("codes", "params", "expected"),
    [
        # window 10, minimum 10, 50%: the 10th outcome is the first judged, and 5 of 10 is enough (>=)
        ("SFSFSFSFSF", {}, "sfsfsfsfsf[OPEN]"),
        ("SFSFSFSFS", {}, "sfsfsfsfs"),
        ("FFFFFFFFFS", {}, "fffffffffs[OPEN]"),
        # the window slides: the 5th failure after ten successes makes 5 of the last 10
        ("SSSSSSSSSSFFFFF", {}, "ssssssssssfffff[OPEN]"),
        ("SSSSSSSSSSFFFFSF", {}, "ssssssssssffffsf[OPEN]"),
        # a threshold just above 50% needs a 6th failure
        ("SSSSSSSSSSFFFFFF", {"failure_threshold": 51.0}, "ssssssssssffffff[OPEN]"),
        # minimum calls below the window: judged from the 4th call on
        ("SSFF", {"minimum_calls": 4}, "ssff[OPEN]"),
        ("SSFSF", {"minimum_calls": 4}, "ssfsf"),
        ("SSFSFF", {"minimum_calls": 4}, "ssfsff[OPEN]"),
        # a minimum above a count window's size is capped at the size (as resilience4j does)
        ("SSSFF", {"window_size": 5, "minimum_calls": 100}, "sssff"),
        ("SSSFFF", {"window_size": 5, "minimum_calls": 100}, "sssfff[OPEN]"),
        # timeouts are failures, and slow too when the timeout is longer than the slow-call duration
        ("STSTSTSTST", {}, "sTsTsTsTsT[OPEN]"),
        # slow calls: 5 of 10 slow successes trip a 50% slow-call threshold, on the 10th (fast) call
        ("WSWSWSWSWS", {"slow_threshold": 50.0}, "SsSsSsSsSs[OPEN]"),
        ("WSWSWSWSS", {"slow_threshold": 50.0}, "SsSsSsSss"),
        # a slow failure counts on both sides
        ("XSXSXSXSSS", {"slow_threshold": 40.0, "failure_threshold": 90.0}, "FsFsFsFsss[OPEN]"),
        # with the default slow threshold of 100%, only all-slow windows trip
        ("WWWWWWWWWS", {}, "SSSSSSSSSs"),
        ("WWWWWWWWWW", {}, "SSSSSSSSSS[OPEN]"),
    ],
)
def test_count_window_trips_exactly_at_the_crossing_call(codes, params, expected):
    assert story(codes, **params) == expected


def test_a_timeout_shorter_than_the_slow_call_duration_is_a_failure_but_not_slow():
    assert story("STSTSTSTST", timeout_ms=400.0) == "ststststst[OPEN]"


@pytest.mark.parametrize(("timeout_ms", "slow"), [(500.0, False), (500.001, True)])
def test_slow_means_strictly_longer_than_the_slow_call_duration_to_the_microsecond(timeout_ms, slow):
    """resilience4j's strict "longer than": a timeout equal to the slow-call duration is never slow, one a
    microsecond longer always is. Before, ``now - start`` of a 500 ms timeout came out a hair over or under 0.5
    depending on ``start``, and about half of the timeouts were flagged slow."""
    script = ((0.1, "outage_on", {"service": "downstream", "mode": "hang"}),)
    params = {**QUIET, "breakers": False, "request_rate": 30.0, "timeout_ms": timeout_ms}
    _, _, events = run(30.0, script, **params)
    timeouts = of_type(events, "cb.outcome", outcome="timeout")
    assert len(timeouts) > 500
    assert {(o["slow"], o["duration"]) for o in timeouts} == {(slow, timeout_ms / 1000)}


def test_the_transition_carries_the_numbers_that_caused_it():
    _, _, events = run(20.0, outcome_script("SSSSSSSSSSFFFFSF"), **COUNT10, slow_threshold=100.0)
    (trip,) = of_type(events, "cb.transition")
    assert {k: trip[k] for k in ("from", "to", "reason", "calls", "failures", "slow_calls", "failure_rate")} == {
        "from": "CLOSED",
        "to": "OPEN",
        "reason": "failure_rate",
        "calls": 10,
        "failures": 5,
        "slow_calls": 0,
        "failure_rate": 50.0,
    }
    assert (trip["t"], trip["wait"], trip["until"]) == (16.01, 3.0, 19.01)


# -- closed: time window -------------------------------------------------------------------------------------------
TIMED = {**QUIET, "policy": "time_window", "window_size": 5, "minimum_calls": 5, "failure_threshold": 50.0}
#          0.2 F, 0.4 F, 1.2 S, 2.2 S, 5.2 S, 5.4 F, 5.6 F, 5.8 F
DROPOUT = "FF   S    S              SFFF"


def test_time_window_drops_calls_older_than_its_seconds():
    # At 5.x s the window holds seconds 1..5: both failures of second 0 are gone, so it takes three new ones.
    assert story(DROPOUT, start=0.2, spacing=0.2, **TIMED) == "ffsssfff[OPEN]"
    # The same calls in a count window: the old failures still count and the first new one trips it.
    assert story(DROPOUT, start=0.2, spacing=0.2, **{**TIMED, "policy": "count_window", "window_size": 10}) == (
        "ffsssf[OPEN]rr"
    )


@pytest.mark.parametrize(("second_call_at", "expected"), [(4.9, "fs[OPEN]"), (5.1, "fs")])
def test_time_window_boundary_is_whole_seconds(second_call_at, expected):
    # A failure at 0.5 s lives in second 0, which leaves a 5 s window when second 5 begins.
    codes = "F" + " " * round((second_call_at - 0.5) / 0.1 - 1) + "S"
    assert story(codes, start=0.5, spacing=0.1, **{**TIMED, "minimum_calls": 2}) == expected


# -- closed: consecutive failures ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ("FFSFFF", "ffsfff[OPEN]"),
        ("FFSFFSFF", "ffsffsff"),
        ("FTE", "fTf[OPEN]"),  # timeouts and outage errors are failures
        ("WWWWWWFFF", "SSSSSSfff[OPEN]"),  # slowness does not matter to this policy
    ],
)
def test_consecutive_failures_trip_on_the_nth_in_a_row(codes, expected):
    assert story(codes, policy="consecutive", consecutive_failures=3) == expected


# -- open ----------------------------------------------------------------------------------------------------------
def test_open_rejects_at_once_with_the_remaining_wait_and_nothing_reaches_the_service():
    _, _, events = run(14.0, outcome_script(TRIP10 + "SS"), **COUNT10)
    rejected = of_type(events, "cb.outcome", outcome="rejected")
    assert [(o["call"], o["t"], o["reason"], o["remaining"], o["duration"]) for o in rejected] == [
        (11, 11.0, "open", 2.01, None),
        (12, 12.0, "open", 1.01, None),
    ]
    assert [s["call"] for s in of_type(events, "cb.serve")] == list(range(1, 11))


def test_lazy_half_open_waits_for_the_next_call():
    _, _, events = run(25.0, outcome_script(TRIP10 + "         S"), **COUNT10)
    moves = [(e["t"], e["to"]) for e in of_type(events, "cb.transition")]
    assert moves == [(10.01, "OPEN"), (20.0, "HALF_OPEN")]
    assert timeline(events) == "ffffffffff[OPEN][HALF_OPEN]s"
    waking = of_type(events, "cb.call", t=20.0)[0]
    assert (waking["state"], waking["trial"]) == ("HALF_OPEN", True)


def test_a_call_at_the_very_end_of_the_open_wait_is_rejected_and_one_a_microsecond_later_is_a_trial():
    """resilience4j's ``isAfter``: the wait is over strictly after it ends (the wait runs 10.01 s to 13.01 s)."""
    script = (*outcome_script(TRIP10), (13.01, "burst", {"count": 1}), (13.010001, "burst", {"count": 1}))
    _, _, events = run(15.0, script, **COUNT10)
    at_end, after = of_type(events, "cb.outcome", t=13.01)[0], of_type(events, "cb.call", t=13.010001)[0]
    assert (at_end["outcome"], at_end["reason"], at_end["remaining"]) == ("rejected", "open", 0.0)
    assert (after["state"], after["trial"]) == ("HALF_OPEN", True)
    assert [(e["t"], e["to"]) for e in of_type(events, "cb.transition")] == [(10.01, "OPEN"), (13.010001, "HALF_OPEN")]


def test_automatic_half_open_moves_on_a_timer():
    _, _, events = run(25.0, outcome_script(TRIP10 + "         S"), **COUNT10, half_open_transition="automatic")
    moves = [(e["t"], e["to"], e["reason"]) for e in of_type(events, "cb.transition")]
    assert moves == [(10.01, "OPEN", "failure_rate"), (13.01, "HALF_OPEN", "wait_elapsed")]


def test_backoff_grows_with_each_reopen_is_capped_and_resets_after_closing():
    params = {
        **COUNT10,
        "request_rate": 20.0,
        "failure_probability": 1.0,
        "open_wait_s": 1.0,
        "backoff_multiplier": 2.0,
        "max_open_wait_s": 5.0,
        "half_open_transition": "automatic",
        "half_open_calls": 2,
    }
    script = (
        (40.0, "set_failure_probability", {"probability": 0.0}),
        (60.0, "set_failure_probability", {"probability": 1.0}),
    )
    _, _, events = run(70.0, script, **params)
    opens = of_type(events, "cb.transition", to="OPEN")
    assert [e["wait"] for e in opens if e["t"] < 40][:7] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]
    (close,) = of_type(events, "cb.transition", to="CLOSED")
    assert 40 < close["t"] < 46
    after = [(e["from"], e["wait"]) for e in opens if e["t"] > close["t"]]
    assert after[:2] == [("CLOSED", 1.0), ("HALF_OPEN", 2.0)]


# -- half-open -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("trials", "params", "expected"),
    [
        # rate rule: judged once all 3 trials are back, 1 of 3 failed is below 50%
        ("SFS", {}, "[HALF_OPEN]sfs[CLOSED]"),
        ("FFS", {}, "[HALF_OPEN]ffs[OPEN]"),
        ("FSF", {}, "[HALF_OPEN]fsf[OPEN]"),
        ("WWS", {"slow_threshold": 60.0}, "[HALF_OPEN]SSs[OPEN]"),
        ("WSS", {"slow_threshold": 60.0}, "[HALF_OPEN]Sss[CLOSED]"),
        # any-failure rule (the original guide): the first failed trial reopens at once; all successes close
        ("SFS", {"half_open_rule": "any_failure"}, "[HALF_OPEN]sf[OPEN]r"),
        ("FSS", {"half_open_rule": "any_failure"}, "[HALF_OPEN]f[OPEN]rr"),
        ("SSS", {"half_open_rule": "any_failure"}, "[HALF_OPEN]sss[CLOSED]"),
        ("WWW", {"half_open_rule": "any_failure", "slow_threshold": 10.0}, "[HALF_OPEN]SSS[CLOSED]"),
        # one trial call
        ("F", {"half_open_calls": 1}, "[HALF_OPEN]f[OPEN]"),
        ("S", {"half_open_calls": 1}, "[HALF_OPEN]s[CLOSED]"),
    ],
)
def test_half_open_decides_by_its_rule(trials, params, expected):
    text = story(TRIP10 + "    " + trials, **params)
    assert text.startswith("ffffffffff[OPEN]")
    assert text[len("ffffffffff[OPEN]") :] == expected


def test_half_open_admits_only_its_trial_calls_and_rejects_the_rest():
    script = (
        *outcome_script(TRIP10),
        (14.0, "set_failure_probability", {"probability": 0.0}),
        (14.0, "set_latency", {"median_ms": 100.0}),
        (14.0, "burst", {"count": 5}),
    )
    _, _, events = run(16.0, script, **COUNT10)
    assert timeline(events) == "ffffffffff[OPEN][HALF_OPEN]rrsss[CLOSED]"
    burst = of_type(events, "cb.call", t=14.0)
    assert [(c["trial"], c["state"]) for c in burst] == [(True, "HALF_OPEN")] * 3 + [(False, "HALF_OPEN")] * 2
    assert {o["reason"] for o in of_type(events, "cb.outcome", outcome="rejected")} == {"half_open_full"}


def test_half_open_gives_up_after_its_maximum_wait():
    _, _, events = run(16.0, outcome_script(TRIP10 + "   T"), **COUNT10, max_half_open_s=0.5)
    assert timeline(events) == "ffffffffff[OPEN][HALF_OPEN][OPEN]T"
    reopen = of_type(events, "cb.transition")[-1]
    assert (reopen["t"], reopen["reason"], reopen["calls"]) == (14.5, "half_open_timeout", 0)
    late = of_type(events, "cb.outcome")[-1]
    assert (late["outcome"], late["recorded"]) == ("timeout", False)


def test_an_outcome_counts_only_for_the_state_that_admitted_the_call():
    script = (
        (0.5, "outage_on", {"mode": "hang"}),
        (0.5, "burst", {"count": 1}),
        (0.55, "outage_off", {}),
        (0.55, "set_failure_probability", {"probability": 1.0}),
        (0.55, "burst", {"count": 10}),
    )
    _, _, events = run(3.0, script, **COUNT10)
    assert timeline(events) == "ffffffffff[OPEN]T"
    assert [o["recorded"] for o in of_type(events, "cb.outcome")] == [True] * 10 + [False]


LATE = (
    (0.5, "outage_on", {"mode": "hang"}),
    (0.5, "burst", {"count": 1}),  # admitted while CLOSED, times out at 1.3 s, during HALF_OPEN
    (0.55, "outage_off", {}),
    (0.55, "set_failure_probability", {"probability": 1.0}),
    (0.55, "burst", {"count": 10}),  # opens the breaker at 0.56 s until 0.76 s
)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [("admitting_state", "ffffffffff[OPEN][HALF_OPEN]T"), ("current_state", "ffffffffff[OPEN][HALF_OPEN]T[OPEN]")],
)
def test_the_recording_rule_decides_whether_a_late_outcome_is_a_trial(rule, expected):
    params = {**COUNT10, "open_wait_s": 0.2, "half_open_transition": "automatic", "half_open_calls": 1}
    _, _, events = run(1.4, LATE, **params, recording_rule=rule)
    assert timeline(events) == expected
    assert of_type(events, "cb.outcome")[-1]["recorded"] == (rule == "current_state")


def test_the_recording_rule_is_a_checked_choice():
    with pytest.raises(ValueError, match="recording_rule: expected one of admitting_state, current_state"):
        make_params(recording_rule="whatever")


# -- manual states -------------------------------------------------------------------------------------------------
def test_forced_open_rejects_everything_until_reset():
    script = (
        (0.5, "force_open", {}),
        *outcome_script("SSS", start=1.0, spacing=20.0),
        (70.0, "reset_breaker", {}),
        *outcome_script("S", start=71.0),
    )
    _, _, events = run(75.0, script, **COUNT10)
    assert timeline(events) == "[FORCED_OPEN]rrr[CLOSED]s"
    assert {o["reason"] for o in of_type(events, "cb.outcome", outcome="rejected")} == {"forced_open"}
    assert [s["call"] for s in of_type(events, "cb.serve")] == [4]


def test_disabled_lets_everything_through_and_records_nothing():
    _, engine, events = run(20.0, ((0.5, "disable", {}), *outcome_script(TRIP10 + "FFF")), **COUNT10)
    assert timeline(events) == "[DISABLED]" + "f" * 13
    assert {o["recorded"] for o in of_type(events, "cb.outcome")} == {False}
    assert engine.primary.breaker.window_tally().calls == 0


def test_metrics_only_says_when_it_would_open_once_per_crossing_and_never_rejects():
    codes = TRIP10 + "FF" + "SSSSSSSSSS" + "FFFFF"
    _, _, events = run(40.0, ((0.5, "metrics_only", {}), *outcome_script(codes)), **COUNT10)
    assert timeline(events) == ("[METRICS_ONLY]ffffffffff[would open]ff" + "sssss" + "sssss" + "fffff[would open]")
    first = of_type(events, "cb.would_open")[0]
    assert (first["reason"], first["calls"], first["failure_rate"]) == ("failure_rate", 10, 100.0)


def test_reset_clears_the_window_and_the_backoff():
    params = {**COUNT10, "backoff_multiplier": 2.0, "half_open_calls": 1, "open_wait_s": 1.0}
    script = (
        *outcome_script(TRIP10 + " F  F"),
        (16.5, "reset_breaker", {}),
        *outcome_script("FFFFFFFFF", start=17.0),
        *outcome_script("F", start=30.0),
    )
    _, _, events = run(35.0, script, **params)
    assert timeline(events) == "ffffffffff[OPEN][HALF_OPEN]f[OPEN][HALF_OPEN]f[OPEN][CLOSED]fffffffff" + "f[OPEN]"
    assert [e["wait"] for e in of_type(events, "cb.transition", to="OPEN")] == [1.0, 2.0, 4.0, 1.0]


# -- an outside replay of the breaker -------------------------------------------------------------------------------
EPS = 2.5e-6  # event times are rounded to the microsecond
CAUSED = ("failure_rate", "slow_rate", "consecutive_failures", "trial_failure", "trials_passed")
COMMAND_STATES = {
    "force_open": "FORCED_OPEN",
    "disable": "DISABLED",
    "metrics_only": "METRICS_ONLY",
    "reset_breaker": "CLOSED",
}


class Replay:
    """One breaker rebuilt from the event stream: its own windows, counters and clock, written from the rules as
    documented, sharing no code with the engine."""

    def __init__(self, params: dict[str, Any], hop: str, primary: bool):
        self.p = params
        self.hop = hop
        self.primary = primary
        self.state = "CLOSED" if params["breakers"] else "DISABLED"
        self.epoch = 0
        self.reopens = 0
        self.until = math.inf
        self.entered = 0.0
        self.admitted: dict[int, int] = {}  # call -> the epoch that let it through
        self.expected: str | None = None  # a commanded state whose transition must come next
        self.moves: list[tuple[str, str, str]] = []
        self.max_trials_seen = 0
        self._fresh()

    def _fresh(self) -> None:
        self.window: list[tuple[int, bool, bool]] = []
        self.in_a_row = 0
        self.trials_let_through = 0
        self.trial_results: list[tuple[bool, bool]] = []
        self.crossed = False

    # -- reading the stream ---------------------------------------------------------------------------------------
    def check(self, events: list[dict[str, Any]]) -> None:
        i = 0
        while i < len(events):
            e = events[i]
            self._no_timer_overdue(e["t"])
            if e["type"] == "command":
                self._command(e)
                i += 1
            elif e.get("hop") != self.hop:
                i += 1
            elif e["type"] == "cb.call":
                i = self._call(events, i)
            elif e["type"] == "cb.outcome":
                i = self._outcome(events, i)
            elif e["type"] == "cb.transition":
                self._uncaused_transition(events, i)
                i += 1
            elif e["type"] == "cb.retry":
                i += 1
            else:
                raise AssertionError(f"unexpected {e}")
        assert self.expected is None

    def _no_timer_overdue(self, t: float) -> None:
        if self.state == "OPEN" and self.p["half_open_transition"] == "automatic":
            assert t <= self.until + EPS, f"still OPEN at {t}, the timer was due at {self.until}"
        if self.state == "HALF_OPEN" and self.p["max_half_open_s"] > 0:
            assert t <= self.entered + self.p["max_half_open_s"] + EPS, f"still HALF_OPEN at {t}"

    def _command(self, e: dict[str, Any]) -> None:
        if e["command"] not in COMMAND_STATES:
            return
        target = e["args"]["breaker"]
        if target == "all" or target == self.hop or (target == "downstream" and self.primary):
            self.expected = COMMAND_STATES[e["command"]]

    def _call(self, events: list[dict[str, Any]], i: int) -> int:
        e = events[i]
        assert self.expected is None, f"call {e['call']} before the commanded transition"
        following = events[i + 1] if i + 1 < len(events) else None
        refused = following and following["type"] == "cb.outcome" and following["call"] == e["call"]
        if refused and following["outcome"] == "saturated":  # refused by the caller: the breaker was not asked
            assert e["state"] == self.state
            return i + 2
        state, t = self.state, e["t"]
        if state == "OPEN":
            assert micros(t) <= micros(self.until), (
                f"call {e['call']} at {t} found OPEN, its wait ended at {self.until}"
            )
        rejection, trial = None, False
        if state == "FORCED_OPEN":
            rejection = "forced_open"
        elif state == "OPEN":
            rejection = "open"
        elif state == "HALF_OPEN":
            if self.trials_let_through < self.p["half_open_calls"]:
                self.trials_let_through += 1
                self.max_trials_seen = max(self.max_trials_seen, self.trials_let_through)
                trial = True
            else:
                rejection = "half_open_full"
        assert (e["state"], e["trial"]) == (state, trial), e
        if rejection is None:
            self.admitted[e["call"]] = self.epoch
            return i + 1
        assert following is not None and following["call"] == e["call"], "a rejection is reported at once"
        assert (following["outcome"], following["reason"]) == ("rejected", rejection)
        if rejection == "open":
            assert micros(following["remaining"]) == micros(self.until) - micros(t)
        return i + 2

    def _outcome(self, events: list[dict[str, Any]], i: int) -> int:
        e = events[i]
        assert self.expected is None
        assert e["outcome"] in ("success", "failure", "timeout"), e
        admitted_in = self.admitted.pop(e["call"])
        same_state = admitted_in == self.epoch or self.p["recording_rule"] == "current_state"
        recorded = same_state and self.state in ("CLOSED", "HALF_OPEN", "METRICS_ONLY")
        assert e["recorded"] == recorded, e
        assert e["slow"] == (micros(e["duration"]) > micros(self.p["slow_call_ms"] / 1000)), e
        following = events[i + 1] if i + 1 < len(events) else None
        verdict = self._judge(e["t"], e["outcome"] != "success", e["slow"]) if recorded else None
        if verdict is None:
            assert not (
                following
                and following["type"] in ("cb.transition", "cb.would_open")
                and following.get("hop") == self.hop
                and following["reason"] in CAUSED
            ), f"{following} without a cause at {e}"
            return i + 1
        to, reason, numbers = verdict
        if self.state == "METRICS_ONLY":
            speak = not self.crossed
            self.crossed = True
            if speak:
                assert (following["type"], following.get("hop")) == ("cb.would_open", self.hop), (e, following)
                assert following["reason"] == reason and {k: following[k] for k in numbers} == numbers
                return i + 2
            return i + 1
        assert following is not None, f"no transition after {e}"
        seen = tuple(following.get(k) for k in ("type", "hop", "from", "to", "reason"))
        assert seen == ("cb.transition", self.hop, self.state, to, reason), (e, following)
        assert {k: following[k] for k in numbers} == numbers
        self._move(following)
        return i + 2

    def _judge(self, t: float, failed: bool, slow: bool) -> tuple[str, str, dict[str, Any]] | None:
        p = self.p
        if self.state == "HALF_OPEN":
            self.trial_results.append((failed, slow))
            results = self.trial_results
            numbers = {
                "calls": len(results),
                "failures": sum(f for f, _ in results),
                "slow_calls": sum(s for _, s in results),
            }
            if p["half_open_rule"] == "any_failure":
                if failed:
                    return "OPEN", "trial_failure", numbers
                if len(results) == p["half_open_calls"]:
                    return "CLOSED", "trials_passed", numbers
                return None
            if len(results) < p["half_open_calls"]:
                return None
            reason = self._rates(numbers)
            return ("OPEN", reason, numbers) if reason else ("CLOSED", "trials_passed", numbers)
        if p["policy"] == "consecutive":
            self.in_a_row = self.in_a_row + 1 if failed else 0
            if self.in_a_row >= p["consecutive_failures"]:
                return "OPEN", "consecutive_failures", {"consecutive": self.in_a_row}
            self.crossed = False
            return None
        second = math.floor(t)
        self.window.append((second, failed, slow))
        if p["policy"] == "count_window":
            self.window = self.window[-p["window_size"] :]
            minimum = min(p["minimum_calls"], p["window_size"])
        else:
            self.window = [c for c in self.window if c[0] > second - p["window_size"]]
            minimum = p["minimum_calls"]
        numbers = {
            "calls": len(self.window),
            "failures": sum(c[1] for c in self.window),
            "slow_calls": sum(c[2] for c in self.window),
        }
        reason = self._rates(numbers) if numbers["calls"] >= minimum else None
        if reason is None:
            self.crossed = False
            return None
        return "OPEN", reason, numbers

    def _rates(self, numbers: dict[str, int]) -> str | None:
        if 100.0 * numbers["failures"] / numbers["calls"] >= self.p["failure_threshold"]:
            return "failure_rate"
        if 100.0 * numbers["slow_calls"] / numbers["calls"] >= self.p["slow_threshold"]:
            return "slow_rate"
        return None

    def _uncaused_transition(self, events: list[dict[str, Any]], i: int) -> None:
        e = events[i]
        assert e["from"] == self.state, e
        if self.expected is not None:
            assert (e["to"], e["reason"]) == (self.expected, "command"), e
            self.expected = None
        elif e["reason"] == "wait_elapsed":
            assert self.state == "OPEN" and micros(e["t"]) >= micros(self.until), e
            following = events[i + 1] if i + 1 < len(events) else None
            woken_by_call = following is not None and following["type"] == "cb.call" and following["hop"] == self.hop
            if self.p["half_open_transition"] == "lazy":
                assert woken_by_call and following["t"] == e["t"], "a lazy breaker moves only for a call"
                assert micros(e["t"]) > micros(self.until), "the wait is over strictly after it ends"
            else:
                assert woken_by_call or abs(e["t"] - self.until) <= EPS, e
        elif e["reason"] == "half_open_timeout":
            assert self.state == "HALF_OPEN" and self.p["max_half_open_s"] > 0, e
            assert abs(e["t"] - (self.entered + self.p["max_half_open_s"])) <= EPS, e
            assert e["calls"] == len(self.trial_results)
        else:
            raise AssertionError(f"transition without a cause: {e}")
        self._move(e)

    def _move(self, e: dict[str, Any]) -> None:
        source, target = self.state, e["to"]
        if target == "OPEN":
            self.reopens = self.reopens + 1 if source == "HALF_OPEN" else 0
            p = self.p
            wait = min(
                p["open_wait_s"] * p["backoff_multiplier"] ** self.reopens, max(p["max_open_wait_s"], p["open_wait_s"])
            )
            assert abs(e["wait"] - wait) <= 1e-6 and abs(e["until"] - (e["t"] + wait)) <= EPS, (e, wait)
            self.until = e["t"] + wait
        else:
            self.until = math.inf
        if target == "CLOSED":
            self.reopens = 0
        self.state = target
        self.epoch += 1
        self.entered = e["t"]
        self.moves.append((source, target, e["reason"]))
        self._fresh()


def replay(events: list[dict[str, Any]], params: dict[str, Any]) -> list[Replay]:
    """Check every breaker of a run; return the replays (their moves say what was checked)."""
    hops = ["S"] if params["topology"] == "single" else ["B", "C"]
    replays = [Replay(params, hop, primary=hop == hops[-1]) for hop in hops]
    for one in replays:
        one.check(events)
        assert one.max_trials_seen <= params["half_open_calls"]
    return replays


CHAOS_PARAMS = {
    "request_rate": 25.0,
    "retries": 1,
    "slow_threshold": 60.0,
    "backoff_multiplier": 2.0,
    "open_wait_s": 1.5,
    "max_open_wait_s": 4.0,
    "window_size": 12,
    "minimum_calls": 6,
    "consecutive_failures": 4,
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("rule", ["rate", "any_failure"])
@pytest.mark.parametrize("transition", ["lazy", "automatic"])
@pytest.mark.parametrize("max_half_open", [0.0, 0.3])
def test_replay_agrees_with_every_transition(policy, rule, transition, max_half_open):
    params = make_params(
        **CHAOS_PARAMS,
        policy=policy,
        half_open_rule=rule,
        half_open_transition=transition,
        max_half_open_s=max_half_open,
    )
    script = (
        *chaos_script(),
        (21.0, "set_failure_probability", {"probability": 0.5}),
        (24.0, "force_open", {}),
        (25.0, "reset_breaker", {}),
        (26.0, "disable", {}),
        (27.0, "reset_breaker", {}),
    )
    _, _, events = run(35.0, script, seed=3, **params)
    (one,) = replay(events, params)
    reasons = {reason for _, _, reason in one.moves}
    assert len(one.moves) >= 8 and {"wait_elapsed", "command"} <= reasons
    assert reasons & {"failure_rate", "slow_rate", "consecutive_failures"}


@pytest.mark.parametrize("preset", PATTERN.presets, ids=lambda p: p.slug)
def test_replay_agrees_with_every_preset(preset):
    params = make_params(**preset.params)
    _, _, events = run(60.0, preset_script(preset.slug), seed=preset.seed, **params)
    replays = replay(events, params)
    if params["breakers"]:
        assert any(r.moves for r in replays)


def test_replay_catches_a_breaker_that_moves_one_event_late_or_early():
    """The checker itself must be able to fail: move the trip by one event either way and it objects."""
    params = make_params(**COUNT10)
    _, _, events = run(20.0, outcome_script(TRIP10 + "SS"), **params)
    replay(events, params)
    trip = next(i for i, e in enumerate(events) if e["type"] == "cb.transition")
    late = [*events[:trip], events[trip + 1], events[trip], *events[trip + 2 :]]
    early = [*events[: trip - 1], events[trip], events[trip - 1], *events[trip + 1 :]]
    for altered in (late, early):
        with pytest.raises(AssertionError):
            replay(altered, params)
