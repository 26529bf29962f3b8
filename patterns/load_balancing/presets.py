"""Named scenarios, each telling one story on lanes raced over the same traffic (tests/load_balancing checks each
story's point on its own run)."""

from __future__ import annotations

from patterns.core.registry import Preset
from patterns.core.story import with_chapters

from .stories import STORIES

ALGORITHMS = "Algorithms compared"
HASHING = "Hashing schemes"
HEALTH = "Health"

PRESETS = (
    Preset(
        "uneven-servers",
        "Uneven servers: round-robin vs least request",
        "Two fast servers and two slow ones (a quarter of the speed), at 60% of the total capacity. Round-robin "
        "gives each the same share, more than the slow ones can serve: their queues fill, their requests wait "
        "and overflow. Least connections and power-of-two-choices least request see the queues and send the "
        "slow servers only what they can take.",
        {
            "algorithms": "round_robin.least_connections.p2c_least_request",
            "servers": 4,
            "speeds": "2_2_0.5_0.5",
            "rate": 240.0,
        },
        seed=3,
        section=ALGORITHMS,
    ),
    Preset(
        "slow-server",
        "A slow server and peak EWMA",
        "At 10 s s1 becomes ten times slower. At this light load every server is mostly idle, so least request "
        "sees ties and keeps sending s1 its share, each such request taking ten times longer. Peak EWMA weighs "
        "the pending requests by each server's measured latency, learns at once that s1 is slow and sends it "
        "almost nothing: its p95 stays low.",
        {"algorithms": "round_robin.p2c_least_request.peak_ewma", "rate": 60.0},
        ((10.0, "slow_server", {"server": "s1", "factor": 10.0}),),
        seed=5,
        section=ALGORITHMS,
    ),
    Preset(
        "random-vs-p2c",
        "Random vs power of two choices at high load",
        "Ten servers of one slot each at 90% load. Random choice lets queues grow by chance on some servers while "
        "others idle; asking two random servers and taking the less busy one (Mitzenmacher's power of two "
        "choices) keeps every queue short: compare the queues in the load chart and the p99.",
        {
            "algorithms": "random.p2c_least_request",
            "servers": 10,
            "concurrency": 1,
            "queue_limit": 50,
            "rate": 180.0,
            "cost_sigma": 0.3,
        },
        seed=7,
        section=ALGORITHMS,
    ),
    Preset(
        "server-leaves",
        "A server leaves: ring (3 vs 100 vnodes), Maglev, rendezvous",
        "Ten servers; at 10 s s3 leaves. Every scheme must move at least s3's keys, a tenth of them. Rendezvous "
        "moves exactly those; the 100-vnode ring about a tenth; Maglev a little more (a few other slots change "
        "hands when its table is refilled); the 3-vnode ring moves whatever s3's few, uneven arcs held, and its "
        "key shares were far from equal to begin with. See the moved shares in the metrics and the rings.",
        {
            "algorithms": "ring_hash-3.ring_hash-100.maglev.rendezvous",
            "servers": 10,
            "rate": 100.0,
        },
        ((10.0, "remove_server", {"server": "s3"}),),
        seed=11,
        section=HASHING,
    ),
    Preset(
        "hot-key",
        "A hot key, with and without bounded loads",
        "Keys follow a Zipf law, and at 5 s a third of all requests start carrying the same key. The plain ring "
        "sends all of them to the key's owner, which overflows and drops; with bounded loads (c = 1.25) a server "
        "at capacity passes the request on clockwise, so the hot key spills over to its neighbours and no "
        "server holds more than 1.25 times the mean.",
        {
            "algorithms": "ring_hash.bounded_load",
            "key_distribution": "zipf",
            "rate": 200.0,
            "queue_limit": 10,
        },
        ((5.0, "hot_key", {"share": 0.35}),),
        seed=13,
        section=HASHING,
    ),
    Preset(
        "outlier-ejection",
        "A failing server ejected by outlier detection",
        "At 5 s s2 starts answering every request with a fast error (active health checks are off here). After "
        "five errors in a row outlier detection ejects it for 5 s; back in, it fails five more and is ejected "
        "for 10 s, then 15 s: each ejection lasts longer. A request already on its way to s2 that succeeds resets the "
        "count, as in Envoy.",
        {
            "algorithms": "round_robin.p2c_least_request",
            "health_checks": False,
            "base_ejection_s": 5.0,
            "max_ejection_percent": 20.0,
        },
        ((5.0, "fail_server", {"server": "s2", "probability": 1.0}),),
        seed=17,
        section=HEALTH,
    ),
    Preset(
        "panic",
        "Panic mode when most servers are down",
        "Six servers; at 5 s four of them start failing and the health checks mark them unhealthy. With two of "
        "six healthy, below the 50% panic threshold, sending everything to the two survivors would crush them, so "
        "the balancer panics and routes to all six again (Envoy's choice: some errors beat a total overload). "
        "At 25 s they recover, and panic ends once the checks pass.",
        {"algorithms": "round_robin.least_connections", "servers": 6, "rate": 200.0, "outlier_detection": False},
        (
            *((5.0, "fail_server", {"server": f"s{i}", "probability": 1.0}) for i in range(1, 5)),
            *((25.0, "recover_server", {"server": f"s{i}"}) for i in range(1, 5)),
        ),
        seed=19,
        section=HEALTH,
    ),
)
PRESETS = with_chapters(PRESETS, STORIES)  # each story told chapter by chapter (stories.py)
