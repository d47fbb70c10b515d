"""Threads and comments. No Wagtail here: a thread is keyed by its canonical URL, with an
optional page id, so the same engine can serve a static site later."""

from __future__ import annotations

from functools import cached_property

from django.conf import settings
from django.db import models
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from broadsheet.core import html as html_policy

# Limits as WordPress's database columns have them (WP #10377), checked on input, never cut.
NAME_MAX = 245
EMAIL_MAX = 100
URL_MAX = 200
TEXT_MAX = 65525
DB_INT_MAX = 2**63 - 1  # ids beyond this are not ids (and overflow SQLite's INTEGER)


class Thread(models.Model):
    url = models.CharField("canonical URL", max_length=500, unique=True)
    page_id = models.PositiveBigIntegerField(null=True, blank=True, unique=True)
    title = models.CharField(max_length=500, blank=True)
    is_open = models.BooleanField("comments open", default=True)
    # When the article was first published: "close comments on articles older than N days".
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title or self.url


class CommentQuerySet(models.QuerySet):
    def visible(self):
        """What every reader may see: approved comments. One definition for every surface."""
        return self.filter(status=Comment.Status.APPROVED)

    def for_thread(self, thread: Thread):
        return self.filter(thread=thread)

    def pending(self):
        return self.filter(status=Comment.Status.PENDING)

    def status_counts(self) -> dict[str, int]:
        rows = self.values("status").annotate(n=Count("id")).order_by()
        counts = {status: 0 for status in Comment.Status.values}
        counts.update({row["status"]: row["n"] for row in rows})
        return counts

    def by_browser(self, browser_key: str):
        return self.filter(browser_key=browser_key) if browser_key else self.none()

    def bulk_create(self, objs, *args, **kwargs):
        """As ``save()`` does, each comment's HTML is made before it is stored (the importer
        inserts its comments this way)."""
        objs = list(objs)
        for comment in objs:
            comment.prepare_html()
        return super().bulk_create(objs, *args, **kwargs)

    def stale_html(self):
        """Comments whose stored HTML another policy made (or none did, as before it was
        stored): shown rendered afresh on each view until ``refresh_html`` stores it."""
        return self.exclude(text_html_policy=html_policy.COMMENT_POLICY)

    def refresh_html(self, *, batch_size: int = 500) -> int:
        """Store the current policy's HTML for the stale comments among these; returns how
        many. Run after the policy changes (``core.html.COMMENT_POLICY`` moves on)."""
        done = 0
        stale = self.stale_html().only("pk", "text").order_by("pk")
        batch: list[Comment] = []
        for comment in stale.iterator(chunk_size=batch_size):
            comment.prepare_html()
            batch.append(comment)
            if len(batch) == batch_size:
                done += self.model.objects.bulk_update(batch, ["text_html", "text_html_policy"])
                batch = []
        if batch:
            done += self.model.objects.bulk_update(batch, ["text_html", "text_html_policy"])
        return done

    def search(self, query: str):
        return self.filter(
            Q(text__icontains=query)
            | Q(author_name__icontains=query)
            | Q(author_email__iexact=query)
        )


