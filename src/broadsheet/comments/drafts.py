"""What a reader typed, kept in their session while they sign in somewhere else.

Used when sign-in leaves the page (no JavaScript, or a blocked popup): the text comes back in
the form afterwards. Limited to the form's own size limits and to a few threads at a time.
"""

from __future__ import annotations

from django.http import HttpRequest

from .models import EMAIL_MAX, NAME_MAX, TEXT_MAX, URL_MAX

SESSION_KEY = "bs_drafts"
MAX_THREADS = 5
LIMITS = {
    "comment": TEXT_MAX,
    "author": NAME_MAX,
    "email": EMAIL_MAX,
    "url": URL_MAX,
    "comment_parent": 20,
}


def save(request: HttpRequest, thread_id: int, data) -> None:
    draft = {name: str(data.get(name, ""))[:limit] for name, limit in LIMITS.items()}
    if not any(draft[name] for name in ("comment", "author", "email", "url")):
        return
    drafts = request.session.get(SESSION_KEY) or {}
    drafts.pop(str(thread_id), None)
    drafts[str(thread_id)] = draft
    while len(drafts) > MAX_THREADS:
        drafts.pop(next(iter(drafts)))
    request.session[SESSION_KEY] = drafts


def get(request: HttpRequest, thread_id: int) -> dict | None:
    return (request.session.get(SESSION_KEY) or {}).get(str(thread_id))


def discard(request: HttpRequest, thread_id: int) -> dict | None:
    drafts = request.session.get(SESSION_KEY) or {}
    draft = drafts.pop(str(thread_id), None)
    if draft is not None:
        request.session[SESSION_KEY] = drafts
    return draft
