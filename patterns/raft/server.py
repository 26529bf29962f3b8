"""One Raft server: election (with pre-vote and check-quorum), log replication, commit, apply, snapshots.

It follows Figure 2 of the paper and the dissertation's refinements. A server sees the world through two narrow
interfaces, so that a test can step one alone (tests/raft/test_server_rules.py): its `Clock` (virtual time, the
run's random numbers, timers, events: the kernel's `Simulation` is one) and its `Cluster` (send an RPC, have an
event judged, answer a client, the membership hooks: the engine is one). It reads its settings from a frozen
`RaftConfig` and keeps its own tallies. It keeps the handle of each timer it may have to call off: the election
alarm, and the leader's heartbeat, check-quorum and flush, cancelled together when it stops leading or crashes.

Persistent state (kept across a crash): ``current_term``, ``voted_for`` and ``log`` (with its snapshot).
Everything else is volatile and rebuilt from the snapshot on restart.

Speed tricks (this code runs for every message; each keeps the events exactly what the plain code would give):

- *Lazy election alarm*: heartbeats push the election deadline back without scheduling anything; the one pending
  alarm re-arms itself when it wakes before the deadline (`set_election_deadline`).
- *Shared AppendEntries*: peers at the same next index are sent the very same request object, built once while the
  leader's log end, commit index and round stay put (`_send_append`); receivers never change a request.
- *Inline uniform draw*: ``low + (high - low) * rng.random()`` is what ``rng.uniform`` computes, without the call.
- *Judge what is emitted*: every event that tells state is emitted as ``cluster.judge(sim.emit(...))``, one call
  each, rather than through a wrapper that would copy its fields once more.
- *One summary per answer*: the caller of `_answer_append` writes the whole summary string, term included.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

from patterns.core.sim import Event, Timer

from .kv import StateMachine
from .log import RaftLog
from .params import RaftConfig

FOLLOWER, PRE_CANDIDATE, CANDIDATE, LEADER = "follower", "pre_candidate", "candidate", "leader"
ROLES = (FOLLOWER, PRE_CANDIDATE, CANDIDATE, LEADER)
COMMAND_FIELDS = ("op", "key", "value", "expected", "seq")  # what a client request puts in the log
TALLIES = ("elections", "leaders", "commits", "snapshots", "installs")  # what a server counts of its own doings


class Clock(Protocol):
    """Virtual time as a server uses it: the kernel's `Simulation` is one."""

    now: float
    rng: random.Random

    def schedule(self, delay: float, action: Callable[..., Any], *args: Any) -> Timer: ...

    def schedule_at(self, t: float, action: Callable[..., Any], *args: Any) -> Timer: ...

    def cancel(self, timer: Timer | None) -> None: ...

    def emit(self, type: str, fields: dict[str, Any] | None = None) -> Event: ...


class Cluster(Protocol):
    """All a server asks of the rest of the cluster: the engine is one, a test's fake another."""

    def send_rpc(self, src: str, dst: str, kind: str, payload: dict[str, Any], summary: str) -> None:
        """Put an RPC on the network; its answer comes back through `HANDLERS`."""

    def judge(self, event: Event) -> None:
        """Have the safety checker judge an event just emitted."""

    def note(self, detail: str) -> None:
        """A remark for the reader (a leader stepping down), nothing to judge."""

    def answer(self, server: str, client: str, seq: int, result: Any) -> None:
        """The result of a client's operation, from the leader that applied or read it."""

    def redirect(self, server: str, client: str, request: dict[str, Any], leader: str | None) -> None:
        """Tell a client that this server does not lead, and whom it believes leads."""

    def membership_step(self, leader: Server) -> None:
        """A leader's heartbeat: the moment to propose the next membership change, if one is waiting."""

    def config_committed(self, leader: Server) -> None:
        """A leader committed an entry at or after its configuration's: servers it removed may retire."""


