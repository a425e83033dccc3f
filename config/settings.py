"""Settings for Dynamic Segments, read from the environment.

Every setting has a safe development default; production sets them through
the environment (see the README's configuration table). Bad values fail loudly.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set to a secret value when DEBUG is off")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "contacts",
    "segments_app",
    "campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.RequestSizeLimitMiddleware",
    "config.middleware.ApiPathMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

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
                "contacts.web_access.workspace_context",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

# SQLite under var/ for the quick start; PostgreSQL through DATABASE_URL otherwise.
VAR_DIR = BASE_DIR / "var"
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
if DATABASE_URL.startswith("sqlite"):
    VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Session settings of every connection. JIT is off: the app runs short statements whose row estimates can
    # be far off (a refresh of 1,000 contacts was estimated at 15.9M rows and spent 1.9 s compiling).
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = os.environ.get("DATABASE_SESSION_OPTIONS", "-c jit=off")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request without it
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

# Cache: Redis when configured (shared rate limits across processes), memory otherwise.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: tasks run in-process (eagerly) when no broker is configured.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    # Engagement, lifecycle stage, loyalty tier and RFM drift with the clock and the workspace.
    "refresh-contact-stats": {"task": "contacts.tasks.refresh_all_workspaces_stats_task", "schedule": 3600.0},
    # Living segments (segments_app.tasks): recompute due segments, retry webhooks, prune the change log.
    # SEGMENT_DISPATCH_INTERVAL_S: how often (default every minute); tests shorten it.
    "dispatch-segments": {
        "task": "segments_app.tasks.dispatch_segments_task",
        "schedule": float(env_int("SEGMENT_DISPATCH_INTERVAL_S", 60)),
    },
    "deliver-webhooks": {
        "task": "segments_app.tasks.deliver_webhooks_task",
        "schedule": float(env_int("SEGMENT_DISPATCH_INTERVAL_S", 60)),
    },
    "prune-segment-changes": {"task": "segments_app.tasks.prune_changes_task", "schedule": 86400.0},
    # Segment API message ids (repeats are no-ops) are kept SEGMENT_MESSAGE_ID_RETENTION_DAYS.
    "prune-processed-messages": {"task": "contacts.tasks.prune_processed_messages_task", "schedule": 86400.0},
    # Campaigns (campaigns.tasks): start due scheduled sends, resume stalled deliveries, run automations.
    "dispatch-campaigns": {
        "task": "campaigns.tasks.dispatch_campaigns_task",
        "schedule": float(env_int("CAMPAIGN_DISPATCH_INTERVAL_S", 30)),
    },
}
# Redis redelivers a message not acknowledged within this many seconds (a worker killed mid-task):
# longer than any task's time limit, or long tasks would run twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}

# API
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "1200/min")
INGEST_MAX_RECORDS = 1000

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["contacts.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["contacts.auth.HasWorkspace"],
    "DEFAULT_THROTTLE_CLASSES": ["contacts.auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": API_RATE_LIMIT},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Dynamic Segments API",
    "DESCRIPTION": "Ingest contacts, products, orders and events; define segments and campaigns.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "DeliveryStatusEnum": "campaigns.models.DeliveryStatus",
        "AutomationTriggerEnum": "campaigns.models.Automation.Trigger",
        "TriggerEnum": "segments_app.models.SegmentSnapshot.Trigger",  # its name before automations had a trigger
    },
    # The segment definition's JSON Schema components are added after enum extraction, so that their
    # many small enums ("op", "type", "measure") stay inline (segments_app.schema).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "segments_app.schema.add_definition_components",
    ],
}

# Segment engine
SEGMENT_PREVIEW_TIMEOUT_MS = env_int("SEGMENT_PREVIEW_TIMEOUT_MS", 10_000)
SEGMENT_CHANGE_RETENTION_DAYS = env_int("SEGMENT_CHANGE_RETENTION_DAYS", 180)
SEGMENT_MESSAGE_ID_RETENTION_DAYS = env_int("SEGMENT_MESSAGE_ID_RETENTION_DAYS", 30)
# Living segments (segments_app.membership, dispatch, realtime, webhooks; see README "Living segments").
SEGMENT_RECOMPUTE_TIMEOUT_S = env_int("SEGMENT_RECOMPUTE_TIMEOUT_S", 600)
SEGMENT_STUCK_MINUTES = env_int("SEGMENT_STUCK_MINUTES", 30)
SEGMENT_RETRY_MAX_MINUTES = env_int("SEGMENT_RETRY_MAX_MINUTES", 60)
SEGMENT_CATALOG_CACHE_S = env_int("SEGMENT_CATALOG_CACHE_S", 600)
SEGMENT_DISPATCH_INTERVAL_S = env_int("SEGMENT_DISPATCH_INTERVAL_S", 60)  # also the beat entry's interval
SEGMENT_RECOMPUTE_WORK_MEM = os.environ.get("SEGMENT_RECOMPUTE_WORK_MEM", "64MB")  # PostgreSQL work_mem of a recompute
WEBHOOK_TIMEOUT_S = env_int("WEBHOOK_TIMEOUT_S", 10)
WEBHOOK_BATCH_SIZE = env_int("WEBHOOK_BATCH_SIZE", 500)
WEBHOOK_RETRY_BASE_S = env_int("WEBHOOK_RETRY_BASE_S", 30)
WEBHOOK_RETRY_MAX_S = env_int("WEBHOOK_RETRY_MAX_S", 3600)

# Email (campaigns): Django's email backend, so any SMTP service works. Without EMAIL_HOST messages are
# printed to the console (development).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587 if env_bool("EMAIL_USE_TLS", False) else 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "marketing@localhost")
# Campaign delivery (campaigns.delivery): messages per batch, attempts per message, first retry delay
# (doubled per attempt), and after how long a message claimed by a worker that vanished counts as failed.
CAMPAIGN_BATCH_SIZE = env_int("CAMPAIGN_BATCH_SIZE", 200)
CAMPAIGN_MAX_ATTEMPTS = env_int("CAMPAIGN_MAX_ATTEMPTS", 5)
CAMPAIGN_RETRY_BASE_S = env_int("CAMPAIGN_RETRY_BASE_S", 60)
CAMPAIGN_STALE_CLAIM_MINUTES = env_int("CAMPAIGN_STALE_CLAIM_MINUTES", 15)

# Security headers; HTTPS-only cookies and redirects when DEBUG is off.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
