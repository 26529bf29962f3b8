"""Raft's safety properties (Figure 3 of the paper) and the clients' linearizability, judged from events alone;
and two of Figure 2's rules that protect them (`RULES`), judged at the event that breaks them rather than at the
rare later one where a property fails: a leader commits by counting replicas only an entry of its own term, and a
restart keeps currentTerm and votedFor.

The checker never looks inside the engine: it rebuilds what it needs from the raft.* and client.* events, so that
the same judgement can be passed again on an exported run (`check_events`). It runs live on every event, so it
keeps little and does little per event:

- each server's log as term and *prefix hash* per index (a stable hash of the entry and of the hash before it),
  never the commands: equal prefix hashes at an index mean equal logs up to there, which is what Log Matching
  is about, in one comparison;
- the entries known committed (a server's commit index covered them): term and prefix hash per index, and for
  each index the lowest term of a server whose commit index covered it, an upper bound on the term it was
  committed in (so Leader Completeness is never claimed for an entry committed later than it was);
- the entry first applied at each index, for State Machine Safety;
- per key, the frontier of the linearizability search (see `linearizability`).

What every server has compacted can never be appended or applied again, so the checker forgets it too: the
committed and applied tables start at the lowest snapshot of all servers known. Each violation is reported once
(per term, per pair of servers, per server and term, as fits) with servers, indexes and terms in plain words.

Speed tricks (the checker judges every event of a live run, so each handler's usual case is kept short):

- *Shared entries* (`SharedEntries`): the servers of a live run append the very same entry objects on the same
  prefixes, so the entry last appended at an index, with the prefix hash before it, hands the next server its
  prefix hash and tells it that no other log can differ (the Log Matching search runs only once contested).
- *Key orders* (`_content`): an entry's text is its sorted keys, then its values as one list; the sorted keys of
  each shape of command are worked out once, and one list is written at a third of the cost of (key, value) pairs.
- *Known commits* (`_covers`): a commit that the latest mark of its server's term covers already (a follower's,
  news only to it) changes nothing, which is told before any entry is looked up; and a commit that records new
  entries from its own log knows without a lookup that they are its.
- *In place*: appends write the log's lists and applies read their table directly, not through the helpers'
  calls (a Python call costs as much as a dozen of the other steps of these handlers).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from hashlib import blake2b
from typing import TYPE_CHECKING, Any, NamedTuple

from .events import INVARIANTS, RULES
from .linearizability import KVHistory

if TYPE_CHECKING:
    from patterns.core.sim import Event

Found = list[tuple[str, Any, str]]  # (invariant, what it is reported once per, detail)


class GaveUp(NamedTuple):
    """In `Found`, in place of what a violation is reported once per: the check gave up (the n-th time), which
    is reported as undecided, never as a violation."""

    n: int


def entry_hash(term: int, command: dict[str, Any]) -> int:
    """A stable 64-bit hash of one entry (independent of PYTHONHASHSEED and of the command's key order)."""
    return _hash(f"{term}|{_content(command)}")


def chained(previous: int, term: int, command: dict[str, Any]) -> int:
    """The prefix hash of an entry: its own content and the prefix hash of the entry before it."""
    return _hash(f"{previous}|{term}|{_content(command)}")


def _hash(text: str) -> int:
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "big")


_KEY_ORDERS: dict[tuple, tuple[str, list]] = {}  # a command's keys in its own order -> (their sorted text, sorted)


def _content(command: dict[str, Any]) -> str:
    """A command as text, whatever the order of its keys: the sorted keys, then the values in that order.
    *Key orders*: commands come in a few shapes (a client's operation, a no-op, a configuration), so the sorted
    keys and their text are worked out once per shape, and the values are written as one list (a list of
    (key, value) pairs took three times as long to write: each pair is a container of its own)."""
    keys = tuple(command)
    order = _KEY_ORDERS.get(keys)
    if order is None:
        ordered = sorted(keys)
        order = (repr(ordered), ordered)
        if len(_KEY_ORDERS) < 64:  # a bound, whatever shapes a recorded stream holds
            _KEY_ORDERS[keys] = order
    return f"{order[0]}{list(map(command.__getitem__, order[1]))!r}"


