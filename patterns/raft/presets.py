"""Raft's presets: each a scenario (seed, parameters, timed script) that tells one story.

The stories that need a precise interleaving (Figure 8, the broken rules) take the randomness out: no jitter,
long election timeouts so that only the scripted `timeout` commands start elections, no background clients, and
scripted client requests. Their timings follow from the 10 ms one-way latency: a request sent at t arrives at
t + 0.01 and its answer is back at t + 0.02. tests/raft/test_engine_presets.py checks that each tells its story.
"""

from __future__ import annotations

from patterns.core.registry import Preset
from patterns.core.story import with_chapters

from .stories import STORIES

ELECTIONS, REPLICATION, MEMBERSHIP, BROKEN = "Elections", "Replication", "Membership and compaction", "Break a rule"

# Only the script decides who leads and when: timers long, delays exact, no background load.
SCRIPTED = {
    "election_timeout_min_ms": 2000.0,
    "election_timeout_max_ms": 4000.0,
    "latency_jitter_ms": 0.0,
    "pre_vote": False,
    "check_quorum": False,
    "clients": 1,
    "client_rate": 0.0,
}
THREE = {**SCRIPTED, "servers": 3}
FIVE = {**SCRIPTED, "servers": 5, "max_batch": 1}


def _set(value: str) -> dict[str, str]:
    return {"op": "set", "key": "k1", "value": value}


# Figure 8 of the paper, one entry per AppendEntries so that each step can be seen.
FIGURE_8 = (
    (0.1, "timeout", {"server": "s1"}),  # s1 leads term 1
    (0.5, "client_request", _set("a")),  # index 2, committed everywhere
    (1.0, "partition", {"groups": "s1.s2.c1|s3.s4.s5"}),
    (1.0, "client_request", _set("b")),  # index 3 (term 1) reaches s1 and s2 only
    (1.2, "crash", {"server": "s1"}),
    (1.3, "timeout", {"server": "s5"}),  # s5 leads term 2 with s3 and s4; its entry 3 (term 2) ...
    (1.325, "partition", {"groups": "s5|s1.s2.s3.s4"}),  # ... is lost on the way
    (1.4, "crash", {"server": "s5"}),
    (1.4, "restart", {"server": "s1"}),
    (1.45, "timeout", {"server": "s1"}),  # term 2: s3 and s4 voted already
    (1.5, "timeout", {"server": "s1"}),  # term 3: s1 leads, sends entry 3 (term 1) to s3 and s4 ...
    (1.565, "partition", {"groups": "s1|s2.s3.s4.s5"}),  # ... and is cut off before its entry 4 (term 3) arrives
    (1.6, "restart", {"server": "s5"}),
    (1.6, "timeout", {"server": "s5"}),  # term 3: refused
    (1.65, "timeout", {"server": "s5"}),  # term 4: s3 and s4 vote for s5, whose last entry (term 2) is newer
    (3.0, "heal", {}),
)

