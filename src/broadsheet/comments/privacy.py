"""A person's data, on request: everything stored for an email address (export), and its
erasure. The comments stay (a discussion with holes in it helps nobody) but lose whatever
says who wrote them."""

from __future__ import annotations

import re

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import Block, Comment, CommentEvent, OutboxMessage, Subscription

ANONYMOUS = "Anonymous"
COMMENT_FIELDS = (
    "id",
    "thread_id",
    "parent_id",
    "status",
    "kind",
    "author_name",
    "author_email",
    "author_url",
    "author_avatar_url",
    "text",
    "user_id",
    "identified_by",
    "identity_provider",
    "ip_address",
    "user_agent",
    "browser_key",
    "created_at",
    "edited_at",
    "updated_at",
)
# What erasure blanks (and what its history line must not repeat).
PERSONAL_FIELDS = {
    "author_name": ANONYMOUS,
    "author_email": "",
    "author_url": "",
    "author_avatar_url": "",
    "ip_address": None,
    "user_agent": "",
    "browser_key": "",
}


ERASED = "[erased]"
# The mail written about a comment (its dedupe keys, "<prefix>:<comment id>:…"): the moderators'
# "held" and "posted" mail and the article author's (notifications.py), and subscribers' "new
# reply" mail (subscriptions.py). Their text carries the comment's name, email, website and IP.
MAIL_ABOUT_COMMENT = ("held", "posted", "author", "reply")
_CHUNK = 100  # comments per query for the mail about them (400 LIKEs, under SQLite's limits)
_EMAILISH = re.compile(r"[^\s@“”\"'<>(),;]+@[^\s@“”\"'<>(),;]+")


def normalise(email: str) -> str:
    return (email or "").strip()


def _comments(email: str):
    """Comments typed with this address, and those of the account that has it."""
    return Comment.objects.filter(Q(author_email__iexact=email) | Q(user__email__iexact=email))


def _subscriptions(email: str):
    return Subscription.objects.filter(Q(email__iexact=email) | Q(user__email__iexact=email))


