"""Settings for M-Hospital, read from the environment.

With no variables set the platform runs on one machine with no servers to
install: SQLite (WAL), an in-memory channel layer, a local media folder and a
Celery worker on kombu's filesystem broker. `DATABASE_URL` and `REDIS_URL`
switch to PostgreSQL, channels-redis and Celery on Redis. `DJANGO_ENV=production`
refuses to start without `SECRET_KEY` and `ALLOWED_HOSTS`, or with `DEBUG` on.
Every variable is listed in README.md.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"
VAR_DIR = Path(env.str("MHOSPITAL_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    DEBUG = env.bool("DEBUG", default=False)
    if not SECRET_KEY:
        raise ImproperlyConfigured("DJANGO_ENV=production needs SECRET_KEY (50+ random characters).")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ENV=production needs ALLOWED_HOSTS (comma-separated host names).")
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production.")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="insecure-development-key-never-used-in-production")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
    DEBUG = env.bool("DEBUG", default=True)

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Keys the audit trail's hash chain. Keep it out of the database and never change it: old entries
# would no longer verify. Defaults to SECRET_KEY.
AUDIT_CHAIN_KEY = env.str("AUDIT_CHAIN_KEY", default="") or SECRET_KEY
# How many hash chains the audit trail spreads its appends over (hospitals/audit.py): each has a head row
# that an append holds until its commit. Never lowered below a number already used: verify reads them all.
AUDIT_CHAIN_LANES = env.int("AUDIT_CHAIN_LANES", default=8)
REDIS_URL = env.str("REDIS_URL", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "hospitals",
    "patients",
    "consultations",
    "diagnostics",
    "devices",
    "interop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "hospitals.middleware.RequestContextMiddleware",
    "hospitals.middleware.NoStoreMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The whole chain runs synchronously, in the request's one trip to a thread (mhospital/asgi_http.py).
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "hospitals.middleware.IdleTimeoutMiddleware",
    "hospitals.middleware.UploadLimitMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "hospitals.middleware.EndedSessionMiddleware",
    "hospitals.middleware.AccountGateMiddleware",
    "hospitals.middleware.HospitalTimezoneMiddleware",
    # Axes must come last: it turns a locked-out login attempt into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mhospital.urls"
# Backups (manage.py backup): JSON that keeps times to the microsecond.
SERIALIZATION_MODULES = {"exactjson": "hospitals.exactjson"}
ASGI_APPLICATION = "mhospital.asgi.application"
WSGI_APPLICATION = "mhospital.wsgi.application"

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
                "hospitals.context_processors.membership",
            ],
        },
    },
]

# Database: SQLite in WAL mode by default; PostgreSQL through DATABASE_URL.
DATABASES = {
    "default": env.db(
        "DATABASE_URL",
        default=f"sqlite:///{VAR_DIR / 'mhospital.sqlite3'}",
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, for the test database: browser tests serve pages from an ASGI server in another
    # thread, which must see the same data.
    # One per process, so two test runs side by side never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        "transaction_mode": "IMMEDIATE",
    }
else:
    # A pool of connections per process. Under ASGI Django's connections belong to a request (its context),
    # not to the thread that runs it, so persistent connections (CONN_MAX_AGE) would open a new connection,
    # and PostgreSQL fork a new backend, for each request.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("DATABASE_POOL_SIZE", default=10),
        "timeout": 20,
    }
    # Parameters bound by the server, and a statement run twice on a connection prepared there: PostgreSQL
    # then parses it once per pooled connection rather than at every request, and plans it once where one
    # plan serves any parameters. A STOW-RS request spent 4.8 ms of PostgreSQL's CPU with the statements sent
    # as text, 3.0 ms prepared (bench/BENCHMARKS.md).
    # A pooler in transaction mode (PgBouncer before 1.21) cannot keep prepared statements: set it to 0 then.
    # A migration that changes a prepared statement's columns needs the processes restarted (README, deployment).
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 2
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"pool_class": "mhospital.redis_pool.SharedConnectionPool"},
        }
    }
    # channels-redis' pub/sub layer by default (one PUBLISH per message, pushed to the subscribed process;
    # nothing kept for a socket that is not listening, which a live page or a call does not need: the call
    # page keeps its own outbox until the peer is there). CHANNELS_LAYER=core switches to the core layer
    # (lists in Redis, capacity enforced per process): at 500 calls on 2 cores it fell behind and lost
    # messages where pub/sub kept p99 under 25 ms with none lost; see bench/BENCHMARKS.md (signalling).
    # The pub/sub layer's subclass only gives each socket's channel a lighter inbox (mhospital/channel_layers.py).
    _channels_prefix = env.str("CHANNELS_PREFIX", default="mhospital")
    if env.str("CHANNELS_LAYER", default="pubsub") == "pubsub":
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "mhospital.channel_layers.InboxPubSubChannelLayer",
                "CONFIG": {"hosts": [REDIS_URL], "prefix": _channels_prefix},
            }
        }
    else:
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "mhospital.channel_layers.PooledRedisChannelLayer",
                "CONFIG": {
                    "hosts": [REDIS_URL],
                    "prefix": _channels_prefix,
                    "capacity": env.int("CHANNELS_CAPACITY", default=20000),
                    "max_connections": env.int("CHANNELS_REDIS_CONNECTIONS", default=64),
                    "pool_timeout": env.float("CHANNELS_REDIS_POOL_TIMEOUT", default=10.0),
                },
            }
        }
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    # A file cache is shared by the web server and the worker processes on one machine.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "mhospital.channel_layers.SweptInMemoryChannelLayer",
            "CONFIG": {"capacity": env.int("CHANNELS_CAPACITY", default=20000)},
        }
    }

# How long the ASGI server's event loop may wait for a thread of synchronous work to hand the interpreter
# back (Python's switch interval; see mhospital/asgi.py).
ASGI_SWITCH_INTERVAL_MS = env.float("ASGI_SWITCH_INTERVAL_MS", default=0.5)

# Celery: Redis when REDIS_URL is set, otherwise kombu's filesystem broker (no server needed).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # broadcasts (ping, inspect), not the checkout
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# No results are kept, so the (disabled) result backend is safe to share between threads. Unshared, Celery
# builds one per thread, scanning every installed package's entry points, and under ASGI every request
# runs in a thread of its own: a tenth of an image upload's time went there.
CELERY_RESULT_BACKEND_THREAD_SAFE = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
WORKER_HEARTBEAT_SECONDS = env.int("WORKER_HEARTBEAT_SECONDS", default=10)
CELERY_BEAT_SCHEDULE = {
    "consultations-mark-overdue": {"task": "consultations.tasks.consultations_mark_overdue", "schedule": 60.0},
    "calls-sweep": {"task": "consultations.tasks.calls_sweep", "schedule": 30.0},
    "imaging-requeue-stuck": {"task": "diagnostics.tasks.instances_requeue_stuck", "schedule": 300.0},
    "imaging-uploads-sweep": {"task": "diagnostics.tasks.uploads_sweep", "schedule": 600.0},
    "recordings-requeue-stuck": {"task": "diagnostics.tasks.recordings_requeue_stuck", "schedule": 300.0},
    "lab-hl7-requeue-stuck": {"task": "devices.tasks.hl7_messages_requeue_stuck", "schedule": 120.0},
    "api-tokens-sweep": {"task": "hospitals.tasks.api_tokens_sweep", "schedule": 3600.0},
}

# Imaging.
# An image whose decoded pixels would need more memory than this is refused at upload.
DICOM_MAX_DECODED_BYTES = env.int("DICOM_MAX_DECODED_BYTES", default=1024 * 2**20)
# Queued or processing longer than this: the periodic sweep queues it again.
IMAGING_STUCK_MINUTES = env.int("IMAGING_STUCK_MINUTES", default=10)
# Dotted paths of callables (instance, dataset) run on every processed image: the AI readers' hook. The
# default runs the AI models platform admins register (diagnostics/ai.py) where they are enabled.
IMAGING_READERS: list[str] = env.list("IMAGING_READERS", default=["diagnostics.ai.instance_read"])
# The largest AI model file (ONNX) a platform admin may upload.
AI_MODEL_MAX_BYTES = env.int("AI_MODEL_MAX_BYTES", default=512 * 2**20)
# Browser uploads arrive in resumable chunks, each one request under MAX_REQUEST_BYTES. One file (or ZIP
# archive) may be at most IMAGING_UPLOAD_MAX_BYTES; unfinished ones are dropped after the days below.
IMAGING_UPLOAD_MAX_BYTES = env.int("IMAGING_UPLOAD_MAX_BYTES", default=2 * 2**30)
IMAGING_UPLOAD_CHUNK_MAX_BYTES = env.int("IMAGING_UPLOAD_CHUNK_MAX_BYTES", default=8 * 2**20)
IMAGING_UPLOAD_KEEP_DAYS = env.int("IMAGING_UPLOAD_KEEP_DAYS", default=7)
# A ZIP archive is unpacked entry by entry in memory, never to disk, within these limits; an entry that
# unpacks to more than IMAGING_ZIP_MAX_RATIO times its packed size (a decompression bomb) is refused.
IMAGING_ZIP_MAX_ENTRIES = env.int("IMAGING_ZIP_MAX_ENTRIES", default=10000)
IMAGING_ZIP_MAX_UNPACKED_BYTES = env.int("IMAGING_ZIP_MAX_UNPACKED_BYTES", default=4 * 2**30)
IMAGING_ZIP_MAX_RATIO = env.int("IMAGING_ZIP_MAX_RATIO", default=100)

# Recordings (stethoscope sounds, ECGs). One file may be at most RECORDING_MAX_BYTES (a browser's batch
# is one request, so also under MAX_REQUEST_BYTES) and last at most RECORDING_MAX_SECONDS; the limits on
# sampling rate and channels (or leads) bound what the worker decodes.
RECORDING_MAX_BYTES = env.int("RECORDING_MAX_BYTES", default=20 * 2**20)
RECORDING_MAX_SECONDS = env.int("RECORDING_MAX_SECONDS", default=10 * 60)
RECORDING_MAX_SAMPLE_RATE = env.int("RECORDING_MAX_SAMPLE_RATE", default=192_000)
RECORDING_MAX_CHANNELS = env.int("RECORDING_MAX_CHANNELS", default=16)
RECORDING_ZIP_MAX_ENTRIES = env.int("RECORDING_ZIP_MAX_ENTRIES", default=100)
# Queued or processing longer than this: the periodic sweep queues it again, up to RECORDING_MAX_ATTEMPTS
# runs; then it is failed with the reason (a file that takes the worker down must not loop for ever).
RECORDING_STUCK_MINUTES = env.int("RECORDING_STUCK_MINUTES", default=10)
RECORDING_MAX_ATTEMPTS = env.int("RECORDING_MAX_ATTEMPTS", default=3)

# Lab results imported from a CSV file in the browser (diagnostics/lab_import.py): larger files are split.
LAB_IMPORT_MAX_BYTES = env.int("LAB_IMPORT_MAX_BYTES", default=5 * 2**20)
LAB_IMPORT_MAX_ROWS = env.int("LAB_IMPORT_MAX_ROWS", default=5000)
# An HL7 message queued longer than this (minutes): the periodic sweep queues it again.
LAB_STUCK_MINUTES = env.int("LAB_STUCK_MINUTES", default=5)
# What a device may send in one request (/api/v1/device/...) or one MLLP frame: results, not files.
DEVICE_MAX_REQUEST_BYTES = env.int("DEVICE_MAX_REQUEST_BYTES", default=2**20)
# The FHIR API checks each response against the FHIR R4 models first (tests always do; costly in production).
FHIR_VALIDATE_RESPONSES = env.bool("FHIR_VALIDATE_RESPONSES", default=False)
# Readings in one JSON request; FHIR Observations in one Bundle.
DEVICE_MAX_READINGS = env.int("DEVICE_MAX_READINGS", default=1000)

# The MLLP listener (`manage.py mllp_listen`) for analysers that send HL7 v2 over TCP. Only active devices
# registered with the message's HL7 sender (MSH-3^MSH-4) are taken. 0.0.0.0 listens on every interface.
MLLP_LISTENER_HOST = env.str("MLLP_LISTENER_HOST", default="127.0.0.1")
MLLP_LISTENER_PORT = env.int("MLLP_LISTENER_PORT", default=2575)
# Seconds of silence after which a connection is closed; messages stored at once (threads).
MLLP_LISTENER_IDLE_TIMEOUT = env.int("MLLP_LISTENER_IDLE_TIMEOUT", default=300)
MLLP_LISTENER_THREADS = env.int("MLLP_LISTENER_THREADS", default=8)

# The DICOM C-STORE listener (`manage.py dicom_listen`): modalities send to this AE title, host and port.
# Only active devices' AE titles may connect (devices.Device). 0.0.0.0 listens on every interface.
DICOM_LISTENER_AE_TITLE = env.str("DICOM_LISTENER_AE_TITLE", default="MHOSPITAL")
DICOM_LISTENER_HOST = env.str("DICOM_LISTENER_HOST", default="127.0.0.1")
DICOM_LISTENER_PORT = env.int("DICOM_LISTENER_PORT", default=11112)
DICOM_LISTENER_MAX_ASSOCIATIONS = env.int("DICOM_LISTENER_MAX_ASSOCIATIONS", default=10)
# Seconds: to negotiate an association, to wait for a DIMSE message, and of silence before the link is dropped.
DICOM_LISTENER_ACSE_TIMEOUT = env.int("DICOM_LISTENER_ACSE_TIMEOUT", default=30)
DICOM_LISTENER_DIMSE_TIMEOUT = env.int("DICOM_LISTENER_DIMSE_TIMEOUT", default=30)
DICOM_LISTENER_NETWORK_TIMEOUT = env.int("DICOM_LISTENER_NETWORK_TIMEOUT", default=60)

# Accounts and sign-in.
AUTH_USER_MODEL = "hospitals.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

# Lockout counts failures per (username, address) pair: one clinician's typos
# must not lock out the whole hospital behind one NAT address.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "hospitals.accounts.lockout"
AXES_VERBOSE = False

OTP_TOTP_ISSUER = "M-Hospital"

# Idle timeout: a session ends this many seconds after the last request (refreshed at most once a
# minute by hospitals.middleware.IdleTimeoutMiddleware).
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_TIMEOUT", default=30 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "hospitals.views.csrf_failure"

# Production hardening: `manage.py check --deploy` reports nothing with DJANGO_ENV=production.
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # health checks come over plain HTTP from inside the network
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy: only the platform's own files run, style and load; nothing inline, no other
# origin, no framing. Live updates and calls use the page's own origin over WebSocket; media streams and
# drawn images may be blob: or data: URLs. The API's documentation page adds nothing to it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "media-src": [SELF, "blob:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Internationalisation: Russian first, English second; dates in the hospital's time zone.
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="ru")
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Europe/Moscow"
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns at start-up when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
CONSENT_SCAN_MAX_BYTES = env.int("CONSENT_SCAN_MAX_BYTES", default=10 * 2**20)
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=20 * 2**20)
# Any request body above this is refused before it is read (imaging uploads come in resumable chunks).
MAX_REQUEST_BYTES = env.int("MAX_REQUEST_BYTES", default=25 * 2**20)
# DICOMweb STOW-RS carries whole studies from machines on the hospital network.
DICOMWEB_MAX_REQUEST_BYTES = env.int("DICOMWEB_MAX_REQUEST_BYTES", default=1024 * 2**20)
# A request body up to this size is held in memory, past it in a temporary file: a STOW-RS request of
# ten images (up to 5.5 MB in the bench) and a browser upload's chunk (at most 8 MB) stay in memory. With
# Django's 2.5 MB a third of the bench's STOW requests went to disk, a file made, filled, read twice and
# deleted: about 1 ms more of the server's CPU each (bench/BENCHMARKS.md). Each request may hold this much
# in memory, and it is read before it is authenticated; a form's files are copied out of it (twice that).
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=10 * 2**20)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

REST_FRAMEWORK = {
    # The token first: a call with no credentials is answered 401 with "WWW-Authenticate: Token", as a
    # client expects, rather than the 403 that session authentication (which has no such header) gives.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "hospitals.tokens.TokenAuthentication",  # integrations: "Authorization: Token <key>" (knox)
        "rest_framework.authentication.SessionAuthentication",  # the browser
    ],
    "DEFAULT_PERMISSION_CLASSES": ["hospitals.api_rules.SignedInWithSecondFactor"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "EXCEPTION_HANDLER": "hospitals.api_rules.exception_handler",
}
REST_KNOX = {"TOKEN_TTL": timedelta(days=env.int("API_TOKEN_DAYS", default=90)), "AUTO_REFRESH": False}
SPECTACULAR_SETTINGS = {
    "TITLE": "M-Hospital API",
    "DESCRIPTION": "Patients, consultations, messages and conclusions, scoped to the caller's hospital.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["hospitals.api_rules.SignedInWithSecondFactor"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "hospitals.api_schema.errors_documented",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # pydicom logs every decoder that fails to read a frame; the pipeline records the reason on the image.
    # pynetdicom narrates every association at INFO; devices.dicom_listener logs what matters.
    "loggers": {"axes": {"level": "WARNING"}, "pydicom": {"level": "CRITICAL"}, "pynetdicom": {"level": "WARNING"}},
}

# Video calls (consultations/consumers.py). STUN and TURN servers for the browsers; TURN passwords are
# issued per user for CALL_TURN_TTL_SECONDS from the secret coturn shares (`static-auth-secret`).
CALL_STUN_URLS: list[str] = env.list("CALL_STUN_URLS", default=[])
CALL_TURN_URLS: list[str] = env.list("CALL_TURN_URLS", default=[])
CALL_TURN_SECRET = env.str("CALL_TURN_SECRET", default="")
CALL_TURN_TTL_SECONDS = env.int("CALL_TURN_TTL_SECONDS", default=6 * 3600)
CALL_RING_SECONDS = env.int("CALL_RING_SECONDS", default=45)
CALL_RING_MIN_SECONDS, CALL_RING_MAX_SECONDS = 5, 180
# A participant whose page closed (a reload, a dropped link) rejoins the same call within this time.
CALL_REJOIN_GRACE_SECONDS = env.int("CALL_REJOIN_GRACE_SECONDS", default=30)
# The page pings this often; a socket silent for three periods is closed and its peer told.
CALL_HEARTBEAT_SECONDS = env.float("CALL_HEARTBEAT_SECONDS", default=5.0)
CALL_ROOM_SIZE = env.int("CALL_ROOM_SIZE", default=4)  # the two sides and up to two invited guests
CALL_MAX_MESSAGE_BYTES = 64 * 1024
CALL_RATE_PER_SECOND = env.float("CALL_RATE_PER_SECOND", default=50.0)
CALL_RATE_BURST = env.int("CALL_RATE_BURST", default=200)