PRESETS = (
    Preset(
        "initial-election",
        "Initial election",
        "Five servers start as followers of term 0 with random election timeouts. The first to time out asks "
        "for pre-votes, then for votes, wins a majority and leads term 1; its heartbeats keep the others from "
        "starting elections of their own, and the term stays 1.",
        {"clients": 0},
        seed=1,
        section=ELECTIONS,
    ),
    Preset(
        "leader-crash",
        "Leader crash and re-election",
        "s1 leads term 1 while a client writes. At 2 s it crashes: the followers hear no heartbeat, one times "
        "out, and a new leader is elected in a higher term with every committed write. s1 restarts at 4 s with "
        "its term, vote and log, learns the new term from the leader's heartbeat, and catches up as a follower.",
        {"client_rate": 5.0},
        ((2.0, "crash", {"server": "s1"}), (4.0, "restart", {"server": "s1"})),
        seed=1,
        section=ELECTIONS,
    ),
    Preset(
        "split-vote",
        "Split vote",
        "The leader s1 crashes at 2 s and every follower's timer is set to the same deadline. All four ask for "
        "pre-votes, get them, and become candidates of the same term at once; each votes for itself, nobody "
        "gets three votes and the term ends without a leader. Their new random timeouts differ, and the next "
        "term elects one.",
        {"clients": 0},
        ((2.0, "crash", {"server": "s1"}), (2.0, "align_timers", {})),
        seed=1,
        section=ELECTIONS,
    ),
    Preset(
        "disruptive-server",
        "A disruptive server, without pre-vote",
        "s5 is cut off from 2 s to 5 s. Without pre-vote it times out again and again, each time in a new term. "
        "When it comes back its term is far ahead: the leader's heartbeat is refused with that term, the leader "
        "steps down and the cluster holds an election for nothing (s5's log is behind, so it cannot win).",
        {"pre_vote": False, "client_rate": 5.0},
        ((2.0, "partition", {"groups": "s5|s1.s2.s3.s4"}), (5.0, "heal", {})),
        seed=1,
        section=ELECTIONS,
    ),
    Preset(
        "disruptive-server-pre-vote",
        "The same server, with pre-vote",
        "The same cut, with pre-vote on. Cut off, s5 asks for pre-votes, gets none, and never raises its term. "
        "When it comes back the leader's heartbeat simply makes it a follower again: no election, no lost time.",
        {"pre_vote": True, "client_rate": 5.0},
        ((2.0, "partition", {"groups": "s5|s1.s2.s3.s4"}), (5.0, "heal", {})),
        seed=1,
        section=ELECTIONS,
    ),
    Preset(
        "stale-leader",
        "A partitioned minority leader",
        "At 2 s the leader s1 and s2 are cut off from the other three, with client c1 on their side. Check-quorum "
        "is off, so s1 goes on believing it leads: it appends c1's writes but can never commit them. The majority "
        "elects a new leader that commits c2's writes. When the partition heals at 5 s, s1 sees the higher term "
        "and steps down, and its uncommitted entries are overwritten; c1's retries then complete once each.",
        {"check_quorum": False, "clients": 2, "client_rate": 4.0, "read_share": 0.0},
        ((2.0, "partition", {"groups": "s1.s2.c1|s3.s4.s5.c2"}), (5.0, "heal", {})),
        seed=1,
        section=REPLICATION,
    ),
    Preset(
        "figure-8",
        "Figure 8: why a leader commits only entries of its own term",
        "The paper's Figure 8, scripted. Entry 3 (term 1) reaches s1 and s2; s5 leads term 2 without it; s1 "
        "returns to lead term 3 and copies entry 3 to a majority, but does not count it as committed, because it "
        "is not of its own term. s1 is cut off before its term-3 entry spreads, s5 wins term 4 and overwrites "
        "entry 3 everywhere; that is safe, since nobody ever applied it. The client's write is retried and "
        "applied once.",
        FIVE,
        FIGURE_8,
        section=REPLICATION,
    ),
    Preset(
        "catch-up",
        "A follower far behind catches up",
        "s3 crashes at 1 s and misses 6 s of three clients' writes. When it restarts, the leader's AppendEntries "
        "fail the consistency check; with the conflict hint, the leader backs up nextIndex in one step instead of "
        "one entry at a time, then sends the missing entries in batches.",
        {"clients": 3, "client_rate": 20.0, "snapshot_threshold": 0},
        ((1.0, "crash", {"server": "s3"}), (7.0, "restart", {"server": "s3"})),
        seed=1,
        section=REPLICATION,
    ),
    Preset(
        "catch-up-snapshot",
        "A follower catches up by snapshot",
        "The same crash, with a snapshot every 30 entries. By the time s3 returns the leader has compacted away "
        "the entries it needs, so it sends InstallSnapshot instead: s3 replaces its state machine with the "
        "leader's snapshot and continues from there.",
        {"clients": 3, "client_rate": 20.0, "snapshot_threshold": 30},
        ((1.0, "crash", {"server": "s3"}), (7.0, "restart", {"server": "s3"})),
        seed=1,
        section=MEMBERSHIP,
    ),
    Preset(
        "membership",
        "Adding and removing servers under load",
        "Two clients write while the cluster changes, one server at a time. At 2 s s6 joins as a learner: it "
        "catches up without voting, then a second configuration makes it a voter. At 5 s the leader s1 is "
        "removed: it keeps leading until the configuration without it commits, then steps down and a new "
        "leader is elected among the rest. At 8 s s2 is removed too.",
        {"clients": 2, "client_rate": 10.0},
        ((2.0, "add_server", {}), (5.0, "remove_server", {"server": "s1"}), (8.0, "remove_server", {"server": "s2"})),
        seed=1,
        section=MEMBERSHIP,
    ),
    Preset(
        "break-vote-log-check",
        "Broken: votes without the up-to-date check",
        "s3 misses write b, which s1 and s2 commit. With the election restriction gone, s2 votes for s3 anyway: "
        "a leader without a committed entry (Leader Completeness broken). It overwrites b on s2, which had "
        "applied it, and applies its own entry at that index (State Machine Safety broken).",
        {**THREE, "break_vote_log_check": True},
        (
            (0.1, "timeout", {"server": "s1"}),
            (0.5, "client_request", _set("a")),
            (1.0, "partition", {"groups": "s1.s2.c1|s3"}),
            (1.1, "client_request", _set("b")),
            (1.5, "partition", {"groups": "s2.s3.c1|s1"}),
            (1.5, "timeout", {"server": "s3"}),
        ),
        section=BROKEN,
    ),
    Preset(
        "break-commit-current-term",
        "Broken: committing an old term's entry (Figure 8)",
        "Figure 8 again, with the rule gone: s1, leading term 3, counts entry 3 (term 1) as committed once a "
        "majority holds it and applies it. s5 still wins term 4 and overwrites it, so two servers apply "
        "different entries at index 3 (State Machine Safety broken).",
        {**FIVE, "break_commit_current_term": True},
        FIGURE_8,
        section=BROKEN,
    ),
    Preset(
        "break-persist-vote",
        "Broken: votedFor forgotten on restart",
        "s1 votes for s2 in term 2 and s2 leads. s1 crashes and restarts without its vote on disk, so when s3 "
        "asks for a vote in the same term 2, it grants it: two leaders in term 2 (Election Safety broken).",
        {**THREE, "break_persist_vote": True, "clients": 0},
        (
            (0.1, "timeout", {"server": "s1"}),
            (1.0, "partition", {"groups": "s1.s2|s3"}),
            (1.0, "timeout", {"server": "s2"}),  # s1 votes for s2, which leads term 2 from 1.02 ...
            (1.025, "partition", {"groups": "s1|s2|s3"}),  # ... but its first entry does not reach s1
            (1.1, "crash", {"server": "s1"}),
            (1.15, "restart", {"server": "s1"}),
            (1.2, "partition", {"groups": "s1.s3|s2"}),
            (1.2, "timeout", {"server": "s3"}),
        ),
        section=BROKEN,
    ),
    Preset(
        "break-consistency-check",
        "Broken: no AppendEntries consistency check",
        "s1, cut off with a client, appends write b at index 3 in term 1. Meanwhile s2 leads term 2 and s3 term "
        "3, each adding an entry. When the network heals, s3 sends s1 its entry 4 with prevLogIndex 3, "
        "prevLogTerm 2; s1's entry 3 is of term 1, but without the check s1 accepts: two logs hold the same "
        "entry 4 after different entries 3 (Log Matching broken).",
        {**THREE, "break_consistency_check": True},
        (
            (0.1, "timeout", {"server": "s1"}),
            (0.5, "client_request", _set("a")),
            (1.0, "partition", {"groups": "s1.c1|s2.s3"}),
            (1.0, "client_request", _set("b")),
            (1.1, "timeout", {"server": "s2"}),
            (1.3, "timeout", {"server": "s3"}),
            (1.5, "heal", {}),
        ),
        section=BROKEN,
    ),
)
PRESETS = with_chapters(PRESETS, STORIES)  # each story told chapter by chapter (stories.py)
