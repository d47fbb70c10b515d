"""The publication as readers, feed readers and search engines see it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from bs4 import BeautifulSoup
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.text import slugify

from broadsheet.comments.models import Comment, Thread
from broadsheet.publishing.demo import SEED_SLUG, SEED_TITLE, load_demo, reset_demo_editor
from broadsheet.publishing.models import (
    ArticleAuthor,
    ArticlePage,
    HomePage,
    Person,
    Section,
)

SEED_URL = f"/2017/11/20/{SEED_SLUG}/"
XSS_TITLE = "</script><script>alert(1)</script>"


# --- Fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def home(db) -> HomePage:
    """The demo publication, served at http://testserver/ (the test client's host)."""
    load_demo(base_url="http://testserver")
    return HomePage.objects.get()


@pytest.fixture
def person_factory(db):
    def make(name: str) -> Person:
        return Person.objects.get_or_create(slug=slugify(name), defaults={"name": name})[0]

    return make


@pytest.fixture
def article_factory(home):
    """Makes an article under the demo home page: published, draft (publish=False) or
    scheduled (go_live_at in the future)."""
    counter = iter(range(1, 10_000))

    def make(
        *,
        title: str | None = None,
        publish: bool = True,
        go_live_at=None,
        date=None,
        authors=(),
        sections=(),
        tags=(),
        **fields,
    ) -> ArticlePage:
        n = next(counter)
        title = title or f"Report number {n}"
        article = ArticlePage(
            title=title,
            slug=f"{slugify(title) or 'article'}-{n}",
            standfirst=fields.pop("standfirst", f"Standfirst of report {n}."),
            body=fields.pop("body", f"<p>Body of report {n}.</p>"),
            date=date or datetime(2018, 3, 1, 12, 0, tzinfo=UTC) + timedelta(days=n),
            live=False,
            go_live_at=go_live_at,
            **fields,
        )
        article.article_authors = [
            ArticleAuthor(person=p, sort_order=i) for i, p in enumerate(authors)
        ]
        article.sections = list(sections)
        if tags:
            article.tags.add(*tags)
        home.add_child(instance=article)
        revision = article.save_revision()
        if publish:
            revision.publish()
        return ArticlePage.objects.get(pk=article.pk)

    return make


def html_of(response) -> str:
    return response.content.decode()


def soup_of(response) -> BeautifulSoup:
    return BeautifulSoup(response.content, "html.parser")


def json_ld(response) -> dict:
    script = soup_of(response).find("script", type="application/ld+json")
    assert script is not None
    return json.loads(script.string)


# --- Demo content --------------------------------------------------------------------------------


def _counts() -> dict[str, int]:
    from taggit.models import Tag
    from wagtail.models import Page, Revision, Site

    return {
        "pages": Page.objects.count(),
        "articles": ArticlePage.objects.count(),
        "sections": Section.objects.count(),
        "people": Person.objects.count(),
        "tags": Tag.objects.count(),
        "sites": Site.objects.count(),
        "revisions": Revision.objects.count(),
        "threads": Thread.objects.count(),
        "comments": Comment.objects.count(),
    }


@pytest.mark.django_db
def test_demo_loads_twice_without_duplicating():
    first = load_demo(base_url="http://testserver")
    counts = _counts()
    second = load_demo(base_url="http://testserver")

    assert _counts() == counts
    assert first == second == "2 articles, 2 sections, 7 comments"
    assert counts["articles"] == 2
    assert counts["comments"] >= 7


@pytest.mark.django_db
def test_demo_replaces_the_wagtail_welcome_page_and_serves_the_site():
    from wagtail.models import Page, Site

    load_demo(base_url="http://127.0.0.1:8011")

    site = Site.objects.get(is_default_site=True)
    assert (site.hostname, site.port) == ("127.0.0.1", 8011)
    assert isinstance(site.root_page.specific, HomePage)
    assert not Page.objects.filter(title__startswith="Welcome").exists()


@pytest.mark.django_db
def test_demo_discussion_is_threaded_three_levels_deep(home):
    seed = ArticlePage.objects.get(slug=SEED_SLUG)
    thread = Thread.objects.get(page_id=seed.pk)
    visible = Comment.objects.visible().for_thread(thread)
    assert visible.count() >= 6
    assert visible.filter(depth=3).exists()


