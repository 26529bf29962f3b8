"""Each balancer's selection rule, exactly, and the shape of its answers (trails on its own flowchart)."""

from __future__ import annotations

import math
import os
import pickle
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patterns.load_balancing.balancers import ALGORITHMS, HASHING, Balancer, Pick, ServerView, shown
from patterns.load_balancing.balancers.hashed import TURN
from patterns.load_balancing.balancers.load_aware import PENALTY, PeakEwmaEstimate, sample_two
from patterns.load_balancing.hashing import HASH_SPACE

SEEDS = int(os.environ.get("LB_TEST_SEEDS", "5"))  # seeded repetitions of the statistical tests
SMALL_TABLE = {"maglev_table_size": 251}  # a small prime keeps Maglev's rebuilds cheap in property tests


def make(name: str, servers: list[ServerView], seed: int = 1, **options) -> Balancer:
    balancer = ALGORITHMS[name]({**SMALL_TABLE, **options}, random.Random(seed))
    balancer.set_servers(servers)
    return balancer


def views(*weights: int, healthy: tuple[bool, ...] = ()) -> list[ServerView]:
    return [
        ServerView(chr(ord("a") + i), weight=w, healthy=healthy[i] if healthy else True) for i, w in enumerate(weights)
    ]


def picks(balancer: Balancer, count: int, start: bool = False) -> list[str | None]:
    out = []
    for i in range(count):
        server = balancer.pick(f"key{i}", float(i)).server
        out.append(server)
        if start and server:
            balancer.on_start(server)
    return out


def test_the_registry_names_every_algorithm_of_the_contract():
    assert set(ALGORITHMS) == {
        "round_robin",
        "weighted_round_robin",
        "random",
        "weighted_random",
        "least_connections",
        "p2c_least_request",
        "peak_ewma",
        "ring_hash",
        "bounded_load",
        "maglev",
        "rendezvous",
    }
    assert {"ring_hash", "bounded_load", "maglev", "rendezvous"} == HASHING
    assert all(ALGORITHMS[name].hashing == (name in HASHING) for name in ALGORITHMS)


# ---------------------------------------------------------------------------------------------------- rotation


def test_round_robin_goes_in_order_and_wraps():
    balancer = make("round_robin", views(1, 1, 1))
    assert picks(balancer, 7) == list("abcabca")


def test_round_robin_skips_unhealthy_servers_and_says_so():
    balancer = make("round_robin", views(1, 1, 1, healthy=(True, False, True)))
    assert picks(balancer, 4) == list("acac")
    balancer = make("round_robin", views(1, 1, 1, healthy=(True, False, True)))
    balancer.pick("k")
    skipping = balancer.pick("k")
    assert skipping.server == "c" and "lap" in skipping.trail and skipping.detail == {"index": 2, "skipped": 1}


def test_round_robin_with_nobody_healthy_gives_up_after_one_lap():
    pick = make("round_robin", views(1, 1, healthy=(False, False))).pick("k")
    assert pick.server is None and pick.trail[-2:] == ("lap", "error")


def test_round_robin_keeps_its_place_when_a_server_joins():
    balancer = make("round_robin", views(1, 1, 1))
    assert picks(balancer, 2) == ["a", "b"]
    balancer.set_servers(views(1, 1, 1, 1))
    assert picks(balancer, 3) == ["c", "d", "a"]


@pytest.mark.parametrize(
    "weights, expected",
    [
        ((5, 1, 1), "aabacaa"),  # NGINX's own example (ngx_http_upstream_round_robin.c)
        ((4, 2, 1), "abacaba"),
        ((1, 1, 1), "abc"),
        ((3, 2), "ababa"),
    ],
)
def test_smooth_weighted_round_robin_gives_nginx_sequences(weights, expected):
    balancer = make("weighted_round_robin", views(*weights))
    assert "".join(picks(balancer, 2 * len(expected))) == expected * 2  # and the cycle repeats


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=6))
def test_smooth_weighted_round_robin_gives_each_server_its_weight_in_every_cycle(weights):
    balancer = make("weighted_round_robin", views(*weights))
    cycle = sum(weights)
    for _ in range(3):
        counts = Counter(picks(balancer, cycle))
        assert [counts[chr(ord("a") + i)] for i in range(len(weights))] == weights
        assert all(v == 0 for v in balancer.current.values())  # back to where it started: a true cycle