class Server:
    def __init__(self, server_id: str, voters: tuple[str, ...], config: RaftConfig, cluster: Cluster, sim: Clock):
        self.cluster = cluster
        self.sim = sim
        self.config = config
        self.tally = dict.fromkeys(TALLIES, 0)
        self.id = server_id
        self.alive = True
        self.role = FOLLOWER
        self.current_term = 0
        self.voted_for: str | None = None
        self.log = RaftLog()
        if voters:  # the bootstrap configuration: what every initial server knows before any entry
            self.log.snapshot_data = {**StateMachine().snapshot(), "voters": list(voters), "learners": []}
        # Known from the start, so told by no raft.config event (the engine's raft.role events come first).
        self.voters, self.learners = _config_of(self.log.snapshot_data)
        self.config_index = 0
        self._alarm_timer: Timer | None = None  # the pending election alarm (see set_election_deadline)
        self._heartbeat_timer: Timer | None = None  # leader: the next heartbeat round
        self._quorum_timer: Timer | None = None  # leader: the next check-quorum
        self._flush_timer: Timer | None = None  # leader: the broadcast of what was proposed or read at this instant
        self._volatile_reset()

    def _volatile_reset(self) -> None:
        """What a crash loses; rebuilt from the snapshot (the only state machine on disk)."""
        data = self.log.snapshot_data
        self.machine = StateMachine(data)
        self.applied_config = _config_of(data)
        self.commit_index = self.last_applied = self.log.snapshot_index
        self.leader_id: str | None = None
        self.next_index: dict[str, int] = {}
        self.match_index: dict[str, int] = {}
        self.votes: dict[str, bool] = {}  # granted to this candidacy, in arrival order (a dict: no hash order)
        self.election_deadline: float | None = None
        self._alarm: float | None = None  # when the pending election alarm wakes (see set_election_deadline)
        self.term_start = 0  # index of the leader's no-op: reads wait until it is committed
        self._heard = -1.0  # when a leader was last heard from (for pre-vote and the vote lease)
        self._round = 0  # leader: number of the latest AppendEntries broadcast
        self._acked: dict[str, int] = {}  # leader: the latest round each peer answered in this term
        self._active: dict[str, bool] = {}  # leader: peers heard from since the last check-quorum
        self._reads: list[dict[str, Any]] = []  # leader: read-index reads waiting
        self._requests_at: tuple[int, int, int, int] | None = None  # leader: the point `_requests` were made at
        self._requests: dict[int, tuple[dict[str, Any], str]] = {}  # leader: AppendEntries (and summary) by next index
        self._plan_snapshot(None)
        self._refresh_config()

    # -- views ------------------------------------------------------------------------------------------------
    @property
    def kv(self) -> dict[str, str]:
        return self.machine.kv

    @property
    def stands_for_election(self) -> bool:
        """Whether this server's election timer runs (the dissertation, 4.2.2). A server uses the latest
        configuration in its log, committed or not, and a voter of it stands. So does a server that configuration
        leaves out, as long as it is not known to be committed: the server may still be needed (a cut-off leader
        that removed itself may hold the only copy of that entry, and the other voters' logs are not up to date
        enough to win without it); it does not count its own vote (`quorum` counts the configuration's voters), and
        it grants votes as any server does. A learner does not stand, nor a server that knows no configuration
        yet, nor one that knows its removal committed (a majority of the new configuration can elect a leader
        without it). Disruption by removed servers is what pre-vote and the leader lease (4.2.3) prevent."""
        if self.id in self.voters:
            return True
        return bool(self.voters) and self.id not in self.learners and self.config_index > self.commit_index

    def peers(self) -> list[str]:
        return [s for s in (*self.voters, *self.learners) if s != self.id]

    def quorum(self, members: Any) -> bool:
        """Do ``members`` hold a majority of the voters of this server's configuration?"""
        return 2 * sum(1 for v in self.voters if v in members) > len(self.voters)

    def leader_live(self) -> bool:
        """Has a leader been heard from within the minimum election timeout (or is this the leader)?"""
        if self.role == LEADER:
            return True
        return self.leader_id is not None and self.sim.now - self._heard < self.config.election_timeout_min

    # -- roles and terms --------------------------------------------------------------------------------------
    def _set_role(self, role: str) -> None:
        if role != self.role:
            if self.role == LEADER:
                self._cancel_leader_timers()
                self._reads = []
                self.next_index, self.match_index = {}, {}
            self.role = role
            self.cluster.judge(self.sim.emit("raft.role", {"server": self.id, "role": role, "term": self.current_term}))

    def _set_term(self, term: int) -> None:
        self.current_term, self.voted_for = term, None
        self.cluster.judge(self.sim.emit("raft.term", {"server": self.id, "term": term}))

    def _step_down(self, term: int, leader: str | None = None) -> None:
        if term > self.current_term:
            self._set_term(term)
        self.leader_id = leader
        self.votes = {}
        self._set_role(FOLLOWER)
        if self.election_deadline is None:
            self.reset_election_timer()

    # -- election timer ---------------------------------------------------------------------------------------
    def reset_election_timer(self) -> None:
        low, high = self.config.election_timeout_min, self.config.election_timeout_max
        self.set_election_deadline(self.sim.now + (low + (high - low) * self.sim.rng.random()))  # inline uniform

    def set_election_deadline(self, t: float) -> None:
        """Move the deadline. The alarm is lazy: one already set for earlier simply sets itself again on waking,
        so the heartbeats that push the deadline back every 50 ms cost no queue entry each."""
        if not self.alive or self.role == LEADER or (self.id not in self.voters and not self.stands_for_election):
            self.election_deadline = None  # (a voter stands: the common case asks no property)
            return
        self.election_deadline = t
        if self._alarm is None or self._alarm > t:
            self._arm_alarm(t)

    def _arm_alarm(self, t: float) -> None:
        """Set the one election alarm for ``t``, calling off any other."""
        self._alarm = t
        self.sim.cancel(self._alarm_timer)
        self._alarm_timer = self.sim.schedule_at(t, self._election_timeout)

    def _election_timeout(self) -> None:
        self._alarm = None
        deadline = self.election_deadline
        if deadline is None or not self.alive:
            return
        if self.sim.now < deadline:
            self._arm_alarm(deadline)
            return
        self.election_deadline = None
        self.campaign()

    def campaign(self) -> None:
        """The election timeout: ask for pre-votes first if pre-vote is on, else start a real election."""
        if self.role == LEADER or not self.stands_for_election:
            return
        self.reset_election_timer()
        self.leader_id = None
        if not self.config.pre_vote:
            self._start_election()
            return
        self.votes = {self.id: True}
        self._set_role(PRE_CANDIDATE)
        self.cluster.judge(
            self.sim.emit(
                "raft.vote", {"server": self.id, "candidate": self.id, "term": self.current_term + 1, "pre": True}
            )
        )
        self._ask_votes("PreVote", self.current_term + 1)
        if self.quorum(self.votes):
            self._start_election()

    def _start_election(self) -> None:
        self.tally["elections"] += 1
        self._set_term(self.current_term + 1)
        self.voted_for = self.id
        self.votes = {self.id: True}
        self._set_role(CANDIDATE)
        self.cluster.judge(
            self.sim.emit(
                "raft.vote", {"server": self.id, "candidate": self.id, "term": self.current_term, "pre": False}
            )
        )
        self._ask_votes("RequestVote", self.current_term)
        if self.quorum(self.votes):
            self._become_leader()

    def _ask_votes(self, kind: str, term: int) -> None:
        request = {
            "term": term,
            "candidate": self.id,
            "last_index": self.log.last_index,
            "last_term": self.log.last_term,
        }
        summary = f"term {term}, last {self.log.last_index}@t{self.log.last_term}"
        for peer in self.voters:
            if peer != self.id:
                self.cluster.send_rpc(self.id, peer, kind, request, summary)

    def _log_ok(self, request: dict[str, Any]) -> bool:
        """The election restriction (5.4.1): the candidate's log is at least as up to date as ours."""
        if self.config.break_vote_log_check:
            return True
        last_term = self.log.last_term
        return request["last_term"] > last_term or (
            request["last_term"] == last_term and request["last_index"] >= self.log.last_index
        )

    def on_pre_vote(self, src: str, request: dict[str, Any]) -> None:
        """Grant a pre-vote (changing nothing) if a real vote in the next term could be granted."""
        granted = request["term"] > self.current_term and not self.leader_live() and self._log_ok(request)
        if granted:
            self.cluster.judge(
                self.sim.emit("raft.vote", {"server": self.id, "candidate": src, "term": request["term"], "pre": True})
            )
        self._reply_vote(src, "PreVoteReply", request["term"] if granted else self.current_term, granted)

    def on_pre_vote_reply(self, src: str, reply: dict[str, Any]) -> None:
        if reply["term"] > self.current_term and not reply["granted"]:
            self._step_down(reply["term"])
        elif self.role == PRE_CANDIDATE and reply["granted"] and reply["term"] == self.current_term + 1:
            self.votes[src] = True
            if self.quorum(self.votes):
                self._start_election()

    def on_request_vote(self, src: str, request: dict[str, Any]) -> None:
        term = request["term"]
        if term > self.current_term and self.config.check_quorum and self.leader_live():
            self._reply_vote(src, "RequestVoteReply", self.current_term, False)
            return  # the leader lease: a live leader's followers neither vote nor move to the disruptor's term
        if term > self.current_term:
            self._step_down(term)
        granted = term == self.current_term and self.voted_for in (None, src) and self._log_ok(request)
        if granted:
            self.voted_for = src
            self.cluster.judge(
                self.sim.emit("raft.vote", {"server": self.id, "candidate": src, "term": term, "pre": False})
            )
            self.reset_election_timer()
        self._reply_vote(src, "RequestVoteReply", self.current_term, granted)

    def on_request_vote_reply(self, src: str, reply: dict[str, Any]) -> None:
        if reply["term"] > self.current_term:
            self._step_down(reply["term"])
        elif self.role == CANDIDATE and reply["term"] == self.current_term and reply["granted"]:
            self.votes[src] = True
            if self.quorum(self.votes):
                self._become_leader()

    def _become_leader(self) -> None:
        self.tally["leaders"] += 1
        self.election_deadline = None
        self.leader_id = self.id
        self._set_role(LEADER)
        self._round = 0
        self._acked, self._active = {}, {}
        self.next_index = {peer: self.log.last_index + 1 for peer in self.peers()}
        self.match_index = {peer: 0 for peer in self.peers()}
        self.term_start = self.log.last_index + 1
        self.propose({"op": "noop"})
        self._heartbeat_timer = self.sim.schedule(self.config.heartbeat, self._heartbeat)
        self._quorum_timer = self.sim.schedule(self.config.election_timeout_max, self._check_quorum)

    # -- leader: replication ----------------------------------------------------------------------------------
    def propose(self, command: dict[str, Any]) -> int:
        """Append a command to the leader's log and send it soon (proposals made at one instant go together)."""
        index = self.log.last_index + 1
        entry = {"term": self.current_term, "command": command}
        self.log.append([entry])
        self.cluster.judge(self.sim.emit("raft.append", {"server": self.id, "index": index, "entries": [entry]}))
        if command["op"] == "config":
            self._refresh_config()
        self._schedule_flush()
        self._advance_commit()  # a leader alone in its configuration commits at once
        return index

    def _schedule_flush(self) -> None:
        if self._flush_timer is None:
            self._flush_timer = self.sim.schedule(0.0, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        if self.alive:
            self._broadcast()

    def _heartbeat(self) -> None:
        self._broadcast()
        self.cluster.membership_step(self)
        self._heartbeat_timer = self.sim.schedule(self.config.heartbeat, self._heartbeat)

    def _cancel_leader_timers(self) -> None:
        """Leadership ends (a step down or a crash): its heartbeat, check-quorum and flush are called off."""
        for timer in (self._heartbeat_timer, self._quorum_timer, self._flush_timer):
            self.sim.cancel(timer)
        self._heartbeat_timer = self._quorum_timer = self._flush_timer = None

    def _broadcast(self) -> None:
        """One AppendEntries round to every peer."""
        self._round += 1
        for peer in self.peers():
            self._send_append(peer)
        self._serve_reads()

    def _send_append(self, peer: str) -> None:
        """Send ``peer`` the entries from its next index (a snapshot if they are compacted). Peers at the same point
        of the log (all of them, most of the time) are sent the very same request: nothing in it depends on the
        peer, so it is built once per next index while the leader's log end, commit index and round stay put."""
        next_index = self.next_index[peer]
        if next_index - 1 < self.log.snapshot_index:
            self._send_snapshot(peer)
            return
        # The term names the leadership: a server leads only as the candidate of a term it started, so at most once.
        point = (self.current_term, self.log.last_index, self.commit_index, self._round)
        if point != self._requests_at:
            self._requests_at, self._requests = point, {}
        made = self._requests.get(next_index)
        if made is None:
            made = self._requests[next_index] = self._append_request(next_index)
        request, summary = made
        self.cluster.send_rpc(self.id, peer, "AppendEntries", request, summary)

    def _append_request(self, next_index: int) -> tuple[dict[str, Any], str]:
        """An AppendEntries request from ``next_index`` and its summary (nothing in it depends on the peer)."""
        prev = next_index - 1
        stop = min(self.log.last_index + 1, next_index + self.config.max_batch)
        entries = self.log.slice(next_index, stop)
        request = {
            "term": self.current_term,
            "leader": self.id,
            "prev_index": prev,
            "prev_term": self.log.term_at(prev),
            "entries": entries,
            "commit": self.commit_index,
            "round": self._round,
        }
        shown = f"{next_index}..{stop - 1}" if entries else "heartbeat"
        summary = f"term {self.current_term}, prev {prev}@t{request['prev_term']}, {shown}, commit {self.commit_index}"
        return request, summary

    def _send_snapshot(self, peer: str) -> None:
        log = self.log
        request = {
            "term": self.current_term,
            "leader": self.id,
            "index": log.snapshot_index,
            "last_term": log.snapshot_term,
            "data": log.snapshot_data,
            "round": self._round,
        }
        summary = f"term {self.current_term}, through {log.snapshot_index}@t{log.snapshot_term}"
        self.cluster.send_rpc(self.id, peer, "InstallSnapshot", request, summary)

    def _check_quorum(self) -> None:
        """Check-quorum: a leader that has not heard from a majority in an election timeout steps down."""
        heard = [peer for peer, active in self._active.items() if active] + [self.id]
        self._active = {}
        if self.config.check_quorum and not self.quorum(heard):
            self.cluster.note(f"{self.id} steps down: it heard from no majority in an election timeout")
            self._step_down(self.current_term)
            return
        self._quorum_timer = self.sim.schedule(self.config.election_timeout_max, self._check_quorum)

    def _leader_reply(self, src: str, reply: dict[str, Any]) -> bool:
        """Common part of the leader's handling of replies: True if the reply is for this leader's term."""
        if reply["term"] > self.current_term:
            self._step_down(reply["term"])
            return False
        if self.role != LEADER or reply["term"] != self.current_term or src not in self.next_index:
            return False
        self._active[src] = True
        if reply["round"] > self._acked.get(src, 0):  # the latest round this peer acknowledged
            self._acked[src] = reply["round"]
        return True

    def on_append_reply(self, src: str, reply: dict[str, Any]) -> None:
        if not self._leader_reply(src, reply):
            return
        if reply["success"]:
            self._matched(src, reply["match"])
        else:
            self._back_up(src, reply)
        if self._reads and self.role == LEADER:
            self._serve_reads()

    def _matched(self, peer: str, match: int) -> None:
        """A peer holds the log through ``match``. Only news sends the next batch at once: a duplicated or late
        reply must not start a second stream of AppendEntries (each duplicate would double the traffic)."""
        if match <= self.match_index[peer]:
            return
        self.match_index[peer] = match
        if match >= self.next_index[peer]:
            self.next_index[peer] = match + 1
        if match > self.commit_index:  # a match at or below the commit index cannot move the majority past it
            self._advance_commit()
        if self.role == LEADER and self.next_index[peer] <= self.log.last_index:
            self._send_append(peer)

    def _back_up(self, peer: str, reply: dict[str, Any]) -> None:
        """Fast backup: jump over a whole conflicting term (or to the follower's end) instead of one entry, and
        probe there at once. A refusal that moves nothing (the follower refuses at the entry after what it was
        known to match, which only a broken rule can make it do) sends nothing: the next heartbeat probes again,
        as etcd's probe state waits for one. Otherwise every refusal would beget a request, and each heartbeat
        round would start one more endless exchange of the two."""
        hint = reply["conflict_index"]
        before = self.next_index[peer]
        if hint is None or reply["prev_index"] != before - 1:
            return  # a refusal of an older term's request, or an answer the leader has moved on from
        if reply["conflict_term"] is not None:
            last = self.log.last_index_of_term(reply["conflict_term"])
            if last is not None:
                hint = last + 1
        self.next_index[peer] = max(self.match_index[peer] + 1, min(hint, before - 1))
        if self.next_index[peer] != before:
            self._send_append(peer)

    def on_install_reply(self, src: str, reply: dict[str, Any]) -> None:
        if self._leader_reply(src, reply):
            self._matched(src, reply["match"])
            self._serve_reads()

    def _advance_commit(self) -> None:
        """Commit the highest index a majority of voters hold, if its entry is of this term (Figure 8)."""
        last, match_index, held = self.log.last_index, self.match_index, []
        for voter in self.voters:  # a loop, not a list comprehension (a function call each time): per reply
            held.append(last if voter == self.id else match_index.get(voter, 0))
        if not held:
            return
        held.sort(reverse=True)
        n = held[len(held) // 2]
        if n > self.commit_index and (
            self.config.break_commit_current_term or self.log.term_at(n) == self.current_term
        ):
            self.tally["commits"] += 1
            self._commit_to(n)
            if self.config_index <= self.commit_index:
                self.cluster.config_committed(self)

    # -- follower: AppendEntries and InstallSnapshot ----------------------------------------------------------
    def _accept_leader(self, src: str, term: int) -> None:
        if term != self.current_term or self.role != FOLLOWER:
            self._step_down(term, src)
        self.leader_id = src
        self._heard = self.sim.now
        self.reset_election_timer()

    def on_append(self, src: str, request: dict[str, Any]) -> None:
        term = request["term"]
        if term < self.current_term:
            self._answer_append(src, request, f"term {self.current_term}, no: stale term", None, None, None)
            return
        self._accept_leader(src, term)
        log, prev, entries = self.log, request["prev_index"], request["entries"]
        match = prev + len(entries)
        if prev < log.snapshot_index:  # the snapshot covers the start: those entries are committed and match
            entries = entries[log.snapshot_index - prev :]
            prev = log.snapshot_index
            match = max(match, prev)
        elif prev > log.last_index:
            self._refuse_append(src, request, log.last_index + 1, None)
            return
        elif log.term_at(prev) != request["prev_term"] and not self.config.break_consistency_check:
            self._refuse_append(src, request, log.first_index_of_term(prev), log.term_at(prev))
            return
        if entries:  # a heartbeat stores nothing
            self._store(prev + 1, entries)
        if request["commit"] > self.commit_index:
            self._commit_to(min(request["commit"], max(match, self.commit_index)))
        self._answer_append(src, request, f"term {self.current_term}, ok, match {match}", match, None, None)

    def _answer_append(
        self,
        dst: str,
        request: dict[str, Any],
        summary: str,
        match: int | None,
        conflict_index: int | None,
        conflict_term: int | None,
    ) -> None:
        """Answer an AppendEntries with its round and prev_index (how the leader knows what the answer is to); a
        success is the answer that carries a ``match``. The caller writes the whole summary, term included (one
        string built per answer, not two: this runs for every AppendEntries). Every argument is passed by position:
        the interpreter calls a function that way without setting up keywords or defaults."""
        reply = {
            "term": self.current_term,
            "success": match is not None,
            "round": request["round"],
            "prev_index": request["prev_index"],
            "conflict_index": conflict_index,
            "conflict_term": conflict_term,
        }
        if match is not None:
            reply["match"] = match
        self.cluster.send_rpc(self.id, dst, "AppendEntriesReply", reply, summary)

    def _refuse_append(self, dst: str, request: dict[str, Any], index: int, term: int | None) -> None:
        """A failed consistency check, with the fast-backup hint: where the leader may try next."""
        summary = f"term {self.current_term}, no: conflict at {index} (term {term})"
        self._answer_append(dst, request, summary, None, index, term)

    def _store(self, index: int, entries: list[dict[str, Any]]) -> None:
        """Append what is new; truncate from the first entry whose term differs (never a matching entry)."""
        log = self.log
        held, offset = log.entries, index - log.snapshot_index - 1  # where ``index`` is in the log's list
        for k, entry in enumerate(entries):
            at = index + k
            if offset + k >= len(held):
                self._append(at, entries[k:])
                return
            mine = held[offset + k]
            if mine is not entry and mine["term"] != entry["term"]:  # *shared entries*: the very same object matches
                log.truncate_from(at)
                self.cluster.judge(self.sim.emit("raft.truncate", {"server": self.id, "index": at}))
                if self.config_index >= at:
                    self._refresh_config()  # the configuration in use was cut off: fall back to the one before
                self._append(at, entries[k:])
                return

    def _append(self, index: int, entries: list[dict[str, Any]]) -> None:
        self.log.append(entries)
        self.cluster.judge(self.sim.emit("raft.append", {"server": self.id, "index": index, "entries": entries}))
        for entry in entries:  # a loop, not any(...): this runs for every append
            if entry["command"]["op"] == "config":
                self._refresh_config()
                break

    def on_install(self, src: str, request: dict[str, Any]) -> None:
        reply = {"term": self.current_term, "match": 0, "round": request["round"]}
        if request["term"] < self.current_term:
            self._reply(src, "InstallSnapshotReply", reply, "installed through 0")
            return
        self._accept_leader(src, request["term"])
        index, term, data = request["index"], request["last_term"], request["data"]
        if index > self.commit_index:
            self.log.install(index, term, data)
            self.machine = StateMachine(data)
            self.applied_config = _config_of(data)
            self.commit_index = self.last_applied = index
            self._plan_snapshot(None)
            self.tally["installs"] += 1
            self.cluster.judge(
                self.sim.emit("raft.install", {"server": self.id, "index": index, "term": term, "leader": src})
            )
            self._refresh_config()
        reply.update(term=self.current_term, match=index)
        self._reply(src, "InstallSnapshotReply", reply, f"installed through {index}")

    # -- commit, apply, snapshot ------------------------------------------------------------------------------
    def _commit_to(self, index: int) -> None:
        if index <= self.commit_index:
            return
        self.commit_index = index
        self.cluster.judge(self.sim.emit("raft.commit", {"server": self.id, "index": index}))
        self._apply()

    def _apply(self) -> None:
        stop = min(self.commit_index, self.log.last_index)
        while self.last_applied < stop:
            index = self.last_applied + 1
            entry = self.log.entry_at(index)
            command = entry["command"]
            result = self.machine.apply(command)
            self.last_applied = index
            if command["op"] == "config":
                self.applied_config = (tuple(command["voters"]), tuple(command["learners"]))
            self.cluster.judge(
                self.sim.emit(
                    "raft.apply",
                    {"server": self.id, "index": index, "term": entry["term"], "command": command, "result": result},
                )
            )
            if self.role == LEADER and "client" in command:
                self.cluster.answer(self.id, command["client"], command["seq"], result)
            if self._snapshot_due is not None and index >= self._snapshot_due:
                self._snapshot()
        if self._reads and self.role == LEADER:
            self._serve_reads()

    def _plan_snapshot(self, taken: tuple[int, int, dict[str, Any]] | None) -> None:
        """Keep the snapshot ``taken`` (index, term, data) to compact through next time, and the applied index due
        for the next snapshot: ``snapshot_threshold`` entries after it (after the log's own snapshot if none)."""
        self._next_snapshot = taken
        threshold = self.config.snapshot_threshold
        since = taken[0] if taken else self.log.snapshot_index
        self._snapshot_due = since + threshold if threshold else None

    def _snapshot(self) -> None:
        """Take a snapshot, and compact the log through the one taken before: the log keeps the latest threshold
        (or more) applied entries for followers a little behind."""
        if self._next_snapshot is not None and self.log.term_at(self._next_snapshot[0]) == self._next_snapshot[1]:
            index, term, data = self._next_snapshot
            self.log.compact(index, term, data)
            self.tally["snapshots"] += 1
            self.cluster.judge(self.sim.emit("raft.snapshot", {"server": self.id, "index": index, "term": term}))
        voters, learners = self.applied_config
        data = {**self.machine.snapshot(), "voters": list(voters), "learners": list(learners)}
        self._plan_snapshot((self.last_applied, self.log.term_at(self.last_applied), data))

    # -- configuration ----------------------------------------------------------------------------------------
    def _refresh_config(self) -> None:
        """Use the latest configuration in the log, committed or not (the dissertation's rule)."""
        latest = self.log.latest_config()
        if latest is not None:
            index, command = latest
            voters, learners = tuple(command["voters"]), tuple(command["learners"])
        else:
            index, (voters, learners) = self.log.snapshot_index, _config_of(self.log.snapshot_data)
        if (voters, learners) == (self.voters, self.learners):
            self.config_index = index
            return
        stood = self.stands_for_election
        self.voters, self.learners, self.config_index = voters, learners, index
        self.cluster.judge(
            self.sim.emit(
                "raft.config", {"server": self.id, "index": index, "voters": list(voters), "learners": list(learners)}
            )
        )
        if self.role == LEADER:
            for peer in self.peers():
                self.next_index.setdefault(peer, self.log.last_index + 1)
                self.match_index.setdefault(peer, 0)
        elif self.stands_for_election != stood and self.alive:
            self.reset_election_timer()  # a new voter starts its timer, one that stops standing stops it

    # -- reads ------------------------------------------------------------------------------------------------
    def read(self, client: str, seq: int, key: str) -> None:
        """A read-index read: answer once a heartbeat round sent after it shows this is still the leader and the
        state machine has applied everything committed when it arrived (at least this term's no-op)."""
        index = max(self.commit_index, self.term_start)
        self._reads.append({"client": client, "seq": seq, "key": key, "index": index, "round": self._round + 1})
        self._schedule_flush()  # the next broadcast is that round

    def _serve_reads(self) -> None:
        if not self._reads:
            return
        rounds = sorted((self._round if v == self.id else self._acked.get(v, 0) for v in self.voters), reverse=True)
        confirmed = rounds[len(rounds) // 2] if rounds else 0
        waiting = []
        for read in self._reads:
            if read["round"] <= confirmed and self.last_applied >= read["index"]:
                self.cluster.answer(self.id, read["client"], read["seq"], self.machine.kv.get(read["key"]))
            else:
                waiting.append(read)
        self._reads = waiting

    # -- clients ----------------------------------------------------------------------------------------------
    def on_client(self, src: str, request: dict[str, Any]) -> None:
        if self.role != LEADER:
            hint = self.leader_id if self.leader_id != self.id else None
            self.cluster.redirect(self.id, src, request, hint)
            return
        done, result = self.machine.answered(src, request["seq"])
        if done:
            self.cluster.answer(self.id, src, request["seq"], result)
        elif request["op"] == "get" and self.config.read_mode == "read_index":
            self.read(src, request["seq"], request["key"])
        else:
            self.propose({name: request[name] for name in COMMAND_FIELDS} | {"client": src})

    # -- crash and restart ------------------------------------------------------------------------------------
    def crash(self) -> None:
        self.alive = False
        self.sim.cancel(self._alarm_timer)
        self._alarm_timer = None
        self._cancel_leader_timers()
        self.cluster.judge(self.sim.emit("raft.crash", {"server": self.id}))
        self._set_role(FOLLOWER)
        self._volatile_reset()

    def restart(self) -> None:
        self.alive = True
        if self.config.break_persist_vote:
            self.voted_for = None  # the broken rule: the vote was never written to disk
        self._volatile_reset()
        self.cluster.judge(
            self.sim.emit(
                "raft.restart",
                {
                    "server": self.id,
                    "term": self.current_term,
                    "voted_for": self.voted_for,
                    "log_last": self.log.last_index,
                },
            )
        )
        self.reset_election_timer()

    # -- messages ---------------------------------------------------------------------------------------------
    def _reply(self, dst: str, kind: str, reply: dict[str, Any], summary: str) -> None:
        """Answer an RPC; each caller knows what its answer says, so the summary needs no guessing from fields."""
        self.cluster.send_rpc(self.id, dst, kind, reply, f"term {reply['term']}, {summary}")

    def _reply_vote(self, dst: str, kind: str, term: int, granted: bool) -> None:
        self._reply(dst, kind, {"term": term, "granted": granted}, "granted" if granted else "refused")


HANDLERS = {  # message kind -> the Server method that takes it (the engine delivers messages through it)
    "PreVote": Server.on_pre_vote,
    "PreVoteReply": Server.on_pre_vote_reply,
    "RequestVote": Server.on_request_vote,
    "RequestVoteReply": Server.on_request_vote_reply,
    "AppendEntries": Server.on_append,
    "AppendEntriesReply": Server.on_append_reply,
    "InstallSnapshot": Server.on_install,
    "InstallSnapshotReply": Server.on_install_reply,
    "ClientRequest": Server.on_client,
}


def _config_of(data: dict[str, Any] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if data is None:
        return (), ()
    return tuple(data["voters"]), tuple(data["learners"])
