"""Seeded random fault schedules against the real engine: no invariant may ever break, and no acknowledged write
may be lost, applied twice or reordered.

Each schedule draws parameters and a script of perturbations (crashes and restarts, partitions and heals, link
cuts, loss, duplication, latency, dropped messages, membership changes, client requests) over a few virtual
seconds, then heals everything and lets the cluster settle. RAFT_SCHEDULES sets how many (a longer soak by
hand: RAFT_SCHEDULES=5000); the default keeps this file near 20 s on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import random
from types import SimpleNamespace
from typing import Any

import pytest

from patterns.core.sim import Simulation
from patterns.raft.engine import RaftEngine
from patterns.raft.invariants import check_events
from patterns.raft.params import PARAMS

SCHEDULES = int(os.environ.get("RAFT_SCHEDULES", "300"))
CHAOS_UNTIL = 2.5  # virtual seconds of perturbations
SETTLE_UNTIL = 4.0  # then healed, restarted, and left alone until this time
WRITES = ("set", "delete", "cas")
MAX_EVENTS = 25_000  # a schedule makes ~2,000; far more is a message storm, reported rather than waited out


def draw_params(rng: random.Random) -> dict[str, Any]:
    params = {p.name: p.default for p in PARAMS}
    params.update(
        servers=rng.choice([3, 3, 5, 5, 7]),
        clients=rng.randint(1, 3),
        client_rate=rng.choice([5.0, 10.0, 20.0]),
        read_share=rng.choice([0.0, 0.3, 0.6]),
        keys=rng.choice([1, 2, 3]),
        loss=rng.choice([0.0, 0.0, 0.05, 0.2]),
        duplicate=rng.choice([0.0, 0.0, 0.1]),
        latency_jitter_ms=rng.choice([0.0, 5.0, 20.0]),
        pre_vote=rng.random() < 0.7,
        check_quorum=rng.random() < 0.7,
        read_mode=rng.choice(["read_index", "log"]),
        snapshot_threshold=rng.choice([0, 4, 10, 100]),
        max_batch=rng.choice([1, 4, 64]),
        client_timeout_ms=rng.choice([100.0, 500.0]),
    )
    return params


def draw_action(rng: random.Random, engine: RaftEngine) -> tuple[str, dict[str, Any]]:
    servers = list(engine.servers)
    nodes = servers + list(engine.clients)
    pick = rng.random()
    if pick < 0.18:
        return "crash", {"server": rng.choice(servers)}
    if pick < 0.32:
        return "restart", {"server": rng.choice(servers)}
    if pick < 0.40:
        return "timeout", {"server": rng.choice(servers)}
    if pick < 0.52:
        shuffled = rng.sample(nodes, len(nodes))
        cut = rng.randint(1, len(shuffled) - 1)
        return "partition", {"groups": f"{'.'.join(shuffled[:cut])}|{'.'.join(shuffled[cut:])}"}
    if pick < 0.60:
        return "heal", {}
    if pick < 0.68:
        a, b = rng.sample(servers, 2)
        return rng.choice(["cut", "restore"]), {"a": a, "b": b}
    if pick < 0.72:
        return "set_loss", {"rate": rng.choice([0.0, 0.1, 0.3])}
    if pick < 0.75:
        return "set_duplicate", {"rate": rng.choice([0.0, 0.2])}
    if pick < 0.78:
        return "set_latency", {"ms": rng.choice([5.0, 10.0, 40.0]), "jitter_ms": rng.choice([0.0, 10.0, 40.0])}
    if pick < 0.84:
        flying = engine.net.in_flight()
        return "drop_message", {"id": rng.choice(flying).id if flying else 10**9}
    if pick < 0.92:
        op = rng.choice(["set", "get", "delete", "cas"])
        return "client_request", {"op": op, "key": f"k{rng.randint(1, 3)}", "value": f"v{rng.randint(1, 99)}"}
    if pick < 0.96:
        return "add_server", {}
    if pick < 0.98:
        return "remove_server", {"server": rng.choice(servers)}
    return rng.choice(["spread_timers", "align_timers"]), {}


def run_schedule(seed: int, **fixed: Any) -> tuple[RaftEngine, list[dict[str, Any]], list[tuple[float, str, dict]]]:
    """One schedule; ``fixed`` parameters override the drawn ones (and no membership change when they do)."""
    rng = random.Random(seed)
    sim = Simulation(seed)
    engine = RaftEngine(sim, {**draw_params(rng), **fixed})
    engine.start()
    script = []
    for t in sorted(rng.uniform(0.2, CHAOS_UNTIL) for _ in range(rng.randint(3, 12))):
        advance(sim, t)
        command, args = draw_action(rng, engine)
        if fixed and command in ("add_server", "remove_server"):
            continue
        script.append((round(t, 3), command, args))
        engine.apply(command, args)
    advance(sim, CHAOS_UNTIL)
    engine.apply("heal", {})
    engine.apply("set_loss", {"rate": 0.0})
    for server in list(engine.servers.values()):
        if not server.alive:
            engine.apply("restart", {"server": server.id})
    advance(sim, SETTLE_UNTIL)
    return engine, [event.as_dict() for event in sim.collect()], script


def advance(sim: Simulation, until: float) -> None:
    while sim.now < until:
        sim.run_until(min(until, sim.now + 0.05))
        assert sim.next_seq < MAX_EVENTS, f"message storm: {sim.next_seq} events by {sim.now:.2f} virtual s"


def acknowledged_writes_hold(engine: RaftEngine, events: list[dict[str, Any]]) -> list[str]:
    """Every write a client saw succeed is in the applied log, at increasing indexes per client, and each live
    server's key-value store is what applying that log once per (client, seq) gives, up to where it applied."""
    applied: dict[int, dict[str, Any]] = {}  # index -> command, as first applied by anyone
    acked: list[tuple[str, int]] = []
    for event in events:
        if event["type"] == "raft.apply":
            applied.setdefault(event["index"], event["command"])
        elif event["type"] == "client.complete" and event["op"] in WRITES:
            acked.append((event["client"], event["op_seq"]))
    problems = []
    if applied and sorted(applied) != list(range(1, max(applied) + 1)):
        problems.append(
            f"some index was never applied by any server: {sorted(set(range(1, max(applied))) - set(applied))}"
        )
    first_at: dict[tuple[str, int], int] = {}
    for index in sorted(applied):
        command = applied[index]
        if "client" in command:
            first_at.setdefault((command["client"], command["seq"]), index)
    last_index: dict[str, int] = {}
    for client, seq in acked:
        index = first_at.get((client, seq))
        if index is None:
            problems.append(f"{client}'s write #{seq} was acknowledged but never applied")
        elif index <= last_index.get(client, 0):
            problems.append(f"{client}'s write #{seq} was applied at index {index}, before its earlier write")
        else:
            last_index[client] = index
    states = replay(applied)
    for server in engine.servers.values():
        if server.alive and server.last_applied in states and server.kv != states[server.last_applied]:
            problems.append(
                f"{server.id} applied through {server.last_applied} holds {server.kv}, not "
                f"{states[server.last_applied]}"
            )
    return problems


