"""The imported seed article in a real browser (Debian's Chromium): the hundred comments of the
WordPress export, each nested under the same parent as in WordPress."""

from __future__ import annotations

import pytest

from broadsheet.wordpress.importer import import_wxr
from broadsheet.wordpress.models import WordPressId
from broadsheet.wordpress.wxr import Item, read_wxr
from tests.wordpress.test_wxr_reader import SEED

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_imported_seed_article_shows_every_comment_under_its_wordpress_parent(
    live_server, new_page
):
    from broadsheet.publishing.services import home_for_site

    home_for_site()
    import_wxr(path=SEED)
    ids = dict(WordPressId.objects.filter(kind="comment").values_list("wp_key", "object_id"))
    wp_comments = [c for r in read_wxr(SEED) if isinstance(r, Item) for c in r.comments]
    expected = {
        ids[str(c.wp_id)]: ids[str(c.parent_wp_id)] if c.parent_wp_id else None for c in wp_comments
    }

    page = new_page(width=390, height=844)
    page.goto(
        f"{live_server.url}/2017/11/20/"
        "greetings-from-lugansk-communists-to-workers-world-party-2017-conference/"
    )
    # Each comment's parent as the reader sees it: the comment <li> its list sits in.
    shown = page.eval_on_selector_all(
        "#comments li.comment",
        """items => items.map(li => {
            const parent = li.parentElement.closest('li.comment');
            return [li.id, parent ? parent.id : null, li.offsetHeight > 0];
        })""",
    )
    assert len(shown) == 100
    assert all(visible for _, _, visible in shown)
    got = {
        int(anchor.removeprefix("comment-")): int(parent.removeprefix("comment-"))
        if parent
        else None
        for anchor, parent, _ in shown
    }
    assert got == expected
    assert page.locator(".comments-title").inner_text().startswith("100 responses")
    assert page.dialogs == []


def test_imported_theme_pages_fit_a_phone_screen(live_server, new_page, settings, tmp_path):
    """WordPress's markup and gallery test posts, imported with their images, on a 390 px
    screen: nothing wider than the screen (tables and preformatted text scroll inside the
    column), every image loaded, nothing run."""
    from django.core.cache import caches

    from broadsheet.publishing.services import home_for_site
    from tests.wordpress.test_import import _fake_uploads
    from tests.wordpress.test_wxr_reader import THEME

    settings.MEDIA_ROOT = str(tmp_path / "media")
    for cache in caches.all():  # Wagtail caches renditions: none from another test's media
        cache.clear()
    home_for_site()
    _fake_uploads(tmp_path / "uploads")
    import_wxr(path=THEME, uploads=tmp_path / "uploads")
    site = "wpthemetestdata.wordpress.com"
    page = new_page(width=390, height=844)
    for wp_id in (1178, 1177, 1163, 555, 1031):  # markup, image alignment, captions, galleries
        row = WordPressId.objects.get(site_key=site, kind="post", wp_key=str(wp_id))
        from broadsheet.publishing.models import ArticlePage

        url = ArticlePage.objects.get(pk=row.object_id).url
        response = page.goto(f"{live_server.url}{url}")
        assert response.status == 200, wp_id
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (wp_id, overflow)
        broken = page.eval_on_selector_all(
            ".article-body img",
            "imgs => imgs.filter(i => i.src.startsWith(location.origin) && !i.naturalWidth)"
            ".map(i => i.src)",
        )
        assert broken == [], (wp_id, broken)
        local = page.eval_on_selector_all(
            ".article-body img",
            "imgs => imgs.filter(i => i.src.startsWith(location.origin)).length",
        )
        if wp_id != 1178:  # the markup post has no images
            assert local > 0, wp_id
        if wp_id == 555:
            page.screenshot(path=str(tmp_path / "gallery.png"), full_page=False)
            print(f"\nscreenshot: {tmp_path / 'gallery.png'}")
    assert page.dialogs == []
