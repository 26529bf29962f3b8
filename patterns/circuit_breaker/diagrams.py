"""What a viewer sees of the engine: Mermaid sources, highlights, a rates chart and the metrics table.

Mermaid sources are built only from what changes rarely (the configuration, breaker transitions, service
switches, coarse load levels), so the browser re-renders them rarely; what changes with every call travels in
``nodes``/``edges`` (highlights applied in place) and in captions.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from patterns.core.charts import line_chart
from patterns.core.registry import Drawing

from .breaker import CLOSED, DISABLED, FORCED_OPEN, HALF_OPEN, METRICS_ONLY, OPEN, Breaker, epoch_second
from .engine import CircuitBreakerEngine
from .service import SERIES, Hop, LastCall, Service

CHART_SECONDS = 60
TIMES = "\N{MULTIPLICATION SIGN}"
NONE = "-"
RATE_SECONDS = 10

# -- state diagram --------------------------------------------------------------------------------------------------
CORE_EDGES = (
    (CLOSED, OPEN, "trip"),
    (OPEN, HALF_OPEN, "wait over"),
    (HALF_OPEN, CLOSED, "trials pass"),
    (HALF_OPEN, OPEN, "trial fails"),
)
COMMAND_LABELS = {CLOSED: "reset", FORCED_OPEN: "force open", DISABLED: "disable", METRICS_ONLY: "metrics only"}


def state(engine: CircuitBreakerEngine) -> Drawing:
    """The breaker's state machine with how often each transition happened; the current state is marked."""
    breaker = engine.primary.breaker
    counts = breaker.transitions
    lines = ["stateDiagram-v2", f"    [*] --> {breaker.initial}"]
    for source, target, label in CORE_EDGES:
        lines.append(f"    {source} --> {target}: {_counted(label, counts.get((source, target, False), 0))}")
    for (source, target, by_command), count in counts.items():
        if by_command:  # the breaker moves by itself only along the core edges
            lines.append(f"    {source} --> {target}: {_counted(COMMAND_LABELS[target], count)}")
    caption = f"Breaker in front of {engine.primary.name}: {breaker.state} for {_seconds(_in_state(engine))}"
    return Drawing(mermaid="\n".join(lines), nodes=(breaker.state,), caption=caption)


def _counted(label: str, count: int) -> str:
    return f"{label} {TIMES}{count}" if count else label


# -- decision flow --------------------------------------------------------------------------------------------------
class Node(NamedTuple):
    id: str
    shape: str  # "decision", "step" or "end"
    label: str


class Edge(NamedTuple):
    id: str
    source: str
    target: str
    label: str = ""


SHAPES = {"decision": ('{"', '"}'), "step": ('["', '"]'), "end": ('(["', '"])')}


def flow(engine: CircuitBreakerEngine) -> Drawing:
    """The decision flow of the configured breaker, with the path of the latest finished call highlighted."""
    hop = engine.primary
    nodes, edges = _flow_graph(engine)
    lines = ["flowchart TD"]
    for part, title in FLOW_PARTS.items():
        lines.append(f'    subgraph {part}["{title}"]')
        for node in nodes:
            if (node.id in BEFORE_THE_CALL) == (part == "before"):
                opening, closing = SHAPES[node.shape]
                lines.append(f"        {node.id}{opening}{node.label}{closing}")
        lines.append("    end")
    for edge in edges:
        label = f'|"{edge.label}"|' if edge.label else ""
        lines.append(f"    {edge.source} {edge.id}@-->{label} {edge.target}")
    path = _flow_path(engine, hop.last) if hop.last is not None else []
    by_id = {edge.id: edge for edge in edges}
    lit: list[str] = []
    for edge_id in path:
        for node_id in (by_id[edge_id].source, by_id[edge_id].target):
            if node_id not in lit:
                lit.append(node_id)
    caption = _last_caption(hop)
    return Drawing(mermaid="\n".join(lines), nodes=tuple(lit), edges=tuple(path), caption=caption, views=FLOW_PARTS)