@pytest.mark.django_db
def test_reset_demo_editor_gives_a_new_password_each_time():
    username, password = reset_demo_editor()
    again_username, again_password = reset_demo_editor()

    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username=username)
    assert username == again_username == "editor"
    assert password != again_password
    assert user.is_superuser and user.is_staff
    assert user.check_password(again_password)


# --- The article page ----------------------------------------------------------------------------


def test_article_page_shows_title_standfirst_byline_body_and_signature(client, home):
    response = client.get(SEED_URL)

    assert response.status_code == 200
    html = html_of(response)
    soup = soup_of(response)
    assert '<article lang="en">' in html
    assert soup.find("h1").get_text() == SEED_TITLE
    assert "Solidarity message to the national conference of Workers World Party" in html
    assert soup.select_one(".byline").get_text(" ", strip=True).startswith("By Maxim Chalenko")
    assert soup.select_one(".byline time")["datetime"].startswith("2017-11-20")
    assert "the 100th anniversary of the Great October Socialist Revolution" in html
    signature = soup.select_one(".signature")
    assert "With fraternal greetings," in signature.get_text()
    assert signature.find("br") is not None  # line breaks kept
    assert "Maxim Chalenko" in signature.get_text()
    assert "Translated by Greg Butterfield" in html


def test_article_page_links_sections_tags_and_author_pages(client, home):
    soup = soup_of(client.get(SEED_URL))
    hrefs = {a["href"] for a in soup.find_all("a", href=True)}

    assert "/section/international-solidarity/" in hrefs
    assert "/tag/lugansk/" in hrefs
    assert "/author/maxim-chalenko/" in hrefs


def test_article_html_lang_follows_the_article_language(client, home, article_factory):
    article = article_factory(title="Привет", language="ru")
    soup = soup_of(client.get(article.url))

    assert soup.find("html")["lang"] == "ru"
    assert soup.find("article", attrs={"lang": "ru"}) is not None


def test_article_json_ld_describes_a_news_article(client, home):
    data = json_ld(client.get(SEED_URL))

    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "NewsArticle"
    assert data["headline"] == SEED_TITLE
    assert data["url"] == f"http://testserver{SEED_URL}"
    assert data["datePublished"].startswith("2017-11-20")
    assert data["author"][0]["name"] == "Maxim Chalenko"
    assert data["translator"]["name"] == "Greg Butterfield"
    assert data["translationOfWork"]["inLanguage"] == "ru"
    assert data["inLanguage"] == "en"


def test_article_has_opengraph_tags(client, home):
    soup = soup_of(client.get(SEED_URL))

    def og(prop: str) -> str:
        return soup.find("meta", property=prop)["content"]

    assert og("og:type") == "article"
    assert og("og:title") == SEED_TITLE
    assert og("og:url") == f"http://testserver{SEED_URL}"
    assert og("og:description").startswith("Solidarity message")
    assert og("article:published_time").startswith("2017-11-20")
    assert soup.find("link", rel="canonical")["href"] == f"http://testserver{SEED_URL}"


def test_headline_cannot_break_out_of_the_json_ld_script(client, home, article_factory):
    article = article_factory(title=XSS_TITLE, standfirst="<b>&</b>")
    response = client.get(article.url)

    html = html_of(response)
    assert "<script>alert(1)</script>" not in html
    assert "</script><script>" not in html
    data = json_ld(response)  # still valid JSON, holding the title as written
    assert data["headline"] == XSS_TITLE
    assert data["description"] == "<b>&</b>"
    scripts = soup_of(response).find_all("script")
    assert all(s.get("src") or s.get("type") == "application/ld+json" for s in scripts)


def test_public_pages_have_no_inline_script_or_style(client, home):
    for url in ["/", SEED_URL, "/section/news/", "/search/?q=lugansk", "/no-such-page/"]:
        response = client.get(url)
        soup = soup_of(response)
        assert soup.find("style") is None, url
        assert soup.select("[style]") == [], url
        for script in soup.find_all("script"):
            assert script.get("src") or script.get("type") == "application/ld+json", url
        assert soup.find("meta", attrs={"name": "viewport"}) is not None, url
        assert soup.find("link", rel="stylesheet")["href"].endswith("broadsheet/css/site.css")