def replay(applied: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The store after each index, applying each (client, seq) once: a reference, not the engine's code."""
    kv: dict[str, Any] = {}
    done: dict[str, int] = {}  # client -> last seq applied (one outstanding operation per client)
    states = {0: {}}
    for index in sorted(applied):
        command = applied[index]
        client, op = command.get("client"), command["op"]
        if client is not None and command["seq"] > done.get(client, 0):
            done[client] = command["seq"]
            key = command["key"]
            if op == "set" or (op == "cas" and kv.get(key) == command["expected"]):
                kv[key] = command["value"]
            elif op == "delete":
                kv.pop(key, None)
        states[index] = dict(kv)
    return states


@pytest.mark.parametrize("seed", range(SCHEDULES))
def test_schedule(seed):
    engine, events, script = run_schedule(seed)
    assert engine.checker.violations == [], script
    exported = json.loads(json.dumps(events))
    assert check_events(exported) == [], script
    assert acknowledged_writes_hold(engine, events) == [], script


def test_schedules_do_perturb():
    """The schedules are not all quiet: across a few of them, leaders change, clients complete writes, servers
    snapshot, crash and join."""
    seen: dict[str, int] = {}
    for seed in range(20):
        _, events, _ = run_schedule(seed)
        for event in events:
            seen[event["type"]] = seen.get(event["type"], 0) + 1
        seen["leaders"] = seen.get("leaders", 0) + len({e["term"] for e in events if e.get("role") == "leader"})
    for kind in ("raft.crash", "raft.restart", "raft.snapshot", "raft.truncate", "raft.install", "client.complete"):
        assert seen.get(kind, 0) > 0, kind
    assert seen["leaders"] > 20  # more than one leader per schedule


def _write(index: int, client: str, seq: int, value: str) -> dict[str, Any]:
    command = {"op": "set", "key": "k1", "value": value, "client": client, "seq": seq}
    return {"type": "raft.apply", "server": "s1", "index": index, "term": 1, "command": command, "result": "ok"}


def _acked(client: str, seq: int) -> dict[str, Any]:
    return {"type": "client.complete", "client": client, "op": "set", "key": "k1", "op_seq": seq, "result": "ok"}


def _cluster(kv: dict[str, str], last_applied: int) -> SimpleNamespace:
    server = SimpleNamespace(id="s1", alive=True, last_applied=last_applied, kv=kv)
    return SimpleNamespace(servers={"s1": server})


def test_the_write_check_sees_lost_reordered_and_doubled_writes():
    fine = [_write(1, "c1", 1, "a"), _write(2, "c2", 1, "b"), _write(3, "c1", 1, "a"), _acked("c1", 1)]
    assert acknowledged_writes_hold(_cluster({"k1": "b"}, 3), fine) == []  # index 3 is a retry: applied once
    assert acknowledged_writes_hold(_cluster({"k1": "a"}, 3), fine) == [
        "s1 applied through 3 holds {'k1': 'a'}, not {'k1': 'b'}"
    ]
    lost = [_write(1, "c1", 1, "a"), _acked("c1", 1), _acked("c1", 2)]
    assert acknowledged_writes_hold(_cluster({"k1": "a"}, 1), lost) == [
        "c1's write #2 was acknowledged but never applied"
    ]
    swapped = [_write(1, "c1", 2, "b"), _write(2, "c1", 1, "a"), _acked("c1", 1), _acked("c1", 2)]
    assert "c1's write #2 was applied at index 1, before its earlier write" in acknowledged_writes_hold(
        _cluster({"k1": "b"}, 2), swapped
    )
