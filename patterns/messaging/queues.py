"""Messages, their copies in queues, and the queues themselves (storage only; the broker applies the policies).

A published `Message` routed to several queues becomes one `Entry` per queue: each copy has its own life
(delivered, acked, dead-lettered) and its own place in the ledger. Ready entries are kept in a heap ordered by the
sequence number they got when first enqueued, so a requeued entry goes back to its original position, as RabbitMQ
does, and the head is always the oldest.
"""

from __future__ import annotations

import heapq
from typing import NamedTuple

from patterns.core.records import direct_builder


class Message(NamedTuple):
    """What a publisher sent. ``key`` is the message-id property the application sets (what dedupe uses);
    ``id`` is unique per publish, so a retried request has a new ``id`` and the same ``key``. A named tuple:
    immutable, and built in half a frozen dataclass's time (one per publish)."""

    id: int
    key: str
    producer: str
    exchange: str
    routing_key: str
    size: int
    published_at: float
    poison: bool = False
    reply_to: str | None = None
    correlation_id: str | None = None


build_message = direct_builder(Message)  # one per publish, every field given (see `patterns.core.records`)


class Entry:
    """One copy of a message in one queue."""

    __slots__ = (
        "consumer",
        "deliveries",
        "enqueued_at",
        "id",
        "message",
        "origin",
        "queue",
        "returns",
        "seq",
    )

    def __init__(self, message: Message, queue: str, seq: int, now: float):
        self.message = message
        # The message's id as a plain attribute, not a property ("id at hand"): every event of a copy names it,
        # and a copy's message never changes.
        self.id = message.id
        self.queue = queue
        self.seq = seq
        self.enqueued_at = now
        self.deliveries = 0  # times delivered (or received, in SQS mode)
        self.returns = 0  # times given back unsettled: nack with requeue, lost connection (x-delivery-limit counts)
        self.consumer: str | None = None  # who holds it while unacked
        self.origin = queue  # the queue whose copy this is, kept when it is dead-lettered

    @property
    def redelivered(self) -> bool:
        return self.deliveries > 0

    def __lt__(self, other: Entry) -> bool:
        return self.seq < other.seq


class Queue:
    def __init__(
        self,
        name: str,
        role: str,
        *,
        durable: bool = True,
        exclusive: bool = False,
        auto_delete: bool = False,
        max_length: int = 0,
        ttl: float = 0.0,
        overflow: str = "drop-head",
        dead_letter_queue: str | None = None,
        delivery_limit: int = 0,
        polled: bool = False,
    ):
        self.name = name
        self.role = role
        self.durable = durable
        self.exclusive = exclusive
        self.auto_delete = auto_delete
        self.max_length = max_length
        self.ttl = ttl
        self.overflow = overflow
        self.dead_letter_queue = dead_letter_queue
        self.delivery_limit = delivery_limit
        self.polled = polled  # SQS semantics: consumers poll, received copies are hidden, not pushed
        self.deleted = False
        self._ready: list[Entry] = []  # heap by seq
        # "Counted, not measured": the ready count is kept by `push` and `pop`, a plain attribute the broker reads
        # several times per message (a property would be a call each time).
        self.ready = 0
        self.pending: dict[tuple[str, int], Entry] = {}  # (consumer, tag) -> copy delivered and not settled
        self.expiry_at: float | None = None  # when the TTL timer for the head fires, if one is armed
        # Push delivery, kept here for the broker ("ring on the queue", see `broker`): the open sessions consuming
        # from it, in round-robin order, and the index of the one whose turn is next.
        self.ring: list = []  # of `broker.Session`
        self.turn = 0

    # -- what the diagrams read -------------------------------------------------------------------------------
    @property
    def unacked(self) -> int:
        return len(self.pending)

    @property
    def depth(self) -> int:
        return self.ready + len(self.pending)

    def head(self, n: int) -> list[int]:
        return [entry.id for entry in heapq.nsmallest(n, self._ready)]

    # -- storage ----------------------------------------------------------------------------------------------
    def push(self, entry: Entry) -> None:
        heapq.heappush(self._ready, entry)
        self.ready += 1

    def peek(self) -> Entry | None:
        return self._ready[0] if self._ready else None

    def pop(self) -> Entry:
        entry = heapq.heappop(self._ready)
        self.ready -= 1
        return entry

    def full(self) -> bool:
        return self.max_length > 0 and self.ready >= self.max_length