def test_article_page_is_the_same_for_every_anonymous_reader(client, home, django_user_model):
    from django.test import Client

    first = client.get(SEED_URL)
    second = Client().get(SEED_URL)

    assert first.content == second.content
    assert "csrfmiddlewaretoken" not in html_of(first)
    assert not first.cookies


def test_article_page_queries_do_not_grow_with_authors_tags_or_comments(
    client, home, article_factory, person_factory
):
    news = Section.objects.get(slug="news")
    solidarity = Section.objects.get(slug="international-solidarity")
    small = article_factory(authors=[person_factory("One Writer")], sections=[news], tags=["one"])
    big = article_factory(
        authors=[person_factory(name) for name in ("Ann Able", "Bo Baker", "Cy Cole")],
        sections=[news, solidarity],
        tags=["one", "two", "three", "four", "five"],
    )
    thread = Thread.objects.get(page_id=big.pk)
    parent = None
    for n in range(6):
        parent = Comment.objects.create(
            thread=thread,
            parent=parent,
            status=Comment.Status.APPROVED,
            author_name=f"Reader {n}",
            author_email=f"r{n}@example.org",
            text="Agreed.",
            created_at=timezone.now(),
        )

    def queries(url: str) -> int:
        client.get(url)  # warm caches (site root paths) the same way for both
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    assert queries(big.url) == queries(small.url)


def test_translation_links_to_its_original_and_back(client, home, article_factory):
    original = article_factory(title="Приветствие", language="ru")
    translation = article_factory(
        title="A greeting",
        original_article=original,
        translator="Greg Butterfield",
        original_language="ru",
    )

    translated = soup_of(client.get(translation.url))
    assert translated.select_one(".original a")["href"] == original.url
    assert "Translated by Greg Butterfield" in translated.get_text()
    in_original = soup_of(client.get(original.url))
    assert in_original.select_one(".translations a")["href"] == translation.url
    assert in_original.find("link", hreflang="en")["href"] == translation.full_url


def test_original_url_elsewhere_is_linked(client, home, article_factory):
    article = article_factory(
        original_url="https://example.org/ru/original/", original_language="ru"
    )

    link = soup_of(client.get(article.url)).select_one(".original a")
    assert link["href"] == "https://example.org/ru/original/"
    assert link["hreflang"] == "ru"


# --- Addresses ------------------------------------------------------------------------------------


def test_article_address_is_its_publication_date_and_slug(home):
    article = ArticlePage.objects.get(slug=SEED_SLUG)

    assert article.url == SEED_URL
    assert article.full_url == f"http://testserver{SEED_URL}"


def test_slug_only_address_redirects_to_the_dated_address(client, home):
    response = client.get(f"/{SEED_SLUG}/")

    assert response.status_code == 301
    assert response["Location"] == SEED_URL


def test_wrong_date_redirects_to_the_right_one(client, home):
    response = client.get(f"/2017/11/21/{SEED_SLUG}/")

    assert response.status_code == 301
    assert response["Location"] == SEED_URL


def test_unknown_article_is_not_found(client, home):
    assert client.get("/2017/11/20/no-such-article/").status_code == 404
    assert client.get("/no-such-article/").status_code == 404


# --- Listings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/section/international-solidarity/",
        "/tag/lugansk/",
        "/2017/",
        "/2017/11/",
        "/2017/11/20/",
        "/author/maxim-chalenko/",
    ],
)
def test_listing_pages_list_the_article(client, home, url):
    response = client.get(url)

    assert response.status_code == 200
    links = [a["href"] for a in soup_of(response).select(".teaser-title a")]
    assert SEED_URL in links


def test_listings_leave_out_articles_of_other_days_sections_and_tags(client, home):
    assert SEED_URL not in html_of(client.get("/2017/11/22/"))
    assert SEED_URL not in html_of(client.get("/section/news/"))
    assert SEED_URL not in html_of(client.get("/tag/newark/"))
    assert SEED_URL not in html_of(client.get("/2018/"))


