"""Building blocks of the discussion's email (being completed)."""

from __future__ import annotations

from django.conf import settings


def absolute_url(path: str) -> str:
    """A link for an email: always on the configured public address, never the request's Host."""
    if path.startswith(("http://", "https://")):
        return path
    return settings.BROADSHEET_BASE_URL + "/" + path.lstrip("/")
