"""``EMAIL_URL``: the whole mail configuration in one environment variable.

    smtp://user:pass@host:port       plain SMTP (port 25 unless given)
    smtp+tls://user:pass@host:port   STARTTLS (587)
    smtp+ssl://user:pass@host:port   TLS from the first byte (465)
    console://                       print every message (the demo)

User and password are percent-decoded (``p%40ss`` is ``p@ss``); ``?timeout=`` sets the SMTP
timeout in seconds (10 by default). dj-email-url was not used: it silently ignores the
``smtp+tls`` and ``smtp+ssl`` spellings.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
CONSOLE_BACKEND = "django.core.mail.backends.console.EmailBackend"
# scheme: (default port, STARTTLS, implicit TLS)
SCHEMES = {
    "smtp": (25, False, False),
    "smtp+tls": (587, True, False),
    "smtp+ssl": (465, False, True),
}
DEFAULT_TIMEOUT = 10


def parse_email_url(url: str) -> dict:
    """The Django ``EMAIL_*`` settings an ``EMAIL_URL`` stands for."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query)
    try:
        timeout = float(query.get("timeout", [DEFAULT_TIMEOUT])[0])
    except ValueError:
        raise ImproperlyConfigured("EMAIL_URL: timeout must be a number of seconds") from None
    if scheme == "console":
        return {"EMAIL_BACKEND": CONSOLE_BACKEND, "EMAIL_TIMEOUT": timeout}
    if scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in [*SCHEMES, "console"])
        raise ImproperlyConfigured(
            f"EMAIL_URL: unknown scheme {parts.scheme + '://' if parts.scheme else '(none)'}; "
            f"use one of {known}"
        )
    default_port, use_tls, use_ssl = SCHEMES[scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        raise ImproperlyConfigured("EMAIL_URL: the port must be a number") from None
    if not parts.hostname:
        raise ImproperlyConfigured("EMAIL_URL: a host is needed, e.g. smtp://mail.example.org")
    return {
        "EMAIL_BACKEND": SMTP_BACKEND,
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": port,
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": use_tls,
        "EMAIL_USE_SSL": use_ssl,
        "EMAIL_TIMEOUT": timeout,
    }
