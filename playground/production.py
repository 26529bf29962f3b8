"""Production settings: everything in `settings`, behind HTTPS. `check --deploy` is clean with these.

Behind a reverse proxy that terminates TLS, set DJANGO_TLS_PROXY=1, and only if that proxy sets (overwrites)
``X-Forwarded-Proto`` on every request: Django then takes a request as https when that header says so. Without
the flag the header is ignored (any client could write it). Static files are never redirected to https: they are
public, and a proxy or health check that fetches them over http must get them.
"""

from .settings import *  # noqa: F403
from .settings import _env_flag

DEBUG = False
if _env_flag("DJANGO_TLS_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
SECURE_REDIRECT_EXEMPT = [r"^static/"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
