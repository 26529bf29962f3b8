"""One Raft server stepped through the paper's rules message by message, as etcd's raft_paper_test.go steps one node.

No engine and no network: the server under test is `s1`, its clock is a kernel `Simulation` (timers fire only
when a test runs it), and the rest of the cluster is `FakeCluster`, which keeps what the server sends in an outbox
for the test to read. Each test hands the server the messages another server would send, in the shape
`patterns.raft.server.HANDLERS` delivers them. Section numbers are the Raft paper's (Figure 2 and section 5) and
the dissertation's (chapters 4 and 6) and etcd's names where the rule is theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from patterns.core.sim import Event, Simulation
from patterns.raft.params import PARAMS, RaftConfig
from patterns.raft.server import CANDIDATE, FOLLOWER, HANDLERS, LEADER, PRE_CANDIDATE, Server

THREE = ("s1", "s2", "s3")
FIVE = ("s1", "s2", "s3", "s4", "s5")
DEFAULTS = {param.name: param.default for param in PARAMS}
MIN_TIMEOUT = DEFAULTS["election_timeout_min_ms"] / 1000.0
MAX_TIMEOUT = DEFAULTS["election_timeout_max_ms"] / 1000.0
HEARTBEAT = DEFAULTS["heartbeat_ms"] / 1000.0


@dataclass
class Sent:
    dst: str
    kind: str
    payload: dict[str, Any]


class FakeCluster:
    """The rest of the cluster as one server sees it (the `Cluster` protocol): it records, and decides nothing."""

    def __init__(self) -> None:
        self.outbox: list[Sent] = []
        self.events: list[Event] = []
        self.notes: list[str] = []
        self.answers: list[tuple[str, int, Any]] = []
        self.redirects: list[tuple[str, str | None]] = []
        self.committed_configs = 0

    def send_rpc(self, src: str, dst: str, kind: str, payload: dict[str, Any], summary: str) -> None:
        self.outbox.append(Sent(dst, kind, payload))

    def judge(self, event: Event) -> None:
        self.events.append(event)

    def note(self, detail: str) -> None:
        self.notes.append(detail)

    def answer(self, server: str, client: str, seq: int, result: Any) -> None:
        self.answers.append((client, seq, result))

    def redirect(self, server: str, client: str, request: dict[str, Any], leader: str | None) -> None:
        self.redirects.append((client, leader))

    def membership_step(self, leader: Server) -> None:
        pass

    def config_committed(self, leader: Server) -> None:
        self.committed_configs += 1

    def take(self, kind: str | None = None) -> list[Sent]:
        """What was sent since the last take (of ``kind`` only, if given; the rest stays)."""
        taken = [sent for sent in self.outbox if kind is None or sent.kind == kind]
        self.outbox = [sent for sent in self.outbox if sent not in taken]
        return taken


@dataclass
class Node:
    server: Server
    cluster: FakeCluster
    sim: Simulation

    def deliver(self, src: str, kind: str, payload: dict[str, Any]) -> None:
        HANDLERS[kind](self.server, src, payload)

    def run(self, seconds: float) -> None:
        self.sim.run_until(self.sim.now + seconds)

    def flush(self) -> None:
        """Run what is due now (a leader sends what it proposed at the end of the instant)."""
        self.sim.run_until(self.sim.now)


def node(voters: tuple[str, ...] = THREE, **params: Any) -> Node:
    """`s1`, a follower in term 0 with an empty log and a running election timer."""
    sim = Simulation(1)
    cluster = FakeCluster()
    server = Server("s1", voters, RaftConfig.from_params({**DEFAULTS, **params}), cluster, sim)
    server.reset_election_timer()
    return Node(server, cluster, sim)


def entries(*terms: int) -> list[dict[str, Any]]:
    return [{"term": term, "command": {"op": "noop"}} for term in terms]


def append(term: int, prev: tuple[int, int] = (0, 0), new: list | None = None, commit: int = 0, leader="s2"):
    """An AppendEntries request from ``leader``: ``prev`` is (prev_index, prev_term)."""
    return {
        "term": term,
        "leader": leader,
        "prev_index": prev[0],
        "prev_term": prev[1],
        "entries": new or [],
        "commit": commit,
        "round": 1,
    }


def ask_vote(term: int, last: tuple[int, int] = (0, 0), candidate: str = "s2") -> dict[str, Any]:
    """A RequestVote (or PreVote) request: ``last`` is the candidate's (last_index, last_term)."""
    return {"term": term, "candidate": candidate, "last_index": last[0], "last_term": last[1]}