# The flow in two parts the page shows one at a time (it is too tall to read whole): up to the call, and what its
# outcome does.
FLOW_PARTS = {"before": "Before the call", "after": "After the call"}
BEFORE_THE_CALL = frozenset({"nStart", "nLimit", "nRefuse", "nState", "nWait", "nHalf", "nTrials", "nReject", "nRun"})


def _manual_states(breaker: Breaker) -> list[str]:
    """The manual states this breaker is in or has been in: only those get their branch in the flow."""
    seen = {breaker.state, breaker.initial, *(target for _, target, _ in breaker.transitions)}
    return [s for s in (FORCED_OPEN, DISABLED, METRICS_ONLY) if s in seen]


def _flow_graph(engine: CircuitBreakerEngine) -> tuple[list[Node], list[Edge]]:
    hop = engine.primary
    breaker = hop.breaker
    config = breaker.config
    manual = _manual_states(breaker)
    backoff = ""
    if config.backoff_multiplier > 1:
        backoff = f"<br/>{TIMES}{_num(config.backoff_multiplier)} per reopen, max {_num(config.max_open_wait)} s"
    timer = "<br/>a timer moves it" if config.automatic_half_open else ""
    nodes = [Node("nStart", "end", f"Call to {hop.name}")]
    edges = []
    first = "nState"
    if hop.limit:
        first = "nLimit"
        nodes += [
            Node("nLimit", "decision", f"Caller below<br/>{hop.limit} in flight?"),
            Node("nRefuse", "step", "Refuse: caller saturated"),
        ]
        edges += [
            Edge("eLimitYes", "nLimit", "nState", "yes"),
            Edge("eLimitNo", "nLimit", "nRefuse", "no"),
            Edge("eRefuse", "nRefuse", "nErr"),
        ]
    edges.insert(0, Edge("eStart", "nStart", first))
    nodes += [
        Node("nState", "decision", "Breaker state?"),
        Node("nWait", "decision", f"Open wait of {_num(config.open_wait)} s over?{backoff}{timer}"),
        Node("nHalf", "step", "Go HALF_OPEN"),
        Node("nTrials", "decision", f"Fewer than {config.half_open_calls}<br/>trial calls let through?"),
        Node("nReject", "step", "Reject at once"),
        Node("nRun", "step", f"Call {hop.name}, timeout {_num(hop.timeout * 1000)} ms"),
        Node("nCounted", "decision", "Does the outcome count?"),
        Node("nSkip", "step", "Not counted: the breaker moved<br/>since, or records nothing"),
        Node("nRecord", "step", _record_label(config)),
        Node("nJudge", "decision", _judge_label(config)),
        Node("nOpen", "step", f"Go OPEN for {_num(config.open_wait)} s"),
        Node("nTrial", "step", "Record the trial"),
    ]
    edges += [
        Edge("eClosed", "nState", "nRun", "CLOSED"),
        Edge("eOpen", "nState", "nWait", "OPEN"),
        Edge("eWaitNo", "nWait", "nReject", "no"),
        Edge("eWaitYes", "nWait", "nHalf", "yes"),
        Edge("eHalf", "nHalf", "nTrials"),
        Edge("eHalfOpen", "nState", "nTrials", "HALF_OPEN"),
        Edge("eTrialsNo", "nTrials", "nReject", "no"),
        Edge("eTrialsYes", "nTrials", "nRun", "yes"),
        Edge("eReject", "nReject", "nErr"),
        Edge("eRun", "nRun", "nCounted", f"slow if over {_num(config.slow_call * 1000)} ms"),
        Edge("eNotCounted", "nCounted", "nSkip", "no"),
        Edge("eSkip", "nSkip", "nAnswer"),
        Edge("eCountClosed", "nCounted", "nRecord", "CLOSED"),
        Edge("eJudge", "nRecord", "nJudge"),
        Edge("eJudgeYes", "nJudge", "nOpen", "yes"),
        Edge("eJudgeNo", "nJudge", "nAnswer", "no"),
        Edge("eOpened", "nOpen", "nAnswer"),
        Edge("eCountHalf", "nCounted", "nTrial", "HALF_OPEN"),
    ]
    if config.half_open_rule == "any_failure":
        nodes += [
            Node("nFailed", "decision", "Failed?"),
            Node("nAllIn", "decision", f"{config.half_open_calls} successes?"),
        ]
        edges += [
            Edge("eTrialJudge", "nTrial", "nFailed"),
            Edge("eFailedYes", "nFailed", "nReopen", "yes"),
            Edge("eFailedNo", "nFailed", "nAllIn", "no"),
            Edge("eAllInYes", "nAllIn", "nClose", "yes"),
            Edge("eAllInNo", "nAllIn", "nAnswer", "no"),
        ]
    else:
        nodes += [
            Node("nAllIn", "decision", f"All {config.half_open_calls} trials in?"),
            Node("nFailed", "decision", _rates_label(config)),
        ]
        edges += [
            Edge("eTrialJudge", "nTrial", "nAllIn"),
            Edge("eAllInNo", "nAllIn", "nAnswer", "no"),
            Edge("eAllInYes", "nAllIn", "nFailed", "yes"),
            Edge("eFailedYes", "nFailed", "nReopen", "yes"),
            Edge("eFailedNo", "nFailed", "nClose", "no"),
        ]
    reopen = f"Go OPEN again{backoff.replace('<br/>', ', wait ')}" if backoff else "Go OPEN again"
    nodes += [Node("nReopen", "step", reopen), Node("nClose", "step", "Go CLOSED")]
    edges += [Edge("eReopened", "nReopen", "nAnswer"), Edge("eClosedAgain", "nClose", "nAnswer")]
    if FORCED_OPEN in manual:
        edges.append(Edge("eForced", "nState", "nReject", FORCED_OPEN))
    if DISABLED in manual:
        edges.append(Edge("eDisabled", "nState", "nRun", DISABLED))
    if METRICS_ONLY in manual:
        nodes.append(Node("nWould", "step", "Say it would open"))
        edges += [
            Edge("eMetricsOnly", "nState", "nRun", METRICS_ONLY),
            Edge("eCountMetrics", "nCounted", "nRecord", METRICS_ONLY),
            Edge("eWould", "nJudge", "nWould", "yes, metrics only"),
            Edge("eWould2", "nWould", "nAnswer"),
        ]
    nodes += [Node("nAnswer", "decision", "Success?"), Node("nOk", "end", "Return the answer")]
    edges.append(Edge("eAnswerYes", "nAnswer", "nOk", "yes"))
    if hop.retries:
        nodes.append(
            Node(
                "nRetry",
                "decision",
                f"Retries left?<br/>{hop.retries}, backoff from {_num(hop.retry_backoff * 1000)} ms",
            )
        )
        edges += [
            Edge("eAnswerNo", "nAnswer", "nRetry", "no"),
            Edge("eRetryYes", "nRetry", "nState", "yes, a new call"),
            Edge("eRetryNo", "nRetry", "nErr", "no"),
        ]
    else:
        edges.append(Edge("eAnswerNo", "nAnswer", "nErr", "no"))
    nodes.append(Node("nErr", "end", "Return an error"))
    return nodes, edges


