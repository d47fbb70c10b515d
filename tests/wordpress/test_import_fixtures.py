"""Importing WordPress's theme unit test data and the seed article's export, checked item by
item, and the old addresses they leave behind.

Both files are imported once for the module inside a transaction that is rolled back at the
end, so the tests read one real import without paying for it again.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

import pytest
from django.db import transaction

from broadsheet.comments.models import Comment, Thread
from broadsheet.publishing.models import ArticlePage, Section, StandardPage
from broadsheet.wordpress.importer import import_wxr
from broadsheet.wordpress.models import WordPressId
from broadsheet.wordpress.wxr import Item, read_wxr
from tests.wordpress.helpers import comment_for, page_for
from tests.wordpress.test_wxr_reader import SEED, THEME, canary, write, wxr  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def imported(django_db_setup, django_db_blocker):
    """Both fixture files imported into one site; rolled back after the module."""
    with django_db_blocker.unblock(), transaction.atomic():
        reports = {"theme": import_wxr(path=THEME), "seed": import_wxr(path=SEED)}
        yield reports
        transaction.set_rollback(True)


@pytest.fixture(scope="module")
def theme_items():
    return {r.wp_id: r for r in read_wxr(THEME) if isinstance(r, Item)}


# --- the theme unit test data -------------------------------------------------------------------


def test_theme_posts_pages_and_terms_are_all_there(imported):
    report = imported["theme"]
    articles = ArticlePage.objects.filter(
        pk__in=WordPressId.objects.filter(kind="post").values("object_id")
    )
    assert report.counts["posts.live"] == 55
    assert report.counts["posts.private"] == 1  # 1168, password-protected
    assert report.counts["posts.scheduled"] == 1  # 1153
    assert report.counts["posts.draft"] == 1  # 1164
    assert articles.filter(live=True).count() == 56 + 2  # + the seed's two posts
    assert report.counts["pages.live"] == 21
    assert StandardPage.objects.count() == 21
    assert report.counts["skipped.nav_menu_item"] == 70
    assert report.counts["file.attachment"] == 37
    assert report.counts["attachments.kept_at_old_address"] == 37
    assert report.counts["sections.created"] == 68
    assert Section.objects.filter(parent__isnull=False).count() == 10
    assert report.counts["tags.created"] == 114  # 110 declared + 4 used but not declared
    assert report.counts["people.created"] == 2


def test_theme_page_hierarchy_is_kept(imported):
    level3 = page_for(172, "page")
    assert level3.get_parent().specific == page_for(173, "page")
    assert page_for(173, "page").get_parent().specific == page_for(174, "page")
    level3_greek = page_for(1813, "page")  # Επίπεδο 3 → Επίπεδο 2 → Ελληνικά
    assert level3_greek.get_parent().specific == page_for(1811, "page")
    assert level3_greek.get_parent().get_parent().specific == page_for(1809, "page")


def test_theme_comments_by_status_type_and_thread(imported, theme_items):
    site = "wpthemetestdata.wordpress.com"
    report = imported["theme"]
    assert report.counts["comments.approved"] == 30
    assert report.counts["comments.pending"] == 3
    assert report.counts["comment_types.comment"] == 29
    assert report.counts["comment_types.pingback"] == 2
    assert report.counts["comment_types.trackback"] == 2
    replies = 0
    for item in theme_items.values():
        for c in item.comments:
            mine = comment_for(c.wp_id, site)
            if c.parent_wp_id:
                replies += 1
                assert mine.parent == comment_for(c.parent_wp_id, site), c.wp_id
            else:
                assert mine.parent is None
    assert replies == 10
    deepest = comment_for(915, site)
    assert deepest.depth == 10
    # Four comments name a signed-in commenter who is not among the file's authors.
    assert any("24783058" in n for n in report.notes["threads"])
    assert (
        Comment.objects.filter(pk__in=[comment_for(c, site).pk for c in (904, 905)])
        .filter(user__isnull=False)
        .count()
        == 0
    )


def test_theme_hard_cases(imported, client):
    long_title = page_for(1175)
    assert long_title.title == (
        "Taumatawhakatangihangakoauauotamateaturipukakapikimaungahoronukupokaiwhenuakitanatahu"
    )
    assert client.get(long_title.url).status_code == 200

    protected = page_for(1168)
    assert protected.get_view_restrictions().exists()
    assert not ArticlePage.objects.published().filter(pk=protected.pk).exists()
    assert Thread.objects.get(page_id=protected.pk).is_open is False
    assert any("1168" in n for n in imported["theme"].notes["private"])

    scheduled = page_for(1153)
    assert not scheduled.live
    assert scheduled.go_live_at == datetime(2030, 1, 1, 19, 0, 18, tzinfo=UTC)
    assert scheduled.latest_revision.approved_go_live_at == scheduled.go_live_at

    assert page_for(1152).sections.count() == 63
    assert page_for(1151).tags.count() == 45
    assert page_for(1241).is_sticky

    markup = page_for(1178).body
    for tag in ("h1", "h2", "h3", "h4", "h5", "h6", "table", "dl", "pre", "code", "sup"):
        assert f"<{tag}" in markup, tag
    assert page_for(1173).title == "Markup: Title With Markup"
    assert page_for(1169).title == "(no title)"


def test_theme_bodies_have_no_shortcodes_or_block_markup_left(imported):
    for page in ArticlePage.objects.all():
        for leftover in ("[caption", "[gallery", "[audio", "[video", "[embed", "<!--"):
            assert leftover not in page.body, (page.title, leftover)
    assert any("[simple]" in n for n in imported["theme"].notes["unknown shortcodes"])


def test_sticky_post_leads_the_front_page(imported, client):
    html = client.get("/").content.decode()
    first = re.search(r'class="entry-title"><a href="([^"]+)"', html) or re.search(
        r"<h2[^>]*>\s*<a href=\"([^\"]+)\"", html
    )
    assert first and first.group(1) == page_for(1241).url


# --- the seed article ---------------------------------------------------------------------------


def test_seed_comments_keep_their_threads(imported):
    site = "127.0.0.1:8081"
    wp_comments = [c for r in read_wxr(SEED) if isinstance(r, Item) for c in r.comments]
    assert len(wp_comments) == 100
    for c in wp_comments:
        mine = comment_for(c.wp_id, site)
        expected = comment_for(c.parent_wp_id, site) if c.parent_wp_id else None
        assert mine.parent == expected
        assert mine.author_name == c.author
        assert mine.created_at == c.date_gmt
    article = page_for(4, site_key=site)
    thread = Thread.objects.get(page_id=article.pk)
    depths = Counter(thread.comments.values_list("depth", flat=True))
    assert depths == {1: 27, 2: 26, 3: 20, 4: 13, 5: 14}
    assert thread.comments.filter(user__isnull=False).count() == 2
    assert article.url == (
        "/2017/11/20/greetings-from-lugansk-communists-to-workers-world-party-2017-conference/"
    )


def test_seed_article_page_shows_the_hundred_comments(imported, client):
    article = page_for(4, site_key="127.0.0.1:8081")
    html = client.get(article.url).content.decode()
    assert html.count('class="comment-body') == 100
    assert "@example" not in html  # commenters' email never shown


# --- old addresses ------------------------------------------------------------------------------


def test_every_old_post_address_redirects_to_its_article(imported, client, theme_items):
    checked = 0
    for item in theme_items.values():
        if item.post_type != "post" or item.status != "publish" or "?" in item.link:
            continue
        page = page_for(item.wp_id)
        if page.get_view_restrictions().exists():
            continue
        path = item.link.split("wordpress.com", 1)[1]
        response = client.get(path)
        if path == page.url:
            assert response.status_code == 200, path
        else:
            assert response.status_code == 301, path
            assert response["Location"].endswith(page.url), path
        checked += 1
    assert checked == 55


@pytest.mark.parametrize(
    ("old", "target"),
    [
        ("/?p=1241", ("post", 1241)),
        ("/?page_id=155", ("page", 155)),
        ("/?p=1241&utm_source=x", ("post", 1241)),
        ("/2012/01/07/template-sticky/feed/", ("post", 1241)),
        ("/2013/01/11/markup-html-tags-and-formatting/", ("post", 1178)),  # UTC day differs
    ],
)
def test_old_query_and_feed_addresses_redirect(imported, client, old, target):
    kind, wp_id = target
    page = page_for(wp_id, kind)
    response = client.get(old)
    assert response.status_code == 301
    assert response["Location"].endswith(page.url)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/category/parent-category/child-category-03/", "/section/child-category-03/"),
        ("/category/uncategorized/", "/section/uncategorized/"),
        ("/feed/rss2/", "/feed/"),
        ("/comments/feed/", "/feed/"),
        ("/author/themedemos/", "/author/themedemos/"),
        ("/?m=201301", "/2013/01/"),
        ("/?cat=1&utm_source=x", "/section/uncategorized/"),
        ("/?s=solidarity", "/search/?q=solidarity"),
    ],
)
def test_old_archive_and_feed_addresses_answer(imported, client, old, new):
    response = client.get(old)
    if old == new:
        assert response.status_code == 200
    else:
        assert response.status_code == 301, old
        assert response["Location"].endswith(new)
        assert client.get(new).status_code == 200


def test_tags_keep_their_slug_and_pages_their_address(imported, client):
    assert client.get("/tag/alignment-2/").status_code == 200
    assert client.get("/about/").status_code == 200
    assert client.get("/about/page-with-comments/").status_code == 200
    assert client.get("/level-1/level-2/level-3/").status_code == 200


def test_pingbacks_and_trackbacks_are_shown_as_such(imported, client):
    from bs4 import BeautifulSoup

    page = page_for(1149)
    html = BeautifulSoup(client.get(page.url).content, "html.parser")
    kinds = [b.get_text(" ", strip=True) for b in html.select(".comment-ping .comment-author")]
    assert len(kinds) == 4
    assert sum(k.startswith("Pingback:") for k in kinds) == 2
    assert sum(k.startswith("Trackback:") for k in kinds) == 2
    # No avatar and no reply link on a ping, as in WordPress.
    assert not html.select(".comment-ping .avatar")
    assert not html.select(".comment-ping .comment-reply-link")


def test_no_old_address_redirects_to_itself_or_to_an_unpublished_page(imported):
    from wagtail.contrib.redirects.models import Redirect

    rows = list(Redirect.objects.select_related("redirect_page"))
    assert len(rows) > 400
    for row in rows:
        assert Redirect.normalise_path(row.link) != row.old_path, row.old_path
        if row.redirect_page is not None:
            page = row.redirect_page
            assert page.live and not page.get_view_restrictions().exists(), row.old_path