class Comment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        SPAM = "spam", "Spam"
        TRASH = "trash", "Trash"

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="comments")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies"
    )
    depth = models.PositiveSmallIntegerField(default=1)

    class Kind(models.TextChoices):
        COMMENT = "comment", "Comment"
        PINGBACK = "pingback", "Pingback"
        TRACKBACK = "trackback", "Trackback"

    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    # Pingbacks and trackbacks come only from imported WordPress discussions: they are shown
    # as such (“Pingback: <site>”), with no avatar and no reply link, as WordPress shows them.
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.COMMENT)
    author_name = models.CharField(max_length=NAME_MAX)
    author_email = models.EmailField(max_length=EMAIL_MAX, blank=True)  # X, Mastodon: none
    author_url = models.URLField(max_length=URL_MAX, blank=True)
    text = models.TextField(max_length=TEXT_MAX)
    # render_comment(text), made on save, and the policy that made it (core.html.COMMENT_POLICY):
    # pages show it without sanitizing every comment on every view. HTML stamped with another
    # policy is never shown: the text is rendered again instead.
    text_html = models.TextField(blank=True, default="", editable=False)
    text_html_policy = models.CharField(max_length=16, blank=True, default="", editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="comments",
    )
    # How the author was identified: a guest's typed details, a site account, or a provider
    # (whose name, avatar and profile link are shown with the comment).
    identified_by = models.CharField(
        max_length=10,
        choices=[("guest", "Guest"), ("account", "Site account"), ("provider", "Provider")],
        default="guest",
    )
    identity_provider = models.CharField(max_length=100, blank=True)
    identity_provider_name = models.CharField(max_length=100, blank=True)
    author_avatar_url = models.URLField(max_length=URL_MAX, blank=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Moderators only: never rendered on a public surface.
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    # Hash of the signed commenter cookie of the browser that posted it: binds "previously
    # approved" trust and "awaiting moderation" previews to that browser, not to a name + email.
    browser_key = models.CharField(max_length=64, blank=True, db_index=True)
    # Same form submitted twice (double click, back + resubmit, retry) → one comment.
    submission_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # Why a guard held, spammed or trashed it: [{"guard": ..., "verdict": ..., "detail": ...}].
    moderation_reasons = models.JSONField(default=list, blank=True)
    # The top-level comment of its thread (itself for a top-level one): pages of comments
    # take N top-level comments with all their replies in one query.
    root = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    edited_at = models.DateTimeField(null=True, blank=True)
    spam_score = models.FloatField(null=True, blank=True)  # the local classifier's log-odds
    # What the local classifier learnt from this comment ("", "spam", "ham"), so a moderator
    # changing their mind moves the counts instead of counting twice.
    learned_as = models.CharField(max_length=4, blank=True, default="")
    # Akismet's verdict when it was asked ("", "ham", "spam", "discard").
    akismet_verdict = models.CharField(max_length=8, blank=True, default="")

    objects = CommentQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["thread", "status", "created_at"])]
        permissions = [("moderate_comment", "Can moderate comments")]

    def __str__(self) -> str:
        return f"{self.author_name}: {html_policy.excerpt(self.text, 60)}"

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "text" in update_fields:
            self.prepare_html()
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "text_html", "text_html_policy"}
        # Depth follows from the parent; kept as a column so threads render without recursion.
        self.depth = (self.parent.depth + 1) if self.parent_id else 1
        if self.parent_id:
            self.root_id = self.parent.root_id or self.parent_id
        super().save(*args, **kwargs)
        if not self.parent_id and self.root_id != self.pk:
            self.root_id = self.pk
            Comment.objects.filter(pk=self.pk).update(root=self.pk)

    def get_absolute_url(self) -> str:
        return reverse("comments:permalink", args=[self.pk])

    def prepare_html(self) -> None:
        """Make the text's HTML with the one comment policy, to be stored with it."""
        self.text_html = html_policy.render_comment(self.text)
        self.text_html_policy = html_policy.COMMENT_POLICY
        self.__dict__.pop("html", None)

    @cached_property
    def html(self) -> str:
        """The text as safe HTML: as stored when the current policy made it, else afresh."""
        if self.text_html_policy == html_policy.COMMENT_POLICY:
            return SafeString(self.text_html)  # sanitized when it was saved
        return SafeString(html_policy.render_comment(self.text))

    @property
    def card_html(self) -> str:
        """This comment as the comment list shows it, without a reply link (quoted above the
        no-JS reply form)."""
        from .selectors import comment_markup  # the selectors read this module

        return comment_markup(self)

    @property
    def author_link(self) -> str:
        return mark_safe(html_policy.link(self.author_url, self.author_name))  # noqa: S308

    @cached_property
    def avatar(self):
        from .avatars import avatar_for

        return avatar_for(
            email=self.author_email or f"{self.identity_provider}:{self.user_id}",
            name=self.author_name,
            image=self.author_avatar_url,
        )

    @property
    def reason_lines(self) -> list[str]:
        """Why it was held, spammed or trashed, for moderators: "links: more than 2 links (3)"."""
        lines = []
        for reason in self.moderation_reasons or []:
            if isinstance(reason, dict):
                lines.append(f"{reason.get('guard', '')}: {reason.get('detail', '')}")
            else:
                lines.append(str(reason))
        return lines

    @property
    def is_ping(self) -> bool:
        return self.kind != self.Kind.COMMENT

    @property
    def anchor(self) -> str:
        return f"comment-{self.pk}"


