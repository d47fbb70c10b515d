"""Commenters' avatars.

By default a generated one, drawn by the page's own CSS: the name's initial on one of twelve
colours, picked by a keyed hash of the email. No image request, no third party learning who
reads the page, and nothing in the page from which an email could be confirmed.
``COMMENTS_AVATARS=gravatar`` shows Gravatar images instead, as WordPress does (their URL
carries an unkeyed hash of the email, and each reader's browser fetches them from Gravatar).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings

HUES = 12  # .avatar-hue-0 … .avatar-hue-11 in the theme


@dataclass(frozen=True)
class Avatar:
    initial: str
    hue: int
    url: str = ""  # an image to show instead, when Gravatar is chosen


def avatar_for(*, email: str, name: str, image: str = "") -> Avatar:
    """``image``: the picture a sign-in provider gave (https only, checked when stored)."""
    normalized = email.strip().lower().encode()
    key = settings.SECRET_KEY.encode()
    digest = hmac.new(key, normalized, hashlib.sha256).digest()
    initial = next((ch.upper() for ch in name if ch.isalnum()), "?")
    url = ""
    if getattr(settings, "COMMENTS_AVATARS", "generated") == "gravatar":
        url = f"https://www.gravatar.com/avatar/{hashlib.sha256(normalized).hexdigest()}?s=96&d=identicon"
    return Avatar(initial=initial, hue=digest[0] % HUES, url=image or url)
