"""Akismet, when the site has an API key (``AKISMET_API_KEY`` in the environment).

Off by default: asking Akismet sends the commenter's IP address, name, email, website, user
agent and text to Automattic. With a key:

- Posting a comment never waits on Akismet. ``akismet_guard`` only **holds** the new comment
  ("Akismet: being checked"; the reader sees it as awaiting moderation, as any held comment)
  and, once the comment is stored, ``check_comment`` is queued on the ``outbox`` backend's
  ``akismet`` queue, for ``broadsheet worker``. The task carries what the comment does not
  keep: the client's full IP address (the stored one may be truncated or absent, see
  ``COMMENTS_STORE_IP``), the referrer and the permalink; it wipes them from its queue row
  when done.
- The worker asks ``comment-check`` (a 1.5 s time-out). Spam goes to the spam folder, never
  deleted: when Akismet advises discarding it (blatant spam), the reason says so and a
  moderator can still look. Ham is published, unless another guard held it too (a moderation
  word, manual approval…): then it stays held for those reasons only. Akismet's answer is kept
  in ``Comment.akismet_verdict``, and a change of status gets a history line (actor
  "akismet") and, when published, the ``comment_moderated`` signal (``moderator=None``,
  ``via="akismet"``), so subscribers and the article's authors hear of it as they would of a
  moderator's approval.
- When Akismet cannot be asked (time-out, error, invalid key), the comment stays **held** for a
  moderator, as WordPress's Akismet plugin does ("Akismet was unable to check this comment"),
  and a warning is logged. Approving it instead would let a spam run through whenever Akismet
  is slow; refusing it would lose the reader's text. ``COMMENTS_AKISMET_HOLD_ON_ERROR = False``
  treats such comments as ham instead (the other guards still apply). The task does not raise
  for these, so it is never retried; a comment a moderator dealt with meanwhile is left alone.
- Moderators correct it: a checked comment marked spam while Akismet had it as ham is sent to
  ``submit-spam``; one approved while Akismet had it as spam (from the spam folder, or by way
  of the trash) is sent to ``submit-ham``. Each report is a task on the same queue, queued
  when the moderation commits, so the moderation queue never waits on Akismet either.
  ``akismet_verdict`` then records what Akismet was told, so flipping back and forth reports
  each correction once.

Nothing is asked for a comment already bound for the spam folder or the trash, or from a
moderator.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta

import akismet
import httpx
from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks import task

from . import signals
from .guards import HOLD, SPAM, Submission, Verdict
from .models import Comment, CommentEvent
from .services import one_writer

logger = logging.getLogger(__name__)

GUARD = "Akismet"  # the name moderators see in front of the reason
HONEYPOT_FIELD = "website2"  # forms.CommentForm's hidden field
DEFAULT_TIMEOUT = 1.5  # seconds; the worker waits at most this long on Akismet
CHECK_QUEUE = "akismet"  # the worker's queue for Akismet (settings.TASKS["outbox"]["QUEUES"])

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


CHECKING = "being checked"  # the reason a comment is held until the worker has asked
_PENDING_CHECK = "_akismet_pending_check"  # what akismet_guard leaves on the comment


def akismet_guard(sub: Submission) -> Verdict | None:
    """Hold a new comment until the worker has asked Akismet about it (only with an API key;
    see the module docstring). Never waits on the network: a post stays fast whatever
    Akismet's state."""
    if not is_enabled() or sub.bound_for_trash:
        return None
    # For check_later (comment_posted): what Akismet needs that the comment does not keep.
    setattr(
        sub.comment,
        _PENDING_CHECK,
        {"ip": sub.ip or "", "referrer": sub.referrer, "permalink": sub.permalink},
    )
    return Verdict(HOLD, GUARD, CHECKING)


def is_checking(reason) -> bool:
    return (
        isinstance(reason, dict)
        and reason.get("guard") == GUARD
        and reason.get("detail") == CHECKING
    )


@receiver(signals.comment_posted, dispatch_uid="akismet.check_later")
def check_later(sender, *, comment, **kwargs):
    """A comment akismet_guard held is stored: ask Akismet about it once that commits."""
    request = getattr(comment, _PENDING_CHECK, None)
    if request is None or comment.status != Comment.Status.PENDING:
        return
    comment_id = comment.pk
    # robust: the comment is stored; a failed enqueue is logged, and the worker's sweep
    # (requeue_lost_checks) asks again later.
    transaction.on_commit(lambda: check_comment.enqueue(comment_id, **request), robust=True)


@task(backend="outbox", queue_name=CHECK_QUEUE, takes_context=True)
def check_comment(context, comment_id: int, ip: str = "", referrer: str = "", permalink: str = ""):
    """Ask Akismet about a comment held for it, and act on the answer. Runs in the worker."""
    try:
        return check_held_comment(comment_id, ip=ip, referrer=referrer, permalink=permalink)
    finally:
        forget_request(context, comment_id)


