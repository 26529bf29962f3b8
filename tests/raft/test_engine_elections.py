"""Elections, after the well-known Raft lab suites (initial election, re-election, no quorum, many elections),
plus pre-vote, check-quorum, split votes and the RPC counts of a quiet cluster."""

from __future__ import annotations

import random

import pytest

from .test_engine_basics import Run, run_preset


def test_initial_election_one_leader_and_a_stable_term():
    run = Run(clients=0).until(1.0)
    leader = run.one_leader()
    term = leader.current_term
    assert term == 1
    assert all(s.current_term == term for s in run.servers.values())
    run.until(6.0)
    assert run.one_leader() is leader and leader.current_term == term  # no election without a failure
    assert all(s.leader_id == leader.id for s in run.servers.values())
    assert not run.violations()


@pytest.mark.parametrize("check_quorum", [True, False])
def test_reelection_after_the_leader_is_cut_off(check_quorum):
    run = Run(2, clients=0, check_quorum=check_quorum).until(1.0)
    old = run.one_leader()
    others = [s for s in run.servers if s != old.id]
    run.do("partition", groups=f"{old.id}|{'.'.join(others)}").for_(2.0)
    new = run.one_leader()
    assert new.id != old.id and new.current_term > old.current_term
    assert (old.role == "leader") is (not check_quorum)  # check-quorum: the cut-off leader stepped down
    run.do("heal").for_(1.0)
    assert run.one_leader() is new and old.role == "follower" and old.current_term == new.current_term
    assert not run.violations()


def test_no_leader_without_a_majority_and_pre_vote_keeps_terms():
    run = Run(3, clients=0).until(1.0)
    terms = {s.id: s.current_term for s in run.servers.values()}
    run.do("partition", groups="s1|s2|s3|s4.s5").for_(0.5)
    run.for_(3.0)
    assert not run.leaders()
    assert {s.id: s.current_term for s in run.servers.values()} == terms  # pre-votes failed: no term moved
    assert run.of("raft.role", role="pre_candidate")
    run.do("heal").for_(2.0)
    assert run.one_leader().current_term == max(terms.values()) + 1
    assert not run.violations()


def test_without_pre_vote_a_minority_raises_its_terms_but_elects_nobody():
    run = Run(3, clients=0, pre_vote=False).until(1.0)
    run.do("partition", groups="s1.s2|s3.s4|s5").for_(3.0)
    assert not any(s.role == "leader" for s in run.servers.values())
    assert all(s.current_term > 3 for s in run.servers.values())
    run.do("heal").for_(2.0)
    run.one_leader()
    assert not run.violations()


def test_many_elections_with_random_disconnections():
    rng = random.Random(5)
    run = Run(5, servers=7, clients=1, client_rate=5.0).until(1.0)
    for _ in range(10):
        cut = rng.sample(sorted(run.servers), 3)
        run.do("partition", groups="|".join(cut)).for_(1.5)
        leader = run.one_leader()
        assert leader.id not in cut or leader.current_term < max(s.current_term for s in run.servers.values())
        connected = [run.servers[s] for s in run.servers if s not in cut]
        assert sum(1 for s in connected if s.role == "leader") == 1
        run.do("heal").for_(0.5)
    run.for_(2.0)
    run.one_leader()
    assert not run.violations()


def test_split_vote_preset_ends_a_term_without_a_leader_then_elects_one():
    run = run_preset("split-vote", 6.0)
    candidates = [e for e in run.of("raft.role", role="candidate") if e["t"] >= 2.0]
    first_term = candidates[0]["term"]
    split = [e["server"] for e in candidates if e["term"] == first_term]
    assert len(split) >= 2  # several candidates in the same term
    assert not run.of("raft.role", role="leader", term=first_term)  # nobody won it
    leader = run.one_leader()
    assert leader.current_term > first_term
    assert not run.violations()


def test_disruptive_server_without_pre_vote_forces_an_election():
    run = run_preset("disruptive-server", 8.0)
    leader_before = [e for e in run.of("raft.role", role="leader") if e["t"] < 2.0][-1]
    s5_terms = [e["term"] for e in run.of("raft.term", server="s5") if 2.0 <= e["t"] < 5.0]
    assert len(s5_terms) >= 5  # it timed out again and again, each time in a new term
    stepped_down = [e for e in run.of("raft.role", server=leader_before["server"], role="follower") if e["t"] >= 5.0]
    assert stepped_down  # its higher term deposed the leader
    assert run.one_leader().current_term > max(s5_terms)
    assert run.one_leader().id != "s5"  # its log is behind: it cannot win
    assert not run.violations()


