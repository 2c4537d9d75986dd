"""Django settings, read from the environment (django-environ).

Every variable is documented with its default in `.env.example` and in the README's
configuration table. Secrets have no default outside DEBUG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# --- Core -----------------------------------------------------------------------------------------
DEBUG: bool = env.bool("DEBUG", default=False)
_DEV_SECRET_KEY = "insecure-dev-only-secret-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY: str = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_beat",
    "config.apps.ConfigAppConfig",
    "chain.apps.ChainConfig",
    "payouts.apps.PayoutsConfig",
    "agreements.apps.AgreementsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- Database -------------------------------------------------------------------------------------
# PostgreSQL in production and tests; SQLite (WAL, immediate transactions) is the embedded default
# that `make run` uses when DATABASE_URL is not set.
DATABASES: dict[str, dict[str, Any]] = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
_db = DATABASES["default"]
_db["ATOMIC_REQUESTS"] = False
_db["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
_db["CONN_HEALTH_CHECKS"] = True
if _db["ENGINE"] == "django.db.backends.postgresql":
    _statement_timeout_ms = env.int("DB_STATEMENT_TIMEOUT_MS", default=30_000)
    _lock_timeout_ms = env.int("DB_LOCK_TIMEOUT_MS", default=5_000)
    _db.setdefault("OPTIONS", {})["options"] = (
        f"-c statement_timeout={_statement_timeout_ms} -c lock_timeout={_lock_timeout_ms}"
    )
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    _db["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth, i18n, static ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- HTTP security: headers and cookies (tests/config/test_security.py checks them on gunicorn) -------
SESSION_COOKIE_HTTPONLY = True
# No script of ours reads the CSRF cookie: admin forms and Swagger UI take the token from the page.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# HSTS on every HTTPS answer outside DEBUG (browsers ignore it over plain HTTP).
SECURE_HSTS_SECONDS: int = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading is a separate, hard-to-undo submission of the domain to the browsers' list: off until an
# operator makes it (hence security.W021 is silenced), then SECURE_HSTS_PRELOAD=true.
SECURE_HSTS_PRELOAD: bool = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Plain HTTP redirected to HTTPS; off by default, as the TLS proxy in front usually does it. Probes
# of the process itself stay on plain HTTP.
SECURE_SSL_REDIRECT: bool = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first, so that an anonymous request gets 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Staff only, like the admin; changes (any method but GET, HEAD, OPTIONS) need an approver (config/roles.py).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAdminUser",
        "config.roles.ApproverForChanges",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "config.jsonbody.JSONParser",  # refuses bodies nested too deep before parsing them
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PagePagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "UNAUTHENTICATED_USER": None,
    # Rate limit per user (so per token), counted in Redis: config/throttling.py.
    "DEFAULT_THROTTLE_CLASSES": ["config.throttling.ApiUserRateThrottle"],
    # Reverse proxies in front of the app whose X-Forwarded-For entry names the client (0: none, the
    # client's address is REMOTE_ADDR and the header is ignored, so it cannot be forged to dodge a limit).
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mass payouts and agreement sync API",
    "DESCRIPTION": "Operator and service API: assets, distributions, agreements, webhooks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "AgreementStatusEnum": "agreements.models.Agreement.Status",
        "AgreementPaymentStatusEnum": "agreements.models.AgreementPayment.Status",
        "WebhookDeliveryStatusEnum": "agreements.models.WebhookDelivery.Status",
        "InboundBlockchainEventStatusEnum": "agreements.models.InboundBlockchainEvent.Status",
    },
}

# --- API Idempotency-Key (config/idempotency.py) --------------------------------------------------
# Hours a key and its stored response are kept. At least 24: a client retrying the next day must
# still get the original answer rather than a second payout.
IDEMPOTENCY_KEY_TTL_HOURS: int = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
if IDEMPOTENCY_KEY_TTL_HOURS < 24:
    raise ImproperlyConfigured(
        f"IDEMPOTENCY_KEY_TTL_HOURS={IDEMPOTENCY_KEY_TTL_HOURS}: keys must be kept at least 24 hours."
    )

# --- Redis and Celery -----------------------------------------------------------------------------
REDIS_URL: str = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Django's cache holds the rate-limit counters only, shared by every process. Short socket timeouts:
# a Redis that is down costs a request milliseconds, and the limits are then not applied (logged).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cache",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}

# --- Rate limits (config/throttling.py): "N/period" (s, min, h, day); empty for none ---------------
# Per user (so per API token), on every API request.
THROTTLE_API_RATE: str = env.str("THROTTLE_API_RATE", default="3000/min")
# Inbound webhook: per client address (before anything else), and per application id (once the
# signature is verified, so forged requests never use up the blockchain service's allowance).
THROTTLE_INBOUND_ADDRESS_RATE: str = env.str("THROTTLE_INBOUND_ADDRESS_RATE", default="6000/min")
THROTTLE_INBOUND_APPLICATION_RATE: str = env.str("THROTTLE_INBOUND_APPLICATION_RATE", default="6000/min")
CELERY_BROKER_URL: str = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND: str = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 3600
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SOFT_TIME_LIMIT: int = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT: int = env.int("CELERY_TASK_TIME_LIMIT", default=360)
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Countdowns and hard time limits stay well below the visibility timeout, or Redis would redeliver the
# message. The socket timeouts bound a publish to a broker that is gone without closing the connection
# (config.enqueue); consumers wait on BRPOP through the event loop and are not affected.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_BEAT_SCHEDULER = "config.beat:SingleBeatDatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = False
# Lock that lets only one periodic run of the same task proceed at a time (seconds it may be held).
PERIODIC_TASK_LOCK_TIMEOUT: int = env.int("PERIODIC_TASK_LOCK_TIMEOUT", default=600)

# --- Health ---------------------------------------------------------------------------------------
READINESS_CHECKS: list[str] = [
    "config.health.check_database",
    "config.health.check_redis",
    "config.health.check_chain_rpc",
]
METRICS_TOKEN: str = env.str("METRICS_TOKEN", default="")
# Where web and worker processes write their in-process metrics so /metrics can sum them
# (prometheus-client reads it from the environment itself; empty: each process shows its own).
PROMETHEUS_MULTIPROC_DIR: str = env.str("PROMETHEUS_MULTIPROC_DIR", default="")

# --- Chain (chain app) ----------------------------------------------------------------------------
CHAIN_RPC_URL: str = env.str("CHAIN_RPC_URL", default="")
CHAIN_ID: int | None = env.int("CHAIN_ID", default=None)
CHAIN_SIGNER: str = env.str("CHAIN_SIGNER", default="local")  # "local" or "dfns"
CHAIN_SIGNER_PRIVATE_KEY: str = env.str("CHAIN_SIGNER_PRIVATE_KEY", default="")
CHAIN_CONFIRMATIONS: int = env.int("CHAIN_CONFIRMATIONS", default=1)
CHAIN_RPC_TIMEOUT: float = env.float("CHAIN_RPC_TIMEOUT", default=10.0)
# A sender whose lowest unfinished nonce has had no receipt this long halts its lane: alert (sweeper).
CHAIN_LANE_HALTED_AFTER_SECONDS: int = env.int("CHAIN_LANE_HALTED_AFTER_SECONDS", default=600)
BLOCKCHAIN_POLLING_INTERVAL: int = env.int("BLOCKCHAIN_POLLING_INTERVAL", default=60_000)  # ms
HEDERA_MIRROR_URL: str = env.str("HEDERA_MIRROR_URL", default="")
# The network a Hedera id's HIP-15 checksum must be written for: mainnet, testnet, previewnet,
# local-node or a hex ledger id; empty: any of the three public networks (chain.hedera.ledger_ids).
HEDERA_LEDGER_ID: str = env.str("HEDERA_LEDGER_ID", default="")
DFNS_SERVICE_ACCOUNT_AUTHORIZATION_TOKEN: str = env.str("DFNS_SERVICE_ACCOUNT_AUTHORIZATION_TOKEN", default="")
DFNS_SERVICE_ACCOUNT_CREDENTIAL_ID: str = env.str("DFNS_SERVICE_ACCOUNT_CREDENTIAL_ID", default="")
DFNS_SERVICE_ACCOUNT_PRIVATE_KEY: str = env.str("DFNS_SERVICE_ACCOUNT_PRIVATE_KEY", default="")
DFNS_APP_ID: str = env.str("DFNS_APP_ID", default="")
DFNS_APP_ORIGIN: str = env.str("DFNS_APP_ORIGIN", default="")
DFNS_BASE_URL: str = env.str("DFNS_BASE_URL", default="https://api.dfns.io")
DFNS_WALLET_ID: str = env.str("DFNS_WALLET_ID", default="")
DFNS_WALLET_PUBLIC_KEY: str = env.str("DFNS_WALLET_PUBLIC_KEY", default="")
DFNS_HEDERA_ACCOUNT_ID: str = env.str("DFNS_HEDERA_ACCOUNT_ID", default="")
# Seconds one signing may take (retries of a busy DFNS, polls of a pending request included);
# keep it under the lane lock timeout (30 s). Past it the lane retries later with the same nonce.
DFNS_SIGNATURE_WAIT_SECONDS: float = env.float("DFNS_SIGNATURE_WAIT_SECONDS", default=15.0)

# --- Payouts (payouts app) ------------------------------------------------------------------------
PAYOUT_BATCH_SIZE: int = env.int("PAYOUT_BATCH_SIZE", default=100)
PAYOUT_MAX_RETRIES: int = env.int("PAYOUT_MAX_RETRIES", default=3)
PAYOUT_SYNC_PAGE_SIZE: int = env.int("PAYOUT_SYNC_PAGE_SIZE", default=500)
# Holders one sync or planning task reads before handing on to the next task (each stays far
# below the worker's time limit however many holders an asset has).
PAYOUT_CHUNK_HOLDERS: int = env.int("PAYOUT_CHUNK_HOLDERS", default=20_000)
# Times the sweeper re-sends a sync or a planning that makes no progress before failing it (alert).
PAYOUT_MAX_SWEEPS: int = env.int("PAYOUT_MAX_SWEEPS", default=6)
# Work in flight untouched this long is taken as lost (broker restarted empty, worker killed) and
# re-sent by the sweeper, which runs every PAYOUT_SWEEP_EVERY_SECONDS. Re-sending is always safe
# (every step claims its rows), so these only trade recovery time against duplicate messages.
PAYOUT_STUCK_AFTER_SECONDS: int = env.int("PAYOUT_STUCK_AFTER_SECONDS", default=300)
PAYOUT_SYNC_STUCK_AFTER_SECONDS: int = env.int("PAYOUT_SYNC_STUCK_AFTER_SECONDS", default=900)
PAYOUT_SWEEP_EVERY_SECONDS: int = env.int("PAYOUT_SWEEP_EVERY_SECONDS", default=120)
SCHEDULED_PAYOUTS_CRON: str = env.str("SCHEDULED_PAYOUTS_CRON", default="0 */5 * * * *")

# --- Agreements (agreements app) ------------------------------------------------------------------
BLOCKCHAIN_APPLICATION_ID: str = env.str("BLOCKCHAIN_APPLICATION_ID", default="")
# Two key pairs, one per direction. Ours signs outbound webhooks (its public half is registered with
# the blockchain service; `manage.py blockchain_public_key` prints it). The service's public key
# verifies inbound ones: several PEM blocks while it rotates. Our own key never verifies inbound.
BLOCKCHAIN_APPLICATION_SECRET_KEY: str = env.str("BLOCKCHAIN_APPLICATION_SECRET_KEY", default="")
BLOCKCHAIN_SERVICE_PUBLIC_KEY: str = env.str("BLOCKCHAIN_SERVICE_PUBLIC_KEY", default="")
BLOCKCHAIN_WEBHOOK_URL: str = env.str("BLOCKCHAIN_WEBHOOK_URL", default="")
DISCORD_WEBHOOK_URL: str = env.str("DISCORD_WEBHOOK_URL", default="")
# Outbound webhooks: per-try timeout, retries after the first try, backoff base and cap (seconds).
WEBHOOK_TIMEOUT_SECONDS: float = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_MAX_RETRIES: int = env.int("WEBHOOK_MAX_RETRIES", default=3)
WEBHOOK_RETRY_BASE_SECONDS: float = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
# Kept below the broker's visibility timeout (1 h) so a delayed retry is never redelivered early.
WEBHOOK_RETRY_MAX_SECONDS: float = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=1800.0)
# The sweeper re-enqueues pending deliveries and unprocessed inbound events this late; beat runs it
# every WEBHOOK_SWEEP_EVERY_SECONDS. Both bound how long a webhook waits after the broker lost it.
WEBHOOK_SWEEP_AFTER_SECONDS: int = env.int("WEBHOOK_SWEEP_AFTER_SECONDS", default=120)
WEBHOOK_SWEEP_EVERY_SECONDS: int = env.int("WEBHOOK_SWEEP_EVERY_SECONDS", default=60)
# At most one Discord alert per cause in this window.
ALERT_RATE_LIMIT_SECONDS: int = env.int("ALERT_RATE_LIMIT_SECONDS", default=600)

# --- Logging --------------------------------------------------------------------------------------
LOG_LEVEL: str = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT: str = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "config.logging.RedactSecretsFilter"}},
    "formatters": {
        "json": {"()": "config.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["redact"],
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "web3": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
