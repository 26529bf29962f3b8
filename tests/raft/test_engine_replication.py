"""Log replication, after the well-known Raft lab suites: agreement, rejoining followers and leaders, no commit
without a majority, fast backup, Figure 8, unreliable networks, churn, reads."""

from __future__ import annotations

import os
import random
from collections import Counter

import pytest

from .test_engine_basics import Run, run_preset

SCHEDULES = int(os.environ.get("RAFT_ENGINE_SCHEDULES", "6"))


def assert_converged(run: Run) -> None:
    """Every live server holds the leader's log and state, and each completed write was applied on each once
    (call it once the clients are quiet and a heartbeat or two has spread the commit index)."""
    leader = run.one_leader()
    for server in run.servers.values():
        if not server.alive:
            continue
        assert server.commit_index == leader.commit_index, server.id
        assert server.kv == leader.kv, server.id
        for index in range(max(server.log.first_index, leader.log.first_index), leader.log.last_index + 1):
            assert server.log.term_at(index) == leader.log.term_at(index), (server.id, index)
    for done in run.of("client.complete"):
        if done["op"] in ("set", "delete", "cas"):
            indexes = {
                e["index"]
                for e in run.of("raft.apply", server=leader.id)
                if e["command"].get("client") == done["client"] and e["command"].get("seq") == done["op_seq"]
            }
            assert indexes or leader.log.snapshot_index > 0, done  # applied (or compacted into the snapshot)
    assert not run.violations()


def test_basic_agreement():
    run = Run(clients=0).until(1.0)
    indexes = []
    for n in range(1, 4):
        run.write("k1", f"v{n}")
        run.for_(0.2)
        applied = run.applied_on(f"v{n}")
        assert sorted(applied) == sorted(run.servers) and len(set(applied.values())) == 1
        indexes.append(next(iter(applied.values())))
    assert indexes == sorted(indexes) and len(set(indexes)) == 3
    assert all(s.kv == {"k1": "v3"} for s in run.servers.values())


def test_agreement_after_a_follower_rejoins():
    run = Run(2, servers=3, clients=0).until(1.0)
    run.write("k1", "a")
    run.for_(0.2)
    leader = run.one_leader()
    away = next(s for s in run.servers if s != leader.id)
    run.do("partition", groups=away)
    for value in ("b", "c", "d"):
        run.write("k1", value)
    assert run.servers[away].kv == {"k1": "a"}
    run.do("heal").for_(0.5)
    run.write("k2", "e")
    run.for_(0.3)
    assert run.servers[away].kv == {"k1": "d", "k2": "e"}
    assert_converged(run)


def test_no_commit_without_a_majority():
    run = Run(3, clients=0, check_quorum=False).until(1.0)
    leader = run.one_leader()
    followers = [s for s in run.servers if s != leader.id]
    run.do("partition", groups="|".join(followers[:3]))  # the leader keeps one follower: 2 of 5
    commit = leader.commit_index
    run.do("client_request", op="set", key="k1", value="x").for_(2.0)
    assert leader.log.last_index > commit and leader.commit_index == commit
    assert not run.of("client.complete")
    assert not any(e["command"].get("value") == "x" for e in run.of("raft.apply"))
    run.do("heal").for_(1.0)
    assert run.one_leader() is leader and run.of("client.complete", value="x")
    assert_converged(run)


def test_a_rejoining_stale_leader_has_its_entries_overwritten():
    run = run_preset("stale-leader", 8.0)
    assert run.of("raft.role", role="leader")[0]["server"] == "s1"
    stale = [e for e in run.of("raft.append", server="s1") if 2.0 < e["t"] < 5.0]
    assert stale  # c1's writes reached the stale leader ...
    assert not [e for e in run.of("raft.commit", server="s1") if 2.05 < e["t"] < 5.0]  # ... which never committed
    truncated = [e for e in run.of("raft.truncate") if e["t"] >= 5.0]
    assert {e["server"] for e in truncated} == {"s1", "s2"}
    s1 = run.servers["s1"]
    assert s1.role == "follower" and s1.current_term > 1
    c1_done = run.of("client.complete", client="c1")
    assert c1_done and all(len(run.applied_on(e["value"])) == 5 for e in c1_done if e["op"] == "set")
    run.do("set_client_rate", rate=0.0).for_(1.0)
    assert_converged(run)


