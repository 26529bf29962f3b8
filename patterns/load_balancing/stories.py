"""The load-balancing presets told step by step; tests/core/test_stories.py checks every claim against the run.
Highlights name the topology's server nodes per lane (l0_s4 is s4 in the first lane) and their edges (l0e_s4)."""

from __future__ import annotations

from patterns.core.story import Chapter, Claim, Match, count, latest, where


def _servers(*ids: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("topology", ids),)


def _deeper(lane: str, depth: int) -> Match:
    return Match("lb.queue", (("lane", "==", lane), ("depth", ">", depth)))


UNEVEN_SERVERS = (
    Chapter(
        "Three balancers race on the same traffic, each with the same four servers: s1 and s2 are fast (speed "
        "2), s3 and s4 slow (speed 0.5). Together they can serve the load, 240 requests a second.",
        at=0.0,
        highlight=_servers("l0_s3", "l0_s4"),
        claims=(latest(where("lb.setup"), concurrency=4, queue_limit=20),),
    ),
    Chapter(
        "Round-robin gives every server the same quarter of the requests, more than slow s4 can serve: 10 "
        "requests already wait in its queue.",
        after=Match("lb.queue", (("lane", "==", "round_robin"), ("depth", "==", 10))),
        highlight=_servers("l0_s4"),
        claims=(latest(where("lb.queue", lane="round_robin", depth=10), server="s4"),),
    ),
    Chapter(
        "s4's queue is full (20 requests): round-robin now drops what it sends there.",
        after=where("lb.drop"),
        highlight=_servers("l0_s4"),
        claims=(latest(where("lb.drop"), lane="round_robin", server="s4", reason="queue_full"),),
    ),
    Chapter(
        "After 10 s round-robin has dropped more than 300 requests on s3 and s4. Least connections and P2C "
        "least request count what each server has in hand and send the slow ones less: they dropped none, and "
        "none of their queues ever held more than 4.",
        at=10.0,
        highlight=_servers("l0_s3", "l0_s4", "l1_s3", "l1_s4", "l2_s3", "l2_s4"),
        claims=(
            count(where("lb.drop", lane="round_robin"), ">", 300),
            count(Match("lb.drop", (("lane", "!=", "round_robin"),)), "==", 0),
            count(Match("lb.drop", (("server", "in", ("s1", "s2")),)), "==", 0),
            count(_deeper("least_connections", 4), "==", 0),
            count(_deeper("p2c_least_request", 4), "==", 0),
        ),
    ),
)

RANDOM_VS_P2C = (
    Chapter(
        "Ten equal servers that serve one request at a time, at 90% of their capacity. One balancer picks a "
        "server at random; the other picks two at random and sends to the less busy (the power of two choices).",
        at=0.0,
        claims=(latest(where("lb.setup"), concurrency=1, lanes=["random", "p2c_least_request"]),),
    ),
    Chapter(
        "By chance random sent s4 more than it could serve: 10 requests wait there, while other servers idle.",
        after=Match("lb.queue", (("lane", "==", "random"), ("depth", "==", 10))),
        highlight=_servers("l0_s4"),
        claims=(latest(where("lb.queue", lane="random", depth=10), server="s4"), count(_deeper("random", 10), "==", 0)),
    ),
    Chapter(
        "After 20 s: some queue under random has held more than 20 requests; under two choices no queue ever "
        "held more than 4. Asking just one more server is enough to avoid the unlucky ones.",
        at=20.0,
        claims=(count(_deeper("random", 20), ">=", 1), count(_deeper("p2c_least_request", 4), "==", 0)),
    ),
    Chapter(
        "Neither balancer dropped a request: random's cost is waiting, in its long queues.",
        at=30.0,
        pause=False,
        claims=(count(where("lb.drop"), "==", 0),),
    ),
)


def _moved(lane: str, share: float) -> Claim:
    return latest(where("lb.membership", lane=lane, server="s3"), change="remove", moved_share=share)


