"""Raft's parameters and perturbation commands: typed, bounded, named as in the helpers' contract; and the
settings a server reads, built once from the parameters (`RaftConfig`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from patterns.core.registry import Command, Param, in_group
from patterns.core.scenario import Action, never_there, numbered

SERVER_PATTERN = r"s[0-9]{1,2}"
NODE_PATTERN = r"[sc][0-9]{1,2}"
GROUPS_PATTERN = rf"{NODE_PATTERN}(\.{NODE_PATTERN})*(\|{NODE_PATTERN}(\.{NODE_PATTERN})*)+"
MAX_SERVERS = 12  # initial servers plus those added later

PARAMS = (
    *in_group(
        "Cluster",
        Param("servers", "int", 5, "Servers", min=3, max=9, help="Servers at the start, s1, s2, ..."),
        Param(
            "election_timeout_min_ms",
            "float",
            150.0,
            "Election timeout min",
            min=10,
            max=10000,
            unit="ms",
            help="Each election timeout is drawn uniformly between min and max.",
        ),
        Param("election_timeout_max_ms", "float", 300.0, "Election timeout max", min=10, max=20000, unit="ms"),
        Param("heartbeat_ms", "float", 50.0, "Heartbeat interval", min=5, max=5000, unit="ms"),
        Param(
            "pre_vote",
            "bool",
            True,
            "Pre-vote",
            help="A server first asks whether it could win, and bumps its term only if a majority says yes; a "
            "server that hears from a leader grants no pre-vote.",
        ),
        Param(
            "check_quorum",
            "bool",
            True,
            "Check-quorum",
            help="A leader that hears from no majority within an election timeout steps down, and a server that "
            "heard from a leader within the minimum election timeout ignores vote requests (the leader lease).",
        ),
        Param(
            "snapshot_threshold",
            "int",
            100,
            "Snapshot every",
            min=0,
            max=100000,
            unit="entries",
            help="A server snapshots every this many applied entries and compacts its log through the snapshot "
            "before (0: never).",
        ),
        Param("max_batch", "int", 64, "Batch", min=1, max=1000, unit="entries", help="Entries per AppendEntries."),
    ),
    *in_group(
        "Network",
        Param("latency_ms", "float", 10.0, "Latency", min=0, max=5000, unit="ms", help="Mean one-way delay."),
        Param(
            "latency_jitter_ms",
            "float",
            5.0,
            "Jitter",
            min=0,
            max=5000,
            unit="ms",
            help="Delays are uniform over latency ± jitter/2; any jitter lets messages overtake each other.",
        ),
        Param("loss", "float", 0.0, "Loss", min=0, max=0.5, help="Chance that a message is lost."),
        Param("duplicate", "float", 0.0, "Duplication", min=0, max=0.5, help="Chance that a message arrives twice."),
    ),
    *in_group(
        "Clients",
        Param("clients", "int", 1, "Clients", min=0, max=5, help="Clients c1, c2, ..., one operation at a time."),
        Param("client_rate", "float", 2.0, "Rate", min=0, max=200, unit="ops/s", help="Operations per client."),
        Param("read_share", "float", 0.3, "Read share", min=0, max=1, help="Share of operations that are reads."),
        Param("keys", "int", 3, "Keys", min=1, max=20, help="Keys k1, k2, ... the operations pick from."),
        Param(
            "client_timeout_ms",
            "float",
            500.0,
            "Client timeout",
            min=10,
            max=60000,
            unit="ms",
            help="A client with no answer by then retries the same operation on another server.",
        ),
        Param(
            "read_mode",
            "choice",
            "read_index",
            "Reads",
            choices=("read_index", "log"),
            help="read_index: the leader answers once a heartbeat round confirms it still leads and it has "
            "applied its commit index. log: a read is a log entry like a write.",
        ),
    ),
    *in_group(
        "Break a rule",
        Param(
            "break_vote_log_check",
            "bool",
            False,
            "No up-to-date check",
            help="Voters grant votes without comparing logs (5.4.1).",
        ),
        Param(
            "break_commit_current_term",
            "bool",
            False,
            "Commit old terms",
            help="A leader commits any entry a majority holds, not only entries of its own term (Figure 8).",
        ),
        Param(
            "break_persist_vote",
            "bool",
            False,
            "Forget votedFor",
            help="votedFor is not written to disk: a restarted server can vote twice in one term.",
        ),
        Param(
            "break_consistency_check",
            "bool",
            False,
            "No consistency check",
            help="Followers accept entries without checking the term at prevLogIndex.",
        ),
    ),
)

SERVER = Param("server", "text", "s1", "Server", pattern=SERVER_PATTERN, example="s1", target="server")


def _node(name: str, default: str) -> Param:
    label = {"a": "One end", "b": "Other end"}[name]
    return Param(name, "text", default, label, pattern=NODE_PATTERN, example=default, target="node")


COMMANDS = (
    Command("crash", "Crash", (SERVER,), help="The server stops; it keeps its term, vote and log."),
    Command("restart", "Restart", (SERVER,), help="A crashed server comes back as a follower."),
    Command("timeout", "Time out", (SERVER,), help="Its election timeout fires now."),
    Command(
        "partition",
        "Partition",
        (
            Param(
                "groups",
                "text",
                "s1.s2|s3.s4.s5",
                "Groups",
                pattern=GROUPS_PATTERN,
                example="s1.s2|s3.s4.s5",
                groups_of="server",
                target="node",
            ),
        ),
        help="Groups separated by |, members by dots. Unlisted servers form one more group; unlisted clients join "
        "the group with the most servers.",
    ),
    Command("heal", "Heal", help="End the partition and restore every cut link."),
    Command("cut", "Cut link", (_node("a", "s1"), _node("b", "s2")), help="Cut one link, both ways."),
    Command("restore", "Restore link", (_node("a", "s1"), _node("b", "s2"))),
    Command("set_loss", "Loss", (Param("rate", "float", 0.1, "Rate", min=0, max=0.5),)),
    Command(
        "set_latency",
        "Latency",
        (
            Param("ms", "float", 10.0, "Latency", min=0, max=5000, unit="ms"),
            Param("jitter_ms", "float", 5.0, "Jitter", min=0, max=5000, unit="ms"),
        ),
    ),
    Command("set_duplicate", "Duplication", (Param("rate", "float", 0.1, "Rate", min=0, max=0.5),)),
    Command(
        "drop_message",
        "Drop message",
        (Param("id", "int", 1, "Message id", min=1, max=10**9),),
        help="Lose one message that is on the wire.",
    ),
    Command(
        "client_request",
        "Client request",
        (
            Param("op", "choice", "set", "Operation", choices=("set", "get", "delete", "cas")),
            Param("key", "text", "k1", "Key", pattern=r"k[0-9]{1,2}", example="k1"),
            Param("value", "text", "v1", "Value", pattern=r"[A-Za-z0-9_.\-]{1,16}", example="v1"),
        ),
        help="One operation from the first idle client (a new one if all are busy). A cas expects the value "
        "that client last saw for the key.",
    ),
    Command("set_client_rate", "Client rate", (Param("rate", "float", 2.0, "Rate", min=0, max=200, unit="ops/s"),)),
    Command("add_server", "Add server", help="A new empty server joins as a learner, then becomes a voter."),
    Command(
        "remove_server", "Remove server", (SERVER,), help="Take a server out of the configuration (even the leader)."
    ),
    Command("spread_timers", "Spread timers", help="Spread the election deadlines evenly over the timeout range."),
    Command("align_timers", "Align timers", help="Give every follower the same election deadline (split votes)."),
)


@dataclass(frozen=True, slots=True)
class RaftConfig:
    """Every setting a server reads, in seconds, fixed for the run: no command changes any of them (the clients'
    rate, which one does change, is the clients' business and stays in the engine's parameters)."""

    election_timeout_min: float
    election_timeout_max: float  # never below the minimum
    heartbeat: float
    pre_vote: bool
    check_quorum: bool
    snapshot_threshold: int  # 0: never
    max_batch: int
    read_mode: str
    break_vote_log_check: bool
    break_commit_current_term: bool
    break_persist_vote: bool
    break_consistency_check: bool

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RaftConfig:
        """The times in seconds; every other setting is the parameter of the same name, as it is."""
        low = params["election_timeout_min_ms"] / 1000.0
        as_given = {field.name: params[field.name] for field in fields(cls) if field.name in params}
        return cls(
            election_timeout_min=low,
            election_timeout_max=max(low, params["election_timeout_max_ms"] / 1000.0),
            heartbeat=params["heartbeat_ms"] / 1000.0,
            **as_given,
        )


def conflicts(values: Mapping[str, Any], script: Sequence[Action]) -> list[str]:
    """A scripted command naming a server the run never has (crash s9 of five, with no server added before it) is
    refused; one that may exist then but has gone (removed) is the engine's to ignore, with an event."""
    return never_there(script, "server", numbered("s", values["servers"]), "add_server")
