"""Write rules for the discussion. Views, the admin, importers and commands all call these."""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
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
    allow_closed: bool = False,
) -> PostResult:
    """Store a reader's comment with the status the moderation policy's guards give it.

    A guard that refuses it (closed thread, flood, duplicate, rate limit…) raises
    ``CommentRejected`` and nothing is stored; so do replies to missing, unpublished or foreign
    comments. The same ``submission_key`` twice returns the first comment. The comment, its
    history line and the mail it causes (``comment_posted`` receivers) are written in one
    transaction. ``allow_closed`` (moderators only: a reply from the moderation queue) lets a
    comment onto a thread whose comments are closed.
    """
    if submission_key:
        existing = Comment.objects.filter(submission_key=submission_key).first()
        if existing is not None:
            return PostResult(existing, created=False)
    cfg = settings_for(thread)
    parent = resolve_parent(thread=thread, parent_id=parent_id, cfg=cfg)
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
        allow_closed=allow_closed and is_moderator,
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
    # After the guards, so the rate limits bound how many addresses one client can try.
    if identity is None and author_email and email_has_account(author_email):
        raise CommentRejected(
            "That email address belongs to an account on this site. Log in to comment with it "
            "(use the first icon above), or use another address.",
            field="email",
            status=400,
        )
    comment.author_name = comment.author_name or "Anonymous"
    comment.status = decision.status
    comment.moderation_reasons = decision.reasons
    # Every read is done by now (the receivers of comment_posting do theirs too): the
    # transaction below only writes, so on SQLite the write lock is held as briefly as can be.
    signals.comment_posting.send(
        Comment,
        comment=comment,
        settings=cfg,
        subscribe_thread=subscribe_thread,
        subscribe_posts=subscribe_posts,
    )
    try:
        with one_writer(), transaction.atomic():
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


_writer = threading.Lock()


@contextmanager
def one_writer() -> Iterator[None]:
    """On SQLite, one write transaction at a time per process, queued on a lock that wakes the
    next thread the moment it is free. SQLite itself makes a second writer sleep and poll (its
    busy handler waits 1, 2, 5, 10… ms between tries), which adds those sleeps to every post
    under load. Not taken inside an outer transaction, which may hold the database's write lock
    already (a moderator's reply from the queue): waiting here while holding it could make a
    thread that holds this lock wait on SQLite for its busy timeout."""
    connection = transaction.get_connection()
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    with _writer:
        yield


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
        # Rows locked in one order (two bulk actions never wait on each other in a circle),
        # and only the comments: not their threads, which every new comment reads.
        rows = comments.select_for_update(of=("self",)).select_related("thread").order_by("pk")
        for comment in rows:
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
    if orphans:
        signals.replies_moved.send(Comment, thread_ids={reply.thread_id for reply in orphans})
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
    from . import classifier

    before = {k: getattr(comment, k) for k, v in changes.items() if getattr(comment, k) != v}
    if not before:
        return comment
    # What the classifier learnt from this comment follows its new words when a moderator
    # wrote them (their decision stands for the text they corrected). An author's new words
    # were judged by nobody: what was learnt from the old ones is taken back, and nothing is
    # learnt from the new ones until a moderator decides again (else a spammer could edit an
    # approved comment into spam and have it learnt as "approved").
    words_changed = "text" in before or "author_url" in before
    relearn = words_changed and actor_kind == "moderator"
    with transaction.atomic(), classifier.relearning(comment) if relearn else nullcontext():
        if words_changed and not relearn:
            classifier.unlearn(comment)
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


# --- Replying as the publication, blocking (the moderation queue) ----------------------------


def publication_name() -> str:
    return settings.WAGTAIL_SITE_NAME if hasattr(settings, "WAGTAIL_SITE_NAME") else "Editors"


def reply_as_publication(
    *, parent: Comment, moderator, text: str, allow_closed: bool = True
) -> Comment:
    """A moderator answers a comment from the queue in the publication's name (WordPress's
    "Approve and Reply"): a held parent is approved first, then the reply is posted, approved,
    under the moderator's account with the site's name. A parent in spam or trash must be
    restored first. As in WordPress, a moderator may answer from the queue on an article
    whose comments are closed (``allow_closed``). Refusals (empty text…) raise
    ``CommentRejected``."""
    if not moderator.has_perm("comments.moderate_comment"):
        raise PermissionError("Only moderators may reply as the publication.")
    if parent.status in (Comment.Status.SPAM, Comment.Status.TRASH):
        raise CommentRejected(
            f"This comment is in the {parent.get_status_display().lower()}: "
            "approve it before replying to it.",
            field="text",
        )
    with transaction.atomic():
        if parent.status == Comment.Status.PENDING:
            moderate(comment_ids=[parent.pk], action="approve", moderator=moderator, via="reply")
            parent.refresh_from_db()
        result = post_comment(
            thread=parent.thread,
            text=text,
            author_name=publication_name(),
            author_email="",
            parent_id=parent.pk,
            user=moderator,
            is_moderator=True,
            identity=Identity(kind=Identity.ACCOUNT, name=publication_name()),
            allow_closed=allow_closed,
        )
        reply = result.comment
        if reply.status != Comment.Status.APPROVED:
            moderate(comment_ids=[reply.pk], action="approve", moderator=moderator, via="reply")
            reply.refresh_from_db()
        CommentEvent.objects.create(
            comment=parent,
            actor=moderator,
            actor_kind="moderator",
            action=CommentEvent.Action.REPLIED,
            after={"reply": reply.pk},
        )
    return reply