SERVER_LEAVES = (
    Chapter(
        "Ten servers, four ways of hashing a request's key to a server: rings with 3 and with 100 virtual nodes "
        "per server, Maglev and rendezvous. The same key always goes to the same server while nothing changes.",
        at=0.0,
        claims=(latest(where("lb.setup"), hashing=["ring_hash-3", "ring_hash-100", "maglev", "rendezvous"]),),
    ),
    Chapter(
        "At 10 s s3 leaves. Ideally only its keys move, a tenth of them. The ring with 3 virtual nodes moved "
        "only 3.0% of the sample keys: s3's few arcs were short, because such a ring shares keys unequally.",
        after=where("lb.membership", lane="ring_hash-3"),
        claims=(_moved("ring_hash-3", 0.03),),
    ),
    Chapter(
        "With 100 virtual nodes the shares are even: the ring moved 12.4%, close to a tenth.",
        after=where("lb.membership", lane="ring_hash-100"),
        claims=(_moved("ring_hash-100", 0.124),),
    ),
    Chapter(
        "Maglev refills its lookup table and moved 10.7%: s3's slots, plus a few others that changed hands.",
        after=where("lb.membership", lane="maglev"),
        claims=(_moved("maglev", 0.107),),
    ),
    Chapter(
        "Rendezvous hashing moved 9.1%: exactly the keys s3 held, and nothing else.",
        after=where("lb.membership", lane="rendezvous"),
        claims=(_moved("rendezvous", 0.091),),
    ),
    Chapter(
        "Since s3 left, no balancer has sent it a request: its keys now go to their new owners.",
        at=20.0,
        pause=False,
        claims=(count(where("lb.route", server="s3"), "==", 0, since_previous=True),),
    ),
)

HOT_KEY = (
    Chapter(
        "Keys follow a Zipf law: a few are very popular. The plain ring sends a key always to the same server, "
        "so s4, which owns the most popular keys, already drops requests. At 5 s it gets worse: 35% of all "
        "requests start carrying one key.",
        at=5.0,
        highlight=_servers("l0_s4"),
        claims=(
            latest(where("lb.traffic"), hot_share=0.35),
            count(Match("lb.drop", (("server", "!=", "s4"),)), "==", 0),
        ),
    ),
    Chapter(
        "The plain ring keeps sending the hot key to its owner s4, which drops more than 200 requests in 5 s. The "
        "bounded-load ring dropped none.",
        at=10.0,
        highlight=_servers("l0_s4"),
        claims=(
            count(where("lb.drop", lane="ring_hash", server="s4"), ">", 200, since_previous=True),
            count(where("lb.drop", lane="bounded_load"), "==", 0),
        ),
    ),
    Chapter(
        "With bounded loads (c = 1.25) a server with more than 1.25 times the mean load passes the request on "
        "clockwise, so the hot key spills over to s4's neighbours. From 10 to 20 s the plain ring sent s4 1275 "
        "requests; the bounded ring sent it 550, and every server got more than 250.",
        at=20.0,
        highlight=_servers("l1_s1", "l1_s2", "l1_s3", "l1_s4", "l1_s5"),
        claims=(
            count(where("lb.route", lane="ring_hash", server="s4"), "==", 1275, since_previous=True),
            count(where("lb.route", lane="bounded_load", server="s4"), "==", 550, since_previous=True),
            *(
                count(where("lb.route", lane="bounded_load", server=f"s{i}"), ">", 250, since_previous=True)
                for i in range(1, 6)
            ),
            count(where("lb.drop", lane="bounded_load"), "==", 0),
        ),
    ),
)

STORIES = {
    "uneven-servers": UNEVEN_SERVERS,
    "random-vs-p2c": RANDOM_VS_P2C,
    "server-leaves": SERVER_LEAVES,
    "hot-key": HOT_KEY,
}
