"""The ledger that proves nothing was lost.

The unit is the *copy*: a message routed to three queues is three copies, each with its own fate; a message routed
nowhere counts as one copy, dropped as unroutable. At any moment every copy is in exactly one place:

- queued: ready in its queue;
- in_flight: delivered and not settled (manual ack: unacked at the broker, on the wire or at the consumer; SQS:
  received and invisible; auto-ack: settled by the broker when sent, but still on the wire or in the consumer's
  hands, so counted here until the consumer finishes it);
- acked: done (acked, deleted in SQS, or finished by an auto-ack consumer);
- dead_lettered: sitting in a dead-letter queue (its rule: a dead-lettered copy is counted by where it is now,
  and dead-letter queues here have no consumer, limit or TTL, so it stays there);
- expired: its TTL ran out with no dead-letter queue to take it;
- dropped: discarded by a stated policy, per reason (unroutable, overflow, auto-ack crash or failure, lost with
  a connection, queue deleted, over the delivery limit with no dead-letter queue, ...).

The engine computes queued, in_flight and dead_lettered from its live queues and consumers, and the ends from these
counters; ``balanced`` says the places add up to the copies created. Duplicates are counted per (queue, key): a
delivery of a key already processed from that queue is a duplicate delivery, a second successful processing a
duplicate processing. *Keys by queue* (a speed trick): the processed keys are kept per queue, so a check (one per
delivery and per processing) hashes the key alone, where a (queue, key) pair was a tuple made and hashed each time.
"""

from __future__ import annotations

from typing import Any

from .events import DROP_REASONS


class Ledger:
    def __init__(self) -> None:
        self.published = 0
        self.entries = 0
        self.acked = 0
        self.expired = 0
        self.dropped_by = dict.fromkeys(DROP_REASONS, 0)
        self.duplicates_delivered = 0
        self.duplicates_processed = 0
        self.processed: dict[str, dict[str, int]] = {}  # queue -> key -> successful processings

    def was_processed(self, queue: str, key: str) -> bool:
        counts = self.processed.get(queue)
        return counts is not None and key in counts

    def record_processed(self, queue: str, key: str) -> bool:
        """Count a successful processing; True if it is a duplicate."""
        counts = self.processed.get(queue)
        if counts is None:
            counts = self.processed[queue] = {}
        count = counts.get(key, 0) + 1
        counts[key] = count
        if count > 1:
            self.duplicates_processed += 1
        return count > 1

    def summary(self, queued: int, in_flight: int, dead_lettered: int) -> dict[str, Any]:
        dropped = sum(self.dropped_by.values())
        placed = queued + in_flight + self.acked + dead_lettered + self.expired + dropped
        return {
            "published": self.published,
            "entries": self.entries,
            "queued": queued,
            "in_flight": in_flight,
            "acked": self.acked,
            "dead_lettered": dead_lettered,
            "expired": self.expired,
            "dropped": dropped,
            "dropped_by": {reason: n for reason, n in self.dropped_by.items() if n},
            "duplicates_delivered": self.duplicates_delivered,
            "duplicates_processed": self.duplicates_processed,
            "balanced": placed == self.entries,
        }