def test_fast_backup_over_50_conflicting_entries():
    """The lab's 'leader backs up quickly over incorrect follower logs': 50 uncommitted entries of the old term on
    two servers; the new leader needs a handful of AppendEntries, not fifty, to find where the logs agree."""
    run = Run(4, clients=0, check_quorum=False, pre_vote=False).until(1.0)
    old = run.one_leader()
    follower = next(s for s in run.servers if s != old.id)
    rest = [s for s in run.servers if s not in (old.id, follower)]
    run.do("partition", groups=f"{old.id}.{follower}|{'.'.join(rest)}")
    for n in range(50):
        old.propose({"op": "set", "key": "k1", "value": f"old{n}", "client": "c9", "seq": n + 1})
    run.for_(1.0)
    new = run.one_leader()
    assert new.id in rest
    for n in range(50):
        new.propose({"op": "set", "key": "k1", "value": f"new{n}", "client": "c8", "seq": n + 1})
    run.for_(1.0)
    assert old.log.last_index >= 50 and old.log.term_at(old.log.last_index) < new.current_term
    start = len(run.events)
    run.do("heal")
    while old.log.last_index != new.log.last_index or old.log.last_term != new.log.last_term:
        run.for_(0.01)
    sent = [e for e in run.events[start:] if e["type"] == "raft.rpc" and e["kind"] == "AppendEntries"]
    to_old = [e for e in sent if e["src"] == new.id and e["dst"] == old.id]
    assert len(to_old) <= 5
    run.for_(0.5)
    assert old.kv == new.kv == {"k1": "new49"}
    assert not run.violations()


def test_figure_8_an_old_term_entry_is_never_counted_as_committed():
    run = run_preset("figure-8", 4.0)
    s1_leader = run.of("raft.role", server="s1", role="leader", term=3)
    assert s1_leader  # s1 led term 3 and copied entry 3 (term 1) to a majority ...
    copied = [e for e in run.of("raft.append", index=3) if e["entries"][0]["term"] == 1 and e["t"] > 1.5]
    assert len({e["server"] for e in copied}) >= 1
    assert not [e for e in run.of("raft.commit", server="s1") if e["index"] >= 3 and e["t"] < 3.0]  # ... uncounted
    assert run.of("raft.role", server="s5", role="leader", term=4)
    assert {e["server"] for e in run.of("raft.truncate", index=3)} == {"s1", "s2", "s3", "s4"}
    assert len(run.applied_on("b")) == 5  # the client's retry applied once everywhere
    assert_converged(run)


def test_agreement_over_an_unreliable_network():
    """10% loss and jitter twice the latency (messages overtake each other), three busy clients."""
    run = Run(9, clients=3, client_rate=10.0, loss=0.1, latency_jitter_ms=20.0).until(15.0)
    completed = len(run.of("client.complete"))
    assert completed > 100
    run.do("set_client_rate", rate=0.0).do("set_loss", rate=0.0).for_(2.0)
    assert_converged(run)


