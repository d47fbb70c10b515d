"""The demo publication: a site, two sections, two articles and a discussion to read.

The content is a WordPress export (``demo_content/demo.wxr.xml``) loaded through the
importer, as a publication moving from WordPress would load its own. Idempotent: loading it
twice changes nothing. Used by ``broadsheet demo`` and by the tests.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from wagtail.coreutils import get_supported_content_language_variant
from wagtail.models import Collection, Locale, Page, Site

from .models import ArticlePage, HomePage, Person, Section

TAGLINE = "Independent reporting and international solidarity"

SEED_TITLE = "Greetings from Lugansk Communists to Workers World Party 2017 conference"
SEED_SLUG = "greetings-from-lugansk-communists-to-workers-world-party-2017-conference"

DEMO_WXR = Path(__file__).with_name("demo_content") / "demo.wxr.xml"
DEMO_SITE_KEY = "demo.broadsheet.invalid"

SECTIONS = [
    (
        "International solidarity",
        "international-solidarity",
        "Messages, statements and reports from movements around the world.",
        1,
    ),
    ("News", "news", "Reports from meetings, protests and conferences.", 2),
]

PEOPLE = [
    (
        "Maxim Chalenko",
        "maxim-chalenko",
        "Head of the Lugansk Communists and leader of the Antifascist International Solidarity "
        "Forum (AISForum).",
    ),
    ("News desk", "news-desk", "Reports by the editors of this publication."),
]


def _site_address(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    if not parts.hostname:
        raise ValueError(f"Not an absolute URL: {base_url!r}")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _tree_root() -> Page:
    """Wagtail's root node; made again (with the default locale) when a database flush, as
    between transactional tests, has removed what Wagtail's migrations created."""
    if Collection.get_first_root_node() is None:  # images and documents live in one
        Collection.add_root(name="Root")
    root = Page.get_first_root_node()
    if root is not None:
        return root
    Locale.objects.get_or_create(
        language_code=get_supported_content_language_variant(settings.LANGUAGE_CODE)
    )
    return Page.add_root(instance=Page(title="Root", slug="root"))


def ensure_home_page(site_name: str) -> HomePage:
    """The HomePage under the tree root, replacing Wagtail's “Welcome” placeholder page."""
    root = _tree_root()
    home = HomePage.objects.child_of(root).first()
    if home is not None:
        return home
    # The placeholder from Wagtail's initial migration: a plain Page with no children. Site
    # rows that point at it go with it (CASCADE); ours is written just after.
    for welcome in Page.objects.child_of(root).filter(slug="home"):
        if welcome.specific_class is Page and welcome.numchild == 0:
            welcome.delete()
    slug = "home" if not Page.objects.child_of(root).filter(slug="home").exists() else "front"
    home = root.add_child(instance=HomePage(title=site_name, slug=slug, tagline=TAGLINE))
    home.save_revision().publish()
    return home


def ensure_site(home: HomePage, base_url: str, site_name: str) -> Site:
    hostname, port = _site_address(base_url)
    site = (
        Site.objects.filter(hostname=hostname, port=port).first()
        or Site.objects.filter(is_default_site=True).first()
        or Site(hostname=hostname, port=port)
    )
    changes = {
        "hostname": hostname,
        "port": port,
        "root_page_id": home.pk,
        "is_default_site": True,
        "site_name": site_name,
    }
    if site.pk is None or any(getattr(site, k) != v for k, v in changes.items()):
        Site.objects.filter(is_default_site=True).exclude(pk=site.pk).update(is_default_site=False)
        for key, value in changes.items():
            setattr(site, key, value)
        site.save()
    return site


def load_demo(*, base_url: str) -> str:
    """Create (or leave as they are) the demo site and load its content through the WordPress
    importer, from ``demo_content/demo.wxr.xml``: the articles, bylines, sections, tags and a
    discussion with one held comment.

    Rule: idempotent — the importer remembers what it made, so a second load duplicates
    nothing. What a WordPress export cannot carry (section order in the navigation, people's
    bios) is set afterwards. Returns a one-line summary.
    """
    from broadsheet.comments.models import Comment
    from broadsheet.wordpress.importer import import_wxr

    site_name = settings.WAGTAIL_SITE_NAME
    with transaction.atomic():
        home = ensure_home_page(site_name)
        ensure_site(home, base_url, site_name)
        import_wxr(path=DEMO_WXR, site_key=DEMO_SITE_KEY)
        for _name, slug, _description, order in SECTIONS:
            Section.objects.filter(slug=slug).exclude(
                show_in_navigation=True, sort_order=order
            ).update(show_in_navigation=True, sort_order=order)
        for _name, slug, bio in PEOPLE:
            Person.objects.filter(slug=slug, bio="").update(bio=bio)
        articles = ArticlePage.objects.live().child_of(home).count()
        seed = ArticlePage.objects.child_of(home).get(slug=SEED_SLUG)
        comments = Comment.objects.visible().filter(thread__page_id=seed.pk).count()
    return f"{articles} articles, {len(SECTIONS)} sections, {comments} comments"


def reset_demo_editor() -> tuple[str, str]:
    """Create or update the superuser “editor” with a new random password; return both.

    Rule: the demo never ships a known password — each run prints a fresh one.
    """
    username = "editor"
    password = secrets.token_urlsafe(12)
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(
        username=username, defaults={"email": "editor@example.org"}
    )
    user.is_active = True
    user.is_staff = True
    user.is_superuser = True
    user.set_password(password)
    user.save()
    return username, password