def _record_label(config: Any) -> str:
    if config.policy == "consecutive":
        return "Count failures in a row<br/>a success resets the count"
    unit = "calls" if config.policy == "count_window" else "seconds"
    return f"Record in the last {config.window_size} {unit}"


def _judge_label(config: Any) -> str:
    if config.policy == "consecutive":
        return f"{config.consecutive_failures} failures in a row?"
    return f"At least {config.effective_minimum} calls and<br/>{_rates_label(config)}"


def _rates_label(config: Any) -> str:
    text = f"failures ≥ {_num(config.failure_threshold)}%"
    if config.slow_threshold < 100:
        text += f"<br/>or slow ≥ {_num(config.slow_threshold)}%"
    else:
        text += "<br/>or all slow"
    return text + "?"


def _flow_path(engine: CircuitBreakerEngine, last: LastCall) -> list[str]:
    """The edges the latest finished call went through."""
    hop = engine.primary
    path = ["eStart"]
    if last.outcome == "saturated":
        return [*path, "eLimitNo", "eRefuse"]
    if hop.limit:
        path.append("eLimitYes")
    if last.outcome == "rejected":
        branch = {
            "open": ["eOpen", "eWaitNo"],
            "half_open_full": ["eHalfOpen", "eTrialsNo"],
            "forced_open": ["eForced"],
        }[last.reason]
        return [*path, *branch, "eReject"]
    if last.woke:
        path += ["eOpen", "eWaitYes", "eHalf", "eTrialsYes"]
    elif last.state == HALF_OPEN:
        path += ["eHalfOpen", "eTrialsYes"]
    else:
        path.append({CLOSED: "eClosed", DISABLED: "eDisabled", METRICS_ONLY: "eMetricsOnly"}[last.state])
    path.append("eRun")
    failed = last.outcome != "success"
    if not last.recorded:
        path += ["eNotCounted", "eSkip"]
    elif last.state == HALF_OPEN:
        path += ["eCountHalf", "eTrialJudge"]
        if engine.primary.breaker.config.half_open_rule == "any_failure":
            if failed:
                path += ["eFailedYes", "eReopened"]
            else:
                path += ["eFailedNo", *(["eAllInYes", "eClosedAgain"] if last.moved_to else ["eAllInNo"])]
        elif last.moved_to is None:
            path.append("eAllInNo")
        else:
            path += [
                "eAllInYes",
                *(["eFailedYes", "eReopened"] if last.moved_to == OPEN else ["eFailedNo", "eClosedAgain"]),
            ]
    elif last.state == METRICS_ONLY:
        path += ["eCountMetrics", "eJudge", *(["eWould", "eWould2"] if last.would_open else ["eJudgeNo"])]
    else:
        path += ["eCountClosed", "eJudge", *(["eJudgeYes", "eOpened"] if last.moved_to == OPEN else ["eJudgeNo"])]
    if not failed:
        return [*path, "eAnswerYes"]
    path.append("eAnswerNo")
    if hop.retries:
        path.append("eRetryYes" if last.retried else "eRetryNo")
    return path


