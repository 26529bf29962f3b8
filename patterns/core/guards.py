"""ASGI wrappers in front of every connection: who the client is, and whether a websocket comes from this site.

Behind a reverse proxy every visitor arrives from the proxy's address, so per-client limits would lump a whole
class together. `ClientAddress` takes the client from ``X-Forwarded-For`` only when the peer is one of
``PLAYGROUND_TRUSTED_PROXIES`` (anyone else could write that header). `SameOrigin` accepts a websocket only when
its ``Origin`` is this site: the scheme, host and port the request came to (with the host in ``ALLOWED_HOSTS``),
or one of ``CSRF_TRUSTED_ORIGINS``. A hostname match alone would let ``http://host:9999`` steer runs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return ""


def client_address(scope: dict[str, Any], trusted_proxies: frozenset[str]) -> str:
    """The address that per-client limits count: the peer, or behind trusted proxies the hop before them."""
    peer = (scope.get("client") or ["unknown"])[0]
    if peer not in trusted_proxies:
        return peer
    hops = [hop.strip() for hop in _header(scope, b"x-forwarded-for").split(",") if hop.strip()]
    return next((hop for hop in reversed(hops) if hop not in trusted_proxies), peer)


class ClientAddress:
    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        trusted = frozenset(settings.PLAYGROUND["TRUSTED_PROXIES"])
        if scope["type"] in ("http", "websocket") and trusted:
            client = scope.get("client") or ("unknown", 0)
            scope = {**scope, "client": (client_address(scope, trusted), client[1])}
        await self.app(scope, receive, send)


def origin_tuple(origin: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an http(s) origin, the port filled in; None for anything else."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def site_origin(scope: dict[str, Any]) -> tuple[str, str, int] | None:
    """The origin this request was made to, from its scheme and Host header; None if the host is not allowed."""
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:  # set only when the proxy in front writes this header (see playground/production.py)
        name, secure = proxy_header
        if _header(scope, name.removeprefix("HTTP_").lower().replace("_", "-").encode()) == secure:
            scheme = "https"
    server = scope.get("server") or ("", None)
    host = _header(scope, b"host") or (f"{server[0]}:{server[1]}" if server[1] else server[0])
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    return scheme, domain, int(port) if port else DEFAULT_PORTS[scheme]


def allowed_origin(scope: dict[str, Any]) -> bool:
    origin = origin_tuple(_header(scope, b"origin"))
    if origin is None:
        return False
    trusted = {origin_tuple(o) for o in settings.CSRF_TRUSTED_ORIGINS}
    return origin in trusted or origin == site_origin(scope)


class SameOrigin:
    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and not allowed_origin(scope):
            await WebsocketDenier()(scope, receive, send)
            return
        await self.app(scope, receive, send)