MISSING = 0  # the term of an index a server skipped: no real entry has term 0
CONTESTED = None  # in `Checker.digests`: two logs have held the entry with different prefixes


class LogView:
    """One server's log as the checker sees it: a snapshot point, then term and prefix hash per index."""

    __slots__ = ("base", "base_hash", "base_term", "hashes", "last", "terms")

    def __init__(self) -> None:
        self.base = 0  # last index covered by the snapshot (0: none)
        self.base_term = 0
        self.base_hash = 0
        self.terms: list[int] = []  # indexes base+1 .. last
        self.hashes: list[int] = []
        self.last = 0  # the last index held: base + len(terms), kept by every change (read for every entry)

    def term_at(self, index: int) -> int | None:
        if index == self.base:
            return self.base_term
        if self.base < index <= self.last:
            return self.terms[index - self.base - 1]
        return None

    def hash_at(self, index: int) -> int | None:
        if index == self.base:
            return self.base_hash
        if self.base < index <= self.last:
            return self.hashes[index - self.base - 1]
        return None

    @property
    def last_hash(self) -> int:
        return self.hashes[-1] if self.hashes else self.base_hash

    def append(self, term: int, digest: int) -> None:
        self.terms.append(term)
        self.hashes.append(digest)
        self.last += 1

    def truncate(self, index: int) -> None:
        """Delete the entries from ``index`` on (never the snapshot)."""
        keep = max(0, index - self.base - 1)
        del self.terms[keep:], self.hashes[keep:]
        self.last = self.base + len(self.terms)

    def rebase(self, index: int, term: int, digest: int, keep_tail: bool) -> None:
        """The log now starts after a snapshot through ``index``; later entries stay only if ``keep_tail``."""
        skip = index - self.base
        if keep_tail and 0 <= skip <= len(self.terms):
            del self.terms[:skip], self.hashes[:skip]
        else:
            self.terms, self.hashes = [], []
        self.base, self.base_term, self.base_hash = index, term, digest
        self.last = index + len(self.terms)


class SharedEntries:
    """The entry last appended at each index, with the prefix hash before it and its own, kept while every log
    that has held that entry there held it on the same prefix (its `Checker.digests` row is that hash). The
    servers of a live run append the very same entry objects on the same prefixes, so an index costs one hash and
    one Log Matching check, not one per server. Only a cache: snapshots of a run leave it out, and what it holds
    below the compaction floor is forgotten."""

    __slots__ = ("floor", "rows")

    def __init__(self) -> None:
        self.floor = 0
        self.rows: dict[int, tuple[dict[str, Any], int, int, int]] = {}  # index -> (command, term, previous, hash)

    def __reduce__(self) -> tuple[type, tuple]:
        return SharedEntries, ()

    def keep(self, index: int, command: dict[str, Any], term: int, previous: int, digest: int) -> None:
        if index > self.floor:
            self.rows[index] = (command, term, previous, digest)

    def forget_through(self, floor: int) -> None:
        if floor > self.floor:
            self.floor = floor
            for index in [index for index in self.rows if index <= floor]:
                del self.rows[index]


class ServerView:
    __slots__ = ("log", "role", "term")

    def __init__(self) -> None:
        self.role = "follower"
        self.term = 0
        self.log = LogView()


class IndexTable:
    """Rows per log index from `first` on, forgetting those below a floor."""

    __slots__ = ("first", "last", "rows")

    def __init__(self) -> None:
        self.first = 1
        self.rows: list[Any] = []
        self.last = 0  # first + len(rows) - 1, kept by every change (read for every commit)

    def get(self, index: int) -> Any:
        k = index - self.first
        return self.rows[k] if 0 <= k < len(self.rows) else None

    def put(self, index: int, row: Any, gap: Any = None) -> None:
        """Set the row at ``index`` (at or after `first`), filling any gap before it with ``gap``."""
        if index > self.last:
            self.rows.extend([gap] * (index - self.last - 1))
            self.rows.append(row)
            self.last = index
        else:
            self.rows[index - self.first] = row

    def forget_before(self, index: int) -> None:
        if index > self.first:
            del self.rows[: index - self.first]
            self.first = index
            self.last = index + len(self.rows) - 1


