"""A Raft server's log: entries after a snapshot point, addressed by absolute index (the first entry is 1).

The snapshot stands in for every entry up to ``snapshot_index``: its term is kept (for the consistency check of
the entry right after it) and so is the state machine it produced (``snapshot_data``: the key-value store, the
client sessions and the configuration), which is what InstallSnapshot ships and a restart recovers from.
"""

from __future__ import annotations

from typing import Any


class RaftLog:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []  # entries[k] is index snapshot_index + 1 + k
        self.snapshot_index = 0
        self.snapshot_term = 0
        self.snapshot_data: dict[str, Any] | None = None  # None: no snapshot yet (empty state machine)
        self.last_index = 0  # snapshot_index + len(entries), kept up to date by every change: read on every RPC

    @property
    def first_index(self) -> int:
        return self.snapshot_index + 1

    @property
    def last_term(self) -> int:
        return self.entries[-1]["term"] if self.entries else self.snapshot_term

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index`` (the snapshot's term at its own index); None if not held."""
        k = index - self.snapshot_index - 1  # the position in `entries`, -1 for the snapshot's own index
        if 0 <= k < len(self.entries):
            return self.entries[k]["term"]
        return self.snapshot_term if k == -1 else None

    def entry_at(self, index: int) -> dict[str, Any]:
        return self.entries[index - self.snapshot_index - 1]

    def slice(self, start: int, stop: int) -> list[dict[str, Any]]:
        """Entries ``start`` .. ``stop - 1`` (both held)."""
        offset = self.snapshot_index + 1
        return self.entries[start - offset : stop - offset]

    def append(self, entries: list[dict[str, Any]]) -> None:
        self.entries.extend(entries)
        self.last_index += len(entries)

    def truncate_from(self, index: int) -> None:
        del self.entries[index - self.snapshot_index - 1 :]
        self._count()

    def _count(self) -> None:
        self.last_index = self.snapshot_index + len(self.entries)

    def first_index_of_term(self, index: int) -> int:
        """The first index held with the same term as ``index``: the follower's fast-backup hint."""
        term = self.term_at(index)
        while index - 1 >= self.first_index and self.term_at(index - 1) == term:
            index -= 1
        return index

    def last_index_of_term(self, term: int) -> int | None:
        """The last index held with ``term``, or None: the leader's side of fast backup."""
        for index in range(self.last_index, self.snapshot_index, -1):
            entry_term = self.term_at(index)
            if entry_term == term:
                return index
            if entry_term < term:
                return None
        return None

    def compact(self, index: int, term: int, data: dict[str, Any]) -> None:
        """Forget the entries through ``index`` (held, applied), which ``data`` now stands for."""
        del self.entries[: index - self.snapshot_index]
        self.snapshot_index, self.snapshot_term, self.snapshot_data = index, term, data
        self._count()

    def install(self, index: int, term: int, data: dict[str, Any]) -> None:
        """Take a leader's snapshot: keep the entries after it only if the entry at ``index`` matches (Figure 13)."""
        if self.term_at(index) == term and index <= self.last_index:
            del self.entries[: index - self.snapshot_index]
        else:
            self.entries = []
        self.snapshot_index, self.snapshot_term, self.snapshot_data = index, term, data
        self._count()

    def latest_config(self) -> tuple[int, dict[str, Any]] | None:
        """The last configuration entry held (index, command), or None: a server uses it at once, committed or not."""
        for k in range(len(self.entries) - 1, -1, -1):
            command = self.entries[k]["command"]
            if command["op"] == "config":
                return self.snapshot_index + 1 + k, command
        return None
