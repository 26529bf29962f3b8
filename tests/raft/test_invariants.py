"""The safety checker on hand-built event streams: each broken invariant is flagged at the event that breaks it,
not before, and streams that only look alarming (truncated uncommitted entries, snapshots, restarts) are fine."""

from __future__ import annotations

import json
import pickle
from typing import Any

from patterns.raft.invariants import Checker, check_events, entry_hash

NOOP = {"op": "noop"}
HASH_OF_NOOP_TERM_1 = 0x8415954641516186


def put(key: str, value: str, client: str = "c1", seq: int = 1) -> dict[str, Any]:
    return {"op": "set", "key": key, "value": value, "client": client, "seq": seq}


class Stream:
    """Events as an engine would emit them, numbered; the helpers return the seq of the event that matters."""

    def __init__(self, servers: int = 3):
        self.events: list[dict[str, Any]] = []
        self.servers = [f"s{n}" for n in range(1, servers + 1)]
        for server in self.servers:
            self.emit("raft.role", server=server, role="follower", term=0)

    def emit(self, type: str, **fields: Any) -> int:
        """Like `Event.as_dict`: the fields come after seq, so a client event's own seq hides the event's."""
        seq = len(self.events)
        self.events.append({"seq": seq, "t": seq / 1000, "type": type, **fields})
        return seq

    def elect(self, leader: str, term: int, voters: tuple[str, ...] = ()) -> int:
        self.emit("raft.term", server=leader, term=term)
        self.emit("raft.role", server=leader, role="candidate", term=term)
        self.emit("raft.vote", server=leader, candidate=leader, term=term, pre=False)
        for voter in voters:
            self.follow(voter, term)
            self.emit("raft.vote", server=voter, candidate=leader, term=term, pre=False)
        return self.emit("raft.role", server=leader, role="leader", term=term)

    def follow(self, server: str, term: int) -> int:
        self.emit("raft.term", server=server, term=term)
        return self.emit("raft.role", server=server, role="follower", term=term)

    def append(self, server: str, index: int, *entries: tuple[int, dict[str, Any]]) -> int:
        listed = [{"term": term, "command": command} for term, command in entries]
        return self.emit("raft.append", server=server, index=index, entries=listed)

    def commit(self, servers: tuple[str, ...], index: int) -> int:
        return [self.emit("raft.commit", server=server, index=index) for server in servers][-1]

    def apply(self, servers: tuple[str, ...], index: int, term: int, command: dict[str, Any]) -> int:
        seqs = [
            self.emit("raft.apply", server=s, index=index, term=term, command=command, result=None) for s in servers
        ]
        return seqs[-1]

    def judged(self) -> list[tuple[str, int]]:
        return [(v["invariant"], v["cause"]) for v in check_events(self.events)]

    def details(self) -> list[str]:
        return [v["detail"] for v in check_events(self.events)]


def healthy_cluster() -> Stream:
    """s1 leads term 1 and commits three entries on all; s2 leads term 2 after s1 is cut off."""
    run = Stream()
    run.elect("s1", 1, ("s2", "s3"))
    entries = ((1, NOOP), (1, put("x", "1")), (1, put("y", "2", seq=2)))
    for server in run.servers:
        run.append(server, 1, *entries)
    run.commit(("s1", "s2", "s3"), 3)
    for index, (term, command) in enumerate(entries, start=1):
        run.apply(("s1", "s2", "s3"), index, term, command)
    return run


# -- streams that are fine ------------------------------------------------------------------------------------


def test_a_healthy_run_is_fine():
    assert healthy_cluster().judged() == []


def test_a_follower_overwriting_uncommitted_entries_is_fine():
    run = healthy_cluster()
    run.append("s1", 4, (1, put("x", "lost", seq=3)), (1, put("x", "lost2", seq=4)))  # never replicated
    run.append("s3", 4, (1, put("x", "lost", seq=3)))
    run.elect("s2", 2, ("s3",))
    run.follow("s1", 2)
    run.append("s2", 4, (2, NOOP))
    for follower in ("s1", "s3"):
        run.emit("raft.truncate", server=follower, index=4)
        run.append(follower, 4, (2, NOOP))
    run.commit(("s2", "s1", "s3"), 4)
    run.apply(("s2", "s1", "s3"), 4, 2, NOOP)
    assert run.judged() == []