@pytest.mark.parametrize(
    "url", ["/2017/13/", "/2017/02/30/", "/section/nope/", "/tag/nope/", "/author/nope/"]
)
def test_listing_of_something_that_does_not_exist_is_not_found(client, home, url):
    assert client.get(url).status_code == 404


def test_home_page_is_paginated(client, home, article_factory, settings):
    settings.BROADSHEET_PAGE_SIZE = 2
    for _ in range(3):
        article_factory()  # 5 articles in all → 3 pages

    def titles(url):
        response = client.get(url)
        assert response.status_code == 200, url
        return [a.get_text() for a in soup_of(response).select(".teaser-title a")]

    first, second, third = titles("/"), titles("/?page=2"), titles("/?page=3")
    assert len(first) == len(second) == 2
    assert len(third) == 1
    assert third == [SEED_TITLE]  # oldest last
    assert len(set(first + second + third)) == 5
    nav = soup_of(client.get("/?page=2")).select_one(".pagination")
    assert nav.find("a", rel="next")["href"] == "?page=3"
    assert nav.find("a", rel="prev")["href"] == "?"


@pytest.mark.parametrize("page", ["4", "0", "-1", "abc", "1.5", "99999999999999999999"])
def test_invalid_page_number_is_not_found(client, home, settings, page):
    settings.BROADSHEET_PAGE_SIZE = 2
    assert client.get(f"/?page={page}").status_code == 404


def test_section_listing_is_paginated(client, home, article_factory, settings):
    settings.BROADSHEET_PAGE_SIZE = 2
    news = Section.objects.get(slug="news")
    for _ in range(3):
        article_factory(sections=[news])

    assert len(soup_of(client.get("/section/news/")).select(".teaser")) == 2
    assert len(soup_of(client.get("/section/news/?page=2")).select(".teaser")) == 2
    assert client.get("/section/news/?page=3").status_code == 404


def test_search_finds_published_articles(client, home):
    response = client.get("/search/", {"q": "Lugansk"})

    assert response.status_code == 200
    assert SEED_URL in [a["href"] for a in soup_of(response).select(".teaser-title a")]
    assert "csrfmiddlewaretoken" not in html_of(response)


def test_search_without_a_query_shows_the_form(client, home):
    response = client.get("/search/")

    assert response.status_code == 200
    assert soup_of(response).find("input", attrs={"name": "q"}) is not None
    assert not soup_of(response).select(".teaser")


# --- Feeds ---------------------------------------------------------------------------------------


def test_rss_feed_shows_the_article(client, home):
    response = client.get("/feed/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/rss+xml")
    feed = feedparser.parse(response.content)
    assert feed.version == "rss20"
    entry = next(e for e in feed.entries if e.title == SEED_TITLE)
    assert entry.link == f"http://testserver{SEED_URL}"
    assert entry.summary.startswith("Solidarity message")
    assert "Great October Socialist Revolution" in entry.content[0].value
    assert entry.author == "Maxim Chalenko"
    assert {"International solidarity", "Lugansk"} <= {t.term for t in entry.tags}


def test_atom_feed_shows_the_article(client, home):
    response = client.get("/feed/atom/")

    assert response.status_code == 200
    feed = feedparser.parse(response.content)
    assert feed.version == "atom10"
    entry = next(e for e in feed.entries if e.title == SEED_TITLE)
    assert entry.link == f"http://testserver{SEED_URL}"
    assert entry.summary.startswith("Solidarity message")
    assert "Great October Socialist Revolution" in entry.content[0].value


def test_feeds_are_newest_first(client, home):
    feed = feedparser.parse(client.get("/feed/").content)

    assert [e.title for e in feed.entries][-1] == SEED_TITLE


@pytest.mark.parametrize("url", ["/section/news/feed/", "/section/news/feed/atom/"])
def test_section_feed_lists_only_that_sections_articles(client, home, url):
    feed = feedparser.parse(client.get(url).content)

    titles = [e.title for e in feed.entries]
    assert titles and SEED_TITLE not in titles
    assert "News" in feed.feed.title