def append_reply(term: int, match: int | None, prev: int = 0, conflict: tuple[int, int | None] | None = None):
    """An AppendEntries answer: a success if ``match`` is given, else a refusal with the ``conflict`` hint."""
    reply = {"term": term, "success": match is not None, "round": 1, "prev_index": prev}
    reply |= {"conflict_index": conflict[0] if conflict else None, "conflict_term": conflict[1] if conflict else None}
    if match is not None:
        reply["match"] = match
    return reply


def leader_of_term_1(voters: tuple[str, ...] = THREE, **params: Any) -> Node:
    """`s1` elected in term 1 with s2's vote; its no-op (index 1) sent, the outbox emptied."""
    n = node(voters, pre_vote=False, **params)
    n.server.campaign()
    n.deliver("s2", "RequestVoteReply", {"term": 1, "granted": True})
    assert n.server.role == LEADER
    n.flush()
    n.cluster.take()
    return n


def with_log(n: Node, terms: tuple[int, ...], term: int | None = None) -> Node:
    """Give ``n``'s server a log of entries of ``terms`` from leader s2 (in ``term``, the last entry's by default)."""
    n.deliver("s2", "AppendEntries", append(term or terms[-1], new=entries(*terms)))
    assert [n.server.log.term_at(i) for i in range(1, len(terms) + 1)] == list(terms)
    n.cluster.take()
    return n


# -- terms (Figure 2, "Rules for Servers: all servers") -----------------------------------------------------------
def test_a_server_starts_as_a_follower_of_no_one_in_term_0():
    server = node().server
    assert (server.role, server.current_term, server.voted_for, server.leader_id) == (FOLLOWER, 0, None, None)
    assert server.log.last_index == 0 and server.commit_index == 0


def test_a_follower_adopts_a_higher_term_and_its_leader():
    n = node()
    n.deliver("s3", "AppendEntries", append(2, leader="s3"))
    assert (n.server.current_term, n.server.role, n.server.leader_id) == (2, FOLLOWER, "s3")
    assert [s.payload["term"] for s in n.cluster.take("AppendEntriesReply")] == [2]


def test_a_candidate_steps_down_on_a_higher_term_and_votes_afresh():
    n = node(pre_vote=False, check_quorum=False)
    n.server.campaign()
    assert (n.server.role, n.server.current_term, n.server.voted_for) == (CANDIDATE, 1, "s1")
    n.deliver("s3", "RequestVote", ask_vote(3, candidate="s3"))
    assert (n.server.role, n.server.current_term, n.server.voted_for) == (FOLLOWER, 3, "s3")


def test_a_leader_steps_down_on_a_reply_with_a_higher_term():
    n = leader_of_term_1()
    n.deliver("s2", "AppendEntriesReply", append_reply(5, None))
    assert (n.server.role, n.server.current_term, n.server.voted_for) == (FOLLOWER, 5, None)
    assert n.server.election_deadline is not None  # a follower again: its election timer runs


def live_timers(n: Node) -> list[str]:
    """The server's actions still due in the queue (a cancelled timer stays queued, as a no-op of no server)."""
    return sorted(entry[2].__name__ for entry in n.sim._queue if getattr(entry[2], "__self__", None) is n.server)


def test_a_leader_that_steps_down_calls_off_its_heartbeat_check_quorum_and_flush():
    n = leader_of_term_1(check_quorum=True)
    n.deliver("c1", "ClientRequest", {"op": "put", "key": "k1", "value": "v", "expected": None, "seq": 1})
    # The candidate's alarm stays too: a lazy alarm finds no deadline when it wakes (`set_election_deadline`).
    assert live_timers(n) == ["_check_quorum", "_election_timeout", "_flush", "_heartbeat"]
    n.deliver("s2", "AppendEntriesReply", append_reply(5, None))
    assert live_timers(n) == ["_election_timeout"]  # a follower's one alarm, nothing of its leadership


def test_a_crashed_server_has_no_timer_left_and_a_restarted_one_a_single_alarm():
    n = leader_of_term_1(check_quorum=True)
    n.deliver("c1", "ClientRequest", {"op": "put", "key": "k1", "value": "v", "expected": None, "seq": 1})
    n.server.crash()
    assert live_timers(n) == []
    n.server.restart()
    n.server.set_election_deadline(n.sim.now + MIN_TIMEOUT / 2)  # earlier: the alarm is moved, not doubled
    assert live_timers(n) == ["_election_timeout"]


def test_a_request_of_a_stale_term_is_refused_and_changes_nothing():
    n = with_log(node(), (1, 2))
    n.deliver("s3", "AppendEntries", append(1, prev=(2, 2), new=entries(1), leader="s3"))
    (reply,) = n.cluster.take("AppendEntriesReply")
    assert reply.payload["term"] == 2 and not reply.payload["success"]
    assert n.server.log.last_index == 2 and n.server.leader_id == "s2"


