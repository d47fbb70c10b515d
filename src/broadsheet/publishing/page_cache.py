"""Which public pages the page cache may share, and what clears them (core/pagecache.py).

Tags: an article or standard page, with its comment pages, is ``page:<id>``; the home page
and everything routed through it (sections, tags, authors, date archives) and the feeds are
``listing``. What clears what:

- a comment that is, or was, shown (approved): its page; so does a deleted comment whose
  replies moved up;
- a thread opened, closed or renamed: its page;
- a page published, unpublished, moved, renamed or deleted: that page, the listings, and
  the pages linking to it as original or translation;
- the navigation (sections), people, tags, sites and any site setting (Settings →
  Discussion): every page, since every page shows them or follows them;
- an image or document changed or deleted: every page (nothing records which pages show it).

Invalidation runs after the transaction commits, so a reader never gets a page rendered from
the state before it; a render that began earlier is not stored (see core/pagecache.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Min
from django.db.models.signals import post_delete, post_save, pre_save
from django.utils import timezone
from taggit.models import Tag
from wagtail import hooks
from wagtail.contrib.settings.models import BaseSiteSetting
from wagtail.documents import get_document_model
from wagtail.images import get_image_model
from wagtail.models import Page, PageViewRestriction, Site
from wagtail.signals import page_published, page_slug_changed, page_unpublished, post_page_move

from broadsheet.comments import signals as comment_signals
from broadsheet.comments.models import Comment, Thread
from broadsheet.core import pagecache

from .models import ArticlePage, HomePage, Person, Section, StandardPage, ViewRestrictionsOnce

LISTING = "listing"


# --- what may be stored ----------------------------------------------------------------------
@hooks.register("before_serve_page")
def share_public_pages(page: Page, request, serve_args, serve_kwargs) -> None:
    """Public pages of the tree are shared; a view-restricted page never is."""
    specific = type(page)
    if specific not in (ArticlePage, StandardPage, HomePage):
        return
    if page.get_view_restrictions().exists():  # fetched once per page (ViewRestrictionsOnce)
        return
    if specific is HomePage:
        pagecache.cache_page(request, LISTING, pagecache.page_tag(page.pk), expires=_next_expiry())
    else:
        moments = [_closes_at(page), getattr(page, "expire_at", None)]
        pagecache.cache_page(
            request,
            pagecache.page_tag(page.pk),
            expires=min((m for m in moments if m is not None), default=None),
        )


def _next_expiry():
    """When the next listed article expires (listings and feeds drop it then, even before
    Wagtail's ``publish_scheduled`` unpublishes it)."""
    return (
        ArticlePage.objects.live()
        .filter(expire_at__gt=timezone.now())
        .aggregate(soonest=Min("expire_at"))["soonest"]
    )


def _closes_at(page: Page):
    """When "close comments on articles older than N days" will close this page's form."""
    from .discussion import settings_for_site, site_id_for_page
    from .signals import published_at

    if not getattr(page, "allow_comments", False):
        return None
    days = settings_for_site(site_id_for_page(page.pk)).close_after_days
    start = published_at(page)
    if not days or start is None:
        return None
    closes = start + timedelta(days=days)
    return closes if closes > timezone.now() else None


def share_feed(request) -> None:
    pagecache.cache_page(request, LISTING, expires=_next_expiry())


# --- what clears it --------------------------------------------------------------------------
def _after_commit(*tags: str) -> None:
    if pagecache.store() is not None and not pagecache.suspended():
        transaction.on_commit(lambda: pagecache.invalidate(*tags))


def _clear_after_commit(**kwargs: Any) -> None:
    if pagecache.store() is not None and not pagecache.suspended():
        transaction.on_commit(pagecache.clear)


def _note_shown_before(sender: type, instance: Comment, **kwargs: Any) -> None:
    if instance.pk is None or kwargs.get("raw") or pagecache.store() is None:
        instance._was_shown = False
        return
    before = Comment.objects.filter(pk=instance.pk).values_list("status", flat=True).first()
    instance._was_shown = before == Comment.Status.APPROVED


def _comment_changed(sender: type, instance: Comment, **kwargs: Any) -> None:
    if pagecache.store() is None or pagecache.suspended():
        return
    shown_now = instance.status == Comment.Status.APPROVED and not kwargs.get("raw")
    if not (shown_now or getattr(instance, "_was_shown", False)):
        return  # held, spam or trash, before and after: no page shows it
    thread = instance._state.fields_cache.get("thread")
    if thread is not None:
        page_id = thread.page_id
    else:
        page_id = (
            Thread.objects.filter(pk=instance.thread_id).values_list("page_id", flat=True).first()
        )
    if page_id is not None:
        _after_commit(pagecache.page_tag(page_id))


def _comment_deleted(sender: type, instance: Comment, **kwargs: Any) -> None:
    instance._was_shown = instance.status == Comment.Status.APPROVED
    _comment_changed(sender, instance)


def _replies_moved(sender: type, thread_ids: set[int], **kwargs: Any) -> None:
    # A deleted comment (held, spam, anything) had replies: they now show in another place.
    if pagecache.store() is None or pagecache.suspended():
        return
    pages = Thread.objects.filter(pk__in=thread_ids, page_id__isnull=False)
    tags = [pagecache.page_tag(pk) for pk in pages.values_list("page_id", flat=True)]
    if tags:
        _after_commit(*tags)


# What Wagtail fills in lazily on an image or document (its admin page asks for the size):
# nothing a page shows.
_MEDIA_METADATA = frozenset({"file_size", "file_hash"})


def _media_changed(sender: type, instance: Any, created: bool = False, **kwargs: Any) -> None:
    # A replaced file, a new title or alt text, a deleted image or document: any page may show
    # it, and nothing records which (rich text holds ids). A new upload is on no page yet.
    if created or kwargs.get("raw"):
        return
    if kwargs.get("update_fields") and set(kwargs["update_fields"]) <= _MEDIA_METADATA:
        return
    _clear_after_commit()


def _thread_changed(sender: type, instance: Thread, **kwargs: Any) -> None:
    if instance.page_id is not None:
        _after_commit(pagecache.page_tag(instance.page_id))


def _page_changed(sender: type, instance: Page, **kwargs: Any) -> None:
    if isinstance(instance, HomePage):
        _clear_after_commit()  # its tagline and links are in every page's masthead
        return
    tags = {pagecache.page_tag(instance.pk), LISTING}
    # An original lists its translations, and a translation its original. (``instance`` is
    # the specific page when published or unpublished; a deleted one may be a bare Page,
    # whose specific row is already gone: nothing is fetched for it.)
    linked = ArticlePage.objects.filter(original_article_id=instance.pk).values_list(
        "pk", flat=True
    )
    tags.update(pagecache.page_tag(pk) for pk in linked)
    if isinstance(instance, ArticlePage) and instance.original_article_id:
        tags.add(pagecache.page_tag(instance.original_article_id))
    _after_commit(*tags)


def _page_moved(sender: type, instance: Page, **kwargs: Any) -> None:
    # Its address and its place in the navigation changed: nothing says where else it showed.
    _clear_after_commit()


def _restriction_changed(sender: type, instance: PageViewRestriction, **kwargs: Any) -> None:
    ViewRestrictionsOnce.forget(instance.page)  # before the page is asked about below
    _page_changed(Page, instance.page)


def connect() -> None:
    pre_save.connect(_note_shown_before, sender=Comment, dispatch_uid="pagecache-comment-pre")
    post_save.connect(_comment_changed, sender=Comment, dispatch_uid="pagecache-comment")
    post_delete.connect(_comment_deleted, sender=Comment, dispatch_uid="pagecache-comment-del")
    comment_signals.replies_moved.connect(_replies_moved, dispatch_uid="pagecache-replies-moved")
    post_save.connect(_thread_changed, sender=Thread, dispatch_uid="pagecache-thread")
    page_published.connect(_page_changed, dispatch_uid="pagecache-published")
    page_unpublished.connect(_page_changed, dispatch_uid="pagecache-unpublished")
    page_slug_changed.connect(_page_moved, dispatch_uid="pagecache-slug")
    post_page_move.connect(_page_moved, dispatch_uid="pagecache-move")
    post_delete.connect(_page_changed, sender=Page, dispatch_uid="pagecache-page-del")
    for model in (ArticlePage, StandardPage, HomePage):
        post_delete.connect(_page_changed, sender=model, dispatch_uid=f"pagecache-del-{model}")
    post_save.connect(_restriction_changed, sender=PageViewRestriction, dispatch_uid="pc-vr")
    post_delete.connect(_restriction_changed, sender=PageViewRestriction, dispatch_uid="pc-vrd")
    for model in (Section, Person, Tag, Site):
        post_save.connect(_clear_after_commit, sender=model, dispatch_uid=f"pagecache-{model}")
        post_delete.connect(_clear_after_commit, sender=model, dispatch_uid=f"pagecache-d{model}")
    for model in (get_image_model(), get_document_model()):
        post_save.connect(_media_changed, sender=model, dispatch_uid=f"pagecache-m{model}")
        post_delete.connect(_media_changed, sender=model, dispatch_uid=f"pagecache-md{model}")
    for model in _site_settings():
        post_save.connect(_clear_after_commit, sender=model, dispatch_uid=f"pagecache-{model}")


def _site_settings() -> list[type]:
    from django.apps import apps

    return [m for m in apps.get_models() if issubclass(m, BaseSiteSetting)]