class Checker:
    """Feed it every raft.* and client.* event with `observe`; `violations` holds what it found, in order."""

    def __init__(self) -> None:
        self.servers: defaultdict[str, ServerView] = defaultdict(ServerView)  # a view made on a server's first event
        self.leaders: dict[int, str] = {}  # term -> the first server that led it
        self.votes: dict[str, tuple[int, str]] = {}  # server -> (term, candidate) of its latest real vote
        self.double_votes: dict[int, list[tuple[str, str, str]]] = {}  # term -> (voter, first, second)
        self.committed = IndexTable()  # index -> (term, prefix hash) of the first server to commit it
        self.commit_terms: list[tuple[int, int]] = []  # (last index, term): indexes up to it committed by that term
        self.applied = IndexTable()  # index -> (entry hash or None, term, server, command) of the first apply
        self.shared = SharedEntries()
        self.digests: dict[tuple[int, int], int | None] = {}  # (index, term) -> prefix hash of every log to hold it
        self.floor = 0  # what every server has compacted through: forgotten by the tables above
        self.history = KVHistory()
        self.reported: set[tuple] = set()
        self.violations: list[dict[str, Any]] = []
        self.undecided: list[dict[str, Any]] = []  # as `violations`: where a check gave up within its budget

    # -- the entry point --------------------------------------------------------------------------------------
    def observe(self, event: Event | dict[str, Any]) -> list[dict[str, str]]:
        """Judge one event, live (an `Event`) or recorded (its ``as_dict()`` form); the violations it caused, as
        {"invariant", "detail"}, and where a check gave up, as {"invariant", "detail", "undecided": True}."""
        if not isinstance(event, dict):
            return self.judge(event)
        handler = HANDLERS.get(event.get("type"))
        found = handler(self, event) if handler is not None else None
        return self._report(found, event.get("seq"), event.get("t")) if found else []

    def judge(self, event: Event) -> list[dict[str, str]]:
        """`observe` for a live event, whose fields are read in place (the engine calls it for every event)."""
        handler = HANDLERS.get(event.type)
        if handler is None:
            return []
        found = handler(self, event.fields)
        return self._report(found, event.seq, event.t) if found else found  # mostly the handler's own empty list

    def _report(self, found: Found, seq: int | None, t: float | None) -> list[dict[str, str]]:
        """Record what was found, each violation once (per what it is reported once per)."""
        out = []
        for invariant, once_per, detail in found:
            if isinstance(once_per, GaveUp):
                out.append({"invariant": invariant, "detail": detail, "undecided": True})
                self.undecided.append({"invariant": invariant, "detail": detail, "cause": seq, "t": t})
                continue
            if (invariant, once_per) in self.reported:
                continue
            self.reported.add((invariant, once_per))
            out.append({"invariant": invariant, "detail": detail})
            self.violations.append({"invariant": invariant, "detail": detail, "cause": seq, "t": t})
        return out

    # -- roles, terms, votes ----------------------------------------------------------------------------------
    def _role(self, event: dict[str, Any]) -> Found:
        name, term = event["server"], event["term"]
        server = self.servers[name]
        server.role, server.term = event["role"], term
        if event["role"] != "leader":
            return []
        found: Found = []
        first = self.leaders.setdefault(term, name)
        if first != name:
            why = "".join(
                f"; {voter} voted for both {a} and {b} in term {term}"
                for voter, a, b in self.double_votes.get(term, ())
                if {a, b} == {first, name}
            )
            found.append(
                ("election_safety", term, f"{name} became leader of term {term}, but {first} already led it{why}")
            )
        return found + self._leader_completeness(name, server)

    def _term(self, event: dict[str, Any]) -> Found:
        self.servers[event["server"]].term = event["term"]
        return []

    def _vote(self, event: dict[str, Any]) -> Found:
        if event["pre"]:
            return []
        voter, term, candidate = event["server"], event["term"], event["candidate"]
        earlier = self.votes.get(voter)
        if earlier is not None and earlier[0] == term and earlier[1] != candidate:
            self.double_votes.setdefault(term, []).append((voter, earlier[1], candidate))
        self.votes[voter] = (term, candidate)
        return []

    def _crash(self, event: dict[str, Any]) -> Found:
        self.servers[event["server"]].role = "crashed"
        return []

    def _removed(self, event: dict[str, Any]) -> Found:
        self.servers[event["server"]].role = "removed"
        self._forget_compacted()
        return []

    def _restart(self, event: dict[str, Any]) -> Found:
        name, term = event["server"], event["term"]
        server = self.servers[name]
        found = self._persistent_state(name, server.term, term, event["voted_for"])
        server.role, server.term = "follower", term
        if event["log_last"] < server.log.last:  # what the restart reports is what it has
            server.log.truncate(event["log_last"] + 1)
        return found

    def _persistent_state(self, name: str, before: int, term: int, voted_for: str | None) -> Found:
        """Figure 2: currentTerm and votedFor are persistent, so a restart finds them as the crash left them."""
        if term < before:
            lost = f"term {term}, but it had reached term {before}"
        else:
            vote = self.votes.get(name)
            if term != before or vote is None or vote[0] != term or voted_for == vote[1]:
                return []
            lost = f"{'no vote' if voted_for is None else f'a vote for {voted_for}'} in term {term}, but it had "
            lost += f"voted for {vote[1]} in that term"
        return [
            (
                "persistent_state",
                (name, before),
                f"{name} restarted with {lost}: currentTerm and votedFor must survive a restart (else it may vote "
                "twice in one term)",
            )
        ]

    # -- logs -------------------------------------------------------------------------------------------------
    def _append(self, event: dict[str, Any]) -> Found:
        name, index = event["server"], event["index"]
        server = self.servers[name]
        log = server.log
        found: Found = []
        if index != log.last + 1:  # not right after its last entry: over some of its entries, or after a gap
            if index <= log.last:
                if server.role == "leader":
                    what = f"wrote over its own entries from index {index} (its log went to index {log.last})"
                    found.append(_leader_append_only(name, server, what))
                log.truncate(index)
            while log.last < index - 1:
                log.append(MISSING, chained(log.last_hash, MISSING, {}))
        terms, hashes = log.terms, log.hashes
        previous = hashes[-1] if hashes else log.base_hash
        shared, committed = self.shared.rows, self.committed
        for at, entry in enumerate(event["entries"], index):  # (start=index by keyword: a slower call)
            if at <= log.base:
                continue  # under its snapshot already
            term, command = entry["term"], entry["command"]
            row = shared.get(at)
            if row is not None and row[0] is command and row[1] == term and row[2] == previous:
                previous = row[3]  # the entry another log holds on this prefix: no hash, no other log differs
                terms.append(term)
                hashes.append(previous)
                log.last = at
                if at <= committed.last:
                    found += self._against_committed(name, at, term, previous)
                continue
            digest = chained(previous, term, command)
            log.append(term, digest)
            found += self._matching(name, at, term, digest, command)
            if self.digests.get((at, term)) == digest:
                self.shared.keep(at, command, term, previous, digest)
            previous = digest
        return found

    def _truncate(self, event: dict[str, Any]) -> Found:
        name, index = event["server"], event["index"]
        server = self.servers[name]
        found: Found = []
        if server.role == "leader" and index <= server.log.last:
            what = f"deleted its own entries from index {index} to {server.log.last}"
            found.append(_leader_append_only(name, server, what))
        server.log.truncate(index)
        return found

    def _snapshot(self, event: dict[str, Any]) -> Found:
        log = self.servers[event["server"]].log
        index = event["index"]
        digest = log.hash_at(index)
        if digest is not None:
            log.rebase(index, log.term_at(index), digest, keep_tail=True)
            self._forget_compacted()
        return []

    def _install(self, event: dict[str, Any]) -> Found:
        name, index, term, leader = event["server"], event["index"], event["term"], event["leader"]
        server = self.servers[name]
        found: Found = []
        if server.role == "leader":
            what = f"replaced its log with {leader}'s snapshot through index {index}"
            found.append(_leader_append_only(name, server, what))
        digest = self._snapshot_hash(index, term, leader)
        server.log.rebase(index, term, digest, keep_tail=server.log.term_at(index) == term)
        found += self._matching(name, index, term, digest, None)
        self._forget_compacted()
        return found

    def _snapshot_hash(self, index: int, term: int, leader: str) -> int:
        """The prefix hash through a snapshot's last entry: as committed, else as its sender has it."""
        row = self.committed.get(index)
        if row is not None and row[0] == term:
            return row[1]
        sender = self.servers[leader].log if leader in self.servers else None
        if sender is not None and sender.term_at(index) == term:
            return sender.hash_at(index)
        return _hash(f"snapshot|{index}|{term}")

    def _matching(self, name: str, index: int, term: int, digest: int, command: dict | None) -> Found:
        """Log Matching for the entry ``name`` now holds at ``index``: any other log with an entry of the same
        term there must hold the same prefix, and so must the committed entry there. The logs are searched only
        once two of them have held that entry with different prefix hashes (`digests`): until then every log that
        holds it holds this prefix, so none can differ."""
        if self.digests.setdefault((index, term), digest) != digest:
            self.digests[(index, term)] = CONTESTED
            self.shared.rows.pop(index, None)
            found = self._matching_logs(name, index, term, digest, command)
            if found:
                return found
        return self._against_committed(name, index, term, digest) if index <= self.committed.last else []

    def _against_committed(self, name: str, index: int, term: int, digest: int) -> Found:
        """Log Matching against the committed entry at ``index`` (called only up to the last committed index)."""
        row = self.committed.get(index)
        if row is not None and row[0] == term and row[1] != digest:
            return [
                (
                    "log_matching",
                    (name, "committed"),
                    f"{name} has an entry of term {term} at index {index}, like the committed entry there, but its "
                    f"log up to index {index} is not the committed one",
                )
            ]
        return []

    def _matching_logs(self, name: str, index: int, term: int, digest: int, command: dict | None) -> Found:
        """The first other log with an entry of ``term`` at ``index`` (or a snapshot ending there in ``term``) and
        another prefix hash, as a violation."""
        for other, view in self.servers.items():
            theirs = view.log
            k = index - theirs.base - 1
            if 0 <= k < len(theirs.terms):
                if theirs.terms[k] != term or theirs.hashes[k] == digest:
                    continue
            elif k != -1 or theirs.base_term != term or theirs.base_hash == digest:
                continue
            if other != name:
                mine = self.servers[name].log
                return [
                    (
                        "log_matching",
                        tuple(sorted((name, other))),
                        f"{name} and {other} both have an entry of term {term} at index {index}, but "
                        f"{_difference(name, mine, other, view.log, index, command)}",
                    )
                ]
        return []

    # -- commits, completeness, applies -----------------------------------------------------------------------
    def _commit(self, event: dict[str, Any]) -> Found:
        name = event["server"]
        server = self.servers[name]
        log, committed = server.log, self.committed
        found = self._commit_own_term(name, server, event["index"]) if server.role == "leader" else []
        upto = min(event["index"], log.last)
        if upto > committed.last:  # new entries committed (mostly, the commit is news only to this server)
            for index in range(committed.last + 1, upto + 1):  # the table grows without gaps
                term = log.term_at(index)
                if term is None:
                    break
                committed.put(index, (term, log.hash_at(index)))
            if committed.last == upto:  # recorded from this log through upto: the terms describe those entries
                self._committed_by(upto, server.term)
        elif not self._covers(upto, server.term) and self._recorded(log, upto):
            self._committed_by(upto, server.term)
        return found

    def _recorded(self, log: LogView, index: int) -> bool:
        """Whether ``log`` holds the entries recorded as committed up to ``index``."""
        row = self.committed.get(index)
        return row is not None and row[1] == log.hash_at(index)

    def _commit_own_term(self, name: str, server: ServerView, index: int) -> Found:
        """Figure 2: a leader moves commitIndex to N, counting the replicas of N, only if log[N] is of its term
        (an older term's entry may still be overwritten by another leader, Figure 8; it commits with a later one)."""
        term = server.log.term_at(index)
        if term is None or term == server.term:
            return []
        return [
            (
                "commit_own_term",
                (name, server.term),
                f"{name}, leader of term {server.term}, committed index {index} by counting its replicas, but that "
                f"entry is of term {term}: a leader counts replicas only for entries of its own term",
            )
        ]

    def _covers(self, index: int, term: int) -> bool:
        """*Known commits*: whether the latest commit mark, the only one of ``term``, reaches ``index`` already, so
        that `_committed_by` would change nothing; a follower's commit, news only to it, mostly is, and is told so
        before any entry is looked up."""
        return self._latest_alone(term) and self.commit_terms[-1][0] >= index

    def _latest_alone(self, term: int) -> bool:
        """Whether the latest commit mark is of ``term`` and the only mark of it."""
        marks = self.commit_terms
        return bool(marks) and marks[-1][1] == term and (len(marks) == 1 or marks[-2][1] < term)

    def _committed_by(self, index: int, term: int) -> None:
        """Entries up to ``index`` were committed in ``term`` or earlier (a commit covers every entry before it)."""
        marks = self.commit_terms
        if self._latest_alone(term):
            if marks[-1][0] < index:  # the usual case, a commit moving on in the latest term
                marks[-1] = (index, term)
            return  # else the latest mark, of the same term, covers it already
        start = bisect_left(marks, term, key=_mark_term)  # marks before it were committed in earlier terms
        if start > 0 and marks[start - 1][0] >= index:
            return
        end = bisect_right(marks, index, key=_mark_index)
        marks[start:end] = [(index, term)]

    def committed_in(self, index: int) -> int | None:
        """The term by which the entry at ``index`` was committed (an upper bound), or None if it is not."""
        at = bisect_left(self.commit_terms, index, key=_mark_index)
        return self.commit_terms[at][1] if at < len(self.commit_terms) else None

    def _leader_completeness(self, name: str, server: ServerView) -> Found:
        """A new leader of term T must hold every entry committed in a term before T."""
        marks, log = self.commit_terms, server.log
        before = bisect_left(marks, server.term, key=_mark_term)
        upto = marks[before - 1][0] if before else 0
        start = max(log.base, self.committed.first)
        if upto < start:
            return []
        lacking = self._first_difference(log, start, upto)
        if lacking is None:
            return []
        term, _ = self.committed.get(lacking)
        if lacking > log.last:
            has = f"its log ends at index {log.last}"
        elif lacking == log.base:
            has = f"its snapshot through index {lacking} does not hold the committed entries"
        elif log.term_at(lacking) != term:
            has = f"it has an entry of term {log.term_at(lacking)} there instead"
        else:
            has = "its entry there, or one before it, differs from the committed one"
        return [
            (
                "leader_completeness",
                (name, server.term),
                f"{name} became leader of term {server.term} without the entry at index {lacking} (term {term}), "
                f"committed by term {self.committed_in(lacking)}: {has}",
            )
        ]

    def _first_difference(self, log: LogView, start: int, upto: int) -> int | None:
        """The first index in start..upto where ``log`` differs from the committed entries (prefix hashes:
        once different, different for good, so a binary search finds it)."""

        def differs(index: int) -> bool:
            row = self.committed.get(index)
            return row is not None and log.hash_at(index) != row[1]

        if not differs(upto):
            return None
        low, high = start, upto
        while low < high:
            middle = (low + high) // 2
            if differs(middle):
                high = middle
            else:
                low = middle + 1
        return low

    def _apply(self, event: dict[str, Any]) -> Found:
        index, term, command = event["index"], event["term"], event["command"]
        applied = self.applied
        k = index - applied.first  # `IndexTable.get`, inline: this runs for every apply
        if k < 0:
            return []
        first = applied.rows[k] if k < len(applied.rows) else None
        if first is None or first[2] is None:
            applied.put(index, (None, term, event["server"], command), (0, MISSING, None, None))  # hashed if needed
            return []
        if first[3] is command and first[1] == term:
            return []  # the very same entry: a live run's servers share them, so this is the usual case
        name, (digest, other_term, other, other_command) = event["server"], first
        if digest is None:
            digest = entry_hash(other_term, other_command)
            self.applied.put(index, (digest, other_term, other, other_command))
        if entry_hash(term, command) == digest:
            return []
        return [
            (
                "state_machine_safety",
                tuple(sorted((name, other))),
                f"{name} applied {describe(command)} (term {term}) at index {index}, but {other} had applied "
                f"{describe(other_command)} (term {other_term}) at that index",
            )
        ]

    def _forget_compacted(self) -> None:
        floor = min((s.log.base for s in self.servers.values() if s.role != "removed"), default=0)
        self.committed.forget_before(floor)
        self.applied.forget_before(floor + 1)
        self.shared.forget_through(floor)
        if floor > self.floor:
            self.floor = floor
            self.digests = {key: digest for key, digest in self.digests.items() if key[0] >= floor}

    # -- clients ----------------------------------------------------------------------------------------------
    def _invoke(self, event: dict[str, Any]) -> Found:
        self.history.invoke(
            event["client"], event["op_seq"], event["op"], event["key"], event.get("value"), event.get("expected")
        )
        return []

    def _complete(self, event: dict[str, Any]) -> Found:
        history = self.history
        gave_up = len(history.undecided)
        detail = history.complete(event["client"], event["op_seq"], event["key"], event["result"])
        if len(history.undecided) > gave_up:
            return [("linearizability", GaveUp(gave_up + 1), history.undecided[-1])]
        if detail is None:
            return []
        return [("linearizability", (event["client"], event["op_seq"]), detail)]


