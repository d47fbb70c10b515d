"""Broadsheet settings: one module, read from the environment (12-factor).

Every variable is listed in the README's configuration table. Defaults are safe for a laptop:
SQLite file under ``var/``, DEBUG off, loopback hosts only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

PACKAGE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BROADSHEET_VAR_DIR", Path.cwd() / "var")).resolve()


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    # A per-checkout key, generated once and kept out of the repository (var/ is ignored).
    # Production sets SECRET_KEY; `check --deploy` fails on a short or missing one.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        # Several processes may start at once on a fresh var/: each writes a private draft,
        # and the first to link it in place wins; the others read the winner's key.
        from django.utils.crypto import get_random_string

        draft = VAR_DIR / f".secret_key.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(get_random_string(64))
        try:
            os.link(draft, key_file)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Canonical address of the site, used in feeds, e-mail and the admin. Never taken from Host.
# The site's public address, used in every link that leaves a request (mail, feeds, admin).
# BROADSHEET_SITE_URL is the same setting under the name the mail docs use.
BROADSHEET_BASE_URL = (
    os.environ.get("BROADSHEET_SITE_URL")
    or os.environ.get("BROADSHEET_BASE_URL")
    or "http://127.0.0.1:8000"
).rstrip("/")
BROADSHEET_SITE_URL = BROADSHEET_BASE_URL
WAGTAILADMIN_BASE_URL = BROADSHEET_BASE_URL
WAGTAIL_SITE_NAME = os.environ.get("BROADSHEET_SITE_NAME", "Broadsheet")

INSTALLED_APPS = [
    "broadsheet.core",
    "broadsheet.accounts",
    "broadsheet.comments",
    "broadsheet.publishing",
    "broadsheet.wordpress",
    # Before allauth, so the site's own account and sign-in templates win.
    "broadsheet.identity",
    "broadsheet.identity.mastodon",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.facebook",
    "allauth.socialaccount.providers.twitter_oauth2",
    "wagtail.contrib.redirects",
    "wagtail.contrib.routable_page",
    "wagtail.contrib.settings",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django_tasks",
    "django_tasks_db",
    "django_filters",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "broadsheet.core.outage.OutageMiddleware",
    "broadsheet.core.middleware.SecurityHeadersMiddleware",
    "broadsheet.wordpress.middleware.LegacyQueryRedirectMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "broadsheet.core.middleware.PrivateWhenPersonalMiddleware",
    "broadsheet.comments.middleware.PendingCookieMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "broadsheet.identity.middleware.ProviderHandoffMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]

ROOT_URLCONF = "broadsheet.config.urls"
WSGI_APPLICATION = "broadsheet.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "wagtail.contrib.settings.context_processors.settings",
                "broadsheet.core.context_processors.site",
                "broadsheet.publishing.context_processors.chrome",
            ],
        },
    },
]

# --- Storage -----------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'broadsheet.sqlite3'}"
# Connections are kept between requests (per thread) on SQLite too: opening one costs about
# 1.5-4 ms of CPU per request (file open, PRAGMAs, Django's SQL functions, schema parse), a
# tenth to a fifth of an uncached article page.
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run during a write; IMMEDIATE takes the write lock at BEGIN so two
    # comment posts queue on the busy timeout instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
        ),
    }
    # Tests run against a real file too (an in-memory database hides locking problems); one
    # file per test process, so parallel runs never share one.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get(
            "BROADSHEET_TEST_SQLITE", str(VAR_DIR / f"test-{os.getpid()}.sqlite3")
        )
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Page cache ----------------------------------------------------------------------------------
# Shared pages for anonymous readers, as files nginx can serve too (core/pagecache.py).
# BROADSHEET_PAGE_CACHE_DIR=off turns it off.
_page_cache_dir = os.environ.get("BROADSHEET_PAGE_CACHE_DIR", str(VAR_DIR / "pagecache"))
BROADSHEET_PAGE_CACHE_DIR = None if _page_cache_dir.lower() in ("", "off") else _page_cache_dir

# --- Static and media files ----------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if env_bool("BROADSHEET_PLAIN_STATIC"):
    # Tests and runserver: no manifest needed, files found where they are.
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    WHITENOISE_USE_FINDERS = True
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000

# --- Security ------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
# Sign-in popups (issue 3) need the opener link to survive a visit to the provider.
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin-allow-popups"
X_FRAME_OPTIONS = "DENY"

# HTTPS deployment: TLS ends at the front server, which sets X-Forwarded-Proto.
BROADSHEET_HTTPS = env_bool("BROADSHEET_HTTPS")
if BROADSHEET_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 31536000))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    # `check --deploy` warns without preload; set SECURE_HSTS_PRELOAD=0 to opt out of the list.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- Mail ----------------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", 25))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")  # STARTTLS, usually port 587
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")  # TLS from the start, usually port 465
EMAIL_TIMEOUT = 10
# EMAIL_URL (smtp://, smtp+tls://, smtp+ssl://, console://) replaces the variables above.
if os.environ.get("EMAIL_URL"):
    from .email_url import parse_email_url

    globals().update(parse_email_url(os.environ["EMAIL_URL"]))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Broadsheet <noreply@localhost>")
# The outbox worker (`broadsheet worker`): how long a message being sent is reserved for one
# worker, and how often the sweeper looks for due or abandoned messages (seconds).
COMMENTS_OUTBOX_LEASE_SECONDS = int(os.environ.get("COMMENTS_OUTBOX_LEASE_SECONDS", 120))
COMMENTS_OUTBOX_SWEEP_SECONDS = float(os.environ.get("COMMENTS_OUTBOX_SWEEP_SECONDS", 30))
COMMENTS_OUTBOX_MAX_ATTEMPTS = 20
# The first retry after a failed send (seconds); each next one waits twice as long, up to 1 h.
COMMENTS_OUTBOX_RETRY_SECONDS = float(os.environ.get("COMMENTS_OUTBOX_RETRY_SECONDS", 30))
# Signed moderation links in notification mail stay valid this long (seconds; 7 days).
COMMENTS_MODERATION_LINK_MAX_AGE = int(
    os.environ.get("COMMENTS_MODERATION_LINK_MAX_AGE", 7 * 24 * 3600)
)
# The addresses of an article's authors (a dotted path to ``thread -> list[str]``).
COMMENTS_THREAD_AUTHORS = "broadsheet.publishing.discussion.author_emails_for_thread"

# --- Wagtail -------------------------------------------------------------------------------------
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
WAGTAILDOCS_EXTENSIONS = ["csv", "docx", "odt", "pdf", "rtf", "txt", "xlsx", "zip"]
WAGTAIL_I18N_ENABLED = False
WAGTAILADMIN_COMMENTS_ENABLED = True  # editors' review comments on drafts, not reader comments
TAGGIT_CASE_INSENSITIVE = True

# --- Discussion ----------------------------------------------------------------------------------
# How much of the commenter's IP address moderators keep: "full", "truncated" or "none".
COMMENTS_STORE_IP = os.environ.get("COMMENTS_STORE_IP", "full")
if COMMENTS_STORE_IP not in {"full", "truncated", "none"}:
    raise ImproperlyConfigured("COMMENTS_STORE_IP must be full, truncated or none")
COMMENTS_MAX_DEPTH = int(os.environ.get("COMMENTS_MAX_DEPTH", 5))
COMMENTS_MAX_LINKS = int(os.environ.get("COMMENTS_MAX_LINKS", 2))
# "generated" (an initial on a colour, drawn by CSS) or "gravatar" (WordPress's default).
COMMENTS_AVATARS = os.environ.get("COMMENTS_AVATARS", "generated")
# Cookies that make a page personal: requests carrying them are never served from a shared cache.
BROADSHEET_PERSONAL_COOKIES = ["bs_pending"]
# Who is commenting (site account or provider), and which "log in" icons the form shows.
COMMENTS_IDENTITY_RESOLVER = "broadsheet.identity.services.current_identity"
COMMENTS_IDENTITY_CHOICES = "broadsheet.identity.services.choices"
COMMENTS_MODERATION_POLICY = "broadsheet.comments.moderation.ModerationPolicy"
# A comment form sent sooner than this after it was handed out is a robot's; older than the
# max age, it is sent again (seconds).
COMMENTS_FORM_MIN_SECONDS = int(os.environ.get("COMMENTS_FORM_MIN_SECONDS", 3))
COMMENTS_FORM_MAX_AGE = 2 * 24 * 3600
# Akismet: off unless a key is set (it sends each commenter's IP, name, email, website, user
# agent and text to Automattic). The local classifier sends nothing anywhere.
AKISMET_API_KEY = os.environ.get("AKISMET_API_KEY", "")
# The discussion settings of a thread's site (a dotted path to ``thread -> DiscussionSettings``);
# without one, the defaults in comments/conf.py apply (a static site).
COMMENTS_SETTINGS_RESOLVER = "broadsheet.publishing.discussion.settings_for_thread"

# --- Background tasks (django-tasks) --------------------------------------------------------------
TASKS = {
    # Wagtail and its search enqueue on "default": they stay in the request (search index,
    # reference index, renditions), as before.
    "default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"},
    # Our mail, and only our mail, goes through the database and `broadsheet worker`.
    "outbox": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["mail", "akismet"]},
}

# --- Identities: site accounts and sign-in with other services (django-allauth) -------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_ADAPTER = "broadsheet.identity.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "broadsheet.identity.adapters.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
# The username is the name shown on comments; sign-in is by email.
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGOUT_ON_GET = False  # a link from another site cannot sign a reader out
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if BROADSHEET_HTTPS else "http"
# allauth's defaults, written out: 5 failed sign-ins per account in 5 minutes, 10 per IP a
# minute. Counted in the cache, so several app servers need REDIS_URL to share the count.
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/300s/key"}
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{WAGTAIL_SITE_NAME}] "
SOCIALACCOUNT_LOGIN_ON_GET = False  # sign-in starts only by POST
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # never sign in to an account by matching email
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = False
SOCIALACCOUNT_EMAIL_REQUIRED = False  # X and Mastodon give no email address
# Provider addresses are never used (see adapters.py), so there is nothing to verify.
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_QUERY_EMAIL = False
SOCIALACCOUNT_STORE_TOKENS = False  # only the identity is needed, never the reader's tokens
SOCIALACCOUNT_REQUESTS_TIMEOUT = 5
SOCIALACCOUNT_OPENID_CONNECT_URL_PREFIX = "oidc"
# Built-in defaults; a provider with no APPS entry (and no app in the admin) is not offered.
SOCIALACCOUNT_PROVIDERS: dict = {
    "openid_connect": {"OAUTH_PKCE_ENABLED": True},
    "google": {"OAUTH_PKCE_ENABLED": True, "SCOPE": ["openid", "email", "profile"]},
    "facebook": {"METHOD": "oauth2", "OAUTH_PKCE_ENABLED": True, "SCOPE": ["public_profile"]},
    "twitter_oauth2": {"OAUTH_PKCE_ENABLED": True},
    "mastodon": {},
}
_providers_json = os.environ.get("BROADSHEET_SOCIALACCOUNT_PROVIDERS", "").strip()
if _providers_json:
    try:
        _extra_providers = json.loads(_providers_json)
    except ValueError as error:
        raise ImproperlyConfigured(
            f"BROADSHEET_SOCIALACCOUNT_PROVIDERS is not JSON: {error}"
        ) from None
    if not isinstance(_extra_providers, dict) or not all(
        isinstance(v, dict) for v in _extra_providers.values()
    ):
        raise ImproperlyConfigured(
            "BROADSHEET_SOCIALACCOUNT_PROVIDERS must be a JSON object of provider settings, "
            'in the shape of SOCIALACCOUNT_PROVIDERS: {"openid_connect": {"APPS": [...]}}'
        )
    for _provider_id, _provider_settings in _extra_providers.items():
        SOCIALACCOUNT_PROVIDERS.setdefault(_provider_id, {}).update(_provider_settings)
# Forced after the merge: the stricter provider classes cannot be configured away.
for _provider_id, _class_path in {
    "openid_connect": "broadsheet.identity.providers.openid_connect.provider.StrictOIDCProvider",
    "google": "broadsheet.identity.providers.google.provider.StrictGoogleProvider",
    "facebook": "broadsheet.identity.providers.facebook.provider.StrictFacebookProvider",
    "twitter_oauth2": "broadsheet.identity.providers.x.provider.StrictXProvider",
}.items():
    SOCIALACCOUNT_PROVIDERS.setdefault(_provider_id, {})["provider_class"] = _class_path
    SOCIALACCOUNT_PROVIDERS[_provider_id].pop("VERIFIED_EMAIL", None)
# Outbound requests to addresses a reader typed (Mastodon instances) go only to public
# addresses; tests widen this to loopback for their fake servers.
BROADSHEET_OUTBOUND_ALLOW_NETWORKS: list[str] = []
BROADSHEET_RESOLVER = "broadsheet.core.netguard.system_resolver"
BROADSHEET_MASTODON_SCHEME = "https"
# OpenID providers on plain http: only for the demo's local provider.
BROADSHEET_ALLOW_HTTP_PROVIDERS = env_bool("BROADSHEET_ALLOW_HTTP_PROVIDERS")

# WordPress import: the largest export the admin accepts as an upload (the command line reads
# files up to 2 GiB).
BROADSHEET_WXR_UPLOAD_MAX_BYTES = int(
    os.environ.get("BROADSHEET_WXR_UPLOAD_MAX_BYTES", 512 * 1024 * 1024)
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# Proxies whose X-Forwarded-For is believed (comma-separated addresses or networks).
BROADSHEET_TRUSTED_PROXIES = env_list("BROADSHEET_TRUSTED_PROXIES")
