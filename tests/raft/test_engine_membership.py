"""Membership changes one server at a time, and log compaction with InstallSnapshot."""

from __future__ import annotations

import os
import random
from typing import Any

import pytest

from .test_engine_basics import Run, run_preset
from .test_engine_replication import assert_converged


def configs(run: Run, server: str) -> list[tuple[list[str], list[str]]]:
    return [(e["voters"], e["learners"]) for e in run.of("raft.config", server=server)]


def test_a_new_server_joins_as_a_learner_then_votes():
    run = run_preset("membership", 4.5)
    steps = configs(run, "s2")
    assert steps[:2] == [
        (["s1", "s2", "s3", "s4", "s5"], ["s6"]),
        (["s1", "s2", "s3", "s4", "s5", "s6"], []),
    ]
    learner_at = run.of("raft.config", server="s1")[0]["index"]
    voter_at = run.of("raft.config", server="s1")[1]["index"]
    caught_up = [e for e in run.of("raft.append", server="s6") if e["index"] + len(e["entries"]) > learner_at]
    assert caught_up and caught_up[0]["t"] < run.of("raft.config", server="s1")[1]["t"]  # caught up first
    assert voter_at > learner_at
    assert not run.of("raft.vote", server="s6", pre=False)  # a learner never votes or campaigns
    run.do("set_client_rate", rate=0.0).for_(1.0)
    assert_converged(run)


def test_removing_the_leader_steps_it_down_after_the_change_commits():
    run = run_preset("membership", 12.0)
    removal = next(
        e
        for e in run.of("raft.append", server="s1")
        if e["entries"][0]["command"]["op"] == "config" and "s1" not in e["entries"][0]["command"]["voters"]
    )
    committed = next(e for e in run.of("raft.commit", server="s1") if e["index"] >= removal["index"])
    removed = run.of("raft.removed", server="s1")[0]
    assert removed["seq"] > committed["seq"]  # it led until the configuration without it committed
    assert not [e for e in run.of("raft.role", role="leader") if removal["t"] <= e["t"] < committed["t"]]
    assert "s1" not in run.servers and "s1" in run.engine.retired and not run.engine.retired["s1"].alive
    assert run.of("raft.removed", server="s2")
    leader = run.one_leader()
    assert leader.voters == ("s3", "s4", "s5", "s6") and leader.current_term > 1
    assert [e for e in run.of("client.complete") if e["t"] > 9.0]  # the smaller cluster serves clients
    assert_converged(run)


def test_removing_a_follower_and_shrinking_to_one_voter():
    run = Run(3, servers=3, clients=1, client_rate=5.0).until(1.0)
    leader = run.one_leader()
    for server in [s for s in run.servers if s != leader.id]:
        run.do("remove_server", server=server).for_(1.0)
    assert list(run.servers) == [leader.id] and leader.voters == (leader.id,)
    before = len(run.of("client.complete"))
    run.for_(2.0)
    assert len(run.of("client.complete")) > before  # a leader alone commits by itself
    assert_converged(run)


def test_add_and_remove_servers_under_partitions_stay_safe():
    run = Run(8, clients=2, client_rate=10.0, snapshot_threshold=15).until(1.0)
    run.do("add_server").for_(0.5).do("partition", groups="s1.s2|s3.s4.s5.s6").for_(1.0)
    run.do("remove_server", server="s3").do("add_server").for_(1.0).do("heal").for_(0.5)
    run.do("remove_server", server="s1").for_(2.0)
    run.do("set_client_rate", rate=0.0).for_(2.0)
    leader = run.one_leader()
    assert set(leader.voters) == {"s2", "s4", "s5", "s6", "s7"}
    assert all(s.voters == leader.voters for s in run.servers.values())
    assert_converged(run)


def test_a_follower_far_behind_catches_up_with_few_round_trips():
    run = run_preset("catch-up", 7.0)
    leader, s3 = run.one_leader(), run.servers["s3"]
    target = leader.log.last_index
    assert target - s3.log.last_index > 100
    start = len(run.events)
    while s3.log.last_index < target:
        run.for_(0.005)
    assert run.sim.now < 7.15  # a handful of round trips of 20 ms
    rpcs = [e for e in run.events[start:] if e["type"] == "raft.rpc"]
    refused = [e for e in rpcs if e["src"] == "s3" and "no:" in e["summary"]]
    assert len(refused) <= 1  # one conflict hint is enough to find where the logs agree
    accepted = [e for e in rpcs if e["src"] == "s3" and e["summary"].startswith(f"term {leader.current_term}, ok")]
    assert len(accepted) <= 8  # then batches of up to 64 entries (and the odd heartbeat between them)
    assert not run.of("raft.install")
    run.do("set_client_rate", rate=0.0).for_(1.0)
    assert_converged(run)


