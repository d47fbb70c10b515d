"""What the importer remembers: which WordPress object became which Broadsheet object, and
each import run with its report."""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models


class WordPressIdQuerySet(models.QuerySet):
    def for_site(self, site_key: str):
        return self.filter(site_key=site_key)

    def id_map(self, site_key: str, kind: str) -> dict[str, int]:
        """wp key → object id, for one kind of object from one WordPress site."""
        return dict(self.filter(site_key=site_key, kind=kind).values_list("wp_key", "object_id"))


class WordPressId(models.Model):
    """One imported WordPress object. The unique key (site, kind, WordPress id) is what makes
    importing the same file twice change nothing, and a second file add only what is new.
    A separate table, not a column on every model, so the comments and publishing apps stay
    free of WordPress."""

    class Kind(models.TextChoices):
        AUTHOR = "author", "Author"
        USER = "user", "Signed-in commenter"
        CATEGORY = "category", "Category"
        TAG = "tag", "Tag"
        POST = "post", "Post"
        PAGE = "page", "Page"
        ATTACHMENT = "attachment", "Attachment"
        COMMENT = "comment", "Comment"

    # Host and path of the WordPress site's address, lowercased: “example.wordpress.com”.
    site_key = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    wp_key = models.CharField("WordPress id", max_length=200)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    # Original link, login and email of an author, etc. Never shown to readers.
    data = models.JSONField(default=dict, blank=True)
    imported_at = models.DateTimeField(auto_now_add=True)

    objects = WordPressIdQuerySet.as_manager()

    class Meta:
        verbose_name = "imported WordPress object"
        constraints = [
            models.UniqueConstraint(
                fields=["site_key", "kind", "wp_key"], name="wordpress_id_unique"
            )
        ]
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.site_key} {self.kind} {self.wp_key}"


class WordPressImport(models.Model):
    """One import run started from the admin (the command line runs are not recorded here)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    file_name = models.CharField(max_length=255)
    file_size = models.PositiveBigIntegerField(default=0)
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "WordPress import"

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"
