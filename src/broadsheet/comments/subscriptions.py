"""“Notify me of follow-up comments via email” and “Notify me of new posts via email”.

Rules:
- A box ticked on the comment form makes (or reuses) a ``Subscription`` for the commenter's
  address: a guest's typed email, or the signed-in account's email. A provider identity without
  an email address gets none. Comments that the guards put in spam or trash subscribe nobody.
- Double opt-in: nothing but the confirmation mail is ever sent to an address that has not
  confirmed. An account's address that allauth has verified counts as confirmed (it was
  confirmed by mail already). The confirmation link is signed (own salt), valid 7 days, and acts
  only on POST from the page it opens (mail scanners prefetch links). A pending subscription is
  sent at most one confirmation mail an hour, and an address at most a few a day, so a stranger
  typing someone's address cannot flood them.
- Every subscription mail carries RFC 8058 ``List-Unsubscribe`` / ``List-Unsubscribe-Post``
  headers and a visible link. The unsubscribe token is signed (own salt) over the subscription
  id and part of its secret: no email in it, no expiry (a one-click link must keep working),
  void once the secret is rotated.
- All mail goes through the durable outbox (``outbox.queue_mail``) with a ``dedupe_key``, so the
  same event never mails anyone twice. The confirmation mail (one address) is queued in the
  request. Mail to *all* subscribers of an event is not: the request's transaction only queues
  one ``fan_out_reply`` / ``fan_out_new_post`` task (a django-tasks-db row written in that same
  transaction, so a committed comment always has its task and a rolled-back one has none), and
  ``broadsheet worker`` renders and queues one mail per subscriber, committing every
  ``FAN_OUT_BATCH`` of them. A task re-checks at run time that the comment is still approved (the
  page still live and public); running it twice queues nothing twice (the dedupe keys
  ``reply:<comment>:<subscription>`` / ``post:<page>:<subscription>``). A task that fails (a
  locked database) queues itself again with backoff, a few times; one whose worker was killed
  is found by ``sweep_fan_outs`` (run with the outbox sweeper) and queued again.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from html import unescape

from django.conf import settings as django_settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone
from django_tasks import task

from . import mail, outbox, signals
from .models import Comment, OutboxMessage, Subscription

CONFIRM_SALT = "broadsheet.subscription.confirm"
UNSUBSCRIBE_SALT = "broadsheet.subscription.unsubscribe"
CONFIRM_MAX_AGE = timedelta(days=7)
SECRET_PART = 16  # how much of the secret a token carries (signed; the secret never leaves whole)
# A pending subscription gets one confirmation mail per this window; an address at most
# CONFIRMATIONS_PER_DAY of them, whatever it subscribes to.
CONFIRM_RESEND_AFTER = timedelta(hours=1)
CONFIRMATIONS_PER_DAY = 5

KIND_CONFIRM = "subscription_confirm"
KIND_REPLY = "subscription_reply"
KIND_POST = "subscription_post"

# Fan-out (in the worker): mails committed per transaction (short write locks on SQLite), tries
# of a failing task, and how long a task may stay "running" before the sweeper takes it for lost.
FAN_OUT_BATCH = 200
FAN_OUT_ATTEMPTS = 5
FAN_OUT_STALE = timedelta(minutes=15)
FAN_OUT_PATHS = (
    f"{__name__}.fan_out_reply",
    "broadsheet.publishing.subscription_hooks.fan_out_new_post",
)

logger = logging.getLogger(__name__)


class InvalidToken(Exception):
    """A link that was not made here, was altered, or no longer matches its subscription."""


class ExpiredToken(InvalidToken):
    """A confirmation link older than ``CONFIRM_MAX_AGE``."""


def normalise_email(email: str) -> str:
    return (email or "").strip().casefold()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


# --- tokens --------------------------------------------------------------------------------------


def _payload(subscription: Subscription) -> dict:
    return {"s": subscription.pk, "k": subscription.secret[:SECRET_PART]}


def confirm_token(subscription: Subscription) -> str:
    return signing.dumps(_payload(subscription), salt=CONFIRM_SALT, compress=True)


def unsubscribe_token(subscription: Subscription) -> str:
    return signing.dumps(_payload(subscription), salt=UNSUBSCRIBE_SALT, compress=True)


def _confirm_max_age() -> float:
    value = getattr(django_settings, "COMMENTS_SUBSCRIPTION_CONFIRM_MAX_AGE", CONFIRM_MAX_AGE)
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _subscription_for(payload) -> Subscription:
    if not isinstance(payload, dict):
        raise InvalidToken
    pk, part = payload.get("s"), payload.get("k")
    if not isinstance(pk, int) or not isinstance(part, str) or len(part) != SECRET_PART:
        raise InvalidToken
    subscription = Subscription.objects.filter(pk=pk).select_related("thread").first()
    if subscription is None or not secrets.compare_digest(subscription.secret[:SECRET_PART], part):
        raise InvalidToken
    return subscription


def read_confirm_token(token: str) -> Subscription:
    """The subscription a confirmation link is for; ExpiredToken or InvalidToken."""
    try:
        payload = signing.loads(token, salt=CONFIRM_SALT, max_age=_confirm_max_age())
    except signing.SignatureExpired as error:
        raise ExpiredToken from error
    except (signing.BadSignature, ValueError) as error:
        raise InvalidToken from error
    return _subscription_for(payload)


def read_unsubscribe_token(token: str) -> Subscription:
    """The subscription an unsubscribe link is for (no expiry); InvalidToken."""
    try:
        payload = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except (signing.BadSignature, ValueError) as error:
        raise InvalidToken from error
    return _subscription_for(payload)


def confirm_url(subscription: Subscription) -> str:
    return mail.absolute_url(
        reverse("comments:subscription_confirm", args=[confirm_token(subscription)])
    )


def unsubscribe_url(subscription: Subscription) -> str:
    return mail.absolute_url(
        reverse("comments:subscription_unsubscribe", args=[unsubscribe_token(subscription)])
    )


# --- state changes -------------------------------------------------------------------------------


def confirm(subscription: Subscription) -> bool:
    """Confirm a pending subscription; False when it was already confirmed or was cancelled."""
    updated = Subscription.objects.filter(
        pk=subscription.pk, confirmed_at__isnull=True, unsubscribed_at__isnull=True
    ).update(confirmed_at=timezone.now())
    subscription.refresh_from_db()
    return bool(updated)


def unsubscribe(subscription: Subscription) -> bool:
    """End exactly this subscription, and cancel its mail still waiting in the outbox. False
    when it had already ended."""
    now = timezone.now()
    with transaction.atomic():
        updated = Subscription.objects.filter(
            pk=subscription.pk, unsubscribed_at__isnull=True
        ).update(unsubscribed_at=now)
        OutboxMessage.objects.filter(
            status=OutboxMessage.Status.PENDING,
            kind__in=[KIND_REPLY, KIND_POST],
            dedupe_key__endswith=f":{subscription.pk}",
        ).update(status=OutboxMessage.Status.CANCELLED)
    subscription.refresh_from_db()
    return bool(updated)


def _verified_for(user, email: str) -> bool:
    """Is ``email`` an address allauth has verified for ``user``?"""
    if user is None or not email:
        return False
    try:
        from allauth.account.models import EmailAddress
    except ImportError:  # pragma: no cover — allauth is installed
        return False
    return EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()


def subscribe(*, email: str, kind: str, thread=None, user=None) -> Subscription | None:
    """Make (or reuse) the subscription of ``email`` and ask it to confirm, unless it has.

    Runs in the caller's transaction. A subscription ended by its owner starts again as pending
    (with a new secret, so its old links stay dead) and needs a new confirmation.
    """
    email = normalise_email(email)
    if not email:
        return None
    thread = thread if kind == Subscription.Kind.THREAD else None
    # An account is tied to a subscription only for an address it has proved is its own:
    # otherwise anyone could sign up with another person's address, subscribe, and then see
    # and manage that person's subscriptions on their own page.
    verified = _verified_for(user, email)
    owner = user if verified else None
    try:
        with transaction.atomic():
            subscription, created = Subscription.objects.get_or_create(
                email=email,
                kind=kind,
                thread=thread,
                defaults={"secret": new_secret(), "user": owner},
            )
    except IntegrityError:  # the same address subscribed at the same instant
        subscription = Subscription.objects.get(email=email, kind=kind, thread=thread)
    changed = []
    if subscription.unsubscribed_at is not None:
        subscription.unsubscribed_at = None
        subscription.confirmed_at = None
        subscription.secret = new_secret()
        changed += ["unsubscribed_at", "confirmed_at", "secret"]
    if owner is not None and subscription.user_id is None:
        subscription.user = owner
        changed.append("user")
    if subscription.confirmed_at is None and verified:
        subscription.confirmed_at = timezone.now()
        changed.append("confirmed_at")
    if changed:
        subscription.save(update_fields=sorted(set(changed)))
    if subscription.confirmed_at is None:
        queue_confirmation(subscription)
    return subscription


def queue_confirmation(subscription: Subscription) -> OutboxMessage | None:
    """Queue the double opt-in mail, unless this subscription was sent one within the hour or
    its address had its day's share."""
    now = timezone.now()
    sent = OutboxMessage.objects.filter(kind=KIND_CONFIRM, to=subscription.email).exclude(
        status=OutboxMessage.Status.CANCELLED
    )
    if sent.filter(
        dedupe_key__startswith=f"confirm:{subscription.pk}:",
        created_at__gte=now - CONFIRM_RESEND_AFTER,
    ).exists():
        return None
    if sent.filter(created_at__gte=now - timedelta(days=1)).count() >= CONFIRMATIONS_PER_DAY:
        return None
    context = {
        "subscription": subscription,
        "thread": subscription.thread,
        "thread_url": mail.absolute_url(subscription.thread.url) if subscription.thread else "",
        "confirm_url": confirm_url(subscription),
        "days": CONFIRM_MAX_AGE.days,
    }
    subject, text, html = render("comments/email/subscription_confirm", context)
    bucket = int(now.timestamp() // CONFIRM_RESEND_AFTER.total_seconds())
    return outbox.queue_mail(
        kind=KIND_CONFIRM,
        to=subscription.email,
        subject=subject,
        text=text,
        html=html,
        dedupe_key=f"confirm:{subscription.pk}:{subscription.secret[:8]}:{bucket}",
    )


# --- mail ---------------------------------------------------------------------------------------


def one_line(value: str) -> str:
    """A value fit for a header: one line, no control characters."""
    return mail.one_line(value)


def render(base: str, context: dict) -> tuple[str, str, str]:
    """(subject, text, html) from ``<base>_subject.txt``, ``<base>.txt`` and ``<base>.html``;
    the subject on one line."""
    return mail.render(base, context)


def unsubscribe_headers(url: str) -> dict[str, str]:
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def _active(kind: str):
    return Subscription.objects.filter(
        kind=kind, confirmed_at__isnull=False, unsubscribed_at__isnull=True
    )


def _in_batches(subscribers):
    """The subscriptions in pk order, ``FAN_OUT_BATCH`` at a time, each batch read (and then
    queued by the caller) in its own transaction: a long fan-out never holds the database."""
    last = 0
    while True:
        batch = list(subscribers.filter(pk__gt=last).order_by("pk")[:FAN_OUT_BATCH])
        if not batch:
            return
        yield batch
        last = batch[-1].pk


def notify_thread(comment: Comment) -> int:
    """Queue the new visible comment for its thread's subscribers, except its own author.
    Returns how many mails were queued."""
    if comment.status != Comment.Status.APPROVED or comment.is_ping:
        return 0
    author = normalise_email(comment.author_email)
    subscribers = _active(Subscription.Kind.THREAD).filter(thread_id=comment.thread_id)
    if comment.user_id:
        subscribers = subscribers.exclude(user_id=comment.user_id)
    thread = comment.thread
    context = {
        "comment": comment,
        # The comment through the site's one policy: no images, links shown as text.
        "comment_html": mail.comment_html_for_mail(comment),
        "comment_text": mail.comment_text_for_mail(comment),
        "comment_url": mail.absolute_url(comment.get_absolute_url()),
        "thread": thread,
        "title": one_line(thread.title or thread.url),
        "author_name": one_line(comment.author_name) or "Someone",
    }
    queued = 0
    for batch in _in_batches(subscribers):
        with transaction.atomic():
            for subscription in batch:
                if author and normalise_email(subscription.email) == author:
                    continue
                dedupe_key = f"reply:{comment.pk}:{subscription.pk}"
                queued += _queue_for(
                    subscription, KIND_REPLY, "subscription_reply", context, dedupe_key
                )
    return queued


def _queue_for(subscription, kind: str, template: str, context: dict, dedupe_key: str) -> bool:
    """One subscriber's mail, with its unsubscribe link and RFC 8058 headers; nothing when a
    re-run already queued it (not even rendered again)."""
    if OutboxMessage.objects.filter(dedupe_key=dedupe_key).exists():
        return False
    url = unsubscribe_url(subscription)
    subject, text, html = render(
        f"comments/email/{template}",
        {**context, "subscription": subscription, "unsubscribe_url": url},
    )
    message = outbox.queue_mail(
        kind=kind,
        to=subscription.email,
        subject=subject,
        text=text,
        html=html,
        headers=unsubscribe_headers(url),
        dedupe_key=dedupe_key,
    )
    return message is not None


def _page_path(page) -> str:
    """The page's address on its site (as the discussion thread keeps it)."""
    parts = page.get_url_parts()
    return (parts[2] if parts and parts[2] else None) or page.url_path


def notify_new_post(page) -> int:
    """Queue a newly published article for every "new posts" subscriber. Returns how many."""
    from broadsheet.core import html as html_policy

    standfirst = html_policy.excerpt(getattr(page, "standfirst", "") or "", 400)
    context = {
        "title": one_line(page.title),
        "standfirst": standfirst,
        "standfirst_text": unescape(str(standfirst)),
        "page_url": mail.absolute_url(_page_path(page)),
    }
    queued = 0
    for batch in _in_batches(_active(Subscription.Kind.POSTS)):
        with transaction.atomic():
            for subscription in batch:
                dedupe_key = f"post:{page.pk}:{subscription.pk}"
                queued += _queue_for(
                    subscription, KIND_POST, "subscription_post", context, dedupe_key
                )
    return queued


# --- fan-out tasks (run by `broadsheet worker`) ---------------------------------------------------


def run_fan_out(fan_out, pk: int, attempt: int, work) -> int:
    """Run ``work()``; when it fails, queue ``fan_out(pk)`` again with the outbox's backoff
    (up to ``FAN_OUT_ATTEMPTS`` tries) and let the error mark this task failed."""
    try:
        return work()
    except Exception:
        if attempt < FAN_OUT_ATTEMPTS:
            try:
                fan_out.using(run_after=timezone.now() + outbox.backoff(attempt)).enqueue(
                    pk, attempt=attempt + 1
                )
            except Exception:
                logger.exception("Could not queue %s(%s) again", fan_out.name, pk)
        raise


@task(backend="outbox", queue_name="mail")
def fan_out_reply(comment_pk: int, attempt: int = 1) -> int:
    """Queue a comment's mail to its thread's subscribers, if it is (still) approved. Returns
    how many mails were queued by this run."""
    comment = Comment.objects.select_related("thread").filter(pk=comment_pk).first()
    if comment is None:
        return 0
    return run_fan_out(fan_out_reply, comment_pk, attempt, lambda: notify_thread(comment))


def has_thread_subscribers(comment: Comment) -> bool:
    """Would ``queue_reply_fan_out`` queue a task for this comment? One query, for a visible
    comment only."""
    if comment.status != Comment.Status.APPROVED or comment.is_ping:
        return False
    return _active(Subscription.Kind.THREAD).filter(thread_id=comment.thread_id).exists()


def queue_reply_fan_out(comment: Comment, *, subscribers: bool | None = None) -> bool:
    """In the caller's transaction: queue ``fan_out_reply`` for a visible comment on a thread
    that has confirmed subscribers (``subscribers``: already looked up, before the
    transaction). The task row commits (or rolls back) with the comment. A subscriber
    confirmed between that look-up and the commit is not mailed about this comment, as one
    confirmed just after the commit would not be."""
    if comment.status != Comment.Status.APPROVED or comment.is_ping:
        return False
    if not (has_thread_subscribers(comment) if subscribers is None else subscribers):
        return False
    fan_out_reply.enqueue(comment.pk)
    return True


def sweep_fan_outs(*, stale_after: timedelta = FAN_OUT_STALE) -> int:
    """Queue again every fan-out task left "running" for longer than ``stale_after`` (its
    worker was killed: django-tasks-db never runs such a task again). Safe even if it was only
    slow: a second run queues nothing twice. Returns how many were queued again."""
    from django_tasks_db.models import DBTaskResult

    now = timezone.now()
    stuck = DBTaskResult.objects.filter(
        status="RUNNING",
        backend_name="outbox",
        task_path__in=FAN_OUT_PATHS,
        started_at__lt=now - stale_after,
    )
    requeued = 0
    for row in list(stuck[:1000]):
        with transaction.atomic():
            taken = DBTaskResult.objects.filter(pk=row.pk, status="RUNNING").update(
                status="FAILED",
                finished_at=now,
                exception_class_path="",
                traceback="The worker stopped while running this task; it was queued again.",
            )
            if taken:
                args_kwargs = row.args_kwargs or {}
                row.task.enqueue(*args_kwargs.get("args", []), **args_kwargs.get("kwargs", {}))
                requeued += 1
    if requeued:
        logger.info("Subscription fan-out sweep: %s task(s) queued again", requeued)
    return requeued


# --- receivers ----------------------------------------------------------------------------------


_SUBSCRIBERS = "_subscriptions_has_subscribers"


@receiver(signals.comment_posting, dispatch_uid="broadsheet.comments.subscriptions.posting")
def on_comment_posting(sender, comment, **kwargs):
    """Before the write transaction: does the thread have subscribers to tell?"""
    setattr(comment, _SUBSCRIBERS, has_thread_subscribers(comment))


@receiver(signals.comment_posted, dispatch_uid="broadsheet.comments.subscriptions.posted")
def on_comment_posted(
    sender, comment, settings=None, subscribe_thread=False, subscribe_posts=False, **kwargs
):
    if comment.status in (Comment.Status.APPROVED, Comment.Status.PENDING):
        email = comment.author_email
        user = comment.user if comment.user_id else None
        if subscribe_thread:
            subscribe(email=email, kind=Subscription.Kind.THREAD, thread=comment.thread, user=user)
        if subscribe_posts:
            subscribe(email=email, kind=Subscription.Kind.POSTS, user=user)
    queue_reply_fan_out(comment, subscribers=getattr(comment, _SUBSCRIBERS, None))


@receiver(signals.comment_moderated, dispatch_uid="broadsheet.comments.subscriptions.moderated")
def on_comment_moderated(sender, comment, old_status=None, new_status=None, **kwargs):
    if new_status == Comment.Status.APPROVED and old_status != Comment.Status.APPROVED:
        queue_reply_fan_out(comment)
