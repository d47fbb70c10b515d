"""“Notify me of new posts via email”: an article's first publication mails its subscribers.

Rule: mail goes out when an article goes live for the first time through Wagtail's publish
action (the editor's Publish button, a scheduled page going live through
``publish_scheduled``, ``revision.publish()``), and is public. Wagtail sets
``first_published_at`` and ``last_published_at`` to the same instant only on that first
publication, so publishing an edit, or unpublishing and publishing again, mails nobody.

The WordPress importer never sends ``page_published``: it places pages already live with their
WXR dates (``publishing.services.place_page``), so importing an archive mails nobody; an imported
live article published again later carries its old ``first_published_at`` and is a re-publication.
An imported *draft* first published from the editor is a new post and is announced. The
``suppressed()`` context manager lets any bulk tool be explicit about it as well.

One mail per subscriber per page (``dedupe_key`` ``post:<page>:<subscription>``), queued in the
outbox in the publishing transaction.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any

from wagtail.signals import page_published

_suppressed: ContextVar[bool] = ContextVar("broadsheet_new_post_mail_suppressed", default=False)


@contextlib.contextmanager
def suppressed():
    """Publish without announcing to "new posts" subscribers (imports, bulk tools)."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def is_first_publication(page: Any) -> bool:
    return (
        page.live
        and page.first_published_at is not None
        and page.first_published_at == page.last_published_at
    )


def announce_new_post(sender: type, instance: Any, **kwargs: Any) -> int:
    from broadsheet.comments import subscriptions

    from .models import ArticlePage

    page = instance
    if _suppressed.get() or not is_first_publication(page):
        return 0
    # Live, public (no privacy restriction) and not expired: what readers may see.
    if not ArticlePage.objects.published().filter(pk=page.pk).exists():
        return 0
    return subscriptions.notify_new_post(page)


def connect() -> None:
    from .models import ArticlePage

    page_published.connect(
        announce_new_post, sender=ArticlePage, dispatch_uid="publishing-announce-new-post"
    )
