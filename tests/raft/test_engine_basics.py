"""The Raft engine's plumbing: parameters and commands, the harness the other engine tests share, determinism,
snapshots mid-run, harmless bad commands, the command line.

`Run` plays a scenario the way the kernel's player does (a `command` event, then the command) and keeps every
event as JSON would carry it; the other test_engine_* modules import it from here.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from patterns.core.sim import Simulation
from patterns.raft.engine import DELIVERED_KEPT
from patterns.raft.pattern import PATTERN
from patterns.raft.presets import PRESETS

from ..support import outputs_under_hash_seeds

ROOT = Path(__file__).resolve().parents[2]


def params(**overrides: Any) -> dict[str, Any]:
    """Every parameter, defaults overridden and checked as the site would check them."""
    values = PATTERN.defaults()
    for name, value in overrides.items():
        param = PATTERN.param(name)
        assert param is not None, name
        values[name] = param.check(value) if param.kind in ("int", "float") else param.parse(value)
    return values


class Run:
    """A Raft run driven step by step, with the events so far."""

    def __init__(self, seed: int = 1, **overrides: Any):
        self.sim = Simulation(seed)
        self.engine = PATTERN.engine(self.sim, params(**overrides))
        self.engine.start()
        self.events: list[dict[str, Any]] = []
        self._collect()

    def _collect(self) -> None:
        self.events += json.loads(json.dumps([e.as_dict() for e in self.sim.collect()], allow_nan=False))

    def until(self, t: float) -> Run:
        self.sim.run_until(t)
        self._collect()
        return self

    def for_(self, seconds: float) -> Run:
        return self.until(self.sim.now + seconds)

    def do(self, command: str, **args: Any) -> Run:
        spec = PATTERN.command(command)
        assert spec is not None, command
        checked = {a.name: args.get(a.name, a.default) for a in spec.args}
        self.sim.emit("command", {"command": command, "args": checked})
        self.engine.apply(command, checked)
        self._collect()
        return self

    def script(self, script: Any, until: float) -> Run:
        for t, command, args in script:
            if t > until:
                break
            self.until(t)
            self.do(command, **args)
        return self.until(until)

    # -- views ------------------------------------------------------------------------------------------------
    @property
    def servers(self) -> dict[str, Any]:
        return self.engine.servers

    def leaders(self) -> list[Any]:
        return [s for s in self.servers.values() if s.alive and s.role == "leader"]

    def one_leader(self) -> Any:
        """The leader of the highest term among live servers; fails if there is none or a term has two."""
        leaders = self.leaders()
        assert leaders, "no leader"
        top = max(s.current_term for s in leaders)
        newest = [s for s in leaders if s.current_term == top]
        assert len(newest) == 1, f"two leaders in term {top}: {[s.id for s in newest]}"
        return newest[0]

    def of(self, type: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type and all(e.get(k) == v for k, v in match.items())]

    def violations(self) -> list[dict[str, Any]]:
        return self.of("invariant.violated")

    def write(self, key: str, value: str, within: float = 10.0) -> dict[str, Any]:
        """One client write; run until it completes (within ``within`` seconds) and return its completion."""
        self.do("client_request", op="set", key=key, value=value)
        deadline = self.sim.now + within
        while self.sim.now < deadline:
            done = self.of("client.complete", key=key, value=value)
            if done:
                return done[-1]
            self.for_(0.05)
        raise AssertionError(f"write {key}={value} did not complete within {within} s")

    def applied_on(self, value: str) -> dict[str, int]:
        """Server -> index at which the write of ``value`` was applied (each server at most once)."""
        out: dict[str, int] = {}
        for e in self.of("raft.apply"):
            if e["command"].get("value") == value and e["command"]["op"] == "set":
                assert e["server"] not in out or out[e["server"]] == e["index"], f"{value} applied twice"
                out[e["server"]] = e["index"]
        return out


def run_preset(slug: str, until: float, **overrides: Any) -> Run:
    preset = next(p for p in PRESETS if p.slug == slug)
    run = Run(preset.seed, **{**preset.params, **overrides})
    return run.script(preset.script, until)


def digest(events: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(events, sort_keys=True).encode()).hexdigest()


# -- the pattern's surface ------------------------------------------------------------------------------------
def test_contract_parameters_and_commands_exist():
    names = {p.name for p in PATTERN.params}
    assert {
        "servers", "clients", "client_rate", "read_share", "keys", "election_timeout_min_ms",
        "election_timeout_max_ms", "heartbeat_ms", "latency_ms", "latency_jitter_ms", "loss", "duplicate",
        "client_timeout_ms", "pre_vote", "check_quorum", "read_mode", "snapshot_threshold", "max_batch",
        "break_vote_log_check", "break_commit_current_term", "break_persist_vote", "break_consistency_check",
    } <= names  # fmt: skip
    commands = {c.name: [a.name for a in c.args] for c in PATTERN.commands}
    assert commands["partition"] == ["groups"] and commands["drop_message"] == ["id"]
    assert commands["client_request"] == ["op", "key", "value"] and commands["set_latency"] == ["ms", "jitter_ms"]
    assert {"crash", "restart", "timeout", "heal", "cut", "restore", "add_server", "remove_server"} <= set(commands)
    declared = {e.name for e in PATTERN.event_types}
    assert {"raft.role", "raft.rpc", "client.invoke", "invariant.violated", "net.partition"} <= declared


def test_every_emitted_event_type_is_declared_and_json():
    declared = {e.name for e in PATTERN.all_event_types}
    run = run_preset("membership", 10)
    run.do("partition", groups="s3|s4.s5.s6").do("drop_message", id=10**9).do("crash", server="s9")
    run.do("timeout", server="s4").for_(3).do("heal")
    assert {e["type"] for e in run.events} <= declared
    assert [e["seq"] for e in run.events] == list(range(len(run.events)))  # no field hides the event's number
    assert any(e["type"] == "client.complete" and e["op_seq"] > 1 for e in run.events)


def test_bad_targets_are_notes_not_exceptions():
    run = Run(clients=0).until(1)
    for command, args in (
        ("crash", {"server": "s9"}),
        ("restart", {"server": "s1"}),
        ("timeout", {"server": "s42"}),
        ("remove_server", {"server": "s7"}),
        ("cut", {"a": "s1", "b": "s1"}),
        ("partition", {"groups": "s1.s1|s2"}),
        ("drop_message", {"id": 999999}),
        ("heal", {}),
    ):
        before = len(run.of("command.ignored"))
        run.do(command, **args)
        assert len(run.of("command.ignored")) == before + 1, command
    run.for_(2)
    run.one_leader()


def test_drop_message_loses_exactly_that_message():
    run = Run(clients=0).until(1)
    leader = run.one_leader()
    flying = []
    while not flying:  # wait for the next heartbeat to be on the wire
        run.for_(0.002)
        flying = [m for m in run.engine.net.in_flight() if m.src == leader.id]
    victim = flying[0]
    run.do("drop_message", id=victim.id)
    assert run.of("net.drop", id=victim.id, reason="manual")
    record = next(r for r in run.engine.rpcs if r["id"] == victim.id)
    assert record["fate"] == "dropped"
    run.for_(0.1)
    assert any(r["fate"] == "delivered" for r in run.engine.rpcs)


def test_recent_rpc_fates_agree_with_the_network_over_a_lossy_minute():
    """Fates are read off the network and a pruned set of delivered ids: checked against the network's own trace
    (net.deliver / net.drop per message) every virtual second, with the set kept bounded all along."""
    run = Run(clients=4, client_rate=15.0, loss=0.2, duplicate=0.05)
    run.engine.net.trace = True
    fates_seen = set()
    for _ in range(60):
        run.for_(1.0)
        delivered = {e["id"] for e in run.of("net.deliver")}
        for record in run.engine.rpcs:
            if run.engine.net.on_wire(record["id"]):
                truth = "in_flight"
            else:
                truth = "delivered" if record["id"] in delivered else "dropped"
            assert record["fate"] == truth, record
            fates_seen.add(truth)
        assert len(run.engine._delivered) <= DELIVERED_KEPT
    assert fates_seen == {"in_flight", "delivered", "dropped"}


def test_partition_puts_unlisted_clients_with_the_most_servers():
    run = Run(clients=2).until(1)
    run.do("partition", groups="s1.c1|s2.s3")
    groups = run.of("net.partition")[-1]["groups"]
    assert ["s1", "c1"] in groups and ["s2", "s3", "c2"] in groups and ["s4", "s5"] in groups


# -- determinism ----------------------------------------------------------------------------------------------
CHAOS = (
    (1.0, "set_loss", {"rate": 0.1}),
    (1.5, "crash", {"server": "s2"}),
    (2.0, "partition", {"groups": "s1.s3|s4.s5"}),
    (3.0, "add_server", {}),
    (3.5, "restart", {"server": "s2"}),
    (4.0, "heal", {}),
    (4.5, "set_duplicate", {"rate": 0.2}),
    (5.0, "remove_server", {"server": "s4"}),
)
CHAOS_PARAMS = {"clients": 3, "client_rate": 20.0, "snapshot_threshold": 20}


def test_same_scenario_same_events():
    first = Run(7, **CHAOS_PARAMS).script(CHAOS, 8).events
    second = Run(7, **CHAOS_PARAMS).script(CHAOS, 8).events
    assert first == second
    assert Run(8, **CHAOS_PARAMS).script(CHAOS, 8).events != first


def test_snapshot_pickled_mid_run_continues_identically():
    straight = Run(7, **CHAOS_PARAMS).script(CHAOS, 8)
    run = Run(7, **CHAOS_PARAMS).script(CHAOS[:3], 2.7)
    sim, engine = pickle.loads(pickle.dumps((run.sim, run.engine)))
    run.sim, run.engine = sim, engine
    run.script(CHAOS[3:], 8)
    assert run.events == straight.events
    assert not straight.violations()


def test_events_do_not_depend_on_the_hash_seed():
    command = ["manage.py", "simulate", "raft", "--preset", "membership", "--until", "6"]
    outputs = {hashlib.sha256(out.encode()).hexdigest() for out in outputs_under_hash_seeds(command)}
    assert len(outputs) == 1


def test_command_line_text_and_describe():
    text = subprocess.run(
        [sys.executable, "manage.py", "simulate", "raft", "--until", "10", "--format", "text"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "raft.role" in text and "role=leader" in text and "client.complete" in text
    described = json.loads(
        subprocess.run(
            [sys.executable, "manage.py", "simulate", "raft", "--describe"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert described["slug"] == "raft" and len(described["presets"]) == len(PRESETS)


def test_align_and_spread_timers():
    run = Run(clients=0).until(1.0)
    leader = run.one_leader()
    run.do("crash", server=leader.id).do("align_timers")
    deadlines = [s.election_deadline for s in run.servers.values() if s.alive]
    assert len(set(deadlines)) == 1 and deadlines[0] == run.sim.now + 0.15
    run.do("spread_timers")
    deadlines = sorted(s.election_deadline for s in run.servers.values() if s.alive)
    assert deadlines[0] == pytest.approx(run.sim.now + 0.15) and deadlines[-1] == pytest.approx(run.sim.now + 0.3)
    assert len(set(deadlines)) == 4
    run.for_(1.0)
    assert run.one_leader().id == next(s.id for s in run.servers.values() if s.alive)  # the earliest deadline won


def test_a_cut_link_only_stops_that_pair():
    run = Run(clients=0, check_quorum=False).until(1.0)
    leader = run.one_leader()
    other = next(s for s in run.servers if s != leader.id)
    run.do("cut", a=leader.id, b=other)
    start = len(run.events)
    run.for_(1.0)
    fates = {r["dst"]: r["fate"] for r in run.engine.rpcs if r["src"] == leader.id and r["t"] < run.sim.now - 0.05}
    assert fates[other] == "dropped" and all(f == "delivered" for d, f in fates.items() if d != other)
    assert not [e for e in run.events[start:] if e["type"] == "raft.rpc" and e["src"] == other and e["dst"] == leader.id
                and "ok" in e["summary"]]  # fmt: skip
    run.do("restore", a=leader.id, b=other).do("set_latency", ms=30.0, jitter_ms=0.0).for_(0.5)
    assert run.of("net.config", setting="latency")
    assert run.one_leader() is leader and run.servers[other].leader_id == leader.id