def test_smooth_weighted_round_robin_restarts_on_a_weight_change_but_not_on_health():
    balancer = make("weighted_round_robin", views(5, 1, 1))
    picks(balancer, 3)
    balancer.set_servers(views(5, 1, 1, healthy=(True, True, False)))
    assert balancer.current["a"] != 0  # health alone keeps the current weights
    balancer.set_servers(views(1, 1, 1))
    assert balancer.current == {} and picks(balancer, 3) == list("abc")


# ---------------------------------------------------------------------------------------------------- random


@pytest.mark.parametrize("name, weights", [("random", (1, 1, 1, 1)), ("weighted_random", (1, 2, 3, 4))])
def test_random_choices_follow_their_weights(name, weights):
    """Each share within 4.5 binomial standard deviations of its expected probability (here and below: a
    seeded run, so the test is deterministic; the bound says how far chance alone could plausibly go)."""
    draws = 20000
    balancer = make(name, views(*weights))
    counts = Counter(picks(balancer, draws))
    total = sum(weights) if name == "weighted_random" else len(weights)
    for i, weight in enumerate(weights):
        p = (weight if name == "weighted_random" else 1) / total
        assert abs(counts[chr(ord("a") + i)] / draws - p) <= 4.5 * math.sqrt(p * (1 - p) / draws)


def test_weighted_random_never_picks_unhealthy_or_drained_servers():
    balancer = make("weighted_random", [*views(1, 0), ServerView("c", 5, healthy=False)])
    assert set(picks(balancer, 200)) == {"a"}


# ---------------------------------------------------------------------------------------------------- load aware


def test_least_connections_picks_the_fewest_active():
    balancer = make(
        "least_connections", [ServerView("a", active=3), ServerView("b", active=1), ServerView("c", active=2)]
    )
    pick = balancer.pick("k")
    assert pick.server == "b" and pick.detail == {"active": 1, "tied": ["b"]} and "rotate" not in pick.trail


def test_least_connections_compares_active_per_unit_of_weight():
    balancer = make("least_connections", [ServerView("a", 1, active=2), ServerView("b", 3, active=5)])
    assert balancer.pick("k").server == "b"  # 5/3 < 2/1


def test_least_connections_ties_take_turns_by_smooth_weighted_round_robin():
    """NGINX's rule: tied servers share by smooth weighted round-robin, so an idle cluster is served in turn."""
    balancer = make("least_connections", views(1, 1, 1))
    assert picks(balancer, 6) == list("abcabc")  # nobody ever started: always a three-way tie
    balancer = make("least_connections", views(5, 1, 1))
    assert "".join(picks(balancer, 7)) == "aabacaa"
    balancer = make("least_connections", [ServerView("a", active=1), ServerView("b"), ServerView("c")])
    assert picks(balancer, 4) == list("bcbc")  # only the tied take part


def test_least_connections_counts_started_and_finished_requests():
    balancer = make("least_connections", views(1, 1))
    # a wins the first tie; b, alone at 0, is chosen outside the tie rule, so b is owed the next tie (NGINX)
    assert picks(balancer, 4, start=True) == list("abba")
    balancer.on_finish("b", 0.1, 1.0)
    assert balancer.pick("k").server == "b"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=2, max_size=8),
    st.integers(0, 2**32),
    st.sampled_from([2, 3]),
)
def test_p2c_never_picks_the_busier_of_its_candidates(actives, seed, choices):
    servers = [ServerView(f"s{i}", active=a) for i, a in enumerate(actives)]
    balancer = make("p2c_least_request", servers, seed=seed, choices=choices)
    pick = balancer.pick("k")
    candidates = pick.detail["candidates"]
    assert len(candidates) == len(set(candidates)) == min(choices, len(actives))
    assert pick.server in candidates
    active = {s.id: s.active for s in servers}
    assert active[pick.server] == min(active[c] for c in candidates)
    assert pick.server == next(c for c in candidates if active[c] == active[pick.server])  # first drawn of equals


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 5), st.integers(0, 6)), min_size=2, max_size=6),
    st.integers(0, 2**32),
    st.sampled_from([0.0, 0.5, 1.0, 2.0]),
)
def test_p2c_with_unequal_weights_keeps_the_best_weight_over_active_plus_one_to_the_bias(servers, seed, bias):
    views_ = [ServerView(f"s{i}", weight=w, active=a) for i, (w, a) in enumerate(servers)]
    balancer = make("p2c_least_request", views_, seed=seed, active_request_bias=bias)
    pick = balancer.pick("k")
    by_id = {v.id: v for v in views_}

    def envoy_weight(server: str) -> float:
        return by_id[server].weight / (by_id[server].active + 1) ** bias

    if len({w for w, _ in servers}) == 1:
        assert by_id[pick.server].active == min(by_id[c].active for c in pick.detail["candidates"])
    else:
        assert envoy_weight(pick.server) == pytest.approx(max(envoy_weight(c) for c in pick.detail["candidates"]))