@pytest.mark.parametrize("seed", range(SCHEDULES))
def test_churn(seed):
    """Servers crash and restart and the network splits at random while clients write; then everything heals."""
    rng = random.Random(seed)
    run = Run(seed, clients=3, client_rate=8.0, snapshot_threshold=25, duplicate=0.05).until(0.5)
    ids = sorted(run.servers)
    for _ in range(12):
        choice = rng.random()
        server = rng.choice(ids)
        if choice < 0.35:
            run.do("crash", server=server)
        elif choice < 0.7:
            run.do("restart", server=server)
        elif choice < 0.85:
            shuffled = rng.sample(ids, len(ids))
            cut = rng.randint(1, 2)
            run.do("partition", groups=".".join(shuffled[:cut]) + "|" + ".".join(shuffled[cut:]))
        else:
            run.do("heal")
        run.for_(rng.uniform(0.2, 1.0))
    run.do("heal")
    for server in ids:
        if not run.servers[server].alive:
            run.do("restart", server=server)
    run.do("set_client_rate", rate=0.0).for_(4.0)
    assert not [c for c in run.engine.clients.values() if c.pending]
    assert_converged(run)


def test_duplicated_messages_and_retries_apply_each_write_once():
    """Short client timeouts and a duplicating network put some commands in the log twice; the sessions apply
    them once (a second application would show as a non-linearizable read of an overwritten value)."""
    run = Run(11, clients=3, client_rate=15.0, duplicate=0.3, client_timeout_ms=40.0, keys=1).until(6.0)
    run.do("set_client_rate", rate=0.0).for_(2.0)
    leader = run.one_leader()
    logged = Counter(
        (e["command"]["client"], e["command"]["seq"])
        for e in run.of("raft.apply", server=leader.id)
        if "client" in e["command"]
    )
    assert max(logged.values()) > 1
    for client in run.engine.clients.values():
        writes = [e["op_seq"] for e in run.of("client.complete", client=client.id) if e["op"] != "get"]
        assert leader.machine.sessions[client.id][0] == writes[-1]
    assert_converged(run)


@pytest.mark.parametrize("mode", ["read_index", "log"])
def test_reads_are_linearizable_in_both_modes(mode):
    run = Run(12, clients=3, client_rate=15.0, read_share=0.5, read_mode=mode, check_quorum=False).until(2.0)
    leader = run.one_leader()
    others = [s for s in run.servers if s != leader.id]
    run.do("partition", groups=f"{leader.id}.c1|{'.'.join(others)}").for_(3.0).do("heal").for_(2.0)
    logged_gets = [e for e in run.of("raft.append") for entry in e["entries"] if entry["command"]["op"] == "get"]
    assert bool(logged_gets) is (mode == "log")
    assert run.of("client.complete", op="get")
    assert not run.violations()


def test_a_cut_off_leader_answers_no_read():
    run = Run(13, clients=1, client_rate=0.0, check_quorum=False).until(1.0)
    run.write("k1", "before")
    leader = run.one_leader()
    others = [s for s in run.servers if s != leader.id]
    run.do("partition", groups=f"{leader.id}.c1|{'.'.join(others)}")
    run.for_(1.0)
    run.do("client_request", op="get", key="k1", value="v1").for_(2.0)
    assert leader.role == "leader"  # it still believes it leads ...
    assert not run.of("client.complete", op="get")  # ... but no heartbeat round confirms it: no stale read
    run.do("heal").for_(2.0)
    assert run.of("client.complete", op="get")[-1]["result"] == "before"
    assert not run.violations()


@pytest.mark.parametrize("threshold", [0, 5])
def test_everything_committed_survives_a_crash_of_every_server(threshold):
    """The lab's persistence test: crash the whole cluster and restart it; what was committed comes back."""
    run = Run(15, clients=0, snapshot_threshold=threshold).until(1.0)
    for n in range(12):
        run.write(f"k{n % 3 + 1}", f"v{n}")
    run.for_(0.2)
    before = dict(run.one_leader().kv)
    term = run.one_leader().current_term
    for server in list(run.servers):
        run.do("crash", server=server)
    assert all(not s.kv or s.log.snapshot_index for s in run.servers.values())
    for server in list(run.servers):
        run.do("restart", server=server)
    run.for_(1.5)
    leader = run.one_leader()
    assert leader.current_term > term and leader.kv == before
    run.write("k1", "after")
    run.for_(0.2)
    assert_converged(run)