def test_snapshots_installs_crashes_and_restarts_are_fine():
    run = healthy_cluster()
    run.emit("raft.snapshot", server="s1", index=3, term=1)
    run.emit("raft.snapshot", server="s2", index=2, term=1)
    run.emit("raft.crash", server="s3")
    run.append("s1", 4, (1, put("x", "5", seq=3)))
    run.append("s2", 4, (1, put("x", "5", seq=3)))
    run.commit(("s1", "s2"), 4)
    run.apply(("s1", "s2"), 4, 1, put("x", "5", seq=3))
    run.emit("raft.snapshot", server="s1", index=4, term=1)
    run.emit("raft.restart", server="s3", term=1, voted_for="s1", log_last=3)
    run.emit("raft.install", server="s3", index=4, term=1, leader="s1")  # s3 is far behind: a snapshot
    run.apply(("s3",), 4, 1, put("x", "5", seq=3))  # a restarted server replays: the same entry is fine
    run.elect("s3", 2, ("s2",))  # it holds every committed entry, through the snapshot
    run.append("s3", 5, (2, NOOP))
    run.append("s2", 5, (2, NOOP))
    run.commit(("s3", "s2"), 5)
    assert run.judged() == []


def test_a_late_leader_of_an_older_term_need_not_hold_what_a_newer_term_committed():
    """Votes for s3 in term 2 arrive late: meanwhile s1 led term 3 and committed. That is allowed (Leader
    Completeness is about leaders of *later* terms), and the checker knows the entry was committed in term 3."""
    run = Stream()
    run.follow("s3", 2)
    run.emit("raft.role", server="s3", role="candidate", term=2)
    run.elect("s1", 3, ("s2",))
    run.append("s1", 1, (3, NOOP))
    run.append("s2", 1, (3, NOOP))
    run.commit(("s1", "s2"), 1)
    run.emit("raft.role", server="s3", role="leader", term=2)
    assert run.judged() == []


def test_pre_votes_are_not_votes():
    run = Stream()
    run.emit("raft.vote", server="s2", candidate="s1", term=1, pre=True)
    run.elect("s3", 1, ("s2",))
    assert run.judged() == []


def test_unknown_event_types_are_ignored():
    checker = Checker()
    assert checker.observe({"seq": 0, "t": 0.0, "type": "net.partition", "groups": [["s1"]]}) == []
    assert checker.observe({"seq": 1, "t": 0.0, "type": "raft.rpc", "kind": "AppendEntries"}) == []


# -- each invariant broken at one event -----------------------------------------------------------------------


def test_election_safety():
    run = Stream()
    run.elect("s1", 1, ("s2",))
    run.emit("raft.crash", server="s2")
    forgot = run.emit("raft.restart", server="s2", term=1, voted_for=None, log_last=0)  # its vote was not persisted
    second = run.elect("s3", 1, ("s2",))
    assert run.judged() == [("persistent_state", forgot), ("election_safety", second)]
    assert run.details()[1:] == [
        "s3 became leader of term 1, but s1 already led it; s2 voted for both s1 and s3 in term 1"
    ]


# -- each rule broken at one event ----------------------------------------------------------------------------


def test_a_restart_that_forgets_its_vote_or_term():
    run = Stream()
    run.elect("s1", 1, ("s2",))
    run.emit("raft.crash", server="s2")
    forgot = run.emit("raft.restart", server="s2", term=1, voted_for=None, log_last=0)
    run.emit("raft.crash", server="s2")
    run.emit("raft.restart", server="s2", term=1, voted_for=None, log_last=0)  # once per server and term
    run.follow("s3", 2)
    run.emit("raft.crash", server="s3")
    went_back = run.emit("raft.restart", server="s3", term=1, voted_for=None, log_last=0)
    assert run.judged() == [("persistent_state", forgot), ("persistent_state", went_back)]
    assert run.details() == [
        "s2 restarted with no vote in term 1, but it had voted for s1 in that term: currentTerm and votedFor must "
        "survive a restart (else it may vote twice in one term)",
        "s3 restarted with term 1, but it had reached term 2: currentTerm and votedFor must survive a restart (else "
        "it may vote twice in one term)",
    ]


