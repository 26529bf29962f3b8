"""Raft's presets told step by step, for a learner who has never met Raft; tests/core/test_stories.py checks
every claim against the run. Highlights name the cluster's servers (s1...), the state diagram's states and the
logs' server headers (s1_who)."""

from __future__ import annotations

from patterns.core.story import Chapter, Match, count, latest, where

LEADER = where("raft.role", role="leader")


def _cluster(*servers: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("cluster", servers),)


def _leader(server: str, term: int) -> tuple:
    return (latest(LEADER, server=server, term=term),)


def _votes(candidate: str, term: int, value: int) -> tuple:
    """The real votes (not pre-votes) ``candidate`` received in ``term``, its own included."""
    return (count(where("raft.vote", candidate=candidate, term=term, pre=False), "==", value),)


INITIAL_ELECTION = (
    Chapter(
        "Five servers start as followers in term 0. Each waits a random time for a leader's heartbeat; nobody is "
        "leading yet, so the first whose timer runs out will ask the others for votes.",
        at=0.0,
        highlight=(("states", ("Follower",)),),
        claims=(count(where("raft.role", role="follower", term=0), "==", 5),),
    ),
    Chapter(
        "s1's timer ran out first. It asked the others whether they would vote for it (a pre-vote, which changes "
        "nothing yet), all four said yes, so it starts term 1 as a candidate, votes for itself and asks for real "
        "votes.",
        after=where("raft.role", role="candidate"),
        highlight=(("cluster", ("s1",)), ("states", ("Candidate",))),
        claims=(
            latest(where("raft.role", role="candidate"), server="s1", term=1),
            count(where("raft.vote", candidate="s1", term=1, pre=True), "==", 5),
        ),
    ),
    Chapter(
        "All five servers voted for s1, itself included (three, a majority, would do): it is the leader of term 1. "
        "Its heartbeats now reset the others' timers, so nobody else starts an election.",
        after=LEADER,
        highlight=(("cluster", ("s1",)), ("states", ("Leader",))),
        claims=(*_leader("s1", 1), *_votes("s1", 1, 5)),
    ),
    Chapter(
        "Five seconds later s1 still leads and the term is still 1: as long as heartbeats arrive, there is no "
        "new election.",
        at=5.0,
        pause=False,
        highlight=_cluster("s1"),
        claims=(count(LEADER, "==", 1), count(where("raft.role", role="candidate"), "==", 1)),
    ),
)

LEADER_CRASH = (
    Chapter(
        "s1 wins the first election and leads term 1.",
        after=LEADER,
        highlight=_cluster("s1"),
        claims=_leader("s1", 1),
    ),
    Chapter(
        "A client sends writes to s1. s1 appends each to its log and copies it to the followers; once a majority "
        "holds an entry, it is committed and s1 applies it. Entry 2 is committed.",
        after=where("raft.commit", server="s1", index=2),
        highlight=(("logs", ("s1_who",)),),
        claims=(count(where("raft.append", index=2), ">=", 3),),
    ),
    Chapter(
        "At 2 s s1 crashes. The followers stop hearing heartbeats.",
        at=2.0,
        highlight=_cluster("s1"),
        claims=(count(where("raft.crash", server="s1"), "==", 1),),
    ),
    Chapter(
        "s3's timer runs out first: it becomes a candidate of term 2.",
        after=where("raft.role", role="candidate", term=2),
        highlight=_cluster("s3"),
        claims=(latest(where("raft.crash"), server="s1"), latest(where("raft.role", role="candidate"), server="s3")),
    ),
    Chapter(
        "s3 gets four votes, its own and those of s2, s4 and s5 (three would do), and leads term 2. Every "
        "committed write is in its log: a server only votes for a candidate whose log is at least as up to date.",
        after=where("raft.role", role="leader", term=2),
        highlight=(("cluster", ("s3",)), ("states", ("Leader",))),
        claims=(*_leader("s3", 2), *_votes("s3", 2, 4)),
    ),
    Chapter(
        "At 4 s s1 restarts, still believing it is in term 1. s3's first heartbeat tells it about term 2, and s1 "
        "follows s3 and catches up on the writes it missed.",
        after=where("raft.term", server="s1", term=2),
        highlight=_cluster("s1", "s3"),
        claims=(
            latest(where("raft.restart"), server="s1", term=1),
            latest(where("raft.role", server="s1"), role="follower"),
            *_leader("s3", 2),
        ),
    ),
)