def test_section_feed_of_unknown_section_is_not_found(client, home):
    assert client.get("/section/nope/feed/").status_code == 404


def test_feed_links_are_advertised_in_the_page_head(client, home):
    soup = soup_of(client.get("/"))

    assert soup.find("link", type="application/rss+xml")["href"] == "/feed/"
    assert soup.find("link", type="application/atom+xml")["href"] == "/feed/atom/"
    section = soup_of(client.get("/section/news/"))
    assert "/section/news/feed/" in [
        link["href"] for link in section.find_all("link", type="application/rss+xml")
    ]


def test_feed_content_has_absolute_links(client, home, article_factory):
    seed = ArticlePage.objects.get(slug=SEED_SLUG)
    article_factory(title="Linking", body=f'<p><a linktype="page" id="{seed.pk}">see</a></p>')

    feed = feedparser.parse(client.get("/feed/").content)
    entry = next(e for e in feed.entries if e.title == "Linking")
    assert f'href="http://testserver{SEED_URL}"' in entry.content[0].value


def test_sitemap_lists_the_dated_article_address(client, home):
    response = client.get("/sitemap.xml")

    assert response.status_code == 200
    assert f"<loc>http://testserver{SEED_URL}</loc>" in html_of(response)


# --- What readers may not see --------------------------------------------------------------------


def test_draft_article_is_not_visible(client, home, article_factory):
    draft = article_factory(title="Unfinished draft", publish=False)

    assert not draft.live
    assert client.get(f"/2018/03/02/{draft.slug}/").status_code == 404
    assert client.get(f"/{draft.slug}/").status_code == 404
    assert "Unfinished draft" not in html_of(client.get("/"))
    assert "Unfinished draft" not in html_of(client.get("/search/?q=Unfinished"))


def test_draft_article_is_not_in_feeds(client, home, article_factory):
    article_factory(title="Unfinished draft", publish=False)

    for url in ["/feed/", "/feed/atom/"]:
        titles = [e.title for e in feedparser.parse(client.get(url).content).entries]
        assert "Unfinished draft" not in titles
        assert SEED_TITLE in titles


def test_scheduled_article_is_not_visible_before_it_goes_live(client, home, article_factory):
    later = timezone.now() + timedelta(days=2)
    scheduled = article_factory(title="Embargoed report", go_live_at=later, date=later)

    assert not scheduled.live
    assert client.get(scheduled.get_url()).status_code == 404
    assert "Embargoed report" not in html_of(client.get("/"))
    titles = [e.title for e in feedparser.parse(client.get("/feed/").content).entries]
    assert "Embargoed report" not in titles


def test_unpublished_article_disappears_and_closes_its_discussion(client, home):
    seed = ArticlePage.objects.get(slug=SEED_SLUG)
    assert Thread.objects.get(page_id=seed.pk).is_open

    seed.unpublish()

    assert client.get(SEED_URL).status_code == 404
    assert not Thread.objects.get(page_id=seed.pk).is_open


def test_publishing_opens_the_thread_at_the_article_address(home, article_factory):
    article = article_factory(title="Fresh report")

    thread = Thread.objects.get(page_id=article.pk)
    assert thread.url == article.url
    assert thread.title == "Fresh report"
    assert thread.is_open


def test_article_with_comments_disallowed_has_a_closed_thread(home, article_factory):
    article = article_factory(allow_comments=False)

    assert not Thread.objects.get(page_id=article.pk).is_open


def test_private_article_is_not_listed_or_in_feeds(client, home, article_factory):
    from wagtail.models import PageViewRestriction

    secret = article_factory(title="Members only")
    PageViewRestriction.objects.create(
        page=secret, restriction_type=PageViewRestriction.PASSWORD, password="s3cret"
    )

    assert "Members only" not in html_of(client.get("/"))
    titles = [e.title for e in feedparser.parse(client.get("/feed/").content).entries]
    assert "Members only" not in titles
    assert "Members only" not in html_of(client.get(secret.url))  # the password form instead


def test_not_found_page_uses_the_site_design(client, home):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert soup_of(response).find("h1").get_text() == "Page not found"


# --- Editors -------------------------------------------------------------------------------------