class BlockInvalid(ValueError):
    """The value given for a block cannot be one (a bad address or range)."""


def normalise_block(kind: str, value: str) -> str:
    """The stored form of a block's value: a casefolded email, a user id, or a network in CIDR
    form (an address alone blocks that one address). Raises ``BlockInvalid`` with a message."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    from .models import Block

    value = (value or "").strip()
    if kind == Block.Kind.EMAIL:
        try:
            validate_email(value)
        except ValidationError:
            raise BlockInvalid("Enter a valid email address.") from None
        return value.casefold()
    if kind == Block.Kind.USER:
        if not (value.isascii() and value.isdigit()):
            raise BlockInvalid("Choose an account.")
        if not get_user_model().objects.filter(pk=int(value)).exists():
            raise BlockInvalid("There is no such account.")
        return str(int(value))
    if kind == Block.Kind.IP:
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise BlockInvalid(
                "Enter an IP address (192.0.2.7) or a range in CIDR form (192.0.2.0/24, "
                "2001:db8::/64)."
            ) from None
        minimum = 8 if network.version == 4 else 16
        if network.prefixlen < minimum:
            raise BlockInvalid(f"That range is too wide: use a prefix of /{minimum} or longer.")
        return str(network)
    raise BlockInvalid("Choose what to block: email, account or IP.")


def block_commenter(*, kind: str, value: str, moderator, note: str = ""):
    """Block a commenter by email, account or IP address/range: their new comments go to the
    trash with the reason "blocked". Blocking the same thing twice keeps one row."""
    from .models import Block

    if not moderator.has_perm("comments.moderate_comment"):
        raise PermissionError("Only moderators may block commenters.")
    stored = normalise_block(kind, value)
    block, _ = Block.objects.get_or_create(
        kind=kind,
        value=stored,
        defaults={"note": note[:200], "created_by": moderator},
    )
    return block


def unblock(*, block_id: int, moderator) -> bool:
    from .models import Block

    if not moderator.has_perm("comments.moderate_comment"):
        raise PermissionError("Only moderators may unblock commenters.")
    deleted, _ = Block.objects.filter(pk=block_id).delete()
    return bool(deleted)


# --- A commenter's own comment, within the edit window ---------------------------------------


class OwnCommentDenied(Exception):
    """Not this reader's comment (``reason="owner"``), or the window has closed
    (``reason="window"``), or it is gone (``reason="gone"``)."""

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.message = message
        self.reason = reason


def is_own_comment(comment: Comment, *, browser_key: str = "", user=None) -> bool:
    """A comment posted from an account: that account, signed in (not whoever else uses the
    browser it was posted from). A guest's comment: the browser that posted it (the signed
    commenter cookie)."""
    if comment.user_id:
        signed_in = user is not None and user.is_authenticated
        return bool(signed_in and comment.user_id == user.pk)
    return bool(
        browser_key and comment.browser_key and secrets_equal(comment.browser_key, browser_key)
    )


def secrets_equal(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def own_edit_until(comment: Comment):
    """Until when its author may still edit or delete it."""
    from datetime import timedelta

    minutes = settings_for(comment.thread).edit_window_minutes
    return comment.created_at + timedelta(minutes=max(minutes, 0))


OWN_EDITABLE = (Comment.Status.APPROVED, Comment.Status.PENDING)


def editable_own_comments(*, thread: Thread, browser_key: str = "", user=None) -> dict[int, str]:
    """This browser's / account's comments on the thread that it may still edit: id → until
    (ISO 8601). Only what the session endpoint tells the page's script; never rendered into
    the shared page."""
    from datetime import timedelta

    from django.db.models import Q

    minutes = settings_for(thread).edit_window_minutes
    if minutes <= 0:
        return {}
    now = timezone.now()
    who = Q()
    if browser_key:  # a guest's comments only (the same rule as ``is_own_comment``)
        who |= Q(browser_key=browser_key, user__isnull=True)
    if user is not None and user.is_authenticated:
        who |= Q(user_id=user.pk)
    if not who:
        return {}
    rows = Comment.objects.filter(
        who,
        thread=thread,
        status__in=OWN_EDITABLE,
        created_at__gt=now - timedelta(minutes=minutes),
    ).values_list("pk", "created_at")
    return {pk: (at + timedelta(minutes=minutes)).isoformat() for pk, at in rows}


def check_own_comment(comment: Comment, *, browser_key: str = "", user=None) -> None:
    if not is_own_comment(comment, browser_key=browser_key, user=user):
        raise OwnCommentDenied(
            "You can only change your own comments, from the browser or account you posted "
            "them with.",
            reason="owner",
        )
    if comment.status not in OWN_EDITABLE:
        raise OwnCommentDenied("This comment has been removed.", reason="gone")
    if timezone.now() >= own_edit_until(comment):
        minutes = settings_for(comment.thread).edit_window_minutes
        raise OwnCommentDenied(
            f"Comments can be changed for {minutes} minutes after they are posted; "
            "that time is over for this one.",
            reason="window",
        )


# Guards an edit by its author runs again: what the new text says (links, words). An approved
# comment whose new text would have been held goes back to the queue; a disallowed word sends
# it to the trash, as it would a new comment.
EDIT_GUARDS = ("disallowed_words", "too_many_links", "moderation_words")


def edit_own_comment(*, comment: Comment, text: str, browser_key: str = "", user=None) -> Comment:
    """The author changes their comment's text within the edit window. Ownership and the
    window are checked again here (the form may have sat open); the history keeps the old
    text. The content guards run on the new text, so an approved comment cannot be turned into
    spam afterwards."""
    from . import guards as g

    with transaction.atomic():
        comment = Comment.objects.select_for_update().select_related("thread").get(pk=comment.pk)
        check_own_comment(comment, browser_key=browser_key, user=user)
        is_moderator = bool(
            user is not None
            and user.is_authenticated
            and user.has_perm("comments.moderate_comment")
        )
        verdicts = []
        if not is_moderator:
            probe = Comment(
                thread=comment.thread,
                text=text,
                author_name=comment.author_name,
                author_email=comment.author_email,
                author_url=comment.author_url,
                user_agent=comment.user_agent,
            )
            sub = Submission(
                comment=probe, settings=settings_for(comment.thread), ip=comment.ip_address
            )
            for name in EDIT_GUARDS:
                verdict = getattr(g, name)(sub)
                if verdict is not None:
                    verdicts.append(verdict)
        if comment.text == text:
            return comment
        _record_edit(comment, actor=user, actor_kind="author", changes={"text": text})
        if verdicts:
            strongest = max(verdicts, key=lambda v: g.STRENGTH[v.action])
            status = g.STATUS_FOR[strongest.action]
            if g.STRENGTH[strongest.action] > _strength_of(comment.status):
                old = comment.status
                comment.status = status
                comment.moderation_reasons = [v.as_reason() for v in verdicts]
                comment.save(update_fields=["status", "moderation_reasons", "updated_at"])
                CommentEvent.objects.create(
                    comment=comment,
                    actor=None,
                    actor_kind="system",
                    action=_ACTION_FOR_STATUS[status],
                    before={"status": old},
                    after={"status": status, "via": "edit by its author"},
                    reasons=comment.moderation_reasons,
                )
                # As for any change of status: moderators hear of a comment back in the queue,
                # the classifier forgets it. No moderator made this change.
                signals.comment_moderated.send(
                    Comment, comment=comment, old_status=old, new_status=status, moderator=None
                )
    return comment


_ACTION_FOR_STATUS = {
    Comment.Status.PENDING: "unapprove",
    Comment.Status.SPAM: "spam",
    Comment.Status.TRASH: "trash",
}


def _strength_of(status: str) -> int:
    return {Comment.Status.APPROVED: 0, Comment.Status.PENDING: 1}.get(status, 3)


def delete_own_comment(*, comment: Comment, browser_key: str = "", user=None) -> Comment:
    """The author takes their comment down within the edit window: it goes to the trash (a
    moderator can still see it), with a history line; replies to it stay where they are."""
    with transaction.atomic():
        comment = Comment.objects.select_for_update().select_related("thread").get(pk=comment.pk)
        check_own_comment(comment, browser_key=browser_key, user=user)
        old = comment.status
        comment.status = Comment.Status.TRASH
        comment.save(update_fields=["status", "updated_at"])
        CommentEvent.objects.create(
            comment=comment,
            actor=user if user is not None and user.is_authenticated else None,
            actor_kind="author",
            action=CommentEvent.Action.DELETED,
            before={"status": old},
            after={"status": comment.status},
        )
    return comment