def requeue_lost_checks(*, after: timedelta = timedelta(minutes=10)) -> int:
    """Ask again for comments held "being checked" whose check was never queued (the process
    died between the commit and the enqueue). A check that ran and failed is not repeated:
    its comment waits for a moderator. Run by the worker's sweep; returns how many."""
    from django_tasks_db.models import DBTaskResult

    if not is_enabled():
        return 0
    now = timezone.now()
    waiting = [
        comment
        for comment in Comment.objects.filter(
            status=Comment.Status.PENDING,
            created_at__lt=now - after,
            created_at__gt=now - timedelta(days=2),
        ).only("pk", "created_at", "moderation_reasons")[:500]
        if awaits_check(comment)
    ]
    if not waiting:
        return 0
    # Only the checks queued since the oldest of them was posted (task rows are kept).
    queued = {
        (args_kwargs.get("args") or [None])[0]
        for args_kwargs in DBTaskResult.objects.filter(
            queue_name=CHECK_QUEUE,  # indexed; the mail queue's rows are most of the table
            task_path__endswith=".check_comment",
            enqueued_at__gte=min(comment.created_at for comment in waiting),
        )
        .order_by()
        .values_list("args_kwargs", flat=True)
    }
    lost = [comment.pk for comment in waiting if comment.pk not in queued]
    for comment_id in lost:
        check_comment.enqueue(comment_id)
    return len(lost)


def forget_request(context, comment_id: int) -> None:
    """Wipe the client's IP address and referrer from the task's row: the site may have chosen
    not to store IP addresses (``COMMENTS_STORE_IP``), and the row outlives the check."""
    try:
        from django_tasks_db.models import DBTaskResult

        DBTaskResult.objects.filter(pk=context.task_result.id).update(
            args_kwargs={"args": [comment_id], "kwargs": {}}
        )
    except Exception:  # another backend, or the row is gone: nothing kept to wipe
        logger.debug("Akismet: could not wipe the task's arguments", exc_info=True)


def check_held_comment(
    comment_id: int, *, ip: str = "", referrer: str = "", permalink: str = ""
) -> str:
    """Ask ``comment-check`` about a comment held "being checked", then publish it, send it to
    spam or leave it held (see the module docstring). Returns its status afterwards, or ""
    when there was nothing to do (the comment is gone, or a moderator dealt with it)."""
    comment = Comment.objects.select_related("thread").filter(pk=comment_id).first()
    if not awaits_check(comment):
        return ""
    verdict: Verdict | None = None
    verdict_name = ""
    if is_enabled():  # the key may have gone since: then the comment is let through
        arguments = comment_arguments(comment, permalink=permalink, referrer=referrer)
        try:
            with akismet_client() as client:
                response = client.comment_check(ip or comment.ip_address or "", **arguments)
        except (akismet.AkismetError, httpx.HTTPError, OSError) as error:
            logger.warning("Akismet could not check a comment on %s: %s", comment.thread, error)
            if getattr(settings, "COMMENTS_AKISMET_HOLD_ON_ERROR", True):
                verdict = Verdict(
                    HOLD,
                    GUARD,
                    f"unable to check this comment ({why(error)}); held for a moderator",
                )
        else:
            verdict_name = VERDICT_NAMES[response]
            if response == akismet.CheckResponse.DISCARD:
                verdict = Verdict(SPAM, GUARD, "spam (Akismet advised discarding it: blatant spam)")
            elif response == akismet.CheckResponse.SPAM:
                verdict = Verdict(SPAM, GUARD, "spam")
    return apply_check(comment_id, verdict, verdict_name)


def awaits_check(comment: Comment | None) -> bool:
    return (
        comment is not None
        and comment.status == Comment.Status.PENDING
        and any(is_checking(r) for r in comment.moderation_reasons or [])
    )


def apply_check(comment_id: int, verdict: Verdict | None, verdict_name: str) -> str:
    """Akismet's answer (``verdict`` None: nothing against it) takes the place of "being
    checked" among the comment's reasons; the other guards' reasons stay, and keep it held."""
    with one_writer(), transaction.atomic():
        comment = (
            Comment.objects.select_for_update(of=("self",))
            .select_related("thread")
            .filter(pk=comment_id)
            .first()
        )
        if not awaits_check(comment):  # a moderator got there first
            return ""
        reasons = []
        for reason in comment.moderation_reasons:
            if not is_checking(reason):
                reasons.append(reason)
            elif verdict is not None:
                reasons.append(verdict.as_reason())
        if verdict is not None and verdict.action == SPAM:
            status = Comment.Status.SPAM
        elif reasons:
            status = Comment.Status.PENDING
        else:
            status = Comment.Status.APPROVED
        old = comment.status
        comment.status = status
        comment.moderation_reasons = reasons
        comment.akismet_verdict = verdict_name
        comment.save(
            update_fields=["status", "moderation_reasons", "akismet_verdict", "updated_at"]
        )
        if status != old:
            CommentEvent.objects.create(
                comment=comment,
                actor=None,
                actor_kind="akismet",
                action="approve" if status == Comment.Status.APPROVED else "spam",
                before={"status": old},
                after={"status": status, "via": "akismet"},
                reasons=reasons,
            )
        if status != Comment.Status.SPAM:
            # Approved: as a moderator's approval, subscribers and the article's authors hear
            # of it. Still held: moderators hear of it now (the post told no one while only
            # Akismet held it). Spam, as when a guard sends a new comment there, tells no one.
            signals.comment_moderated.send(
                Comment,
                comment=comment,
                old_status=old,
                new_status=status,
                moderator=None,
                via="akismet",
            )
        return status


# --- Telling Akismet about its mistakes ------------------------------------------------------

SUBMIT_SPAM, SUBMIT_HAM = "spam", "ham"


@task(backend="outbox", queue_name=CHECK_QUEUE)
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
