"""Write rules for the publication that other apps call (the WordPress importer, scripts).

This app is the only one that imports Wagtail's models, so pages, images, privacy settings and
redirects are made here; callers say *what* they want (a live article, a scheduled one, a
private one), not how Wagtail stores it.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from django.contrib.auth.models import Group
from django.core.files.images import ImageFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from wagtail.contrib.redirects.models import Redirect
from wagtail.images import get_image_model
from wagtail.models import Page, PageViewRestriction, Site

from broadsheet.comments import services as comment_services

from .models import HomePage

# Who may read a private page: the groups that run the site (Wagtail's Editors and
# Moderators), as WordPress lets only editors read private posts.
STAFF_GROUPS = ("Editors", "Moderators")
MAX_REDIRECT_PATH = 255
# First path segments the home page and the site's URLs answer themselves.
RESERVED_SLUGS = frozenset(
    {"section", "tag", "author", "feed", "search", "sitemap.xml", "comments", "accounts",
     "admin", "documents", "media", "static"}
)  # fmt: skip
YEAR = re.compile(r"\d{4}")


class State(StrEnum):
    LIVE = "live"
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PRIVATE = "private"  # live, but readable only by the staff groups


def place_page(
    *,
    parent: Page,
    page: Page,
    state: State,
    published_at: datetime | None = None,
    updated_at: datetime | None = None,
) -> Page:
    """Add ``page`` under ``parent`` in the given state, with a first revision.

    Rule: a scheduled page goes live at its ``go_live_at`` through Wagtail's own scheduler
    (``publish_scheduled``); a private page is live but restricted to the staff groups, so it
    stays out of every listing, feed and search (``published()`` excludes it) and takes no
    comments. The page's thread is brought in step as publishing would.
    """
    live = state in (State.LIVE, State.PRIVATE)
    page.live = live
    page.has_unpublished_changes = not live
    if live:
        page.first_published_at = published_at or timezone.now()
        page.last_published_at = updated_at or page.first_published_at
    parent.add_child(instance=page)
    revision = page.save_revision(
        approved_go_live_at=page.go_live_at if state is State.SCHEDULED else None,
        changed=False,
        clean=False,
    )
    if live:
        # What publishing the revision would record, without a second full save.
        page.live_revision = revision
        Page.objects.filter(pk=page.pk).update(live_revision=revision)
    if state is State.PRIVATE:
        restrict_to_staff(page)
    sync_thread(page)
    return page


def record_revision(page: Page) -> None:
    """Save the page's current fields as its latest revision (and live revision, if live),
    after a change made outside the editor (a move, a new slug), so that the editor and the
    scheduler work from what the page now is."""
    scheduled = page.go_live_at if not page.live and page.go_live_at else None
    revision = page.save_revision(approved_go_live_at=scheduled, changed=False, clean=False)
    if page.live:
        page.live_revision = revision
        Page.objects.filter(pk=page.pk).update(live_revision=revision)


def sync_thread(page: Page) -> None:
    """The page's discussion thread follows its address, title and open/closed state."""
    if not hasattr(page, "accepts_comments"):
        return
    from .signals import record_published_at

    parts = page.get_url_parts()
    thread = comment_services.sync_thread(
        url=(parts[2] if parts and parts[2] else None) or page.url_path,
        page_id=page.pk,
        title=page.title,
        is_open=page.accepts_comments(),
    )
    record_published_at(thread, page)


def restrict_to_staff(page: Page) -> PageViewRestriction:
    restriction = PageViewRestriction.objects.create(
        page=page, restriction_type=PageViewRestriction.GROUPS
    )
    restriction.groups.set(Group.objects.filter(name__in=STAFF_GROUPS))
    return restriction


def unique_child_slug(parent: Page, slug: str, *, siblings: set[str] | None = None) -> str:
    """``slug``, or ``slug-2``, ``slug-3``… if a sibling already has it (WordPress's rule),
    or, under the home page, if the home page's own addresses use it (``/tag/``, ``/2017/``…).
    ``siblings``, when given, is the complete set of the parent's children's slugs (a caller
    adding thousands of pages keeps it, rather than reading them all for each page)."""
    existing = (
        siblings
        if siblings is not None
        else set(parent.get_children().values_list("slug", flat=True))
    )
    if parent.specific_class is HomePage:
        existing = existing | RESERVED_SLUGS
        if YEAR.fullmatch(slug):
            slug = f"{slug}-page"
    candidate, n = slug, 1
    while candidate in existing:
        n += 1
        suffix = f"-{n}"
        candidate = slug[: 255 - len(suffix)] + suffix
    return candidate


def add_redirect(
    *, site: Site | None, old_path: str, to: Page | str, route: str | None = None
) -> bool:
    """A permanent redirect from an old address; False if the path is unusable, already
    taken, or already the new address. An editor sees and edits these under Redirects."""
    normalised = Redirect.normalise_path(old_path)
    if not normalised or len(normalised) > MAX_REDIRECT_PATH:
        return False
    if isinstance(to, str) and Redirect.normalise_path(to) == normalised:
        return False
    if isinstance(to, Page):
        url = to.get_url_parts()
        target = (url[2] if url and url[2] else "") + (route or "").lstrip("/")
        if target and Redirect.normalise_path(target) == normalised:
            return False  # a redirect to itself would loop
    if Redirect.objects.filter(site=site, old_path=normalised).exists():
        return False
    try:
        with transaction.atomic():
            Redirect.add_redirect(
                normalised, redirect_to=to, is_permanent=True, site=site, page_route_path=route
            )
    except IntegrityError:
        return False
    return True


def create_image(*, path: Path, title: str, alt: str = "") -> int:
    """A Wagtail image from a file on disk (an old site's uploads folder); returns its id."""
    image_model = get_image_model()
    with path.open("rb") as fp:
        image = image_model(title=title[:255] or path.name, description=alt[:255])
        image.file = ImageFile(fp, name=path.name)
        image.save()
    return image.pk


def home_for_site(site: Site | None = None) -> tuple[HomePage, Site]:
    """The publication's front page and its site: the given site's, else the default site's.
    A fresh install (Wagtail's “Welcome” placeholder) gets a home page and a default site."""
    from django.conf import settings

    from . import demo

    site = site or Site.objects.filter(is_default_site=True).first()
    home = HomePage.objects.filter(pk=site.root_page_id).first() if site else None
    if home is None:
        home = demo.ensure_home_page(settings.WAGTAIL_SITE_NAME)
        site = demo.ensure_site(home, settings.BROADSHEET_BASE_URL, settings.WAGTAIL_SITE_NAME)
    return home, site