@pytest.fixture
def editor_client(client, home):
    from django.contrib.auth import get_user_model

    editor = get_user_model().objects.create_superuser("chief", "chief@example.org", "pw")
    client.force_login(editor)
    return client


def test_article_editor_shows_every_field_in_tabs(editor_client, home):
    seed = ArticlePage.objects.get(slug=SEED_SLUG)

    response = editor_client.get(f"/admin/pages/{seed.pk}/edit/")

    assert response.status_code == 200
    html = html_of(response)
    for tab in [
        "Content",
        "Sections &amp; tags",
        "Language &amp; translation",
        "Promote",
        "Settings",
    ]:
        assert tab in html
    for field in [
        "standfirst",
        "body",
        "signature",
        "date",
        "article_authors",
        "sections",
        "tags",
        "language",
        "original_language",
        "translator",
        "original_article",
        "original_url",
        "allow_comments",
        "go_live_at",
        "expire_at",
        "slug",
    ]:
        assert f'name="{field}' in html, field


@pytest.mark.parametrize("model", ["section", "person"])
def test_section_and_person_snippets_can_be_edited(editor_client, home, model):
    assert editor_client.get(f"/admin/snippets/publishing/{model}/").status_code == 200
    assert editor_client.get(f"/admin/snippets/publishing/{model}/add/").status_code == 200


def test_new_article_form_renders(editor_client, home):
    response = editor_client.get(f"/admin/pages/add/publishing/articlepage/{home.pk}/")

    assert response.status_code == 200


def test_draft_preview_renders_without_opening_its_discussion(home, article_factory):
    draft = article_factory(title="Draft to preview", publish=False)

    response = draft.make_preview_request()

    assert response.status_code == 200
    assert "Draft to preview" in response.content.decode()
    thread = Thread.objects.filter(page_id=draft.pk).first()
    assert thread is None or not thread.is_open


def test_preview_of_an_unsaved_article_creates_no_thread(home):
    from wagtail.models import Page

    article = ArticlePage(title="Not saved yet", slug="not-saved-yet", body="<p>Text.</p>")
    article.depth = home.depth + 1
    article.path = Page._get_children_path_interval(home.path)[1]
    threads = Thread.objects.count()

    response = article.make_preview_request()

    assert response.status_code == 200
    assert "Not saved yet" in response.content.decode()
    assert Thread.objects.count() == threads


def test_home_page_preview_lists_articles(home):
    response = home.make_preview_request()

    assert response.status_code == 200
    assert SEED_TITLE in response.content.decode()


@pytest.mark.django_db
def test_demo_loads_into_a_flushed_database():
    """Transactional tests (live_server) flush the tables Wagtail's migrations filled."""
    from wagtail.models import Locale, Page, Site

    Site.objects.all().delete()
    Page.objects.all().delete()
    Locale.objects.all().delete()

    assert load_demo(base_url="http://testserver") == "2 articles, 2 sections, 7 comments"
    assert Site.objects.get().root_page.specific_class is HomePage


def test_expired_article_is_hidden_before_the_scheduler_unpublishes_it(
    client, home, article_factory
):
    article = article_factory(title="Short-lived notice")
    ArticlePage.objects.filter(pk=article.pk).update(
        expire_at=timezone.now() - timedelta(minutes=1)
    )

    assert client.get(article.url).status_code == 404
    assert "Short-lived notice" not in html_of(client.get("/"))
    assert "Short-lived notice" not in html_of(client.get("/search/?q=notice"))
    titles = [e.title for e in feedparser.parse(client.get("/feed/").content).entries]
    assert "Short-lived notice" not in titles


def test_changing_the_slug_redirects_the_old_address(
    client, home, django_capture_on_commit_callbacks
):
    seed = ArticlePage.objects.get(slug=SEED_SLUG)
    seed.slug = "greetings-from-lugansk"
    with django_capture_on_commit_callbacks(execute=True):  # Wagtail makes redirects on commit
        seed.save_revision().publish()

    response = client.get(SEED_URL)

    assert response.status_code == 301
    assert response["Location"].endswith("/2017/11/20/greetings-from-lugansk/")
    assert client.get("/2017/11/20/greetings-from-lugansk/").status_code == 200
