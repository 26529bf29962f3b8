"""Load balancing's event types: what each event says, field by field."""

from __future__ import annotations

from patterns.core.registry import EventType

LANE_FIELD = {"lane": "the lane (an algorithm, as named in the algorithms parameter)"}

SERVER_FIELDS = {
    "server": "the server",
    "speed": "work per second",
    "weight": "its weight",
    "slow": "service-time multiplier",
    "fail_probability": "share of requests and health checks it fails",
    "present": "false once removed",
}

EVENT_TYPES = (
    EventType(
        "lb.setup",
        "The run's lanes and servers, at time 0.",
        {
            "lanes": "lane names, in order",
            "hashing": "the lanes that hash keys",
            "servers": "each server's settings (fields as in lb.server)",
            "concurrency": "slots per server",
            "queue_limit": "queue places per server",
            "window_s": "the metrics' sliding window",
            "sample_keys": "size of the key sample lb.membership compares (k0, k1, ...)",
        },
    ),
    EventType(
        "lb.arrive",
        "A request arrives; every lane gets this same request at this instant.",
        {"request": "id", "key": "its key (k0.. or hot)", "cost": "seconds of work at speed 1"},
    ),
    EventType(
        "lb.route",
        "A lane's balancer sent the request to a server.",
        {**LANE_FIELD, "request": "id", "server": "the chosen server"},
    ),
    EventType(
        "lb.queue",
        "Every slot of the server was busy: the request waits in its FIFO queue (it starts when a request ahead "
        "of it completes).",
        {**LANE_FIELD, "request": "id", "server": "the server", "depth": "queue length with it"},
    ),
    EventType(
        "lb.drop",
        "The request was dropped.",
        {
            **LANE_FIELD,
            "request": "id",
            "server": "the server, or null",
            "reason": "queue_full (after an lb.route) or no_server (nothing eligible)",
        },
    ),
    EventType(
        "lb.complete",
        "A server answered.",
        {
            **LANE_FIELD,
            "request": "id",
            "server": "the server",
            "latency": "seconds since lb.arrive, queueing included",
            "ok": "false for an error from a failing server",
        },
    ),
    EventType(
        "lb.health",
        "An active health check changed a server's state in a lane.",
        {**LANE_FIELD, "server": "the server", "state": "healthy or unhealthy", "reason": "active_check"},
    ),
    EventType(
        "lb.eject",
        "Outlier detection ejected a server after consecutive errors.",
        {
            **LANE_FIELD,
            "server": "the server",
            "ejections": "how many times it has been ejected, this one included",
            "seconds": "base ejection time times ejections (capped at 300 s)",
            "until": "when the ejection ends",
        },
    ),
    EventType("lb.uneject", "An ejection ended.", {**LANE_FIELD, "server": "the server"}),
    EventType(
        "lb.panic",
        "A lane entered or left panic mode (too few usable servers: route to all).",
        {**LANE_FIELD, "on": "true when entering", "healthy": "usable servers", "servers": "present servers"},
    ),
    EventType(
        "lb.membership",
        "A lane's eligible servers or their weights changed, or the weight of any present server did (an ejected "
        "or unhealthy one too): the smooth round-robin turns start again from zero.",
        {
            **LANE_FIELD,
            "change": "add, remove, weight, health, eject, uneject or panic",
            "server": "the server concerned, or null",
            "eligible": "the servers the lane routes to now",
            "moved_keys": "hashing lanes: sample keys whose owner changed; null otherwise",
            "moved_share": "moved_keys over the sample size",
            "ideal_share": "the share a scheme holding every server at its fair share moves (1/n when one of n leaves)",
        },
    ),
    EventType(
        "lb.server",
        "A command changed a server.",
        {"change": "add, remove, slow, fail, recover or weight", **SERVER_FIELDS},
    ),
    EventType(
        "lb.traffic",
        "The request rate or hot key changed, or a burst arrives.",
        {"rate": "requests per second", "burst": "requests arriving at once (0 otherwise)", "hot_share": "hot key"},
    ),
)