def _last_caption(hop: Hop) -> str:
    last = hop.last
    if last is None:
        return f"No call to {hop.name} has finished yet."
    text = f"Latest call to {hop.name}: {last.outcome}"
    if last.reason and last.reason != last.outcome:
        text += f" ({last.reason.replace('_', ' ')})"
    if last.slow:
        text += ", slow"
    if last.moved_to:
        text += f"; it moved the breaker to {last.moved_to}"
    return text + "."


# -- rates ----------------------------------------------------------------------------------------------------------
def rates(engine: CircuitBreakerEngine) -> Drawing:
    """Outcomes per second of the calls users make, over the last minute."""
    hop = engine.entry
    now = engine.sim.now
    last = epoch_second(now) - 1  # the last whole second
    span = max(0, min(CHART_SECONDS, last + 1))
    counts = hop.stats.per_second(last, span)
    title = f"Calls to {hop.name} per second"
    svg = line_chart(counts, x0=last - span + 1, dx=1, title=title, unit="/s")
    caption = f"Outcomes of the users' calls to {hop.name} in each whole virtual second of the last minute."
    return Drawing(svg=svg, caption=caption)


# -- services -------------------------------------------------------------------------------------------------------
def cascade(engine: CircuitBreakerEngine) -> Drawing:
    """Users and services left to right; each arrow carries the state of the breaker on it."""
    lines = ["flowchart LR", '    users(["Users"])']
    lit_nodes, lit_edges, caption = [], [], []
    for service in engine.services:
        lines.append(f'    svc{service.name}["{service.name}<br/>{_load(service)}"]')
        if service.busy >= service.concurrency:
            lit_nodes.append(f"svc{service.name}")
    source = "users"
    for hop in engine.hops:
        label = hop.breaker.state if hop.breaker is not None else "no breaker"
        lines.append(f'    {source} e{hop.name}@-->|"{label}"| svc{hop.name}')
        if hop.breaker is not None and hop.breaker.state in (OPEN, HALF_OPEN, FORCED_OPEN):
            lit_edges.append(f"e{hop.name}")
        service = hop.service
        saturated = hop.stats.totals["saturated"]
        caption.append(
            f"{hop.name}: {hop.in_flight} in flight, {service.busy}/{service.concurrency} busy, "
            f"{len(service.queue)} queued" + (f", {saturated} refused by the caller" if saturated else "")
        )
        source = f"svc{hop.name}"
    return Drawing(
        mermaid="\n".join(lines), nodes=tuple(lit_nodes), edges=tuple(lit_edges), caption="; ".join(caption) + "."
    )


