"""The commenter's own cookies. All signed, HttpOnly and SameSite=Lax, so a page on another
site can neither read them nor make a cross-site POST carry them.

- ``bs_commenter``: a random token naming this browser; trust ("previously approved") and the
  preview of held comments are bound to it rather than to a self-declared name + email.
- ``bs_guest``: the name, email and website this browser last commented with, to fill the form.
- ``bs_pending``: ids of this browser's comments still awaiting moderation (a week at most).
"""

from __future__ import annotations

import hashlib
import json
import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse

COMMENTER = "bs_commenter"
GUEST = "bs_guest"
PENDING = "bs_pending"
SALT = "broadsheet.comments.cookies"
YEAR = 365 * 24 * 3600
WEEK = 7 * 24 * 3600


def _get(request: HttpRequest, name: str, max_age: int) -> str | None:
    return request.get_signed_cookie(name, default=None, salt=SALT + name, max_age=max_age)


def _set(response: HttpResponse, name: str, value: str, max_age: int) -> None:
    response.set_signed_cookie(
        name,
        value,
        salt=SALT + name,
        max_age=max_age,
        httponly=True,
        samesite="Lax",
        secure=getattr(settings, "SESSION_COOKIE_SECURE", False),
    )


def commenter_token(request: HttpRequest) -> str | None:
    return _get(request, COMMENTER, YEAR)


def browser_key(request: HttpRequest) -> str:
    token = commenter_token(request)
    return key_for(token) if token else ""


def new_browser_token() -> str:
    return secrets.token_urlsafe(32)


def key_for(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def set_commenter(response: HttpResponse, token: str) -> None:
    _set(response, COMMENTER, token, YEAR)


def remembered_guest(request: HttpRequest) -> dict[str, str] | None:
    raw = _get(request, GUEST, YEAR)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return {k: str(data.get(k, "")) for k in ("name", "email", "url")}


def remember_guest(response: HttpResponse, *, name: str, email: str, url: str) -> None:
    _set(response, GUEST, json.dumps({"name": name, "email": email, "url": url}), YEAR)


def pending_ids(request: HttpRequest) -> list[int]:
    raw = _get(request, PENDING, WEEK)
    if not raw:
        return []
    return [int(part) for part in raw.split(",") if part.isascii() and part.isdigit()]


def add_pending(request: HttpRequest, response: HttpResponse, comment_id: int) -> None:
    ids = [i for i in pending_ids(request) if i != comment_id][-19:] + [comment_id]
    _set(response, PENDING, ",".join(map(str, ids)), WEEK)