HANDLERS = {  # event type -> the Checker method that judges it (the functions themselves: no lookup by name)
    "raft.role": Checker._role,
    "raft.term": Checker._term,
    "raft.vote": Checker._vote,
    "raft.append": Checker._append,
    "raft.truncate": Checker._truncate,
    "raft.commit": Checker._commit,
    "raft.apply": Checker._apply,
    "raft.snapshot": Checker._snapshot,
    "raft.install": Checker._install,
    "raft.crash": Checker._crash,
    "raft.restart": Checker._restart,
    "raft.removed": Checker._removed,
    "client.invoke": Checker._invoke,
    "client.complete": Checker._complete,
}


def _leader_append_only(name: str, server: ServerView, what: str) -> tuple[str, Any, str]:
    """Figure 3's Leader Append-Only, broken: a leader changed entries it held (``what`` it did, in words)."""
    return ("leader_append_only", (name, server.term), f"{name}, leader of term {server.term}, {what}")


def _mark_term(mark: tuple[int, int]) -> int:
    return mark[1]


def _mark_index(mark: tuple[int, int]) -> int:
    return mark[0]


def _difference(name: str, mine: LogView, other: str, theirs: LogView, index: int, command: dict | None) -> str:
    """Where two logs that agree on the term at ``index`` part: the first index whose prefix hashes differ."""
    start = max(mine.base, theirs.base)
    if mine.hash_at(start) != theirs.hash_at(start):
        held = "their logs up to it differ" if start == index else f"their logs differ at or before index {start}"
        return f"{held} (one of them holds that part only as a snapshot)"
    for at in range(start + 1, index):
        if mine.hash_at(at) != theirs.hash_at(at):
            a, b = mine.term_at(at), theirs.term_at(at)
            if a == b:
                return f"at index {at} they hold different entries of term {a}"
            return f"their logs differ before it: at index {at} {name} has {_term(a)} and {other} has {_term(b)}"
    what = f" ({name} has {describe(command)})" if command is not None else ""
    return f"the entries themselves differ{what}"


def _term(term: int) -> str:
    return "no entry" if term == MISSING else f"an entry of term {term}"


def describe(command: dict[str, Any]) -> str:
    """A command in a few words: 'set x=3 (c1 #4)', 'no-op', 'config s1,s2,s3'."""
    op = command.get("op")
    if op == "noop":
        return "a leader's no-op"
    if op == "config":
        learners = ",".join(command.get("learners") or [])
        return f"config {','.join(command.get('voters', []))}" + (f" +learners {learners}" if learners else "")
    who = f" ({command.get('client')} #{command.get('seq')})" if "client" in command else ""
    if op == "set":
        return f"set {command.get('key')}={command.get('value')}{who}"
    if op == "cas":
        return f"cas {command.get('key')} {command.get('expected')}->{command.get('value')}{who}"
    return f"{op} {command.get('key')}{who}"


def check_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Judge a whole recorded stream (events.jsonl, or a run's events) afresh; the violations, with causes."""
    checker = Checker()
    for event in events:
        checker.observe(event)
    return checker.violations


__all__ = ["INVARIANTS", "RULES", "Checker", "check_events"]
