"""The circuit-breaker pattern as the kernel sees it: parameters, commands, events, diagrams and presets.

Parameter names follow what they mean in the libraries people run in production (resilience4j above all), so a
production breaker can be typed in and replayed; the explanation page maps each one.
"""

from __future__ import annotations

from patterns.core.registry import Command, Diagram, EventType, NodeActions, Param, Pattern, Preset, in_group
from patterns.core.story import with_chapters

from . import diagrams
from .breaker import HALF_OPEN_RULES, POLICIES, RECORDING_RULES, STATES
from .engine import BREAKER_TARGETS, SERVICE_TARGETS, CircuitBreakerEngine
from .stories import STORIES

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
    "service", "choice", "downstream", "Service", choices=SERVICE_TARGETS, help="downstream: S, or C in a chain."
)
BREAKER_ARG = Param(
    "breaker",
    "choice",
    "all",
    "Breaker",
    choices=BREAKER_TARGETS,
    help="The breaker in front of which service; downstream: S, or C in a chain.",
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

EVENT_TYPES = (
    EventType(
        "call",
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
        "outcome",
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
        "serve",
        "A service takes a call into one of its slots.",
        {"call": "the attempt", "service": "the service", "waited": "seconds it queued first"},
    ),
    EventType(
        "retry",
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
        "transition",
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
        "would_open",
        "A METRICS_ONLY breaker crossed a threshold: it would have opened (said once per crossing).",
        {
            "hop": "the breaker",
            "reason": "failure_rate, slow_rate or consecutive_failures",
            "calls": "as for a transition, as are failures, slow_calls, failure_rate, slow_rate and consecutive",
        },
    ),
    EventType(
        "service",
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
        "traffic",
        "The users' request rate changed, or a burst arrives.",
        {"rate": "requests per second", "burst": "requests arriving at once (0 for a rate change)"},
    ),
    EventType(
        "ignored",
        "A command named a service or breaker this topology does not have.",
        {"command": "the command", "reason": "why"},
    ),
)

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

SERVICE_COMMANDS = ("outage_on", "outage_off", "slow_on", "slow_off", "set_failure_probability", "set_latency")
BREAKER_COMMANDS = ("force_open", "disable", "metrics_only", "reset_breaker")
NODE_ACTIONS = (
    # diagrams.cascade draws service X as node svcX; the single topology's one service S is "downstream"
    NodeActions("service", "Service", r"svcS", SERVICE_COMMANDS, arg="service", name="downstream"),
    NodeActions("service", "Service", r"svc([ABC])", SERVICE_COMMANDS, arg="service"),
    NodeActions("breaker", "Its breaker", r"svcS", BREAKER_COMMANDS, arg="breaker", name="downstream"),
    NodeActions("breaker", "Its breaker", r"svc([BC])", BREAKER_COMMANDS, arg="breaker"),
    NodeActions("breaker", "Breaker", "|".join(STATES), BREAKER_COMMANDS, arg="breaker", name="downstream"),
    NodeActions("traffic", "Users", r"users", ("set_request_rate", "burst")),
)


def targets(engine: CircuitBreakerEngine) -> dict[str, tuple[str, ...]]:
    """The services and the breakers in front of them, by the names the commands take."""

    def named(name: str) -> str:
        return "downstream" if name == "S" else name

    services = tuple(named(s.name) for s in engine.services)
    breakers = tuple(named(h.name) for h in engine.hops if h.breaker is not None)
    return {
        "service": tuple(dict.fromkeys((*services, "downstream"))),
        "breaker": tuple(dict.fromkeys(("all", *breakers, "downstream"))),
    }


PATTERN = Pattern(
    slug="circuit-breaker",
    title="Circuit breaker",
    summary=(
        "A circuit breaker sits between a caller and a service and watches the outcomes of calls. When too many "
        "fail or are slow it opens and rejects calls at once, so that the caller stops waiting on a service that "
        "cannot answer and the service gets room to recover; after a while it lets a few trial calls through "
        "and closes again if they succeed. Make a service fail, hang or slow down, and watch the breaker trip, "
        "probe and recover, or watch a chain of services collapse without one."
    ),
    engine=CircuitBreakerEngine,
    params=PARAMS,
    commands=COMMANDS,
    event_types=EVENT_TYPES,
    diagrams=(
        Diagram("state", "Breaker states", diagrams.state),
        Diagram("flow", "Decision flow", diagrams.flow, wide=True),
        Diagram("rates", "Rates over time", diagrams.rates),
        Diagram("cascade", "Services", diagrams.cascade),
    ),
    metrics=diagrams.metrics,
    presets=with_chapters(PRESETS, STORIES),
    explain_template="circuit_breaker/explain.html",
    order=10,
    targets=targets,
    node_actions=NODE_ACTIONS,
    focus=("cascade", "state"),
    routine=("call", "outcome", "serve"),
)