# -- elections (5.2) ----------------------------------------------------------------------------------------------
def test_election_timeouts_are_drawn_at_random_between_the_bounds():
    n = node()
    drawn = set()
    for _ in range(50):
        n.server.reset_election_timer()
        drawn.add(n.server.election_deadline - n.sim.now)
    assert all(MIN_TIMEOUT <= d <= MAX_TIMEOUT for d in drawn) and len(drawn) == 50


def test_a_follower_that_hears_no_leader_stands_for_election():
    n = with_log(node(pre_vote=False), (1, 1))
    n.run(MAX_TIMEOUT + 0.001)
    assert (n.server.role, n.server.current_term, n.server.voted_for) == (CANDIDATE, 2, "s1")
    asked = n.cluster.take("RequestVote")
    assert [s.dst for s in asked] == ["s2", "s3"]
    assert all(s.payload == ask_vote(2, last=(2, 1), candidate="s1") for s in asked)


def test_heartbeats_keep_a_follower_from_standing():
    n = node(pre_vote=False)
    for _ in range(20):
        n.deliver("s2", "AppendEntries", append(1))
        n.run(MIN_TIMEOUT * 0.9)
    assert n.server.role == FOLLOWER and n.server.current_term == 1 and not n.cluster.take("RequestVote")


def test_pre_vote_asks_for_the_next_term_without_taking_it():
    n = node(pre_vote=True)
    n.run(MAX_TIMEOUT + 0.001)
    assert (n.server.role, n.server.current_term, n.server.voted_for) == (PRE_CANDIDATE, 0, None)
    assert {s.payload["term"] for s in n.cluster.take("PreVote")} == {1}
    n.deliver("s3", "PreVoteReply", {"term": 1, "granted": True})
    assert (n.server.role, n.server.current_term, n.server.voted_for) == (CANDIDATE, 1, "s1")


def test_a_candidate_needs_a_majority_of_the_voters():
    n = node(FIVE, pre_vote=False)
    n.server.campaign()
    n.deliver("s2", "RequestVoteReply", {"term": 1, "granted": True})
    n.deliver("s3", "RequestVoteReply", {"term": 1, "granted": False})
    assert n.server.role == CANDIDATE  # two of five
    n.deliver("s2", "RequestVoteReply", {"term": 1, "granted": True})  # the same vote twice counts once
    assert n.server.role == CANDIDATE
    n.deliver("s4", "RequestVoteReply", {"term": 1, "granted": True})
    assert n.server.role == LEADER


def test_a_candidate_steps_down_for_a_leader_of_its_own_term():
    n = node(pre_vote=False)
    n.server.campaign()
    n.deliver("s3", "AppendEntries", append(1, leader="s3"))
    assert (n.server.role, n.server.current_term, n.server.leader_id) == (FOLLOWER, 1, "s3")
    assert n.cluster.take("AppendEntriesReply")[0].payload["success"]


def test_a_server_votes_once_per_term():
    n = node(check_quorum=False)
    n.deliver("s2", "RequestVote", ask_vote(1, candidate="s2"))
    n.deliver("s3", "RequestVote", ask_vote(1, candidate="s3"))
    n.deliver("s2", "RequestVote", ask_vote(1, candidate="s2"))  # a retry of the vote it got
    assert [s.payload["granted"] for s in n.cluster.take("RequestVoteReply")] == [True, False, True]
    assert n.server.voted_for == "s2"


@pytest.mark.parametrize(
    ("last", "granted"),
    [((1, 3), True), ((3, 2), True), ((4, 2), True), ((2, 2), False), ((9, 1), False)],
)
def test_a_vote_goes_only_to_a_log_at_least_as_up_to_date(last, granted):
    """5.4.1: a later last term wins; with the same last term, the longer log (ours ends at 3 in term 2)."""
    n = with_log(node(check_quorum=False), (1, 1, 2))
    n.deliver("s3", "RequestVote", ask_vote(4, last=last, candidate="s3"))
    (reply,) = n.cluster.take("RequestVoteReply")
    assert reply.payload == {"term": 4, "granted": granted}
    assert n.server.current_term == 4  # the term moves on either way