def test_a_restart_that_keeps_its_vote_and_term_is_fine():
    run = Stream()
    run.elect("s1", 1, ("s2",))
    run.emit("raft.crash", server="s2")
    run.emit("raft.restart", server="s2", term=1, voted_for="s1", log_last=0)
    run.follow("s3", 2)  # a new term clears the vote
    run.emit("raft.crash", server="s3")
    run.emit("raft.restart", server="s3", term=2, voted_for=None, log_last=0)
    run.emit("raft.restart", server="s4", term=5, voted_for="s4", log_last=0)  # first seen at a restart
    assert run.judged() == []


def test_a_leader_committing_an_older_terms_entry_by_counting_replicas():
    """s1 leads term 3 holding an entry of term 2 that a majority has: committing it by counting replicas is the
    broken rule (Figure 8 shows another leader may still overwrite it); committing its own term's entry after it,
    which commits the older one too, is fine."""
    run = Stream()
    run.elect("s1", 2, ("s2",))
    for server in ("s1", "s2"):
        run.append(server, 1, (2, put("x", "1")))
    run.elect("s1", 3, ("s2",))
    run.append("s1", 2, (3, NOOP))
    cause = run.commit(("s1",), 1)
    run.commit(("s1",), 1)  # once per leader and term
    run.append("s2", 2, (3, NOOP))
    run.commit(("s1", "s2"), 2)  # its own term's entry: fine, and it commits the older one with it
    assert run.judged() == [("commit_own_term", cause)]
    assert run.details() == [
        "s1, leader of term 3, committed index 1 by counting its replicas, but that entry is of term 2: a leader "
        "counts replicas only for entries of its own term"
    ]


def test_leader_append_only_truncation():
    run = healthy_cluster()
    run.append("s1", 4, (1, put("x", "9", seq=3)))
    cause = run.emit("raft.truncate", server="s1", index=4)
    assert run.judged() == [("leader_append_only", cause)]
    assert "s1, leader of term 1, deleted its own entries from index 4 to 4" in run.details()[0]


def test_leader_append_only_overwrite():
    run = healthy_cluster()
    run.append("s1", 4, (1, put("x", "9", seq=3)))
    cause = run.append("s1", 4, (1, put("x", "8", seq=4)))
    assert run.judged() == [("leader_append_only", cause)]


def test_a_former_leader_may_lose_its_uncommitted_entries():
    run = healthy_cluster()
    run.append("s1", 4, (1, put("x", "9", seq=3)))
    run.follow("s1", 2)
    run.emit("raft.truncate", server="s1", index=4)
    assert run.judged() == []


def test_leader_append_only_snapshot_install():
    run = healthy_cluster()
    run.emit("raft.snapshot", server="s2", index=3, term=1)
    cause = run.emit("raft.install", server="s1", index=3, term=1, leader="s2")
    assert run.judged() == [("leader_append_only", cause)]


def test_log_matching():
    """s2 led term 2 alone; s1 leads term 3 and, with no consistency check, s2 takes s1's entry at index 2
    on top of its own different entry at index 1."""
    run = Stream()
    run.elect("s1", 1)
    run.append("s1", 1, (1, put("x", "a")))
    run.follow("s1", 2)
    run.elect("s2", 2)
    run.append("s2", 1, (2, put("x", "b", client="c2")))
    run.elect("s1", 3)
    run.follow("s2", 3)
    run.append("s1", 2, (3, NOOP))
    cause = run.append("s2", 2, (3, NOOP))
    assert run.judged() == [("log_matching", cause)]
    assert run.details() == [
        "s2 and s1 both have an entry of term 3 at index 2, but their logs differ before it: "
        "at index 1 s2 has an entry of term 2 and s1 has an entry of term 1"
    ]


