"""The circuit breaker's event types: what each event says, field by field."""

from __future__ import annotations

from patterns.core.registry import EventType

from .params import STATE_LIST

EVENT_TYPES = (
    EventType(
        "cb.call",
        "A caller starts one attempt of a call (rejections and refusals included).",
        {
            "call": "id of this attempt, unique in the run",
            "request": "id of the user request it serves",
            "parent": "in a chain, the call to the service making this call; null for the users' calls",
            "hop": "the service called: S, or A, B, C",
            "attempt": "1 for the first try, 2 for the first retry, ...",
            "state": f"the breaker's state once it has decided ({STATE_LIST}); null where there is no breaker",
            "trial": "true if let through as a half-open trial",
        },
    ),
    EventType(
        "cb.outcome",
        "How an attempt ended; exactly one per call. Recording it may move the breaker: the "
        "transition then follows at once.",
        {
            "call": "the attempt",
            "request": "the user request",
            "hop": "the service called",
            "attempt": "try number",
            "outcome": "success | failure | timeout | rejected (by the breaker) | saturated (the caller's limit)",
            "reason": "failure: error, outage, queue_full, downstream; timeout: timeout; rejected: open, "
            "half_open_full, forced_open; saturated: caller_limit; success: null",
            "slow": "true if it took longer than the slow-call duration (a timeout counts as slow when its duration "
            "is longer); a separate flag, so a slow success is still a success",
            "duration": "seconds from start to answer or timeout; null for calls that never ran",
            "recorded": "true if the breaker counted it: it was let through by the breaker's current state (CLOSED, "
            "HALF_OPEN or METRICS_ONLY) and the breaker has not moved since",
            "remaining": "for a rejection by OPEN, seconds left of its wait; else null",
        },
    ),
    EventType(
        "cb.serve",
        "A service takes a call into one of its slots.",
        {"call": "the attempt", "service": "the service", "waited": "seconds it queued first"},
    ),
    EventType(
        "cb.retry",
        "A failed or timed-out attempt will be retried.",
        {
            "call": "the failed attempt",
            "request": "the user request",
            "hop": "the service called",
            "attempt": "number of the coming try",
            "delay": "seconds until it starts",
        },
    ),
    EventType(
        "cb.transition",
        "A breaker changes state.",
        {
            "hop": "the service the breaker protects",
            "from": "state before",
            "to": "state after",
            "reason": "failure_rate, slow_rate, consecutive_failures (tripped); wait_elapsed (to HALF_OPEN); "
            "trials_passed, trial_failure, half_open_timeout (from HALF_OPEN); command (manual)",
            "calls": "calls in the window (or trials back) when it was judged; absent for manual and timed moves",
            "failures": "failed or timed-out calls among them",
            "slow_calls": "slow calls among them",
            "failure_rate": "failures in % of calls",
            "slow_rate": "slow calls in % of calls",
            "consecutive": "instead of the five above, for the consecutive policy: the failures in a row",
            "wait": "into OPEN: seconds it will reject calls (the backoff applied)",
            "until": "into OPEN: the time its wait ends",
        },
    ),
    EventType(
        "cb.would_open",
        "A METRICS_ONLY breaker crossed a threshold: it would have opened (said once per crossing).",
        {
            "hop": "the breaker",
            "reason": "failure_rate, slow_rate or consecutive_failures",
            "calls": "as for a transition, as are failures, slow_calls, failure_rate, slow_rate and consecutive",
        },
    ),
    EventType(
        "cb.service",
        "A command changed a service.",
        {
            "service": "the service",
            "outage": "null, error or hang",
            "slow_factor": "latency multiplier",
            "failure_probability": "chance of failure",
            "latency_ms": "latency median",
        },
    ),
    EventType(
        "cb.traffic",
        "The users' request rate changed, or a burst arrives.",
        {"rate": "requests per second", "burst": "requests arriving at once (0 for a rate change)"},
    ),
)
