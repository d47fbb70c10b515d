"""Write rules for the discussion. Views, the admin, importers and commands all call these."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from .identity import Identity
from .models import Comment, Thread
from .moderation import Submission, get_policy


class CommentRejected(Exception):
    """A rule refused the comment; ``field`` names the form field the message belongs next to."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


@dataclass(frozen=True)
class PostResult:
    comment: Comment
    created: bool  # False when the same submission had already been stored


def sync_thread(
    *, url: str, page_id: int | None = None, title: str = "", is_open: bool = True
) -> Thread:
    """Create or update the thread of a page (or of any canonical URL), keyed by page id when
    there is one so the thread follows a page whose address changes."""
    with transaction.atomic():
        thread = None
        if page_id is not None:
            thread = Thread.objects.filter(page_id=page_id).first()
        if thread is None:
            thread = Thread.objects.filter(url=url).first()
        if thread is None:
            try:
                with transaction.atomic():
                    return Thread.objects.create(
                        url=url, page_id=page_id, title=title, is_open=is_open
                    )
            except IntegrityError:  # created at the same moment by another request
                thread = Thread.objects.get(page_id=page_id) if page_id else None
                thread = thread or Thread.objects.get(url=url)
        changed = {"url": url, "title": title, "is_open": is_open}
        if page_id is not None:
            changed["page_id"] = page_id
        if any(getattr(thread, k) != v for k, v in changed.items()):
            for key, value in changed.items():
                setattr(thread, key, value)
            thread.save(update_fields=list(changed))
        return thread


def stored_ip(ip: str | None) -> str | None:
    """Keep the commenter's IP as the ``COMMENTS_STORE_IP`` setting says: full, truncated, none."""
    mode = settings.COMMENTS_STORE_IP
    if not ip or mode == "none":
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if mode == "truncated":
        prefix = 24 if address.version == 4 else 48
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)
    return str(address)


def submission_fingerprint(
    *, submission_key: str, browser_key: str, thread: Thread, parent_id: int | None, text: str
) -> str | None:
    """One key per form sent from one browser: the same form sent twice (double click, back
    and resubmit, a retry) maps to the same comment. Another browser replaying the key gets
    its own comment. No form key, no de-duplication."""
    if not submission_key:
        return None
    material = "\x1f".join(
        [submission_key, browser_key, str(thread.pk), str(parent_id or ""), text]
    )
    return hashlib.sha256(material.encode()).hexdigest()


def resolve_parent(*, thread: Thread, parent_id: int | None) -> Comment | None:
    """The comment a reply attaches to. Replies may only go to visible comments of the same
    thread; a reply at the deepest level attaches to its parent's level (like WordPress)."""
    if not parent_id:
        return None
    parent = Comment.objects.filter(pk=parent_id).select_related("parent").first()
    if parent is None or parent.thread_id != thread.pk:
        raise CommentRejected(
            "The comment you are replying to does not exist on this article.", field="parent"
        )
    if parent.status != Comment.Status.APPROVED:
        raise CommentRejected(
            "The comment you are replying to is not published, so it cannot be answered.",
            field="parent",
        )
    # Never onto an ancestor readers cannot see (held, spam or trash since).
    while (
        parent.depth >= settings.COMMENTS_MAX_DEPTH
        and parent.parent is not None
        and parent.parent.status == Comment.Status.APPROVED
    ):
        parent = parent.parent
    return parent


