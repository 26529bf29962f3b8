"""The frames actors exchange over the network, and the connection layer that carries them.

Frames are small immutable records, named tuples because several are built per message (a frozen dataclass
takes twice as long to build); each names the method of the receiver that handles it (``handler``), so the
network needs one callback for every receiver, `Links.hand_over`. *Handlers at hand* (a speed trick): it finds a
node's handler once per frame type and keeps the bound method (a getattr by name made a new one for every frame).

`Links` models what TCP gives AMQP: between the broker and a consumer, frames of an open connection are never
lost to a short cut. While a link is cut, frames of the connection wait in a send buffer, and frames that were on
the wire when the cut happened (and so got dropped) are resent when the link is restored. A cut that outlasts the
heartbeat timeout closes the connection on both sides: its buffered frames are discarded with it. Connection
attempts and SQS's HTTP requests are not buffered: a request sent over a cut link is simply lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from patterns.core.network import Network
from patterns.core.records import direct_builder

from .queues import Entry, Message

BROKER = "broker"


class Publish(NamedTuple):
    message: Message
    confirm: bool
    handler = "on_publish"


class Confirm(NamedTuple):
    id: int
    ack: bool
    handler = "on_confirm"


class Connect(NamedTuple):
    consumer: str
    session: int
    queue: str
    prefetch: int
    auto_ack: bool
    exchange: str  # transient subscriptions: declare and bind the queue to this exchange ("" for none)
    bindings: tuple[str, ...]
    handler = "on_connect"


class ConnectOk(NamedTuple):
    session: int
    handler = "on_connect_ok"


class Deliver(NamedTuple):
    entry: Entry
    tag: int
    session: int
    redelivered: bool
    handler = "on_deliver"


class Settle(NamedTuple):
    """basic.ack / basic.nack; in SQS mode DeleteMessage (ack) or ChangeMessageVisibility to 0 (nack, requeue)."""

    consumer: str
    session: int
    queue: str
    tag: int
    id: int
    ack: bool
    requeue: bool
    handler = "on_settle"


class Qos(NamedTuple):
    consumer: str
    session: int
    prefetch: int
    handler = "on_qos"


class Cancel(NamedTuple):
    consumer: str
    session: int
    handler = "on_cancel"


class Close(NamedTuple):
    consumer: str
    session: int
    handler = "on_close"


class Reset(NamedTuple):
    """What the consumer's operating system sends when its process dies: the TCP connection is reset."""

    consumer: str
    session: int
    handler = "on_reset"


class Receive(NamedTuple):
    """SQS ReceiveMessage with long polling."""

    consumer: str
    queue: str
    poll: int
    max_messages: int
    wait: float
    handler = "on_receive"


class Received(NamedTuple):
    poll: int
    deliveries: tuple[Deliver, ...]
    handler = "on_received"


# The frames of every message's round trip, built directly (see `patterns.core.records`).
build_publish = direct_builder(Publish)
build_confirm = direct_builder(Confirm)
build_deliver = direct_builder(Deliver)
build_settle = direct_builder(Settle)


class FrameReceiver:
    """A node that takes frames: it has an ``on_...`` method for each frame type it may be sent (the frame's
    ``handler``)."""


class Links:
    """Sends frames between nodes, with TCP's guarantees for open broker-consumer connections."""

    def __init__(self, net: Network):
        self.net = net
        self.receivers: dict[str, FrameReceiver] = {}
        # node -> frame handler name -> the receiver's bound method ("handlers at hand")
        self._handlers: dict[str, dict[str, Callable[[Any], None]]] = {}
        self._cut: dict[str, list[tuple[int | None, str, str, Any]]] = {}  # node -> frames to resend on restore
        # One bound method made once and passed with every send (one callback): the network checks a callback
        # that differs from the previous one, and `self.hand_over` would be a new bound method each time.
        self._hand_over = self.hand_over

    def hand_over(self, message: Any) -> None:
        """The network's callback: give an arrived frame to its receiver's handler for it."""
        frame = message.payload
        handlers = self._handlers[message.dst]
        handle = handlers.get(frame.handler)
        if handle is None:
            handle = handlers[frame.handler] = getattr(self.receivers[message.dst], frame.handler)
        handle(frame)

    def add(self, node: str, receiver: FrameReceiver) -> None:
        if node not in self.receivers:
            self.net.add_node(node)
        self.receivers[node] = receiver
        self._handlers[node] = {}

    def send(self, src: str, dst: str, frame: Any, *, reliable: bool = False) -> None:
        """Send a frame; ``reliable`` frames belong to an open connection and survive a cut link."""
        if reliable and self._cut:  # a backlog exists only while a link is cut: most sends skip the look-up
            backlog = self._cut.get(dst if src == BROKER else src)
            if backlog is not None:
                backlog.append((None, src, dst, frame))
                return
        self.net.send(src, dst, frame, self._hand_over)

    def cut(self, node: str, *, connection: bool) -> None:
        """Cut the link both ways. Over an open ``connection`` what is on the wire now will be lost on arrival,
        so it is kept for resending."""
        self.net.cut(BROKER, node)
        self._cut[node] = [
            (m.id, m.src, m.dst, m.payload)
            for m in self.net.in_flight()
            if connection and {m.src, m.dst} == {BROKER, node}
        ]

    def restore(self, node: str) -> int:
        """Restore the link and resend what the cut lost, oldest first; returns how many frames."""
        self.net.restore(BROKER, node)
        backlog = self._cut.pop(node, [])
        still_on_wire = {m.id for m in self.net.in_flight()}
        resent = 0
        for message_id, src, dst, frame in backlog:
            if message_id is None or message_id not in still_on_wire:
                self.net.send(src, dst, frame, self._hand_over)
                resent += 1
        return resent

    def reset(self, node: str) -> None:
        """The connection is gone: nothing buffered for it will be sent (the link itself stays as it is)."""
        if node in self._cut:
            self._cut[node] = []
