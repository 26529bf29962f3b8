"""The circuit breaker's parameters and the commands that perturb a run.

Parameter names follow what they mean in the libraries people run in production (resilience4j above all), so a
production breaker can be typed in and replayed; the explanation page maps each one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from patterns.core.registry import Command, Param, in_group
from patterns.core.scenario import Action, format_time

from .breaker import HALF_OPEN_RULES, POLICIES, RECORDING_RULES, STATES
from .engine import BREAKER_TARGETS, SERVICE_TARGETS

STATE_LIST = ", ".join(STATES)

PARAMS = (
    *in_group(
        "Traffic",
        Param(
            "topology",
            "choice",
            "single",
            "Topology",
            choices=("single", "chain"),
            help="single: users -> S. chain: users -> A -> B -> C, a breaker in front of B and of C.",
        ),
        Param(
            "downstream_share",
            "float",
            1.0,
            "Downstream share",
            min=0,
            max=1,
            help="Chain only: the share of user requests A needs B (and so C) for; the rest A answers alone.",
        ),
        Param("breakers", "bool", True, "Breakers on", help="Off: every breaker starts DISABLED (reset turns it on)."),
        Param(
            "request_rate",
            "float",
            10.0,
            "Request rate",
            min=0,
            max=500,
            unit="/s",
            help="User requests per second (Poisson arrivals).",
        ),
    ),
    *in_group(
        "Service",
        Param(
            "failure_probability",
            "float",
            0.05,
            "Failure probability",
            min=0,
            max=1,
            help="Chance that a served call fails.",
        ),
        Param("latency_ms", "float", 50.0, "Latency median", min=1, max=60000, unit="ms"),
        Param(
            "latency_spread",
            "float",
            0.5,
            "Latency spread",
            min=0,
            max=2,
            help="Sigma of the lognormal latency body (0: every call takes the median).",
        ),
        Param(
            "tail_probability",
            "float",
            0.02,
            "Tail probability",
            min=0,
            max=1,
            help="Chance that a call lands in the latency tail.",
        ),
        Param(
            "tail_multiplier",
            "float",
            10.0,
            "Tail multiplier",
            min=1,
            max=1000,
            help="How much longer a tail call takes.",
        ),
        Param(
            "service_concurrency", "int", 10, "Service slots", min=1, max=1000, help="Calls a service works on at once."
        ),
        Param(
            "service_queue",
            "int",
            20,
            "Service queue",
            min=0,
            max=10000,
            help="Calls waiting for a slot (FIFO); beyond it a service fails calls at once.",
        ),
    ),
    *in_group(
        "Caller",
        Param(
            "timeout_ms",
            "float",
            1000.0,
            "Timeout",
            min=1,
            max=120000,
            unit="ms",
            help="Caller timeout in front of the deepest service (S, or C in a chain).",
        ),
        Param(
            "upstream_timeout_ms",
            "float",
            2500.0,
            "Upstream timeout",
            min=1,
            max=120000,
            unit="ms",
            help="Chain only: A's timeout for its calls to B.",
        ),
        Param(
            "user_timeout_ms",
            "float",
            5000.0,
            "User timeout",
            min=1,
            max=120000,
            unit="ms",
            help="Chain only: how long users wait for A.",
        ),
        Param(
            "caller_limit",
            "int",
            50,
            "Caller limit",
            min=0,
            max=10000,
            help="Calls a caller keeps in flight; beyond it it refuses at once (0: no limit).",
        ),
        Param("retries", "int", 0, "Retries", min=0, max=5, help="Retries of a failed or timed-out call."),
        Param(
            "retry_backoff_ms",
            "float",
            100.0,
            "Retry backoff",
            min=1,
            max=60000,
            unit="ms",
            help="Wait before the first retry; doubles for each next one.",
        ),
    ),
    *in_group(
        "Breaker",
        Param(
            "policy",
            "choice",
            "count_window",
            "Trip policy",
            choices=POLICIES,
            help="Sliding window of calls, sliding window of seconds, or consecutive failures.",
        ),
        Param(
            "window_size",
            "int",
            20,
            "Window size",
            min=1,
            max=1000,
            help="Calls (count window) or seconds (time window) judged.",
        ),
        Param(
            "minimum_calls",
            "int",
            10,
            "Minimum calls",
            min=1,
            max=10000,
            help="Calls in the window before rates are judged (capped at the window size for a count window).",
        ),
        Param(
            "failure_threshold",
            "float",
            50.0,
            "Failure threshold",
            min=1,
            max=100,
            unit="%",
            help="Trip when the failure rate is at least this.",
        ),
        Param(
            "slow_threshold",
            "float",
            100.0,
            "Slow-call threshold",
            min=1,
            max=100,
            unit="%",
            help="Trip when the slow-call rate is at least this.",
        ),
        Param(
            "slow_call_ms",
            "float",
            500.0,
            "Slow call",
            min=1,
            max=120000,
            unit="ms",
            help="A call that takes longer than this is slow (timeouts included).",
        ),
        Param(
            "consecutive_failures",
            "int",
            5,
            "Consecutive failures",
            min=1,
            max=1000,
            help="Consecutive policy: trip on this many failures in a row.",
        ),
        Param(
            "open_wait_s",
            "float",
            5.0,
            "Open wait",
            min=0.01,
            max=3600,
            unit="s",
            help="How long OPEN rejects calls before trying HALF_OPEN.",
        ),
        Param(
            "backoff_multiplier",
            "float",
            1.0,
            "Backoff multiplier",
            min=1,
            max=10,
            help="Each reopen from HALF_OPEN multiplies the open wait (1: constant wait).",
        ),
        Param(
            "max_open_wait_s",
            "float",
            60.0,
            "Max open wait",
            min=0.01,
            max=3600,
            unit="s",
            help="Cap of the open wait with backoff.",
        ),
        Param(
            "half_open_transition",
            "choice",
            "lazy",
            "Half-open transition",
            choices=("lazy", "automatic"),
            help="lazy: the first call after the wait; automatic: a timer at the end of the wait.",
        ),
        Param(
            "half_open_calls",
            "int",
            3,
            "Half-open trial calls",
            min=1,
            max=1000,
            help="Calls let through in HALF_OPEN; the rest are rejected.",
        ),
        Param(
            "half_open_rule",
            "choice",
            "rate",
            "Half-open rule",
            choices=HALF_OPEN_RULES,
            help="rate: judge the trials' rates once all are in; any_failure: the first failure reopens.",
        ),
        Param(
            "max_half_open_s",
            "float",
            0.0,
            "Max half-open wait",
            min=0,
            max=3600,
            unit="s",
            help="Reopen if the trials are not done by then (0: wait for ever).",
        ),
        Param(
            "recording_rule",
            "choice",
            "admitting_state",
            "Late outcomes count in",
            choices=RECORDING_RULES,
            help="admitting_state: only while the breaker is still in the state that let the call through "
            "(gobreaker); current_state: in whatever state it is in when the call ends (resilience4j).",
        ),
    ),
)

SERVICE_ARG = Param(
    "service",
    "choice",
    "downstream",
    "Service",
    choices=SERVICE_TARGETS,
    help="downstream: S, or C in a chain.",
    target="service",
)

BREAKER_ARG = Param(
    "breaker",
    "choice",
    "all",
    "Breaker",
    choices=BREAKER_TARGETS,
    help="The breaker in front of which service; downstream: S, or C in a chain.",
    target="breaker",
)

COMMANDS = (
    Command(
        "outage_on",
        "Outage",
        (SERVICE_ARG, Param("mode", "choice", "error", "Mode", choices=("error", "hang"))),
        help="error: every new call fails in 1 ms. hang: calls get no answer until the caller times out.",
    ),
    Command("outage_off", "End outage", (SERVICE_ARG,)),
    Command(
        "slow_on",
        "Slow mode",
        (SERVICE_ARG, Param("factor", "float", 10.0, "Factor", min=1, max=1000)),
        help="Multiply the service's latency.",
    ),
    Command("slow_off", "End slow mode", (SERVICE_ARG,)),
    Command(
        "set_failure_probability",
        "Failure probability",
        (SERVICE_ARG, Param("probability", "float", 0.5, "Probability", min=0, max=1)),
    ),
    Command(
        "set_latency",
        "Latency",
        (SERVICE_ARG, Param("median_ms", "float", 50.0, "Median", min=1, max=60000, unit="ms")),
    ),
    Command("set_request_rate", "Request rate", (Param("rate", "float", 10.0, "Rate", min=0, max=500, unit="/s"),)),
    Command(
        "burst",
        "Burst",
        (Param("count", "int", 50, "Calls", min=1, max=1000),),
        help="That many user requests at once.",
    ),
    Command("force_open", "Force open", (BREAKER_ARG,), help="Reject everything until reset."),
    Command("disable", "Disable", (BREAKER_ARG,), help="Let everything through and record nothing."),
    Command(
        "metrics_only",
        "Metrics only",
        (BREAKER_ARG,),
        help="Let everything through, record, and say when it would have opened.",
    ),
    Command("reset_breaker", "Reset", (BREAKER_ARG,), help="Back to CLOSED with an empty window and no backoff."),
)


CHAIN_ONLY = {"service": ("A", "B", "C"), "breaker": ("B", "C")}  # names only the chain topology has


def conflicts(values: Mapping[str, Any], script: Sequence[Action]) -> list[str]:
    """A scripted command naming a service or breaker of the chain in a single-service run is refused rather than
    ignored when it comes: that run has S only ("downstream")."""
    if values["topology"] == "chain":
        return []
    return [
        f"do {format_time(action.t)}: {action.command} names {arg} {value}, which only the chain topology has "
        "(this run is single: use downstream)"
        for action in script
        for arg, value in action.args
        if value in CHAIN_ONLY.get(arg, ())
    ]
