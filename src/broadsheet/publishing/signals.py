"""Keep each article's discussion thread in step with the article's publication state."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from wagtail.models import PageViewRestriction
from wagtail.signals import page_published, page_unpublished

from broadsheet.comments import services


def sync_discussion(sender: type, instance: Any, **kwargs: Any) -> None:
    """Rule: an article's discussion is open only while the article is live, public and allows
    comments (``ArticlePage.accepts_comments``); the thread follows its address and title."""
    page = instance
    # The site-relative address, as ``ArticlePage.get_context`` gives it to the discussion when a
    # reader is on the article's own site.
    parts = page.get_url_parts()
    thread = services.sync_thread(
        url=(parts[2] if parts and parts[2] else None) or page.url_path,
        page_id=page.pk,
        title=page.title,
        is_open=page.accepts_comments(),
    )
    record_published_at(thread, page)


def published_at(page: Any):
    """When the page counts as published for "close comments on articles older than N days":
    an article's publication date (WordPress's post date, which editors may set and imports
    carry), else the time Wagtail first published the page."""
    return getattr(page, "date", None) or page.first_published_at


def record_published_at(thread: Any, page: Any) -> None:
    """Keep ``Thread.published_at`` in step with the page (one UPDATE, only on a change)."""
    value = published_at(page)
    if value is not None and thread.published_at != value:
        type(thread).objects.filter(pk=thread.pk).update(published_at=value)
        thread.published_at = value


def sync_restricted(sender: type, instance: Any, **kwargs: Any) -> None:
    """A privacy setting on a page closes (or reopens) the discussions of the articles under
    it: a private article takes no comments."""
    from .models import ArticlePage, StandardPage

    for model in (ArticlePage, StandardPage):
        for page in model.objects.descendant_of(instance.page, inclusive=True):
            sync_discussion(model, page)


def connect() -> None:
    from .models import ArticlePage, StandardPage

    for model in (ArticlePage, StandardPage):
        page_published.connect(
            sync_discussion, sender=model, dispatch_uid=f"publishing-sync-on-publish-{model}"
        )
        page_unpublished.connect(
            sync_discussion, sender=model, dispatch_uid=f"publishing-sync-on-unpublish-{model}"
        )
    for signal in (post_save, post_delete):
        signal.connect(
            sync_restricted,
            sender=PageViewRestriction,
            dispatch_uid=f"publishing-sync-on-restriction-{signal is post_save}",
        )