STALE_LEADER = (
    Chapter("s1 leads term 1.", after=LEADER, highlight=_cluster("s1"), claims=_leader("s1", 1)),
    Chapter(
        "At 2 s the network splits: s1 and s2 (with client c1) on one side, s3, s4 and s5 (with c2) on the other.",
        after=where("net.partition"),
        highlight=_cluster("s1", "s2"),
        claims=(count(where("net.partition"), "==", 1),),
    ),
    Chapter(
        "The majority side hears no leader: s4 is elected leader of term 2 with the votes of s3 and s5. s1 still "
        "believes it leads term 1: there are two leaders, in different terms.",
        after=where("raft.role", role="leader", term=2),
        highlight=_cluster("s1", "s4"),
        claims=(
            *_leader("s4", 2),
            *_votes("s4", 2, 3),
            latest(where("raft.role", server="s1"), role="leader", term=1),
        ),
    ),
    Chapter(
        "s1 keeps appending c1's writes to its log, but only s2 can copy them: two of five is no majority, so s1 "
        "commits none of them. s4 commits c2's writes.",
        at=4.5,
        highlight=(("logs", ("s1_who", "s4_who")),),
        claims=(
            count(where("raft.commit", server="s1"), "==", 0, since_previous=True),
            count(where("raft.append", server="s1"), ">=", 1, since_previous=True),
            count(where("raft.commit", server="s4"), ">=", 1, since_previous=True),
        ),
    ),
    Chapter(
        "The partition heals at 5 s. s1 hears term 2, steps down, and its uncommitted entries from index 12 on "
        "are removed and replaced by s4's: nothing committed was lost.",
        after=where("raft.truncate", server="s1"),
        highlight=_cluster("s1", "s4"),
        claims=(
            latest(where("raft.truncate", server="s1"), index=12),
            latest(where("raft.role", server="s1"), role="follower", term=2),
        ),
    ),
)

FIGURE_8 = (
    Chapter(
        "The paper's Figure 8, with every step scripted. s1 leads term 1; write a is entry 2, committed on all "
        "five servers.",
        after=where("raft.commit", server="s5", index=2),
        highlight=_cluster("s1"),
        claims=(*_leader("s1", 1), count(where("raft.commit", index=2), "==", 5)),
    ),
    Chapter(
        "Write b becomes entry 3 of term 1, but only s1 and s2 get it before s1 crashes.",
        after=where("raft.append", server="s2", index=3),
        highlight=(("logs", ("s1_who", "s2_who")),),
        claims=(count(where("raft.append", index=3), "==", 2),),
    ),
    Chapter(
        "s5 is elected leader of term 2 by s3 and s4 and writes its own entry 3 (term 2), which no one else gets.",
        after=where("raft.role", role="leader", term=2),
        highlight=_cluster("s5"),
        claims=(*_leader("s5", 2), *_votes("s5", 2, 3)),
    ),
    Chapter(
        "s1 is back and leads term 3. It copies its entry 3 (term 1) to s3 and s4: now a majority holds it.",
        after=where("raft.append", server="s4", index=3),
        highlight=_cluster("s1", "s3", "s4"),
        claims=(*_leader("s1", 3), count(where("raft.append", index=3), ">=", 4)),
    ),
    Chapter(
        "Yet s1 does not commit entry 3: a leader counts replicas only for entries of its own term, and entry 3 "
        "is of term 1. s1 is cut off before its term-3 entry spreads.",
        after=where("net.partition", groups=[["s1"], ["s2", "s3", "s4", "s5", "c1"]]),
        highlight=(("logs", ("s1_who",)),),
        claims=(count(Match("raft.commit", (("index", ">=", 3),)), "==", 0),),
    ),
    Chapter(
        "s5 wins term 4 (its last entry, of term 2, is newer than theirs) and overwrites entry 3 on s2, s3 and "
        "s4. That is safe: nobody ever applied b at index 3. The client retries b, and it is applied once.",
        after=where("raft.commit", server="s5", index=5),
        highlight=_cluster("s5"),
        claims=(
            *_leader("s5", 4),
            count(where("raft.truncate", index=3), "==", 3),
            count(Match("raft.apply", (("index", "==", 3), ("term", "==", 1))), "==", 0),
        ),
    ),
)

