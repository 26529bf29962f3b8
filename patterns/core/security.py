"""Headers every page carries beyond Django's own: the Content-Security-Policy.

Scripts only from this site (no inline script, no eval: htmx runs with ``allowEval: false``), websockets and
fetches only to it. Styles allow ``'unsafe-inline'`` because Mermaid writes a <style> element into every SVG it
renders; that cannot run code.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin


class ContentSecurityPolicy(MiddlewareMixin):  # the mixin makes it async-capable: no thread hop per request
    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
