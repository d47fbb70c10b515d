"""Keep each article's discussion thread in step with the article's publication state."""

from __future__ import annotations

from typing import Any

from wagtail.signals import page_published, page_unpublished

from broadsheet.comments import services


def sync_discussion(sender: type, instance: Any, **kwargs: Any) -> None:
    """Rule: an article's discussion is open only while the article is live and allows
    comments; the thread follows the article's current address and title."""
    page = instance
    # The site-relative address, as ``ArticlePage.get_context`` gives it to the discussion when a
    # reader is on the article's own site.
    parts = page.get_url_parts()
    services.sync_thread(
        url=(parts[2] if parts and parts[2] else None) or page.url_path,
        page_id=page.pk,
        title=page.title,
        is_open=page.allow_comments and page.live,
    )


def connect() -> None:
    from .models import ArticlePage

    page_published.connect(
        sync_discussion, sender=ArticlePage, dispatch_uid="publishing-sync-on-publish"
    )
    page_unpublished.connect(
        sync_discussion, sender=ArticlePage, dispatch_uid="publishing-sync-on-unpublish"
    )
