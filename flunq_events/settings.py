"""Settings of the events service. Every value comes from the environment through ``env.py``.

The README's configuration table lists each variable; a bad value stops the start with a message
naming the variable.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url

from flunq_events.env import (
    env_bool,
    env_choice,
    env_choices,
    env_float,
    env_hostports,
    env_int,
    env_list,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# --- service contract --------------------------------------------------------------------------
PORT = env_int("PORT", 8081, minimum=1, maximum=65535)
GRPC_PORT = env_int("GRPC_PORT", 9001, minimum=1, maximum=65535)
BACKENDS = env_choices("BACKEND", ["redis", "kafka", "nats"])
REDIS_URL = env_url("REDIS_URL", None, ["redis", "rediss", "unix"])
KAFKA_BROKERS = env_hostports("KAFKA_BROKERS", "127.0.0.1:9092")
NATS_URL = env_url("NATS_URL", "nats://127.0.0.1:4222", ["nats", "tls", "ws", "wss"])

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY") or ""
if not SECRET_KEY:
    # Nothing the service signs outlives the process without SECRET_KEY (sessions of the admin
    # do), so a random key is safe; the README asks deployments to set one.
    SECRET_KEY = "insecure-" + secrets.token_urlsafe(32)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- relay (outbox to the brokers; see docs/relay.md) ---------------------------------------------
if "redis" in BACKENDS and not REDIS_URL:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("REDIS_URL: required when BACKEND includes redis")
RELAY_BATCH_SIZE = env_int("RELAY_BATCH_SIZE", 500, minimum=1, maximum=10_000)
RELAY_POLL_SECONDS = env_float("RELAY_POLL_SECONDS", 1.0, minimum=0.01)
RELAY_ACK_TIMEOUT_SECONDS = env_float("RELAY_ACK_TIMEOUT_SECONDS", 10.0, minimum=0.1)
RELAY_BACKOFF_MAX_SECONDS = env_float("RELAY_BACKOFF_MAX_SECONDS", 10.0, minimum=0.01)
RELAY_STANDBY_POLL_SECONDS = env_float("RELAY_STANDBY_POLL_SECONDS", 1.0, minimum=0.01)
RELAY_MAX_MESSAGE_BYTES = env_int("RELAY_MAX_MESSAGE_BYTES", 1024 * 1024, minimum=1024)
RELAY_READY_MAX_LAG_SECONDS = env_float("RELAY_READY_MAX_LAG_SECONDS", 0.0)
REDIS_STREAM = env_str("REDIS_STREAM", "flunq:events")
REDIS_STREAM_MAXLEN = env_int("REDIS_STREAM_MAXLEN", 10_000_000, minimum=0)
KAFKA_TOPIC = env_str("KAFKA_TOPIC", "flunq.events")
KAFKA_TOPIC_PARTITIONS = env_int("KAFKA_TOPIC_PARTITIONS", 6, minimum=1)
KAFKA_SECURITY_PROTOCOL = env_choice(
    "KAFKA_SECURITY_PROTOCOL", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], "PLAINTEXT"
)
KAFKA_SASL_MECHANISM = env_choice(
    "KAFKA_SASL_MECHANISM", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], "PLAIN"
)
KAFKA_SASL_USERNAME = env_str("KAFKA_SASL_USERNAME")
KAFKA_SASL_PASSWORD = env_str("KAFKA_SASL_PASSWORD")
KAFKA_SSL_CAFILE = env_str("KAFKA_SSL_CAFILE")
NATS_STREAM = env_str("NATS_STREAM", "FLUNQ_EVENTS")
NATS_SUBJECT_PREFIX = env_str("NATS_SUBJECT_PREFIX", "flunq.events")
NATS_CREDS = env_str("NATS_CREDS")
NATS_TLS_CAFILE = env_str("NATS_TLS_CAFILE")

# --- limits ------------------------------------------------------------------------------------
MAX_BODY_BYTES = env_int("MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
MAX_BATCH_EVENTS = env_int("MAX_BATCH_EVENTS", 1000, minimum=1, maximum=100_000)
PAGE_SIZE_DEFAULT = env_int("PAGE_SIZE_DEFAULT", 100, minimum=1)
PAGE_SIZE_MAX = env_int("PAGE_SIZE_MAX", 1000, minimum=1)
MAX_JSON_DEPTH = env_int("MAX_JSON_DEPTH", 64, minimum=2, maximum=1000)
MIN_POSITION_WAIT_SECONDS = env_float("MIN_POSITION_WAIT_SECONDS", 5.0)
if PAGE_SIZE_DEFAULT > PAGE_SIZE_MAX:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("PAGE_SIZE_DEFAULT: must not exceed PAGE_SIZE_MAX")

# --- gRPC (grpc_api/) --------------------------------------------------------------------------
# Larger requests are refused with RESOURCE_EXHAUSTED before they are decoded. By default REST's
# body limit: an event refused over REST (413) is refused over gRPC too.
GRPC_MAX_MESSAGE_BYTES = env_int("GRPC_MAX_MESSAGE_BYTES", MAX_BODY_BYTES, minimum=1024)
# Threads that run the database work of gRPC calls (each holds one database connection).
GRPC_DB_THREADS = env_int("GRPC_DB_THREADS", 8, minimum=1, maximum=256)
# A Subscribe client that takes no message for this long is dropped with RESOURCE_EXHAUSTED and
# the position to resume from, instead of being buffered without bound.
GRPC_SUBSCRIBE_SEND_TIMEOUT_SECONDS = env_float("GRPC_SUBSCRIBE_SEND_TIMEOUT_SECONDS", 30.0, minimum=0.1)

# --- snapshots ---------------------------------------------------------------------------------
# Snapshots kept per stream and type label (older ones are removed on save); 0 keeps all.
SNAPSHOT_RETENTION = env_int("SNAPSHOT_RETENTION", 3, minimum=0)

# --- live feeds (live/, docs/live.md) ----------------------------------------------------------
# Events a websocket/SSE client may have queued; a client further behind gets `resync` and is closed.
LIVE_CLIENT_BUFFER = env_int("LIVE_CLIENT_BUFFER", 5000, minimum=1)
# Events per log read while a client catches up, and per read of the per-process log tailer.
LIVE_PAGE_SIZE = env_int("LIVE_PAGE_SIZE", 500, minimum=1, maximum=10_000)
# An idle feed sends {"type": "heartbeat", "position": N} this often (0 turns it off).
LIVE_HEARTBEAT_SECONDS = env_float("LIVE_HEARTBEAT_SECONDS", 15.0)
# The tailer reads the log this often without a NOTIFY (NOTIFY can be lost); faster while the
# horizon lags behind committed events (a transaction holding an xid is still open).
LIVE_POLL_SECONDS = env_float("LIVE_POLL_SECONDS", 1.0, minimum=0.01)
# Lifetime of a single-use websocket ticket from POST /api/v1/ws-tickets.
LIVE_TICKET_SECONDS = env_int("LIVE_TICKET_SECONDS", 30, minimum=1, maximum=3600)
# Largest client message (filter change, ack, ping) accepted on a websocket.
LIVE_MAX_CLIENT_MESSAGE_BYTES = env_int("LIVE_MAX_CLIENT_MESSAGE_BYTES", 8192, minimum=256)
# Threads (each with one database connection) for the feeds' catch-up reads and auth look-ups.
LIVE_DB_THREADS = env_int("LIVE_DB_THREADS", 4, minimum=1, maximum=256)

# --- auth --------------------------------------------------------------------------------------
AUTH_REQUIRED = env_bool("AUTH_REQUIRED", True)
TOKEN_CACHE_SECONDS = env_float("TOKEN_CACHE_SECONDS", 10.0)
# Requests per API token and window (access/throttling.py), e.g. 200/s, 6000/m, 100000/h; empty:
# no limit. A guard against one runaway client; keep the proxy's limits in front as well.
RATE_LIMIT = env_str("RATE_LIMIT") or ""
if RATE_LIMIT:
    import re as _re

    if not _re.fullmatch(r"[1-9][0-9]{0,8}/[smh]", RATE_LIMIT):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"RATE_LIMIT: expected COUNT/s, COUNT/m or COUNT/h, got {RATE_LIMIT!r}")
# Counters of the rate limit: in Redis when REDIS_URL is set (shared by every process), else per process.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"},
}
if REDIS_URL and RATE_LIMIT:
    CACHES["throttle"] = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}

# --- schema registry (docs/schemas.md) ---------------------------------------------------------
# Refuse appends of event types that have no registered schema.
SCHEMA_REQUIRED = env_bool("SCHEMA_REQUIRED", False)
# How long a process trusts its copy of "latest version of each subject" (changes made by another
# process are seen after at most this long; changes made by this process at once).
SCHEMA_CACHE_SECONDS = env_float("SCHEMA_CACHE_SECONDS", 1.0)
SCHEMA_MAX_BYTES = env_int("SCHEMA_MAX_BYTES", 256 * 1024, minimum=64)
SCHEMA_MAX_DEPTH = env_int("SCHEMA_MAX_DEPTH", 32, minimum=2, maximum=200)

# --- database ----------------------------------------------------------------------------------
DATABASE_URL = env_url(
    "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/flunq_events", ["postgres", "postgresql"]
)
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))
}
# Options given in DATABASE_URL (sslmode=..., options=...) are kept. A stuck client must not hold
# the global horizon back (the horizon is cluster-wide), hence the idle-in-transaction timeout.
_url_options = DATABASES["default"].get("OPTIONS", {})
DATABASES["default"]["OPTIONS"] = {
    **_url_options,
    "options": " ".join(
        filter(
            None,
            [
                _url_options.get("options"),
                "-c idle_in_transaction_session_timeout="
                + str(env_int("DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", 60_000, minimum=0)),
            ],
        )
    ),
}
DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME")}
# Under ASGI, Django runs each request's sync code in a thread of its own and keeps connections per
# thread, so without a pool every HTTP request opens a new PostgreSQL connection (measured in
# docs/benchmarks.md) and leaves it open. So connections come from a psycopg pool (0 turns it off).
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 16, minimum=0)
if DB_POOL_MAX_SIZE:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django refuses persistent connections with a pool
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": min(2, DB_POOL_MAX_SIZE),
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": env_float("DB_POOL_TIMEOUT_SECONDS", 10.0),
    }
# The append path prepares its statement once per connection. Off for a pooler that cannot keep
# prepared statements (PgBouncer in transaction mode before 1.21).
DB_PREPARE = env_bool("DB_PREPARE", True)
# Appends committed within this many milliseconds share one NOTIFY to the log's followers.
NOTIFY_INTERVAL_MS = env_float("NOTIFY_INTERVAL_MS", 1.0, minimum=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- applications ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "access",
    "events",
    "streams",
    "subscriptions",
    "schemas",
    "relay",
    "snapshots",
    "grpc_api",
    "live",
]

MIDDLEWARE = [
    # First: a request id, one JSON log line and HTTP metrics per request (docs/deploy.md).
    "flunq_events.middleware.request_observation",
    "flunq_events.middleware.admin_refuses_nul",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "flunq_events.urls"
WSGI_APPLICATION = "flunq_events.wsgi.application"
ASGI_APPLICATION = "flunq_events.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".data" / "static"

# Bodies are limited by the ASGI middleware (flunq_events/limits.py) for every request, with or
# without Content-Length; Django's own check is kept in line for the WSGI path.
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES

# --- channels ----------------------------------------------------------------------------------
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- REST framework ----------------------------------------------------------------------------
REST_FRAMEWORK = {
    # `?format=` is an unknown parameter (400 naming it), not a renderer switch (a bare 404).
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_RENDERER_CLASSES": ["flunq_events.api.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["flunq_events.api.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["access.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["access.permissions.HasScope"],
    "EXCEPTION_HANDLER": "flunq_events.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["access.throttling.TokenRateThrottle"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "flunq events service",
    "DESCRIPTION": "Append-only CloudEvents log with streams, replay, subscriptions and live feeds.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema is public; the endpoints it describes are not.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# --- subscriptions (docs/subscriptions.md) ------------------------------------------------------
# Hosts or CIDRs webhooks may reach although they resolve to loopback/private/link-local addresses.
WEBHOOK_ALLOWED_HOSTS = env_list("WEBHOOK_ALLOWED_HOSTS", [])
for _entry in WEBHOOK_ALLOWED_HOSTS:
    import ipaddress as _ipaddress
    import re as _re

    try:
        _ipaddress.ip_network(_entry.strip("[]"), strict=False)
    except ValueError:
        if not _re.fullmatch(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})", _entry):
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                f"WEBHOOK_ALLOWED_HOSTS: expected comma-separated host names or CIDRs, got {_entry!r}"
            ) from None
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 15.0, minimum=0.1)
# Seconds to wait after each failed attempt (the last value repeats), like Svix's schedule.
try:
    SUBSCRIPTION_RETRY_SCHEDULE = [
        float(_value)
        for _value in env_list("SUBSCRIPTION_RETRY_SCHEDULE", ["5", "300", "1800", "7200", "18000", "36000"])
    ]
    if not SUBSCRIPTION_RETRY_SCHEDULE or not all(
        0 <= _v <= 7 * 24 * 3600 for _v in SUBSCRIPTION_RETRY_SCHEDULE
    ):
        raise ValueError
except ValueError:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "SUBSCRIPTION_RETRY_SCHEDULE: expected comma-separated seconds between 0 and 604800, "
        "e.g. 5,300,1800,7200,18000,36000"
    ) from None
SUBSCRIPTION_MAX_ATTEMPTS = env_int("SUBSCRIPTION_MAX_ATTEMPTS", 8, minimum=1, maximum=1000)
WEBHOOK_DISABLE_AFTER_SECONDS = env_float("WEBHOOK_DISABLE_AFTER_SECONDS", 5 * 24 * 3600.0, minimum=1.0)
PULL_LEASE_SECONDS = env_float("PULL_LEASE_SECONDS", 30.0, minimum=0.1)
DELIVER_CONCURRENCY = env_int("DELIVER_CONCURRENCY", 16, minimum=1, maximum=512)
DELIVER_POLL_SECONDS = env_float("DELIVER_POLL_SECONDS", 1.0, minimum=0.01)

# --- logging -----------------------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", ["DEBUG", "INFO", "WARNING", "ERROR"], "INFO")
# json: one JSON object per line with the request id (flunq_events/logs.py); plain: for a terminal.
LOG_FORMAT = env_choice("LOG_FORMAT", ["json", "plain"], "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "flunq_events.logs.JSONFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- benchmarks --------------------------------------------------------------------------------
# Mounts POST /bench/noop: a DRF view that does nothing, behind the same authentication and
# permission stack as the API, so `python -m bench` can measure the framework's own cost on the
# real server. Never on in a deployment.
BENCH_NOOP_VIEW = env_bool("BENCH_NOOP_VIEW", False)
