"""Raft's event types: enough, with the kernel's net.* events, to re-check every invariant without the engine."""

from __future__ import annotations

from patterns.core.network import EVENT_TYPES as NET_EVENT_TYPES
from patterns.core.registry import EventType

from .server import ROLES

RPC_KINDS = (
    "PreVote",
    "PreVoteReply",
    "RequestVote",
    "RequestVoteReply",
    "AppendEntries",
    "AppendEntriesReply",
    "InstallSnapshot",
    "InstallSnapshotReply",
)
INVARIANTS = (
    "election_safety",
    "leader_append_only",
    "log_matching",
    "leader_completeness",
    "state_machine_safety",
    "linearizability",
)
RULES = (  # rules of Figure 2 whose breaking the checker flags at once, before (if ever) a property above breaks
    "commit_own_term",  # a leader commits by counting replicas only an entry of its own term
    "persistent_state",  # a restart keeps currentTerm and votedFor
)
_OP = {
    "client": "client id (c1, c2, ...)",
    "op": "get | set | delete | cas",
    "key": "the key",
    "value": "the value written (set, cas), else null",
    "expected": "cas: the value expected (null: absent), else null",
    "op_seq": "the client's sequence number of the operation, the same on every retry",
}

EVENT_TYPES = (
    EventType(
        "raft.role",
        "A server changed role (also once per server at the start, as follower of term 0).",
        {"server": "the server", "role": " | ".join(ROLES), "term": "its current term"},
    ),
    EventType(
        "raft.term", "A server's currentTerm changed (persistent).", {"server": "the server", "term": "new term"}
    ),
    EventType(
        "raft.vote",
        "A server granted its vote (a candidate votes for itself too).",
        {
            "server": "the voter",
            "candidate": "who it voted for",
            "term": "the term of the vote",
            "pre": "true for a pre-vote, which changes no state",
        },
    ),
    EventType(
        "raft.append",
        "A server appended entries to its log (a leader's new entry or a follower accepting the leader's).",
        {"server": "the server", "index": "index of the first new entry", "entries": "list of {term, command}"},
    ),
    EventType(
        "raft.truncate",
        "A follower deleted its conflicting entries from an index on.",
        {"server": "the server", "index": "first index deleted"},
    ),
    EventType("raft.commit", "A server's commitIndex advanced.", {"server": "the server", "index": "new commitIndex"}),
    EventType(
        "raft.apply",
        "A server applied a committed entry to its key-value state machine (strictly in index order).",
        {
            "server": "the server",
            "index": "log index",
            "term": "the entry's term",
            "command": "the command: noop, config, or a client op with client and seq",
            "result": "get: the value or null; set, delete: ok; cas: true or false; noop, config: null",
        },
    ),
    EventType(
        "raft.snapshot",
        "A server compacted its log through an index into a snapshot.",
        {"server": "the server", "index": "last index covered", "term": "term of that entry"},
    ),
    EventType(
        "raft.install",
        "A server installed its leader's snapshot (InstallSnapshot).",
        {"server": "the server", "index": "last index covered", "term": "its term", "leader": "who sent it"},
    ),
    EventType("raft.crash", "A server crashed: it keeps currentTerm, votedFor and its log.", {"server": "the server"}),
    EventType(
        "raft.restart",
        "A crashed server is back, as a follower, with its persistent state.",
        {"server": "the server", "term": "currentTerm", "voted_for": "votedFor", "log_last": "its last log index"},
    ),
    EventType(
        "raft.config",
        "A configuration took effect on a server (the latest in its log, committed or not).",
        {"server": "the server", "index": "index of the config entry", "voters": "ids", "learners": "ids"},
    ),
    EventType(
        "raft.removed",
        "A server left the cluster once the configuration without it committed, and was shut down.",
        {"server": "the server"},
    ),
    EventType(
        "raft.rpc",
        "An RPC or its reply was handed to the network (heartbeats included).",
        {
            "kind": " | ".join(RPC_KINDS),
            "src": "sender",
            "dst": "receiver",
            "term": "the sender's term in the message",
            "id": "the network message id (for drop_message)",
            "summary": "a short description",
        },
    ),
    EventType("raft.note", "A remark: a leader stepping down because it heard from no majority.", {"detail": ""}),
    EventType("client.invoke", "A client started an operation.", _OP),
    EventType("client.complete", "A client got the answer to its operation.", {**_OP, "result": "as raft.apply"}),
    EventType(
        "invariant.violated",
        "A safety property, or a rule that protects one, was broken by the event with seq `cause`.",
        {
            "invariant": " | ".join(INVARIANTS + RULES),
            "detail": "what was seen",
            "cause": "seq of the event that broke it",
        },
    ),
    EventType(
        "invariant.undecided",
        "The checker gave up deciding a property within its work budget, at the event with seq `cause` (never a "
        "violation: linearizability, when too many operations on one key are in flight; checking goes on from there).",
        {"invariant": "linearizability", "detail": "what was given up", "cause": "seq of the event judged"},
    ),
    *NET_EVENT_TYPES,
)
