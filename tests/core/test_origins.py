"""Websocket origins matched on scheme, host and port; the client address behind trusted proxies only."""

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from patterns.core.guards import client_address
from playground.asgi import application


async def opens(origin, host="127.0.0.1:8000", **scope):
    headers = [(b"host", host.encode())] + ([(b"origin", origin.encode())] if origin is not None else [])
    comm = WebsocketCommunicator(application, "/ws/patterns/toy/", headers=headers)
    comm.scope.update(scope)
    connected, _ = await comm.connect()
    if connected:
        await comm.disconnect()
    return connected


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:9999",
        "https://127.0.0.1",
        "ws://127.0.0.1",
        "http://127.0.0.1",
        "https://127.0.0.1:8000",
        "http://evil.example:8000",
        "http://127.0.0.1:8000/path",
        "null",
        "",
        None,
    ],
)
async def test_a_websocket_from_another_origin_is_refused(origin):
    assert not await opens(origin)


async def test_the_sites_own_origin_is_accepted():
    assert await opens("http://127.0.0.1:8000")
    assert await opens("http://localhost", host="localhost:80")
    assert await opens("https://localhost", host="localhost", scheme="wss")
    assert not await opens("http://evil.example", host="evil.example")  # not in ALLOWED_HOSTS


async def test_a_tls_proxy_origin_needs_the_proxy_header_setting_or_a_trusted_origin():
    proxied = [(b"x-forwarded-proto", b"https")]
    assert not await opens("https://127.0.0.1", host="127.0.0.1")
    with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        comm = WebsocketCommunicator(
            application,
            "/ws/patterns/toy/",
            headers=[(b"host", b"127.0.0.1"), (b"origin", b"https://127.0.0.1"), *proxied],
        )
        assert (await comm.connect())[0]
        await comm.disconnect()
    with override_settings(CSRF_TRUSTED_ORIGINS=["https://class.example.org"]):
        assert await opens("https://class.example.org")


def test_x_forwarded_for_is_honoured_only_from_a_trusted_proxy():
    scope = {"client": ("10.0.0.2", 5000), "headers": [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.9")]}
    assert client_address(scope, frozenset()) == "10.0.0.2"
    assert client_address(scope, frozenset({"10.0.0.2"})) == "203.0.113.9"
    assert client_address(scope, frozenset({"10.0.0.2", "203.0.113.9"})) == "6.6.6.6"
    assert client_address({"client": ("10.0.0.2", 1), "headers": []}, frozenset({"10.0.0.2"})) == "10.0.0.2"
