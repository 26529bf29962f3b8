"""The circuit breaker's presets: each a scenario (seed, parameters, timed script) that tells one story."""

from __future__ import annotations

from patterns.core.registry import Preset
from patterns.core.story import with_chapters

from .stories import STORIES

GUIDE = {
    "policy": "consecutive",
    "consecutive_failures": 3,
    "half_open_rule": "any_failure",
    "half_open_calls": 2,
    "open_wait_s": 2.0,
    "failure_probability": 0.0,
}

CHAIN = {
    "topology": "chain",
    "request_rate": 30.0,
    "downstream_share": 0.5,
    "failure_probability": 0.0,
    "tail_probability": 0.0,
    "open_wait_s": 3.0,
}

CHAIN_SCRIPT = ((5.0, "outage_on", {"service": "C", "mode": "hang"}), (40.0, "outage_off", {"service": "C"}))

PRESETS = (
    Preset(
        "flaky",
        "A flaky service trips it, and it recovers",
        "At 5 s S starts failing four calls in five. Soon half of the last 20 calls have failed and the breaker "
        "opens; every 5 s it lets three trial calls through, and while S is still failing they send it back to "
        "OPEN. S heals at 20 s, and the next probe closes the breaker.",
        {"failure_probability": 0.02},
        (
            (5.0, "set_failure_probability", {"service": "downstream", "probability": 0.8}),
            (20.0, "set_failure_probability", {"service": "downstream", "probability": 0.02}),
        ),
        seed=7,
    ),
    Preset(
        "slow-calls",
        "Slow calls trip it",
        "Nothing fails, but at 5 s S becomes ten times slower and most calls take longer than 300 ms. Once half "
        "of the last 20 calls are slow the breaker opens, although every call succeeded. Probes keep finding S "
        "slow until slow mode ends at 25 s; the next one closes the breaker.",
        {"slow_call_ms": 300.0, "slow_threshold": 50.0, "timeout_ms": 2000.0, "failure_probability": 0.0},
        ((5.0, "slow_on", {"service": "downstream", "factor": 10.0}), (25.0, "slow_off", {"service": "downstream"})),
        seed=3,
    ),
    Preset(
        "backoff",
        "The probe fails, and the wait backs off",
        "S goes down at 3 s. Each half-open probe fails and reopens the breaker with twice the wait before: 2, "
        "4, 8, 16 s, then 20, the cap. S is back at 40 s, but the breaker only finds out when its 20 s are over; "
        "that probe closes it, and the next trip would wait 2 s again.",
        {
            "open_wait_s": 2.0,
            "backoff_multiplier": 2.0,
            "max_open_wait_s": 20.0,
            "half_open_calls": 2,
            "half_open_transition": "automatic",
            "failure_probability": 0.0,
        },
        (
            (3.0, "outage_on", {"service": "downstream", "mode": "error"}),
            (40.0, "outage_off", {"service": "downstream"}),
        ),
        seed=5,
    ),
    Preset(
        "cascade",
        "A cascade without breakers",
        "Users call A; half of their requests need B, and B needs C. At 5 s C hangs. B's calls to C wait out "
        "their 1 s timeout, B's ten slots fill, then A's. The requests that never needed C now queue behind "
        "those that do and take a second instead of 50 ms, and A's full queue turns almost half the users away.",
        {**CHAIN, "breakers": False},
        CHAIN_SCRIPT,
        seed=11,
    ),
    Preset(
        "cascade-breakers",
        "The same cascade, with breakers",
        "The same outage, with a breaker in front of B (in A) and one in front of C (in B). Both open about a "
        "second after C hangs. From then on the requests that need C fail within 50 ms, the others are served "
        "as fast as before and A's slots stay free; every 3 s a probe checks on C, and once C is back at 40 s "
        "the next probes close both breakers.",
        {**CHAIN, "breakers": True},
        CHAIN_SCRIPT,
        seed=11,
    ),
    Preset(
        "guide",
        "The guide's rules",
        "The original guide's breaker: three consecutive failures open it, the wait is 2 s, two trial calls "
        "must both succeed, and any failure in HALF_OPEN reopens it at once.",
        GUIDE,
        (
            (3.0, "set_failure_probability", {"service": "downstream", "probability": 0.7}),
            (15.0, "set_failure_probability", {"service": "downstream", "probability": 0.0}),
        ),
        seed=2,
    ),
)
PRESETS = with_chapters(PRESETS, STORIES)  # each story told chapter by chapter (stories.py)