def test_log_matching_against_a_compacted_committed_entry():
    """s2 and s3 committed indexes 4 to 6 and compacted them away; s1 takes index 5 of term 2 without index 4."""
    run = healthy_cluster()
    run.elect("s2", 2, ("s3",))
    run.follow("s1", 2)
    for server in ("s2", "s3"):
        run.append(server, 4, (2, NOOP), (2, put("x", "7", seq=3)), (2, put("x", "8", seq=4)))
    run.commit(("s2", "s3"), 6)
    for server in ("s2", "s3"):
        run.emit("raft.snapshot", server=server, index=6, term=2)
    cause = run.append("s1", 5, (2, put("x", "7", seq=3)))
    assert run.judged() == [("log_matching", cause)]
    assert run.details() == [
        "s1 has an entry of term 2 at index 5, like the committed entry there, but its log up to index 5 is not "
        "the committed one"
    ]


def test_log_matching_same_term_different_command():
    run = Stream()
    run.elect("s1", 1)
    run.append("s1", 1, (1, put("x", "1")))
    cause = run.append("s2", 1, (1, put("x", "2")))
    assert run.judged() == [("log_matching", cause)]
    assert run.details()[0].endswith("the entries themselves differ (s2 has set x=2 (c1 #1))")


def test_leader_completeness():
    run = healthy_cluster()
    run.emit("raft.truncate", server="s3", index=3)  # s3 lost the entry at index 3 (a broken follower)
    cause = run.elect("s3", 2, ("s2",))
    assert run.judged() == [("leader_completeness", cause)]
    assert run.details() == [
        "s3 became leader of term 2 without the entry at index 3 (term 1), committed by term 1: its log ends at index 2"
    ]


def test_leader_completeness_with_a_conflicting_entry():
    """s3 led term 2 briefly and kept an entry nobody else took; s1 then committed a different one in term 3.
    Elected in term 4 (as a broken vote check would allow), s3 lacks it."""
    run = healthy_cluster()
    run.elect("s3", 2, ("s2",))
    run.append("s3", 4, (2, NOOP))
    run.elect("s1", 3, ("s2",))
    run.follow("s3", 3)
    run.append("s1", 4, (3, NOOP))
    run.append("s2", 4, (3, NOOP))
    run.commit(("s1", "s2"), 4)
    cause = run.elect("s3", 4, ("s2",))
    assert run.judged() == [("leader_completeness", cause)]
    assert run.details() == [
        "s3 became leader of term 4 without the entry at index 4 (term 3), committed by term 3: "
        "it has an entry of term 2 there instead"
    ]


def test_state_machine_safety():
    run = healthy_cluster()
    run.apply(("s1",), 4, 2, put("x", "first", seq=3))
    cause = run.apply(("s2",), 4, 3, put("x", "second", client="c2"))
    assert run.judged() == [("state_machine_safety", cause)]
    assert run.details() == [
        "s2 applied set x=second (c2 #1) (term 3) at index 4, but s1 had applied set x=first (c1 #3) (term 2) "
        "at that index"
    ]


def test_linearizability():
    run = healthy_cluster()
    op = {"client": "c1", "op": "get", "key": "x", "value": None, "expected": None, "op_seq": 9}
    run.emit("client.invoke", **op)
    run.emit("client.complete", **op, result=None)  # x=1 was applied before the read started
    assert run.judged() == []  # the client history alone knows nothing of the applies
    run.emit("client.invoke", **{**op, "op": "set", "value": "1", "op_seq": 10})
    run.emit("client.complete", **{**op, "op": "set", "value": "1", "op_seq": 10}, result="ok")
    run.emit("client.invoke", **{**op, "op_seq": 11})
    cause = run.emit("client.complete", **{**op, "op_seq": 11}, result=None)
    assert run.judged() == [("linearizability", cause)]


# -- mechanics ------------------------------------------------------------------------------------------------