def _load(service: Service) -> str:
    """A coarse word for how loaded a service is, so the diagram's text changes rarely."""
    if service.outage:
        words = f"down: {service.outage}"
    elif service.queue:
        words = "queueing"
    elif service.busy >= service.concurrency:
        words = "all slots busy"
    else:
        words = "up"
    return words + (f", slow {TIMES}{_num(service.slow_factor)}" if service.slow_factor != 1 else "")


# -- metrics --------------------------------------------------------------------------------------------------------
def metrics(engine: CircuitBreakerEngine) -> dict[str, Any]:
    """Hystrix-like numbers: the breaker in front of the deepest service, then what the users see."""
    now = engine.sim.now
    primary, entry = engine.primary, engine.entry
    breaker = primary.breaker
    chain = entry is not primary
    scope = f" (to {primary.name})" if chain else ""
    out: dict[str, Any] = {}
    for hop in engine.hops:
        if hop.breaker is not None:
            out[f"Breaker to {hop.name}" if chain else "State"] = hop.breaker.state
    out[f"Time in state{scope}"] = _seconds(_in_state(engine))
    out[f"Next half-open{scope}"] = _next_half_open(breaker, now)
    out[f"Open wait{scope}"] = _seconds(breaker.config.wait_after(breaker.reopens))
    out[f"Transitions{scope}"] = sum(breaker.transitions.values())
    out[f"Window{scope}"] = _judging(breaker)

    def users(label: str) -> str:
        return f"Users: {label}" if chain else label[0].upper() + label[1:]

    out[users("requests")] = engine.requests
    recent = entry.stats.rates(now, RATE_SECONDS)
    for name in SERIES:
        out[users(f"{name} /s")] = round(recent[name], 2)
    total = sum(recent[name] for name in SERIES if name != "slow")
    errors = total - recent["success"]
    out[users(f"error % ({RATE_SECONDS} s)")] = f"{errors * 100 / total:.1f}%" if total else NONE
    out[users("latency p50 / p90 / p99")] = " / ".join(_ms(entry.stats.percentile(q)) for q in (50, 90, 99))
    for name, count in entry.stats.totals.items():
        out[users(f"{name} (total)")] = count
    out["In flight"] = " / ".join(f"{hop.name} {hop.in_flight}" for hop in engine.hops)
    out["Busy slots"] = " / ".join(f"{s.name} {s.busy}/{s.concurrency}" for s in engine.services)
    out["Queued"] = " / ".join(f"{s.name} {len(s.queue)}" for s in engine.services)
    limited = [hop for hop in engine.hops if hop.limit]
    out["Caller saturated"] = " / ".join(f"{hop.name} {hop.stats.totals['saturated']}" for hop in limited) or NONE
    return out


def _in_state(engine: CircuitBreakerEngine) -> float:
    return engine.sim.now - engine.primary.breaker.entered_at


def _next_half_open(breaker: Breaker, now: float) -> str:
    if breaker.state != OPEN:
        return NONE
    if breaker.open_until > now:
        return f"in {_seconds(breaker.open_until - now)} (at {breaker.open_until:.1f} s)"
    return "with the next call"


def _judging(breaker: Breaker) -> str:
    tally = breaker.window_tally()
    if breaker.state == HALF_OPEN:
        return (
            f"{breaker.trials_admitted}/{breaker.config.half_open_calls} trials let through, {tally.calls} "
            f"back, {tally.failures} failed"
        )
    if breaker.state not in (CLOSED, METRICS_ONLY):
        return NONE
    if breaker.config.policy == "consecutive":
        return f"{breaker.consecutive} failures in a row"
    return f"{tally.calls} calls, {tally.failure_rate:.1f}% failed, {tally.slow_rate:.1f}% slow"


def _seconds(value: float) -> str:
    return f"{value:.1f} s"


def _ms(value: float | None) -> str:
    return NONE if value is None else f"{value * 1000:.0f} ms"


def _num(value: float) -> str:
    return f"{value:g}"