def test_p2c_draws_every_pair_of_distinct_servers_alike():
    balancer = make("p2c_least_request", views(1, 1, 1))
    pairs = Counter(frozenset(balancer.pick("k").detail["candidates"]) for _ in range(3000))
    assert set(pairs) == {frozenset("ab"), frozenset("ac"), frozenset("bc")}
    assert all(abs(count / 3000 - 1 / 3) <= 4.5 * math.sqrt((1 / 3) * (2 / 3) / 3000) for count in pairs.values())


@pytest.mark.parametrize("seed", range(SEEDS))
def test_balls_into_bins_two_choices_beat_one(seed):
    """n*k balls into n bins, none leaving. One random choice overshoots the mean k by Theta(sqrt(k ln n));
    the lesser loaded of two by ln ln n / ln 2 + O(1) (Berenbrink et al. 2006, the heavily loaded case).
    Asserted: two choices stay within k + ceil(log2 ln n) + 1, and random's excess is at least twice theirs."""
    n, k = 100, 10
    maxima = {}
    for name in ("random", "p2c_least_request"):
        balancer = make(name, [ServerView(f"s{i}") for i in range(n)], seed=seed)
        for _ in range(n * k):
            balancer.on_start(balancer.pick("k").server)
        assert sum(balancer.active.values()) == n * k
        maxima[name] = max(balancer.active.values())
    assert maxima["p2c_least_request"] <= k + math.ceil(math.log2(math.log(n))) + 1
    assert maxima["random"] - k >= 2 * (maxima["p2c_least_request"] - k)


def costs_of(pick: Pick) -> dict[str, float]:
    return dict(zip(pick.detail["candidates"], pick.detail["loads"], strict=True))


def test_peak_ewma_estimate_takes_a_peak_at_once_and_decays_with_time():
    tau = 10.0
    estimate = PeakEwmaEstimate()
    estimate.observe(0.010, 0.0, tau)
    estimate.observe(0.500, 1.0, tau)
    assert estimate.cost == 0.500  # one slow response replaces the average at once
    estimate.observe(0.010, 6.0, tau)  # then a fast one, 5 s later, pulls it down by 1 - exp(-5/10)
    w = math.exp(-5 / tau)
    assert estimate.cost == pytest.approx(0.500 * w + 0.010 * (1 - w))
    estimate.observe(0.010, 6.0, tau)  # no time passed: no weight for the new sample
    assert estimate.cost == pytest.approx(0.500 * w + 0.010 * (1 - w))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.floats(0.0, 5.0), st.floats(-1.0, 3.0)),  # (decay or observe, rtt, time step)
        max_size=30,
    ),
    st.floats(1e-3, 100.0),
)
def test_peak_ewma_decay_is_an_observed_zero_to_the_bit(steps, tau):
    fast, slow = PeakEwmaEstimate(), PeakEwmaEstimate()
    now = 0.0
    for decay, rtt, step in steps:
        now += step  # steps back in time too: a decay to an earlier time changes nothing
        if decay:
            fast.decay(now, tau)
            slow.observe(0.0, now, tau)
        else:
            fast.observe(rtt, now, tau)
            slow.observe(rtt, now, tau)
        assert (fast.cost, fast.stamp) == (slow.cost, slow.stamp)


def test_peak_ewma_avoids_a_server_right_after_one_slow_response_and_returns_to_it():
    balancer = make("peak_ewma", views(1, 1), ewma_decay_s=10.0)
    for server in "ab":
        balancer.on_start(server)
        balancer.on_finish(server, 0.020, 0.0)
    balancer.on_start("a")
    balancer.on_finish("a", 2.0, 1.0)  # one slow response
    pick = balancer.pick("k", 1.0)
    assert pick.server == "b" and costs_of(pick) == {"a": 2.0, "b": pytest.approx(0.020 * math.exp(-0.1), abs=1e-6)}
    # idle, both estimates decay toward 0 as Finagle's get() does; a is still dearer but the gap shrinks
    costs = costs_of(balancer.pick("k", 31.0))
    assert costs["a"] == pytest.approx(2.0 * math.exp(-3.0), rel=1e-3)
    assert costs["b"] < costs["a"]