def post_comment(
    *,
    thread: Thread,
    text: str,
    author_name: str,
    author_email: str,
    author_url: str = "",
    parent_id: int | None = None,
    user=None,
    browser_key: str = "",
    submission_key: str | None = None,
    ip: str | None = None,
    user_agent: str = "",
    is_moderator: bool = False,
    identity: Identity | None = None,
) -> PostResult:
    """Store a reader's comment with the status the moderation policy gives it.

    Refuses comments on closed threads and replies to missing, unpublished or foreign comments
    (``CommentRejected``). The same ``submission_key`` twice returns the first comment.
    """
    if submission_key:
        existing = Comment.objects.filter(submission_key=submission_key).first()
        if existing is not None:
            return PostResult(existing, created=False)
    if not thread.is_open:
        raise CommentRejected("Comments are closed on this article.", status=403)
    parent = resolve_parent(thread=thread, parent_id=parent_id)
    if identity is None and author_email and email_has_account(author_email):
        raise CommentRejected(
            "That email address belongs to an account on this site. Log in to comment with it "
            "(use the first icon above), or use another address.",
            field="email",
            status=400,
        )
    comment = Comment(
        thread=thread,
        parent=parent,
        author_name=author_name,
        author_email=author_email,
        author_url=author_url,
        text=text,
        user=user if user is not None and user.is_authenticated else None,
        browser_key=browser_key,
        submission_key=submission_key or None,
        ip_address=stored_ip(ip),
        user_agent=user_agent[:500],
        created_at=timezone.now(),
        identified_by=identity.kind if identity else Identity.GUEST,
        identity_provider=identity.provider if identity else "",
        identity_provider_name=identity.provider_name if identity else "",
        author_avatar_url=identity.avatar_url if identity else "",
    )
    status, reasons = get_policy().initial_status(
        Submission(comment=comment, is_moderator=is_moderator)
    )
    comment.status = status
    comment.moderation_reasons = reasons
    try:
        with transaction.atomic():
            comment.save()
    except IntegrityError:
        if submission_key:
            existing = Comment.objects.filter(submission_key=submission_key).first()
            if existing is not None:
                return PostResult(existing, created=False)
        raise
    return PostResult(comment, created=True)


def email_has_account(email: str) -> bool:
    """A guest may not comment as a registered reader (WordPress.com refuses this too)."""
    return get_user_model().objects.filter(email__iexact=email.strip()).exists()


MODERATION_ACTIONS = {
    "approve": Comment.Status.APPROVED,
    "unapprove": Comment.Status.PENDING,
    "spam": Comment.Status.SPAM,
    "trash": Comment.Status.TRASH,
}


def moderate(*, comment_ids: Iterable[int], action: str, moderator) -> int:
    """Set the status of the given comments (bulk approve / unapprove / spam / trash) or delete
    them for ever. Only people with the ``comments.moderate_comment`` permission may."""
    if not moderator.has_perm("comments.moderate_comment"):
        raise PermissionError("Only moderators may moderate comments.")
    ids = [int(pk) for pk in comment_ids]
    comments = Comment.objects.filter(pk__in=ids)
    with transaction.atomic():
        if action == "delete":
            return _delete_keeping_replies(comments)
        if action not in MODERATION_ACTIONS:
            raise ValueError(f"Unknown moderation action: {action}")
        status = MODERATION_ACTIONS[action]
        return comments.update(status=status, updated_at=timezone.now())


def _delete_keeping_replies(comments) -> int:
    """Delete comments for ever; their replies move up to the nearest surviving ancestor (as
    WordPress does) instead of disappearing with them."""
    doomed = dict(comments.values_list("pk", "parent_id"))
    threads = set(comments.values_list("thread_id", flat=True))

    def surviving(parent_id: int | None) -> int | None:
        while parent_id in doomed:
            parent_id = doomed[parent_id]
        return parent_id

    orphans = list(Comment.objects.filter(parent_id__in=doomed).exclude(pk__in=doomed))
    for reply in orphans:
        reply.parent_id = surviving(reply.parent_id)
    Comment.objects.bulk_update(orphans, ["parent"])
    _, per_model = Comment.objects.filter(pk__in=doomed).delete()
    _recompute_depths(threads)
    return per_model.get(Comment._meta.label, 0)


def _recompute_depths(thread_ids: Iterable[int]) -> None:
    rows = list(Comment.objects.filter(thread_id__in=thread_ids).only("pk", "parent_id", "depth"))
    parent_of = {c.pk: c.parent_id for c in rows}

    def depth(pk: int) -> int:
        level, parent = 1, parent_of[pk]
        while parent is not None:
            level, parent = level + 1, parent_of.get(parent)
        return level

    changed = []
    for comment in rows:
        level = depth(comment.pk)
        if comment.depth != level:
            comment.depth = level
            changed.append(comment)
    Comment.objects.bulk_update(changed, ["depth"])


def edit_comment(
    *, comment: Comment, moderator, text: str, author_name: str, author_url: str
) -> Comment:
    """A moderator corrects a comment's text, name or website."""
    if not moderator.has_perm("comments.moderate_comment"):
        raise PermissionError("Only moderators may edit comments.")
    comment.text = text
    comment.author_name = author_name
    comment.author_url = author_url
    comment.save(update_fields=["text", "author_name", "author_url", "updated_at"])
    return comment
