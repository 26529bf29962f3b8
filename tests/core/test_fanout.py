"""The hub frames a frame once for all its viewers and writes those bytes straight to daphne's protocol."""

import asyncio
from functools import partial

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.address import IPv4Address

from patterns.core import websocket
from patterns.core.fanout import Frame, Hub


class Wire:
    """What a socket's transport was given to write."""

    def __init__(self) -> None:
        self.written = bytearray()

    def write(self, data: bytes) -> None:
        self.written += data

    def getPeer(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 50000)

    getHost = getPeer

    def setTcpNoDelay(self, enabled: bool) -> None:
        pass


def open_protocol(factory: WebSocketServerFactory) -> tuple[WebSocketServerProtocol, Wire]:
    factory.protocol = WebSocketServerProtocol  # Twisted's, as daphne's is
    protocol = factory.buildProtocol(None)
    protocol.makeConnection(wire := Wire())
    protocol.state = protocol.STATE_OPEN  # as after the handshake, with no per-message deflate
    return protocol, wire


class Viewer(websocket.RunConsumer):
    def __init__(self, key: str, protocol: WebSocketServerProtocol) -> None:
        super().__init__()
        self.key = key
        self.wire = websocket._websocket_protocol(partial(print, protocol))  # as daphne's send wraps its protocol
        self.got_frame = asyncio.Event()


class CountingFactory(WebSocketServerFactory):
    prepared = 0

    def prepareMessage(self, *args, **kwargs):
        self.prepared += 1
        return super().prepareMessage(*args, **kwargs)


async def test_every_viewer_gets_the_bytes_autobahn_would_frame_and_the_frame_is_framed_once():
    factory = CountingFactory()
    text = "<div>é " + "x" * 70_000 + "</div>"  # a 64-bit length, and a character UTF-8 encodes in two bytes
    reference, reference_wire = open_protocol(factory)
    reference.sendMessage(text.encode("utf-8"))
    protocols = [open_protocol(factory) for _ in range(3)]
    hub = Hub(layer=None, store=None)
    hub.viewers["run"] = {f"v{i}": Viewer(f"v{i}", protocol) for i, (protocol, _) in enumerate(protocols)}
    await hub.tell("run", text)
    assert factory.prepared == 1
    assert all(wire.written == reference_wire.written for _, wire in protocols)
    assert all(viewer.got_frame.is_set() for viewer in hub.viewers["run"].values())


async def test_a_closing_socket_is_not_written_to():
    factory = WebSocketServerFactory()
    (closing, closing_wire), (open_, open_wire) = open_protocol(factory), open_protocol(factory)
    closing.state = closing.STATE_CLOSING
    hub = Hub(layer=None, store=None)
    hub.viewers["run"] = {"a": Viewer("a", closing), "b": Viewer("b", open_)}
    await hub.tell("run", "<p>hi</p>")
    assert not closing_wire.written and open_wire.written


def test_only_daphne_s_send_has_a_protocol_to_write_to():
    protocol, _ = open_protocol(WebSocketServerFactory())
    assert websocket._websocket_protocol(partial(print, protocol)) is protocol
    assert websocket._websocket_protocol(partial(print, "not a protocol")) is None
    assert websocket._websocket_protocol(print) is None
    assert Frame("é").text == "é"