def test_a_follower_too_far_behind_gets_a_snapshot():
    run = run_preset("catch-up-snapshot", 9.0)
    installs = run.of("raft.install", server="s3")
    assert installs and installs[0]["t"] >= 7.0
    leader = run.one_leader()
    assert run.of("raft.snapshot", server=leader.id)
    s3 = run.servers["s3"]
    assert s3.log.snapshot_index >= installs[0]["index"] > 0
    assert leader.log.last_index - leader.log.snapshot_index <= 2 * 30 + 20  # the leader's log stays short
    run.do("set_client_rate", rate=0.0).for_(1.0)
    assert_converged(run)


def test_a_restarted_server_recovers_from_its_own_snapshot():
    run = Run(14, clients=2, client_rate=20.0, snapshot_threshold=10).until(4.0)
    leader = run.one_leader()
    victim = next(s for s in run.servers.values() if s.id != leader.id and s.log.snapshot_index > 0)
    run.do("crash", server=victim.id)
    assert victim.commit_index == victim.last_applied == victim.log.snapshot_index > 0
    assert victim.kv  # the snapshot is on disk: the state machine restarts from it
    run.do("restart", server=victim.id).do("set_client_rate", rate=0.0).for_(1.5)
    assert_converged(run)


def test_a_removed_leader_cut_off_before_its_removal_spreads_is_elected_to_finish_it():
    """The leader of two voters removes itself and is cut off at once: only its log holds the removal, so the other
    voter can win no election without it. It still stands for election, outside its own latest configuration
    (dissertation, 4.2.2), wins the other's vote once healed, commits its removal and retires; the cluster serves
    clients again."""
    run = Run(1, servers=3).until(0.1).do("timeout", server="s1").until(1.0).do("remove_server", server="s3")
    run.until(2.0).do("remove_server", server="s1").until(2.001).do("partition", groups="s1|s2")
    run.until(3.0).do("heal").for_(3.0)
    assert "s1" in run.engine.retired and run.of("raft.removed", server="s1")
    leader = run.one_leader()
    assert leader.id == "s2" and leader.voters == ("s2",)
    assert [e for e in run.of("client.complete") if e["t"] > 3.0]
    assert not run.violations()


def membership_chaos(seed: int) -> tuple[Run, list[tuple[float, str, dict[str, Any]]]]:
    """Three to five servers through membership changes, partitions among the current servers and forced
    timeouts over two virtual seconds, then healed at 2.5 s; the run and what was done."""
    rng = random.Random(seed)
    run = Run(seed, servers=rng.randint(3, 5), clients=1, client_rate=5.0)
    script: list[tuple[float, str, dict[str, Any]]] = []
    for t in sorted(rng.uniform(0.3, 2.0) for _ in range(rng.randint(4, 9))):
        run.until(t)
        servers, pick = list(run.servers), rng.random()
        leaders = [s.id for s in run.leaders()]
        if pick < 0.35:  # the leader, more often than not: removing it is the harder case
            command, args = "remove_server", {"server": rng.choice(leaders if leaders and pick < 0.25 else servers)}
        elif pick < 0.5:
            command, args = "add_server", {}
        elif pick < 0.8 and len(servers) > 1:
            shuffled = rng.sample(servers, len(servers))
            if leaders and pick < 0.65:  # the leader alone on one side
                shuffled = [leaders[0], *(s for s in shuffled if s != leaders[0])]
            cut = 1 if leaders and pick < 0.65 else rng.randint(1, len(shuffled) - 1)
            command, args = "partition", {"groups": f"{'.'.join(shuffled[:cut])}|{'.'.join(shuffled[cut:])}"}
        elif pick < 0.9:
            command, args = "heal", {}
        else:
            command, args = "timeout", {"server": rng.choice(servers)}
        script.append((round(t, 3), command, args))
        run.do(command, **args)
    run.until(2.5).do("heal")
    return run, script


@pytest.mark.parametrize("seed", range(int(os.environ.get("RAFT_LIVENESS", "40"))))
def test_a_healed_cluster_always_elects_a_leader_whatever_the_membership_changes(seed):
    """Liveness, bounded: five seconds after the heal, whatever was removed or added while partitioned, one leader
    leads the servers still in the cluster, and a client's write completes within two seconds more."""
    run, script = membership_chaos(seed)
    run.for_(5.0)
    leader = run.one_leader()
    assert leader.id in leader.voters, script
    run.write("k9", "alive", within=2.0)
    assert not run.violations(), script
