"""Commenters' avatars, fetched by the reader's browser only.

By default a generated picture: the name's initial on a colour derived from a keyed hash of
the email, drawn as an inline SVG, so no third party learns who reads the page and the page
carries nothing from which an email could be confirmed. ``COMMENTS_AVATARS=gravatar`` uses
Gravatar (whose URL contains an unkeyed hash of the email) as WordPress does.
"""

from __future__ import annotations

import hashlib
import hmac
from html import escape
from urllib.parse import quote

from django.conf import settings


def _generated(email: str, name: str) -> str:
    key = settings.SECRET_KEY.encode()
    digest = hmac.new(key, email.strip().lower().encode(), hashlib.sha256).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    initial = next((ch.upper() for ch in name if ch.isalnum()), "?")
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96">'
        f'<rect width="96" height="96" fill="hsl({hue},42%,42%)"/>'
        '<text x="48" y="64" font-family="sans-serif" font-size="46" fill="#fff" '
        f'text-anchor="middle">{escape(initial)}</text></svg>'
    )
    return "data:image/svg+xml," + quote(svg, safe="")


def avatar_url(*, email: str, name: str) -> str:
    if getattr(settings, "COMMENTS_AVATARS", "generated") == "gravatar":
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        return f"https://www.gravatar.com/avatar/{digest}?s=96&d=identicon"
    return _generated(email, name)
