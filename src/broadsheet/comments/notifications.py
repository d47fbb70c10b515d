"""Who gets which email when a comment is posted or moderated (WordPress's "Email me
whenever…" settings), queued in the outbox in the same transaction.

- Moderators (active accounts with ``comments.moderate_comment`` and an address): when a
  comment is held, if ``notify_on_hold``, with three signed links (approve, spam, trash); on
  every other new comment (not spam or trash), if ``notify_on_post``.
- The article's authors (``COMMENTS_THREAD_AUTHORS``: ``thread -> list of addresses``): when a
  comment becomes visible, at posting or when a moderator approves it later, if
  ``notify_author``. Never to the comment's own author, nor twice to an address that already
  got the moderators' mail about it.
- Each mail has a ``dedupe_key`` (``held:<comment>:<user>``, ``posted:<comment>:<user>``,
  ``author:<comment>:<address>``): the same event never mails anyone twice, whatever happens
  to the comment afterwards.
- Subscribers' reply notifications are comments/subscriptions.py's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.dispatch import receiver
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from broadsheet.core.html import safe_url

from . import mail, moderation_links, outbox, signals
from .conf import settings_for
from .models import Comment

logger = logging.getLogger(__name__)

KIND_HELD = "moderator_held"
KIND_POSTED = "moderator_posted"
KIND_AUTHOR = "author_comment"


def moderators():
    """Active accounts that may moderate comments and have an address (superusers too)."""
    users = get_user_model().objects.with_perm(
        "comments.moderate_comment",
        is_active=True,
        include_superusers=True,
        backend="django.contrib.auth.backends.ModelBackend",
    )
    return users.exclude(email="").order_by("pk")


def author_emails(thread) -> list[str]:
    """The article's authors' addresses, through ``COMMENTS_THREAD_AUTHORS``. A missing or
    failing resolver means no author mail, never a failed comment."""
    path = getattr(django_settings, "COMMENTS_THREAD_AUTHORS", "")
    if not path:
        return []
    try:
        emails = import_string(path)(thread)
    except Exception:
        logger.exception("COMMENTS_THREAD_AUTHORS (%s) failed; no author mail", path)
        return []
    return [e.strip() for e in emails or [] if isinstance(e, str) and "@" in e]


def queue_url() -> str:
    try:
        return mail.absolute_url(reverse("comment_moderation:queue"))
    except NoReverseMatch:
        return mail.absolute_url("/admin/")


def _context(comment: Comment) -> dict:
    thread = comment.thread
    return {
        "comment": comment,
        "title": mail.one_line(thread.title or thread.url),
        "article_url": mail.absolute_url(thread.url),
        "comment_url": mail.absolute_url(comment.get_absolute_url()),
        "author_name": mail.one_line(comment.author_name),
        "author_email": mail.one_line(comment.author_email),
        "author_url": safe_url(comment.author_url),
        "ip": comment.ip_address or "",
        "comment_html": mail.comment_html_for_mail(comment),
        "comment_text": mail.comment_text_for_mail(comment),
        "reasons": [mail.one_line(line) for line in comment.reason_lines],
        "queue_url": queue_url(),
        "show_private": True,
    }


def _own_addresses(comment: Comment) -> set[str]:
    own = {comment.author_email.casefold()} if comment.author_email else set()
    if comment.user_id and comment.user.email:
        own.add(comment.user.email.casefold())
    return own


def notify_moderators(
    comment: Comment,
    *,
    held: bool,
    again: str = "",
    recipients: list | None = None,
    pending_count: int | None = None,
) -> set[str]:
    """Queue the moderators' mail about a new comment; returns the addresses mailed. ``again``
    names a later event about the same comment (held again after its author's edit), so its
    dedupe key differs from the first mail's. ``recipients`` and ``pending_count``: read
    before the transaction (``plan_new_comment``), else read here."""
    base = {**_context(comment)}
    kind = KIND_HELD if held else KIND_POSTED
    if held:
        base["pending_count"] = (
            pending_count if pending_count is not None else Comment.objects.pending().count()
        )
    mailed = set()
    for user in moderators() if recipients is None else recipients:
        if comment.user_id == user.pk:
            continue  # a moderator's own comment
        context = {**base, "moderator": user}
        if held:
            context["links"] = moderation_links.links_for(comment, user)
        elif comment.status == Comment.Status.APPROVED:
            links = moderation_links.links_for(comment, user)
            context["links"] = {"spam": links["spam"], "trash": links["trash"]}
        subject, text, html = mail.render(f"comments/email/{kind}", context)
        prefix = "held" if held else "posted"
        outbox.queue_mail(
            kind=kind,
            to=user.email,
            subject=subject,
            text=text,
            html=html,
            dedupe_key=f"{prefix}:{comment.pk}:{user.pk}" + (f":{again}" if again else ""),
        )
        mailed.add(user.email.casefold())
    return mailed


def notify_authors(
    comment: Comment, *, skip: set[str] = frozenset(), emails: list[str] | None = None
) -> int:
    """Queue "a new comment on your article" for the article's authors (``emails``: their
    addresses, when already read)."""
    emails = author_emails(comment.thread) if emails is None else emails
    if not emails:
        return 0
    own = _own_addresses(comment)
    context = {**_context(comment), "show_private": False}
    queued = 0
    for email in emails:
        key = email.casefold()
        if key in own or key in skip:
            continue
        subject, text, html = mail.render(f"comments/email/{KIND_AUTHOR}", context)
        if outbox.queue_mail(
            kind=KIND_AUTHOR,
            to=email,
            subject=subject,
            text=text,
            html=html,
            dedupe_key=f"author:{comment.pk}:{key}"[:200],
        ):
            queued += 1
    return queued


@dataclass(frozen=True)
class Plan:
    """Who is to hear of a new comment, read before its write transaction."""

    moderators: list | None = None  # None: no moderators' mail
    held: bool = False
    pending_count: int | None = None  # the queue's length with this comment in it
    author_emails: list[str] | None = None  # None: no authors' mail


_PLAN = "_notifications_plan"


def plan_new_comment(comment: Comment, cfg) -> Plan:
    """The reads ``comment_posted`` needs, for a comment not stored yet: the moderators (and
    the queue's length) when they are to be mailed, the article's authors when they are.
    A comment held only until the worker has asked Akismet is news for no one yet: what it
    becomes then is told as a new comment would have been (``comment_moderated``)."""
    from .akismet import is_checking

    reasons = comment.moderation_reasons or []
    if reasons and all(is_checking(reason) for reason in reasons):
        return Plan()
    held = comment.status == Comment.Status.PENDING
    to_moderators = (
        (cfg.notify_on_hold or cfg.notify_on_post)
        if held
        else comment.status == Comment.Status.APPROVED and cfg.notify_on_post
    )
    to_authors = comment.status == Comment.Status.APPROVED and cfg.notify_author
    return Plan(
        moderators=list(moderators()) if to_moderators else None,
        held=held and cfg.notify_on_hold,
        # The new comment is not stored yet: the queue will have one more.
        pending_count=(
            Comment.objects.pending().count() + (0 if comment.pk else 1)
            if held and cfg.notify_on_hold
            else None
        ),
        author_emails=author_emails(comment.thread) if to_authors else None,
    )


@receiver(signals.comment_posting, dispatch_uid="notifications.comment_posting")
def comment_posting(sender, *, comment, settings=None, **kwargs):
    setattr(comment, _PLAN, plan_new_comment(comment, settings or settings_for(comment.thread)))


@receiver(signals.comment_posted, dispatch_uid="notifications.comment_posted")
def comment_posted(sender, *, comment, settings=None, **kwargs):
    plan = getattr(comment, _PLAN, None)
    if plan is None:  # stored without comment_posting (another caller): read now
        plan = plan_new_comment(comment, settings or settings_for(comment.thread))
    mailed: set[str] = set()
    if plan.moderators is not None:
        mailed = notify_moderators(
            comment,
            held=plan.held,
            recipients=plan.moderators,
            pending_count=plan.pending_count,
        )
    if plan.author_emails is not None:
        notify_authors(comment, skip=mailed, emails=plan.author_emails)


@receiver(signals.comment_moderated, dispatch_uid="notifications.comment_moderated")
def comment_moderated(sender, *, comment, old_status, new_status, moderator=None, **kwargs):
    if kwargs.get("via") == "akismet":
        # Akismet has answered for a new comment: the mail its post would have sent now.
        comment_posted(sender, comment=comment)
        return
    if moderator is None and new_status == Comment.Status.PENDING:
        # Its author's edit sent it back to the queue (services.edit_own_comment): held again.
        if settings_for(comment.thread).notify_on_hold:
            edited = comment.edited_at.strftime("%Y%m%dT%H%M%S%f") if comment.edited_at else ""
            notify_moderators(comment, held=True, again=f"edit-{edited}")
        return
    if new_status != Comment.Status.APPROVED or old_status == Comment.Status.APPROVED:
        return
    cfg = settings_for(comment.thread)
    if cfg.notify_author:
        skip = {moderator.email.casefold()} if moderator is not None and moderator.email else set()
        notify_authors(comment, skip=skip)