def test_a_server_that_heard_from_a_leader_lately_ignores_a_disruptive_candidate():
    """4.2.3 (with check-quorum): within the minimum election timeout of a leader's message, a vote request of a
    higher term neither moves the term nor gets a vote; nor does a pre-vote get granted."""
    n = with_log(node(check_quorum=True), (1,))
    n.deliver("s3", "RequestVote", ask_vote(5, last=(1, 1), candidate="s3"))
    n.deliver("s3", "PreVote", ask_vote(5, last=(1, 1), candidate="s3"))
    assert [s.payload for s in n.cluster.take()] == [{"term": 1, "granted": False}] * 2
    assert n.server.current_term == 1
    n.run(MIN_TIMEOUT)
    n.deliver("s3", "RequestVote", ask_vote(5, last=(1, 1), candidate="s3"))
    assert n.cluster.take()[-1].payload == {"term": 5, "granted": True}


# -- log replication (5.3) ----------------------------------------------------------------------------------------
def test_a_leader_appends_a_client_command_in_its_term_and_sends_it_to_every_peer():
    n = leader_of_term_1()
    n.deliver("c1", "ClientRequest", {"op": "set", "key": "k1", "value": "v1", "expected": None, "seq": 1})
    assert n.server.log.last_index == 2 and n.server.log.entry_at(2)["term"] == 1
    n.flush()
    sent = n.cluster.take("AppendEntries")
    assert [s.dst for s in sent] == ["s2", "s3"]
    assert all(s.payload["prev_index"] == 0 and [e["term"] for e in s.payload["entries"]] == [1, 1] for s in sent)


def test_a_leader_sends_heartbeats_every_interval():
    n = leader_of_term_1()
    for peer in ("s2", "s3"):
        n.deliver(peer, "AppendEntriesReply", append_reply(1, 1))
    n.cluster.take()
    n.run(3 * HEARTBEAT + 0.001)
    sent = n.cluster.take("AppendEntries")
    assert [s.dst for s in sent] == ["s2", "s3"] * 3
    assert all(s.payload["entries"] == [] and s.payload["prev_index"] == 1 for s in sent)


def test_a_leader_commits_once_a_majority_holds_an_entry_and_answers_the_client():
    n = leader_of_term_1()
    n.deliver("c1", "ClientRequest", {"op": "set", "key": "k1", "value": "v1", "expected": None, "seq": 1})
    n.flush()
    n.deliver("s2", "AppendEntriesReply", append_reply(1, 2))
    assert n.server.commit_index == n.server.last_applied == 2  # itself and s2: two of three
    assert n.server.kv == {"k1": "v1"} and n.cluster.answers == [("c1", 1, "ok")]


def test_a_leader_commits_an_older_terms_entry_only_with_one_of_its_own():
    """Figure 8: a majority holding an entry of an older term is not enough; counting replicas commits entries of
    the leader's own term only (and those before them with them)."""
    n = with_log(node(pre_vote=False), (1, 2), term=2)
    n.server.campaign()
    n.deliver("s2", "RequestVoteReply", {"term": 3, "granted": True})
    assert n.server.role == LEADER and n.server.log.term_at(3) == 3  # its no-op
    n.deliver("s2", "AppendEntriesReply", append_reply(3, 2, prev=1))
    assert n.server.commit_index == 0
    n.deliver("s2", "AppendEntriesReply", append_reply(3, 3, prev=2))
    assert n.server.commit_index == 3


def test_the_broken_rule_commits_the_older_entry_by_counting():
    n = with_log(node(pre_vote=False, break_commit_current_term=True), (1, 2), term=2)
    n.server.campaign()
    n.deliver("s2", "RequestVoteReply", {"term": 3, "granted": True})
    n.deliver("s2", "AppendEntriesReply", append_reply(3, 2, prev=1))
    assert n.server.commit_index == 2


def test_a_follower_refuses_entries_that_do_not_follow_its_log_and_hints_where_to_retry():
    n = with_log(node(), (1, 1))
    n.deliver("s2", "AppendEntries", append(2, prev=(2, 2), new=entries(2)))
    n.deliver("s2", "AppendEntries", append(2, prev=(5, 2), new=entries(2)))
    hints = [(s.payload["conflict_index"], s.payload["conflict_term"]) for s in n.cluster.take()]
    assert hints == [(1, 1), (3, None)]  # the first index of the conflicting term; past the end, the end
    assert n.server.log.last_index == 2


def test_a_follower_replaces_conflicting_entries_and_keeps_matching_ones():
    n = with_log(node(), (1, 1, 1))
    n.deliver("s2", "AppendEntries", append(2, prev=(1, 1), new=entries(2)))
    assert [n.server.log.term_at(i) for i in (1, 2)] == [1, 2] and n.server.log.last_index == 2
    assert [e.fields["index"] for e in n.cluster.events if e.type == "raft.truncate"] == [2]
    n.deliver("s2", "AppendEntries", append(2, prev=(0, 0), new=entries(1)))  # late, and matching
    assert n.server.log.last_index == 2  # nothing after a matching entry is cut