def test_each_violation_is_reported_once():
    run = Stream()
    run.elect("s1", 1)
    run.append("s1", 1, (1, put("x", "1")))
    run.append("s2", 1, (1, put("x", "2")))
    run.append("s1", 2, (1, NOOP))
    run.append("s2", 2, (1, NOOP))  # the same two logs disagree again: one report per pair of servers
    assert [name for name, _ in run.judged()] == ["log_matching"]


def test_observe_returns_what_the_engine_emits():
    checker = Checker()
    run = Stream()
    run.elect("s1", 1)
    run.elect("s2", 1)
    returned = [v for event in run.events for v in checker.observe(event)]
    assert returned == [{"invariant": "election_safety", "detail": "s2 became leader of term 1, but s1 already led it"}]
    assert checker.violations[0]["cause"] == run.events[-1]["seq"]


def test_a_checker_pickled_midway_judges_the_rest_the_same():
    run = healthy_cluster()
    run.elect("s2", 2, ("s3",))
    run.elect("s3", 2)
    half = len(run.events) // 2
    whole = check_events(run.events)
    checker = Checker()
    for event in run.events[:half]:
        checker.observe(event)
    copy = pickle.loads(pickle.dumps(checker))
    for event in run.events[half:]:
        copy.observe(event)
    assert copy.violations == whole != []


def test_a_json_round_trip_changes_nothing():
    run = healthy_cluster()
    run.elect("s3", 1)
    events = [json.loads(json.dumps(event)) for event in run.events]
    assert check_events(events) == check_events(run.events) != []


def test_entry_hash_is_stable_and_ignores_key_order():
    assert entry_hash(1, {"op": "set", "key": "x", "value": "1"}) == entry_hash(
        1, {"value": "1", "key": "x", "op": "set"}
    )
    assert entry_hash(1, NOOP) != entry_hash(2, NOOP)
    assert entry_hash(1, NOOP) == HASH_OF_NOOP_TERM_1  # the same in every process, whatever PYTHONHASHSEED is


def test_what_every_server_compacted_is_forgotten():
    run = healthy_cluster()
    checker = Checker()
    for event in run.events:
        checker.observe(event)
    assert (checker.committed.first, checker.applied.first) == (1, 1)
    for server in run.servers:
        checker.observe({"seq": 99, "t": 1.0, "type": "raft.snapshot", "server": server, "index": 3, "term": 1})
    assert (checker.committed.first, checker.applied.first) == (3, 4)
    assert checker.committed.get(3) is not None and checker.applied.get(3) is None


def test_an_install_keeps_the_entries_after_a_matching_snapshot_point():
    """Figure 13: a follower whose entry at the snapshot's last index has the snapshot's term keeps what follows."""
    run = healthy_cluster()
    run.append("s1", 4, (1, put("x", "4", seq=3)), (1, put("x", "5", seq=4)))
    run.append("s3", 4, (1, put("x", "4", seq=3)), (1, put("x", "5", seq=4)))
    run.commit(("s1",), 5)
    run.emit("raft.snapshot", server="s1", index=4, term=1)
    run.emit("raft.install", server="s3", index=4, term=1, leader="s1")
    run.append("s2", 6, (2, NOOP))  # s2 holds no index 4 or 5: nothing to compare, no violation
    checker = Checker()
    for event in run.events:
        checker.observe(event)
    assert checker.violations == []
    assert (checker.servers["s3"].log.base, checker.servers["s3"].log.last) == (4, 5)
    checker.observe(
        {"seq": 99, "t": 1.0, "type": "raft.install", "server": "s2", "index": 4, "term": 1, "leader": "s1"}
    )
    assert (checker.servers["s2"].log.base, checker.servers["s2"].log.last) == (4, 4)  # its index 4 was missing


def test_a_client_event_is_blamed_by_its_own_event_number():
    first = {"type": "client.invoke", "client": "c1", "op": "get", "key": "x", "value": None, "expected": None}
    first.update(t=0.0, seq=40, op_seq=1)
    checker = Checker()
    checker.observe(first)
    checker.observe({**first, "type": "client.complete", "result": "ghost", "seq": 57})
    assert [v["cause"] for v in checker.violations] == [57]  # the event's number, never the client's
