"""Settings for the playground: embedded defaults for one machine, environment variables for the rest.

DJANGO_DEBUG=1 turns debug on (off by default). REDIS_URL switches the channel layer to Redis so that several
daphne processes share runs and viewers. `playground.production` adds the HTTPS hardening `check --deploy` wants.
"""

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PLAYGROUND_VAR_DIR", BASE_DIR / "var"))


def _env_flag(name: str, default: bool = False) -> bool:
    return os.environ.get(name, "1" if default else "0").strip().lower() in ("1", "true", "yes", "on")


def _secret_key() -> str:
    """DJANGO_SECRET_KEY, else a random key kept in var/ so that sessions survive restarts on one machine."""
    key = os.environ.get("DJANGO_SECRET_KEY")
    if key:
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


DEBUG = _env_flag("DJANGO_DEBUG")
SECRET_KEY = _secret_key()


def _env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
# Origins besides the one a request came to (scheme://host:port) that may open websockets and post forms.
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "patterns.core",
    "patterns.circuit_breaker",
    "patterns.load_balancing",
    "patterns.raft",
    "patterns.messaging",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "patterns.core.security.ContentSecurityPolicy",
    "patterns.core.static.AsyncWhiteNoise",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "playground.urls"
ASGI_APPLICATION = "playground.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("PLAYGROUND_DB", VAR_DIR / "db.sqlite3"),
    }
}

if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["REDIS_URL"]], "capacity": 500, "expiry": 30},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 500}}}

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {"staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True  # serve static/ straight from the tree too, so a missed collectstatic is harmless

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = (  # see patterns/core/security.py for why styles may be inline and scripts may not
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"patterns": {"handlers": ["console"], "level": os.environ.get("PLAYGROUND_LOG_LEVEL", "INFO")}},
}

# Bounds on what one run and one client may use; every limit the live machinery enforces is here.
PLAYGROUND = {
    # Per client address; a classroom behind one NAT shares it, and each connection plays one run at a time.
    "MAX_RUNS_PER_CLIENT": int(os.environ.get("PLAYGROUND_MAX_RUNS_PER_CLIENT", 20)),
    "MAX_RUNS_PER_PROCESS": 200,  # per worker process
    # Worker processes the web process starts without REDIS_URL (0: simulate in the web process, for tests).
    "WORKERS": int(os.environ.get("PLAYGROUND_WORKERS", 2)),
    "MAX_CONNECTIONS_PER_CLIENT": int(os.environ.get("PLAYGROUND_MAX_CONNECTIONS_PER_CLIENT", 50)),  # all processes
    # Addresses of the reverse proxies in front: only their X-Forwarded-For names the client (anyone can write it).
    "TRUSTED_PROXIES": _env_list("PLAYGROUND_TRUSTED_PROXIES"),
    "COMMANDS_PER_SECOND": float(os.environ.get("PLAYGROUND_COMMANDS_PER_SECOND", 10)),  # sustained, per connection
    # per client address, across every connection and process
    "COMMANDS_PER_CLIENT_PER_SECOND": float(os.environ.get("PLAYGROUND_COMMANDS_PER_CLIENT_PER_SECOND", 50)),
    "COMMAND_BURST": 20,
    "MAX_FRAME_IN_BYTES": 8192,  # an incoming websocket frame larger than this is refused (a Start form fits)
    "MAX_FRAME_DEPTH": 8,  # arrays and objects nested deeper than this in a frame are refused (a form has 2)
    "MAX_VIRTUAL_TIME": 3600.0,  # seconds of simulated time one run may reach
    "MAX_EVENTS_PER_RUN": 2_000_000,  # events one run may simulate in all
    "EVENT_HISTORY": 2000,  # recent events a run keeps in memory
    "LOG_EVENTS_PER_FRAME": 30,
    "FRAME_INTERVAL": float(os.environ.get("PLAYGROUND_FRAME_INTERVAL", 0.15)),  # seconds between frames of a run
    "SNAPSHOT_EVERY": 5.0,  # virtual seconds between snapshots used to seek
    "SNAPSHOT_BYTES": 8 * 2**20,  # snapshots kept per run, in bytes: past it their spacing doubles
    "IDLE_REAP_SECONDS": float(os.environ.get("PLAYGROUND_IDLE_REAP_SECONDS", 60)),  # no viewer this long: stop
    "VIEWER_TIMEOUT": float(os.environ.get("PLAYGROUND_VIEWER_TIMEOUT", 45)),  # a viewer not heard from is forgotten
    "MAX_SPEED": 100.0,
    "MIN_SPEED": 0.1,
    "MAX_SCRIPT_ACTIONS": 200,
    "MAX_QUERY_LENGTH": 4096,
    # One events.jsonl download: past either bound it stops and says which CLI command prints the whole stream.
    "EXPORT_MAX_EVENTS": int(os.environ.get("PLAYGROUND_EXPORT_MAX_EVENTS", 200_000)),
    "EXPORT_CPU_SECONDS": float(os.environ.get("PLAYGROUND_EXPORT_CPU_SECONDS", 5.0)),
    # downloads simulated at once per client address, across every process (each one runs in a worker)
    "EXPORTS_PER_CLIENT": int(os.environ.get("PLAYGROUND_EXPORTS_PER_CLIENT", 2)),
}
