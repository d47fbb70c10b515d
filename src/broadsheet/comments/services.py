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

from . import signals
from .conf import DiscussionSettings, settings_for
from .identity import Identity
from .models import Comment, CommentEvent, Thread
from .moderation import Submission, get_policy


class CommentRejected(Exception):
    """A rule refused the comment; ``field`` names the form field the message belongs next to."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int = 400,
        retry_after: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.retry_after = retry_after  # seconds, for a 429


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


def resolve_parent(
    *, thread: Thread, parent_id: int | None, cfg: DiscussionSettings | None = None
) -> Comment | None:
    """The comment a reply attaches to. Replies may only go to visible comments of the same
    thread; a reply at the deepest level attaches to its parent's level (like WordPress), and
    with threading off every comment is top-level."""
    if not parent_id:
        return None
    cfg = cfg or settings_for(thread)
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
    if not cfg.threaded:
        return None
    # Never onto an ancestor readers cannot see (held, spam or trash since).
    while (
        parent.depth >= cfg.effective_depth
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
    honeypot: str = "",
    form_token: str | None = None,
    referrer: str = "",
    subscribe_thread: bool = False,
    subscribe_posts: bool = False,
) -> PostResult:
    """Store a reader's comment with the status the moderation policy's guards give it.

    A guard that refuses it (closed thread, flood, duplicate, rate limit…) raises
    ``CommentRejected`` and nothing is stored; so do replies to missing, unpublished or foreign
    comments. The same ``submission_key`` twice returns the first comment. The comment, its
    history line and the mail it causes (``comment_posted`` receivers) are written in one
    transaction.
    """
    if submission_key:
        existing = Comment.objects.filter(submission_key=submission_key).first()
        if existing is not None:
            return PostResult(existing, created=False)
    cfg = settings_for(thread)
    parent = resolve_parent(thread=thread, parent_id=parent_id, cfg=cfg)
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
        author_name=author_name.strip() or ("" if identity else "Anonymous"),
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
    submission = Submission(
        comment=comment,
        settings=cfg,
        is_moderator=is_moderator,
        ip=ip,
        honeypot=honeypot,
        form_token=form_token,
        referrer=referrer,
        permalink=thread.url,
        has_identity=identity is not None or comment.user is not None,
    )
    if not author_name.strip() and not submission.has_identity:
        comment.author_name = ""  # the guard says so if a name is required
    decision = get_policy().evaluate(submission)
    if decision.refusal is not None:
        refusal = decision.refusal
        raise CommentRejected(
            refusal.detail,
            field=refusal.field,
            status=refusal.status,
            retry_after=refusal.retry_after,
        )
    comment.author_name = comment.author_name or "Anonymous"
    comment.status = decision.status
    comment.moderation_reasons = decision.reasons
    try:
        with transaction.atomic():
            comment.save()
            CommentEvent.objects.create(
                comment=comment,
                at=comment.created_at,
                actor=comment.user,
                actor_kind="moderator" if is_moderator else "author",
                action=CommentEvent.Action.POSTED,
                after={"status": comment.status},
                reasons=decision.reasons,
            )
            signals.comment_posted.send(
                Comment,
                comment=comment,
                settings=cfg,
                subscribe_thread=subscribe_thread,
                subscribe_posts=subscribe_posts,
            )
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


def moderate(*, comment_ids: Iterable[int], action: str, moderator, via: str = "") -> int:
    """Set the status of the given comments (bulk approve / unapprove / spam / trash) or delete
    them for ever. Only people with the ``comments.moderate_comment`` permission may.

    Each changed comment gets a history line (who, when, from what to what) and a
    ``comment_moderated`` signal, in the same transaction: the classifier learns from it,
    Akismet hears about its mistakes, and the mail it causes is queued.
    """
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
        changed = 0
        for comment in comments.select_for_update().select_related("thread"):
            if comment.status == status:
                continue
            old = comment.status
            comment.status = status
            comment.save(update_fields=["status", "updated_at"])
            CommentEvent.objects.create(
                comment=comment,
                actor=moderator,
                actor_kind="moderator",
                action=action,
                before={"status": old},
                after={"status": status, **({"via": via} if via else {})},
            )
            signals.comment_moderated.send(
                Comment, comment=comment, old_status=old, new_status=status, moderator=moderator
            )
            changed += 1
        return changed


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
    recompute_tree(threads)
    return per_model.get(Comment._meta.label, 0)


def recompute_tree(thread_ids: Iterable[int]) -> None:
    """Depth and root of every comment of these threads, from the parent links (after a
    delete moved replies up, or a bulk import that inserted rows without ``save()``)."""
    rows = list(
        Comment.objects.filter(thread_id__in=thread_ids).only("pk", "parent_id", "depth", "root")
    )
    parent_of = {c.pk: c.parent_id for c in rows}

    def place(pk: int) -> tuple[int, int]:
        level, node = 1, pk
        while parent_of.get(node) is not None:
            level, node = level + 1, parent_of[node]
        return level, node

    changed = []
    for comment in rows:
        level, root = place(comment.pk)
        if comment.depth != level or comment.root_id != root:
            comment.depth, comment.root_id = level, root
            changed.append(comment)
    Comment.objects.bulk_update(changed, ["depth", "root"], batch_size=500)


def edit_comment(
    *, comment: Comment, moderator, text: str, author_name: str, author_url: str
) -> Comment:
    """A moderator corrects a comment's text, name or website; the history keeps what it was."""
    if not moderator.has_perm("comments.moderate_comment"):
        raise PermissionError("Only moderators may edit comments.")
    return _record_edit(
        comment,
        actor=moderator,
        actor_kind="moderator",
        changes={"text": text, "author_name": author_name, "author_url": author_url},
    )


def _record_edit(comment: Comment, *, actor, actor_kind: str, changes: dict) -> Comment:
    before = {k: getattr(comment, k) for k, v in changes.items() if getattr(comment, k) != v}
    if not before:
        return comment
    with transaction.atomic():
        for key, value in changes.items():
            setattr(comment, key, value)
        comment.edited_at = timezone.now()
        comment.save(update_fields=[*changes, "edited_at", "updated_at"])
        CommentEvent.objects.create(
            comment=comment,
            actor=actor if actor is not None and actor.is_authenticated else None,
            actor_kind=actor_kind,
            action=CommentEvent.Action.EDITED,
            before=before,
            after={k: changes[k] for k in before},
        )
        comment.__dict__.pop("html", None)
    return comment