def _json(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def export_personal_data(email: str) -> dict:
    """Everything stored for this address, as a JSON-ready dict: comments (with IP and user
    agent), the history of those comments, subscriptions, mail sent or queued to it, blocks."""
    email = normalise(email)
    comments = list(_comments(email).select_related("thread").order_by("created_at", "id"))
    data = {
        "email": email,
        "exported_at": timezone.now().isoformat(),
        "comments": [
            {
                **{name: _json(getattr(c, name)) for name in COMMENT_FIELDS},
                "article": c.thread.title,
                "article_url": c.thread.url,
                "moderation_reasons": c.moderation_reasons,
            }
            for c in comments
        ],
        "comment_history": [
            {
                "comment_id": e.comment_id,
                "at": e.at.isoformat(),
                "action": e.action,
                "actor_kind": e.actor_kind,
                "before": e.before,
                "after": e.after,
            }
            for e in CommentEvent.objects.filter(comment__in=comments).order_by("at", "id")
        ],
        "subscriptions": [
            {
                "id": s.pk,
                "email": s.email,
                "kind": s.kind,
                "thread_id": s.thread_id,
                "article": s.thread.title if s.thread else None,
                "created_at": _json(s.created_at),
                "confirmed_at": _json(s.confirmed_at),
                "unsubscribed_at": _json(s.unsubscribed_at),
            }
            for s in _subscriptions(email).select_related("thread")
        ],
        "mail": [
            {
                "id": m.pk,
                "kind": m.kind,
                "to": m.to,
                "subject": m.subject,
                "status": m.status,
                "created_at": _json(m.created_at),
                "sent_at": _json(m.sent_at),
            }
            for m in OutboxMessage.objects.filter(to__iexact=email)
        ],
        "blocks": [
            {
                "id": b.pk,
                "kind": b.kind,
                "value": b.value,
                "note": b.note,
                "created_at": _json(b.created_at),
            }
            for b in Block.objects.filter(kind=Block.Kind.EMAIL, value=email.casefold())
        ],
    }
    return data


def _mail(email: str, comment_ids: list[int]):
    """Mail to this address, and mail about these comments (to moderators, the article's
    authors, subscribers): one queryset per 100 comments."""
    yield OutboxMessage.objects.filter(to__iexact=email)
    for i in range(0, len(comment_ids), _CHUNK):
        about = Q()
        for pk in comment_ids[i : i + _CHUNK]:
            for prefix in MAIL_ABOUT_COMMENT:
                about |= Q(dedupe_key__startswith=f"{prefix}:{pk}:")
        yield OutboxMessage.objects.filter(about).exclude(to__iexact=email)


WAITING = (OutboxMessage.Status.PENDING, OutboxMessage.Status.FAILED)


def summary(email: str) -> dict[str, int]:
    """What erasing would touch, for the confirmation page."""
    email = normalise(email)
    ids = list(_comments(email).values_list("pk", flat=True))
    return {
        "comments": len(ids),
        "subscriptions": _subscriptions(email).count(),
        "pending_mail": sum(m.filter(status__in=WAITING).count() for m in _mail(email, ids)),
    }


def erase_personal_data(email: str, *, moderator) -> dict[str, int]:
    """Anonymise this address's comments (the text stays; name → "Anonymous"; email, website,
    avatar, IP, user agent and browser key blanked), delete its subscriptions and cancel mail
    still waiting to go to it or about those comments (and blank the body of every such mail,
    sent or not: it quotes the name, address and IP). One "erased" history line per comment,
    without the data; the reasons a guard gave ("blocked email address …") lose the address."""
    if not moderator.has_perm("comments.moderate_comment"):
        raise PermissionError("Only moderators may erase personal data.")
    email = normalise(email)
    if not email:
        return {"comments": 0, "subscriptions": 0, "cancelled_mail": 0}
    with transaction.atomic():
        comments = list(
            _comments(email).select_related("user").select_for_update(of=("self",)).order_by("pk")
        )
        secrets = _secrets_of(email, comments)
        for comment in comments:
            for name, value in PERSONAL_FIELDS.items():
                setattr(comment, name, value)
            comment.user = None  # no longer traceable to the account either
            comment.moderation_reasons = _scrub_reasons(comment.moderation_reasons, secrets)
            comment.save(
                update_fields=[*PERSONAL_FIELDS, "user", "moderation_reasons", "updated_at"]
            )
        CommentEvent.objects.bulk_create(
            [
                CommentEvent(
                    comment=comment,
                    actor=moderator,
                    actor_kind="moderator",
                    action=CommentEvent.Action.ERASED,
                    after={"erased": sorted(PERSONAL_FIELDS)},
                )
                for comment in comments
            ]
        )
        # Earlier history lines of these comments may hold the old name or website.
        for event in CommentEvent.objects.filter(comment__in=comments).exclude(
            action=CommentEvent.Action.ERASED
        ):
            scrubbed = [
                _scrub(event.before),
                _scrub(event.after),
                _scrub_reasons(event.reasons, secrets),
            ]
            if scrubbed != [event.before, event.after, event.reasons]:
                event.before, event.after, event.reasons = scrubbed
                event.save(update_fields=["before", "after", "reasons"])
        subscriptions, _ = _subscriptions(email).delete()
        cancelled = 0
        for mail in _mail(email, [c.pk for c in comments]):
            cancelled += mail.filter(status__in=WAITING).update(
                status=OutboxMessage.Status.CANCELLED, last_error="cancelled: data erased"
            )
            mail.update(text=ERASED, html=ERASED)
    return {"comments": len(comments), "subscriptions": subscriptions, "cancelled_mail": cancelled}


def _secrets_of(email: str, comments: list[Comment]) -> list[str]:
    """What identifies the person in free text: their addresses and IP addresses."""
    found = {email.casefold()}
    for comment in comments:
        found.add(comment.author_email.casefold())
        if comment.user is not None and comment.user.email:
            found.add(comment.user.email.casefold())
        if comment.ip_address:
            found.add(str(comment.ip_address).casefold())
    return sorted((s for s in found if s), key=len, reverse=True)


def _scrub_text(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = re.sub(re.escape(secret), ERASED, text, flags=re.IGNORECASE)
    return _EMAILISH.sub(ERASED, text)


def _scrub_reasons(reasons, secrets: list[str]):
    """The guards' reasons without the person's address or IP ("blocked email address …")."""
    if not isinstance(reasons, list):
        return reasons
    return [
        {**r, "detail": _scrub_text(r["detail"], secrets)}
        if isinstance(r, dict) and isinstance(r.get("detail"), str)
        else r
        for r in reasons
    ]


def _scrub(values: dict) -> dict:
    if not isinstance(values, dict):
        return values
    return {
        key: (PERSONAL_FIELDS[key] if key in PERSONAL_FIELDS else value)
        for key, value in values.items()
    }
