"""Threads and comments. No Wagtail here: a thread is keyed by its canonical URL, with an
optional page id, so the same engine can serve a static site later."""

from __future__ import annotations

from functools import cached_property

from django.conf import settings
from django.db import models
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.safestring import mark_safe

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
    moderation_reasons = models.JSONField(default=list, blank=True)

    objects = CommentQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["thread", "status", "created_at"])]
        permissions = [("moderate_comment", "Can moderate comments")]

    def __str__(self) -> str:
        return f"{self.author_name}: {html_policy.excerpt(self.text, 60)}"

    def save(self, *args, **kwargs):
        # Depth follows from the parent; kept as a column so threads render without recursion.
        self.depth = (self.parent.depth + 1) if self.parent_id else 1
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("comments:permalink", args=[self.pk])

    @cached_property
    def html(self) -> str:
        return mark_safe(html_policy.render_comment(self.text))  # noqa: S308 — sanitized

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
    def is_ping(self) -> bool:
        return self.kind != self.Kind.COMMENT

    @property
    def anchor(self) -> str:
        return f"comment-{self.pk}"
