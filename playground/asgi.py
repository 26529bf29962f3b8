"""ASGI entry: HTTP through Django, websockets through the one generic run consumer."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from patterns.core.guards import ClientAddress, SameOrigin  # noqa: E402
from patterns.core.websocket import RunConsumer  # noqa: E402

application = ClientAddress(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": SameOrigin(URLRouter([path("ws/patterns/<slug:slug>/", RunConsumer.as_asgi())])),
        }
    )
)