def test_disruptive_server_with_pre_vote_changes_nothing():
    run = run_preset("disruptive-server-pre-vote", 8.0)
    leaders = run.of("raft.role", role="leader")
    assert len(leaders) == 1  # the first election is the only one
    assert not run.of("raft.term", server="s5", term=2)
    assert run.of("raft.role", server="s5", role="pre_candidate")
    s5, leader = run.servers["s5"], run.servers[leaders[0]["server"]]
    assert s5.role == "follower" and s5.leader_id == leader.id and s5.kv == leader.kv
    assert not run.violations()


def test_followers_with_a_live_leader_refuse_votes():
    run = Run(4, clients=0, pre_vote=False).until(1.0)
    leader = run.one_leader()
    follower = next(s for s in run.servers if s != leader.id)
    run.do("timeout", server=follower)
    run.for_(0.02)
    votes = [e for e in run.of("raft.vote", candidate=follower, pre=False) if e["server"] != follower]
    assert not votes  # the lease: each voter heard from the leader less than an election timeout ago
    assert all(s.current_term == 1 for s in run.servers.values() if s.id != follower)


def test_the_leader_lease_stops_votes_only_with_check_quorum():
    run = Run(4, clients=0, pre_vote=False, check_quorum=False).until(1.0)
    leader = run.one_leader()
    follower = next(s for s in run.servers if s != leader.id)
    run.do("timeout", server=follower).for_(0.05)
    assert [e for e in run.of("raft.vote", candidate=follower, pre=False) if e["server"] != follower]
    assert run.one_leader().id == follower


def test_an_election_in_a_quiet_cluster_takes_a_few_dozen_rpcs():
    run = Run(clients=0)
    while not run.leaders():
        run.for_(0.005)
    elected = run.of("raft.role", role="leader")[0]["seq"]
    election = [e for e in run.of("raft.rpc") if e["seq"] < elected]
    assert len(election) <= 40
    kinds = {e["kind"] for e in election}
    assert kinds <= {"PreVote", "PreVoteReply", "RequestVote", "RequestVoteReply"}


def test_an_idle_leader_sends_at_most_one_heartbeat_per_follower_per_interval():
    run = Run(clients=0).until(1.0)
    leader = run.one_leader()
    start = len(run.events)
    run.for_(10.0)
    sent = [e for e in run.events[start:] if e["type"] == "raft.rpc" and e["src"] == leader.id]
    assert {e["kind"] for e in sent} == {"AppendEntries"}
    intervals = 10.0 / 0.05
    assert len(sent) <= 4 * (intervals + 1)
    for follower in run.servers:
        if follower != leader.id:
            assert sum(1 for e in sent if e["dst"] == follower) >= intervals - 1


def test_a_crash_keeps_term_vote_and_log_and_loses_the_rest():
    run = Run(6, clients=1, client_rate=10.0).until(3.0)
    leader = run.one_leader()
    victim = next(s for s in run.servers.values() if s.id != leader.id)
    kept = (victim.current_term, victim.voted_for, [victim.log.term_at(i) for i in range(1, victim.log.last_index)])
    assert victim.commit_index > 0 and victim.kv
    run.do("crash", server=victim.id)
    assert (victim.current_term, victim.voted_for) == kept[:2]
    assert [victim.log.term_at(i) for i in range(1, victim.log.last_index)] == kept[2]
    assert victim.commit_index == victim.last_applied == victim.log.snapshot_index == 0 and not victim.kv
    run.for_(1.0).do("set_client_rate", rate=0.0).do("restart", server=victim.id)
    restart = run.of("raft.restart", server=victim.id)[-1]
    assert restart["term"] == kept[0] and restart["voted_for"] == kept[1]
    run.for_(1.0)
    assert victim.kv == leader.kv and victim.commit_index == leader.commit_index
    assert not run.violations()


def test_crashing_the_leader_elects_another_with_every_committed_write():
    run = run_preset("leader-crash", 6.0)
    assert [e["server"] for e in run.of("raft.role", role="leader") if e["t"] < 2.0] == ["s1"]
    committed_before = max(e["index"] for e in run.of("raft.commit", server="s1"))
    new = run.one_leader()
    assert new.id != "s1" and new.current_term >= 2
    assert new.log.last_index >= committed_before
    s1 = run.servers["s1"]
    assert s1.alive and s1.role == "follower" and s1.current_term == new.current_term and s1.kv == new.kv
    assert not run.violations()