CATCH_UP_SNAPSHOT = (
    Chapter("s1 leads term 1; three clients write.", after=LEADER, highlight=_cluster("s1"), claims=_leader("s1", 1)),
    Chapter(
        "At 1 s s3 crashes and stops receiving entries.",
        after=where("raft.crash", server="s3"),
        highlight=_cluster("s3"),
        claims=(count(where("raft.crash"), "==", 1),),
    ),
    Chapter(
        "Every 30 entries each server compacts its log into a snapshot of the key-value state. s1 has just "
        "thrown away entries 1 to 30.",
        after=where("raft.snapshot", server="s1"),
        highlight=(("logs", ("s1_who",)),),
        claims=(latest(where("raft.snapshot", server="s1"), index=30, term=1),),
    ),
    Chapter(
        "s3 restarts at 7 s; its log ends at entry 23, but the leader no longer has the entries after it.",
        after=where("raft.restart", server="s3"),
        highlight=_cluster("s3"),
        claims=(latest(where("raft.restart"), server="s3", log_last=23),),
    ),
    Chapter(
        "So s1 sends InstallSnapshot: s3 replaces its state with s1's snapshot up to entry 120 and continues "
        "from there with ordinary entries.",
        after=where("raft.install", server="s3"),
        highlight=_cluster("s1", "s3"),
        claims=(latest(where("raft.install"), server="s3", index=120, leader="s1"),),
    ),
)

MEMBERSHIP = (
    Chapter("s1 leads term 1 of five servers.", after=LEADER, highlight=_cluster("s1"), claims=_leader("s1", 1)),
    Chapter(
        "At 2 s s6 is added as a learner: it receives the log but does not vote, so it cannot slow commits while "
        "it catches up.",
        after=where("raft.config", server="s6"),
        highlight=_cluster("s6"),
        claims=(latest(where("raft.config", server="s6"), learners=["s6"]),),
    ),
    Chapter(
        "s6 has caught up: a second configuration makes it a voter. Six voters, so a majority is now four.",
        after=where("raft.config", server="s1", voters=["s1", "s2", "s3", "s4", "s5", "s6"]),
        highlight=_cluster("s6"),
        claims=(count(where("raft.config", server="s1"), "==", 2),),
    ),
    Chapter(
        "At 5 s the leader s1 is removed. It leads until the configuration without it is committed, then leaves.",
        after=where("raft.removed", server="s1"),
        highlight=_cluster("s1"),
        claims=(latest(where("raft.config", server="s1"), voters=["s2", "s3", "s4", "s5", "s6"]),),
    ),
    Chapter(
        "The five remaining servers elect s3 leader of term 2.",
        after=where("raft.role", role="leader", term=2),
        highlight=(("cluster", ("s3",)), ("states", ("Leader",))),
        claims=_leader("s3", 2),
    ),
)

STORIES = {
    "initial-election": INITIAL_ELECTION,
    "leader-crash": LEADER_CRASH,
    "stale-leader": STALE_LEADER,
    "figure-8": FIGURE_8,
    "catch-up-snapshot": CATCH_UP_SNAPSHOT,
    "membership": MEMBERSHIP,
}