def test_peak_ewma_cost_counts_pending_requests_and_penalizes_a_busy_unmeasured_server():
    balancer = make("peak_ewma", views(1, 1))
    balancer.on_start("a")
    balancer.on_finish("a", 0.1, 0.0)
    balancer.on_start("a")
    balancer.on_start("a")
    balancer.on_start("b")  # b is busy and has never answered
    assert costs_of(balancer.pick("k", 0.0)) == {"a": pytest.approx(0.1 * 3), "b": PENALTY + 1}


# ---------------------------------------------------------------------------------------------------- all of them


SERVER_STATES = st.lists(
    st.builds(ServerView, st.sampled_from("abcdef"), st.integers(0, 3), st.integers(0, 4), st.just(0.0), st.booleans()),
    max_size=6,
    unique_by=lambda v: v.id,
)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(ALGORITHMS)), SERVER_STATES, st.lists(st.text("xyz0123", max_size=6), max_size=5))
def test_every_pick_is_an_eligible_server_reached_through_the_flowchart(name, servers, keys):
    balancer = make(name, servers, bounded_load_factor=1.25)
    flow = balancer.flow()
    node_ids = [node.id for node in flow.nodes]
    assert flow.nodes[0].id == "start" and len(set(node_ids)) == len(node_ids)
    assert all(e.source in node_ids and e.target in node_ids for e in flow.edges)
    entering = {(e.source, e.target) for e in flow.edges}
    eligible = {s.id for s in servers if s.healthy and s.weight > 0}
    for key in keys:
        pick = balancer.pick(key, 1.0)
        assert isinstance(pick, Pick) and pick.trail[0] == "start" and len(set(pick.trail)) == len(pick.trail)
        for i, node in enumerate(pick.trail[1:], 1):
            assert any((earlier, node) in entering for earlier in pick.trail[:i]), (pick.trail, node)
        assert pick.trail[-1] == ("send" if eligible else "error")
        assert (pick.server in eligible) if eligible else pick.server is None
        assert pickle.loads(pickle.dumps(pick.detail)) == pick.detail


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_a_pickled_balancer_goes_on_exactly_as_the_original(name):
    """Snapshots pickle the whole simulation, balancers included: a copy must continue the same way."""
    balancer = make(name, views(3, 1, 2, 1))
    picks(balancer, 10, start=True)
    twin = pickle.loads(pickle.dumps(balancer))
    for i in range(20):
        assert balancer.pick(f"k{i}", float(i)) == twin.pick(f"k{i}", float(i))
        for b in (balancer, twin):
            b.on_finish("a", 0.05 * (i % 3), float(i))


def test_changes_of_load_alone_rebuild_nothing():
    balancer = make("maglev", views(1, 1, 1))
    table = balancer.table
    balancer.set_servers([ServerView("a", active=5), ServerView("b"), ServerView("c")])
    assert balancer.table is table and balancer.active["a"] == 5
    balancer.set_servers(views(1, 1, 1, healthy=(True, False, True)))
    assert balancer.table is not table and set(balancer.table) == {0, 1}


@pytest.mark.parametrize("n", [2, 3, 10, 21, 22, 40, 64])
def test_sample_two_draws_exactly_what_random_sample_draws(n):
    """The hand-written draw of two distinct servers gives random.sample's result and leaves the generator in the
    same state, on both sides of CPython's pool/set switch (21 items), so streams are unchanged by it."""
    items = [f"s{i}" for i in range(1, n + 1)]
    for seed in range(300):
        ours, theirs = random.Random(seed), random.Random(seed)
        for _ in range(4):
            assert sample_two(ours, items) == theirs.sample(items, 2), (n, seed)
        assert ours.getstate() == theirs.getstate()


@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_a_ring_position_is_the_exact_fraction_of_a_turn(h):
    """Dividing by the float TURN (2.0**64) gives the correctly rounded h / 2**64, bit for bit."""
    assert h / TURN == h / HASH_SPACE


def test_a_pick_is_shown_with_its_floats_rounded_and_the_rest_as_given():
    detail = {"loads": [2, 0.12345678, PENALTY + 1], "r": 0.98765432, "candidates": ["a", "b"], "server": None}
    assert shown(detail) == {
        "loads": [2, 0.123457, PENALTY + 1],
        "r": 0.987654,
        "candidates": ["a", "b"],
        "server": None,
    }