class CommentEvent(models.Model):
    """One line of a comment's history: who did what, when, and what it was before."""

    class Action(models.TextChoices):
        POSTED = "posted", "Posted"
        EDITED = "edited", "Edited"
        APPROVED = "approve", "Approved"
        UNAPPROVED = "unapprove", "Unapproved"
        SPAM = "spam", "Marked as spam"
        TRASH = "trash", "Moved to trash"
        DELETED = "deleted", "Deleted by its author"
        REPLIED = "replied", "Replied to"
        ERASED = "erased", "Personal data erased"

    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "moderator", "author" (the commenter, within the edit window), "system" (a guard, a link
    # from an email, the importer).
    actor_kind = models.CharField(max_length=10, default="system")
    action = models.CharField(max_length=10, choices=Action.choices)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reasons = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor or self.actor_kind} at {self.at:%c}"


class Block(models.Model):
    """A commenter moderators have blocked: their new comments go to the trash."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email address"
        USER = "user", "Account"
        IP = "ip", "IP address or range"

    kind = models.CharField(max_length=5, choices=Kind.choices)
    # A casefolded email, a user id, or a network in CIDR form ("192.0.2.0/24", "2001:db8::/64").
    value = models.CharField(max_length=200)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="unique_block")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


class OutboxMessage(models.Model):
    """An email waiting to be sent, written in the same transaction as what caused it; the
    worker sends it and retries with backoff, so a mail outage loses nothing."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=30)
    to = models.CharField(max_length=254)
    subject = models.CharField(max_length=300)
    text = models.TextField()
    html = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    message_id = models.CharField(max_length=200)
    # What this message is about, so queuing it again changes nothing ("held:12:3").
    dedupe_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} to {self.to}: {self.get_status_display()}"


class Subscription(models.Model):
    """ "Notify me of follow-up comments" (one thread) or "of new posts" (the site), confirmed by
    a double opt-in email, ended by one click."""

    class Kind(models.TextChoices):
        THREAD = "thread", "Follow-up comments"
        POSTS = "posts", "New posts"

    email = models.EmailField(max_length=EMAIL_MAX, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="comment_subscriptions",
    )
    kind = models.CharField(max_length=6, choices=Kind.choices)
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.CASCADE, related_name="subscriptions"
    )
    secret = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["email", "kind", "thread"], name="unique_thread_subscription"
            ),
            models.UniqueConstraint(
                fields=["email", "kind"],
                condition=Q(thread__isnull=True),
                name="unique_site_subscription",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email}: {self.get_kind_display()}"

    @property
    def is_active(self) -> bool:
        return self.confirmed_at is not None and self.unsubscribed_at is None


class SpamToken(models.Model):
    """The local classifier's counts: how often a word was seen in spam and in approved comments."""

    token = models.CharField(max_length=64, primary_key=True)
    spam = models.PositiveIntegerField(default=0)
    ham = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.token}: {self.spam}/{self.ham}"


class SpamStats(models.Model):
    """One row: how many comments of each kind the classifier has learnt from."""

    spam_docs = models.PositiveIntegerField(default=0)
    ham_docs = models.PositiveIntegerField(default=0)
    spam_tokens = models.PositiveBigIntegerField(default=0)
    ham_tokens = models.PositiveBigIntegerField(default=0)
    # Distinct tokens seen in either (a SpamToken with spam + ham > 0), kept as learning
    # moves a token from or to nothing, so scoring a comment never counts the whole table.
    vocabulary = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.spam_docs} spam, {self.ham_docs} approved"