def test_a_follower_commits_up_to_the_leaders_commit_index_but_no_further_than_it_matched():
    n = with_log(node(), (1, 1, 1))
    n.deliver("s2", "AppendEntries", append(1, prev=(1, 1), commit=3))  # a heartbeat checking index 1 only
    assert n.server.commit_index == 1
    n.deliver("s2", "AppendEntries", append(1, prev=(3, 1), commit=2))
    assert n.server.commit_index == n.server.last_applied == 2


def test_a_leader_backs_up_over_a_conflicting_term_at_once():
    n = leader_of_term_1()
    n.deliver("c1", "ClientRequest", {"op": "set", "key": "k1", "value": "v1", "expected": None, "seq": 1})
    n.flush()
    n.cluster.take()
    n.server.next_index["s2"] = 3
    n.deliver("s2", "AppendEntriesReply", append_reply(1, None, prev=2, conflict=(1, None)))
    (retry,) = n.cluster.take("AppendEntries")
    assert retry.dst == "s2" and retry.payload["prev_index"] == 0 and len(retry.payload["entries"]) == 2


def test_a_refusal_that_teaches_nothing_waits_for_the_next_heartbeat():
    """etcd's probe pacing: a refusal that leaves the next index where it was (it can come only late, or from a
    broken rule) sends nothing; the next heartbeat probes again."""
    n = leader_of_term_1()
    n.deliver("s2", "AppendEntriesReply", append_reply(1, 1))
    n.cluster.take()
    n.deliver("s2", "AppendEntriesReply", append_reply(1, None, prev=1, conflict=(1, 1)))
    assert n.server.next_index["s2"] == 2 and not n.cluster.take()
    n.run(HEARTBEAT + 0.001)
    assert [s.dst for s in n.cluster.take("AppendEntries")] == ["s2", "s3"]


# -- leadership, persistence, membership ---------------------------------------------------------------------------
def test_a_leader_that_hears_from_no_majority_steps_down():
    n = leader_of_term_1(check_quorum=True)
    n.run(MAX_TIMEOUT + 0.001)
    assert n.server.role == FOLLOWER and n.cluster.notes


def test_a_follower_redirects_a_client_to_the_leader_it_knows():
    n = with_log(node(), (1,))
    n.deliver("c1", "ClientRequest", {"op": "get", "key": "k1", "value": None, "expected": None, "seq": 1})
    assert n.cluster.redirects == [("c1", "s2")]


def test_a_restart_keeps_term_vote_and_log_and_forgets_the_rest():
    n = with_log(node(check_quorum=False), (1, 1))
    n.deliver("s2", "AppendEntries", append(1, prev=(2, 1), commit=2))
    n.deliver("s3", "RequestVote", ask_vote(2, last=(2, 1), candidate="s3"))
    n.server.crash()
    n.server.restart()
    server = n.server
    assert (server.current_term, server.voted_for, server.log.last_index) == (2, "s3", 2)
    assert (server.role, server.commit_index, server.leader_id) == (FOLLOWER, 0, None)


def test_a_server_left_out_of_an_uncommitted_configuration_still_stands_without_counting_itself():
    """Dissertation 4.2.2: its log may be the one the others need. It asks the configuration's voters only, and
    needs a majority of them; once it knows the configuration committed, it stands no more."""
    n = with_log(node(pre_vote=False), (1,))
    removal = {"term": 1, "command": {"op": "config", "voters": ["s2", "s3"], "learners": []}}
    n.deliver("s2", "AppendEntries", append(1, prev=(1, 1), new=[removal]))
    assert n.server.voters == ("s2", "s3") and n.server.stands_for_election
    n.run(MAX_TIMEOUT + 0.001)
    assert n.server.role == CANDIDATE and [s.dst for s in n.cluster.take("RequestVote")] == ["s2", "s3"]
    n.deliver("s2", "RequestVoteReply", {"term": 2, "granted": True})
    assert n.server.role == CANDIDATE  # one of two, its own vote not counted
    n.deliver("s3", "RequestVoteReply", {"term": 2, "granted": True})
    assert n.server.role == LEADER
    committed = with_log(node(pre_vote=False), (1,))
    committed.deliver("s2", "AppendEntries", append(1, prev=(1, 1), new=[removal], commit=2))
    assert not committed.server.stands_for_election
    committed.run(3 * MAX_TIMEOUT)
    assert committed.server.role == FOLLOWER and not committed.cluster.take("RequestVote")
