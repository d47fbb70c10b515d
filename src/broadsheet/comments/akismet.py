"""Akismet, when the site has an API key (``AKISMET_API_KEY`` in the environment).

Off by default: asking Akismet sends the commenter's IP address, name, email, website, user
agent and text to Automattic. With a key:

- ``akismet_guard`` asks ``comment-check`` while the comment is posted (a 1.5 s time-out). Spam
  goes to the spam folder, never deleted: when Akismet advises discarding it (blatant spam), the
  reason says so and a moderator can still look. Its answer is kept in
  ``Comment.akismet_verdict``.
- When Akismet cannot be asked (time-out, error, invalid key), the comment is **held** for a
  moderator, as WordPress's Akismet plugin does ("Akismet was unable to check this comment"),
  and a warning is logged. Approving it instead would let a spam run through whenever Akismet
  is slow; refusing it would lose the reader's text. ``COMMENTS_AKISMET_HOLD_ON_ERROR = False``
  lets such comments through instead (the other guards still apply).
- Moderators correct it: a checked comment marked spam while Akismet had it as ham is sent to
  ``submit-spam``; one approved while Akismet had it as spam (from the spam folder, or by way
  of the trash) is sent to ``submit-ham``. Each report is a task on the ``outbox`` backend's
  ``akismet`` queue, queued when the moderation commits and sent by ``broadsheet worker``, so
  the moderation queue never waits on Akismet. ``akismet_verdict`` then records what Akismet
  was told, so flipping back and forth reports each correction once.

Nothing is asked for a comment already bound for the spam folder or the trash, or from a
moderator.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC

import akismet
import httpx
from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from django.utils.module_loading import import_string
from django_tasks import task

from . import signals
from .guards import HOLD, SPAM, Submission, Verdict
from .models import Comment

logger = logging.getLogger(__name__)

GUARD = "Akismet"  # the name moderators see in front of the reason
HONEYPOT_FIELD = "website2"  # forms.CommentForm's hidden field
DEFAULT_TIMEOUT = 1.5  # seconds; a comment post waits at most this long on Akismet

VERDICT_NAMES = {
    akismet.CheckResponse.HAM: "ham",
    akismet.CheckResponse.SPAM: "spam",
    akismet.CheckResponse.DISCARD: "discard",
}


def api_key() -> str:
    return (getattr(settings, "AKISMET_API_KEY", "") or "").strip()


def is_enabled() -> bool:
    return bool(api_key())


def default_http_client(timeout: float) -> httpx.Client:
    return httpx.Client(timeout=timeout)


@contextmanager
def akismet_client() -> Iterator[akismet.SyncClient]:
    """An Akismet client for this site, its connections closed afterwards. The HTTP client
    comes from the ``COMMENTS_AKISMET_HTTP_CLIENT`` setting (a dotted path to
    ``factory(timeout) -> httpx.Client``) when set: the tests point it at a fake Akismet on
    loopback. (``SyncClient`` as a context manager would call ``verify-key`` first: one more
    round trip on every comment. An invalid key shows up as an error from ``comment-check``.)"""
    timeout = float(getattr(settings, "COMMENTS_AKISMET_TIMEOUT", DEFAULT_TIMEOUT))
    path = getattr(settings, "COMMENTS_AKISMET_HTTP_CLIENT", "")
    factory = import_string(path) if path else default_http_client
    with factory(timeout) as http_client:
        yield akismet.SyncClient(
            config=akismet.Config(key=api_key(), url=settings.BROADSHEET_BASE_URL),
            http_client=http_client,
        )


def _absolute(path: str) -> str:
    if path.startswith("/"):
        return settings.BROADSHEET_BASE_URL + path
    return path


def comment_arguments(comment: Comment, *, permalink: str = "", referrer: str = "") -> dict:
    """What Akismet is told about a comment (besides the IP address)."""
    arguments = {
        "comment_type": "reply" if comment.parent_id else "comment",
        "comment_content": comment.text,
        "comment_author": comment.author_name,
        "comment_author_email": comment.author_email,
        "comment_author_url": comment.author_url,
        "permalink": _absolute(permalink or (comment.thread.url if comment.thread_id else "")),
        "referrer": referrer,
        "user_agent": comment.user_agent,
        "blog_lang": settings.LANGUAGE_CODE,
        "blog_charset": "UTF-8",
        "honeypot_field_name": HONEYPOT_FIELD,
    }
    if comment.created_at:
        arguments["comment_date_gmt"] = comment.created_at.astimezone(UTC).isoformat()
    if getattr(settings, "COMMENTS_AKISMET_IS_TEST", False):
        arguments["is_test"] = True
    return {k: v for k, v in arguments.items() if v not in ("", None)}


# --- Checking a new comment ------------------------------------------------------------------


def why(error: Exception) -> str:
    """Akismet's failure in words a moderator understands."""
    cause = error.__cause__
    if isinstance(error, akismet.APIKeyError):
        return "the Akismet API key or site address is not valid"
    if isinstance(cause, httpx.TimeoutException) or isinstance(error, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(error, akismet.ProtocolError):
        return "an unexpected answer"
    return "Akismet could not be reached"


def akismet_guard(sub: Submission) -> Verdict | None:
    """Ask Akismet about a new comment (only with an API key; see the module docstring)."""
    if not is_enabled() or sub.bound_for_trash:
        return None
    comment = sub.comment
    arguments = comment_arguments(comment, permalink=sub.permalink, referrer=sub.referrer)
    try:
        with akismet_client() as client:
            response = client.comment_check(sub.ip or "", **arguments)
    except (akismet.AkismetError, httpx.HTTPError, OSError) as error:
        logger.warning("Akismet could not check a comment on %s: %s", comment.thread, error)
        if not getattr(settings, "COMMENTS_AKISMET_HOLD_ON_ERROR", True):
            return None
        return Verdict(
            HOLD, GUARD, f"unable to check this comment ({why(error)}); held for a moderator"
        )
    comment.akismet_verdict = VERDICT_NAMES[response]
    if response == akismet.CheckResponse.DISCARD:
        return Verdict(SPAM, GUARD, "spam (Akismet advised discarding it: blatant spam)")
    if response == akismet.CheckResponse.SPAM:
        return Verdict(SPAM, GUARD, "spam")
    return None


# --- Telling Akismet about its mistakes ------------------------------------------------------

SUBMIT_SPAM, SUBMIT_HAM = "spam", "ham"


@task(backend="outbox", queue_name="akismet")
def report_to_akismet(comment_id: int, kind: str) -> bool:
    """Send a moderator's correction to Akismet (``submit-spam`` / ``submit-ham``). Runs in the
    worker. A comment deleted meanwhile, or a site without a key, sends nothing."""
    if not is_enabled():
        return False
    comment = Comment.objects.select_related("thread").filter(pk=comment_id).first()
    if comment is None:
        return False
    arguments = comment_arguments(comment)
    with akismet_client() as client:
        submit = client.submit_spam if kind == SUBMIT_SPAM else client.submit_ham
        return submit(comment.ip_address or "", **arguments)


def correction_for(comment: Comment, old_status: str, new_status: str) -> str | None:
    """Which report a moderation decision makes, if any: only a comment Akismet checked, and
    only when the moderator disagrees with what Akismet last heard about it."""
    verdict = comment.akismet_verdict
    if not verdict:
        return None
    if new_status == Comment.Status.SPAM and verdict == "ham":
        return SUBMIT_SPAM
    if new_status == Comment.Status.APPROVED and verdict in ("spam", "discard"):
        return SUBMIT_HAM  # from the spam folder, or by way of the trash
    return None


@receiver(signals.comment_moderated, dispatch_uid="akismet.report_corrections")
def report_corrections(sender, *, comment, old_status, new_status, moderator, **kwargs):
    kind = correction_for(comment, old_status, new_status)
    if kind is None or not is_enabled():
        return
    # What Akismet now knows about this comment: flipping it again reports only a new change.
    comment.akismet_verdict = kind
    Comment.objects.filter(pk=comment.pk).update(akismet_verdict=kind)
    comment_id = comment.pk
    transaction.on_commit(lambda: report_to_akismet.enqueue(comment_id, kind))
