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

One mail per subscriber per page (``dedupe_key`` ``post:<page>:<subscription>``). The Publish
request only queues one ``fan_out_new_post`` task (a django-tasks-db row, in the publishing
transaction when there is one); ``broadsheet worker`` runs it, checks the page is still live and
public, and renders and queues the mails (``subscriptions.notify_new_post``), so the editor's
request costs the same with ten subscribers or ten thousand.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any

from django_tasks import task
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


def announce_new_post(sender: type, instance: Any, **kwargs: Any) -> bool:
    """Queue the announcement of a first publication (one task); True when queued."""
    from broadsheet.comments.models import Subscription

    from .models import ArticlePage

    page = instance
    if _suppressed.get() or not is_first_publication(page):
        return False
    # Live, public (no privacy restriction) and not expired: what readers may see.
    if not ArticlePage.objects.published().filter(pk=page.pk).exists():
        return False
    if not Subscription.objects.filter(
        kind=Subscription.Kind.POSTS, confirmed_at__isnull=False, unsubscribed_at__isnull=True
    ).exists():
        return False
    fan_out_new_post.enqueue(page.pk)
    return True


@task(backend="outbox", queue_name="mail")
def fan_out_new_post(page_pk: int, attempt: int = 1) -> int:
    """In the worker: mail every "new posts" subscriber about the page, if readers can still
    see it (unpublished, made private or expired since: nothing). Returns how many mails this
    run queued."""
    from broadsheet.comments import subscriptions

    from .models import ArticlePage

    page = ArticlePage.objects.published().filter(pk=page_pk).first()
    if page is None:
        return 0
    return subscriptions.run_fan_out(
        fan_out_new_post, page_pk, attempt, lambda: subscriptions.notify_new_post(page)
    )


def connect() -> None:
    from .models import ArticlePage

    page_published.connect(
        announce_new_post, sender=ArticlePage, dispatch_uid="publishing-announce-new-post"
    )
