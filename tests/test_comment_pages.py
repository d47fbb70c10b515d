"""Comments broken into pages, as WordPress does it: N top-level comments a page with all their
replies, page 1 the oldest, the default page at the article's own address, the others at
``comment-page-N/``; redirects, 404s, permalinks, ``?cpage=`` and a constant query count."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from wagtail.models import Site

from broadsheet.comments.models import Comment, Thread
from broadsheet.publishing.discussion import DiscussionSettings
from broadsheet.publishing.models import ArticlePage, StandardPage

pytestmark = pytest.mark.django_db


@pytest.fixture
def configure(home):
    def set_(**values) -> None:
        DiscussionSettings.objects.update_or_create(
            site=Site.objects.get(is_default_site=True), defaults=values
        )

    return set_


@pytest.fixture
def article(article_factory) -> ArticlePage:
    return article_factory(title="On the comment pages", slug="comment-pages")


@pytest.fixture
def comments(article, comment_factory):
    """Five top-level comments, oldest first (T1…T5), and replies to T1 (R1, then R1a under
    it) and to T4 (R4)."""
    thread = Thread.objects.get(page_id=article.pk)
    made = {}
    for n in range(1, 6):
        made[f"T{n}"] = comment_factory(thread, text=f"Top {n}.")
    made["R1"] = comment_factory(thread, parent=made["T1"], text="Reply to one.")
    made["R1a"] = comment_factory(thread, parent=made["R1"], text="Reply to the reply.")
    made["R4"] = comment_factory(thread, parent=made["T4"], text="Reply to four.")
    return made


def shown(response) -> list[str]:
    """The comments a page shows, in reading order, by their text."""
    return re.findall(r"<p>((?:Top \d|Reply to [a-z ]+)\.)</p>", response.content.decode())


def get(url: str, data=None, **extra):
    return Client().get(url, data, **extra)


# --- which comments each page shows --------------------------------------------------------


def test_without_pages_the_article_shows_every_comment_and_has_no_comment_pages(article, comments):
    assert shown(get(article.url)) == [
        "Top 1.",
        "Reply to one.",
        "Reply to the reply.",
        "Top 2.",
        "Top 3.",
        "Top 4.",
        "Reply to four.",
        "Top 5.",
    ]
    assert get(article.url + "comment-page-2/").status_code == 404
    response = get(article.url + "comment-page-1/")
    # Not permanent: turning pages on makes it a page of its own.
    assert response.status_code == 302 and response["Location"] == article.url


def test_last_page_is_the_default_and_pages_count_top_level_comments(configure, article, comments):
    configure(paginate=True, per_page=2)
    assert shown(get(article.url)) == ["Top 5."]
    assert shown(get(article.url + "comment-page-1/")) == [
        "Top 1.",
        "Reply to one.",
        "Reply to the reply.",
        "Top 2.",
    ]
    assert shown(get(article.url + "comment-page-2/")) == ["Top 3.", "Top 4.", "Reply to four."]
    # The count in the heading is the article's, not the page's.
    assert "8 responses to" in get(article.url + "comment-page-1/").content.decode()


def test_first_page_as_default(configure, article, comments):
    configure(paginate=True, per_page=2, default_page="first")
    assert shown(get(article.url))[0] == "Top 1."
    assert shown(get(article.url + "comment-page-3/")) == ["Top 5."]
    response = get(article.url + "comment-page-1/")
    assert (response.status_code, response["Location"]) == (301, article.url)


def test_newer_comments_at_the_top_reverse_the_top_level_only(configure, article, comments):
    configure(paginate=True, per_page=2, order="desc")
    assert shown(get(article.url + "comment-page-1/")) == [
        "Top 2.",
        "Top 1.",
        "Reply to one.",
        "Reply to the reply.",
    ]


def test_threading_off_pages_count_every_comment(configure, article, comments):
    configure(paginate=True, per_page=3, threaded=False, default_page="first")
    assert shown(get(article.url)) == ["Top 1.", "Top 2.", "Top 3."]
    assert shown(get(article.url + "comment-page-2/")) == ["Top 4.", "Top 5.", "Reply to one."]
    assert shown(get(article.url + "comment-page-3/")) == ["Reply to the reply.", "Reply to four."]


# --- replies whose top-level comment is hidden ------------------------------------------------


@pytest.fixture
def first_held(comments, comment_factory):
    """T1 is held again after its replies were approved; R1 gets a second reply, R1b, last."""
    comments["T1"].status = Comment.Status.PENDING
    comments["T1"].save()
    comments["R1b"] = comment_factory(
        comments["T1"].thread, parent=comments["T1"], text="Reply to one again."
    )
    return comments


EVERY_VISIBLE = [
    "Top 2.",
    "Top 3.",
    "Top 4.",
    "Reply to four.",
    "Top 5.",
    "Reply to one.",
    "Reply to the reply.",
    "Reply to one again.",
]


def test_replies_to_a_hidden_comment_show_at_the_top_level_without_pages(article, first_held):
    html = get(article.url).content.decode()
    assert shown(get(article.url)) == EVERY_VISIBLE
    assert "8 responses to" in html


def test_replies_to_a_hidden_comment_are_on_a_page_and_counted_there(
    configure, article, first_held
):
    """Each visible comment is on exactly one page, as without pages: the replies to the held
    T1 count as top-level comments (R1 with R1a under it, and R1b)."""
    configure(paginate=True, per_page=2, default_page="first")
    pages = [shown(get(article.url))]
    pages += [shown(get(f"{article.url}comment-page-{n}/")) for n in (2, 3)]
    assert pages == [
        ["Top 2.", "Top 3."],
        ["Top 4.", "Reply to four.", "Top 5."],
        ["Reply to one.", "Reply to the reply.", "Reply to one again."],
    ]
    assert get(article.url + "comment-page-4/").status_code == 404
    assert "8 responses to" in get(article.url + "comment-page-3/").content.decode()


def test_a_hidden_comments_replies_may_fall_on_two_pages(configure, article, first_held):
    configure(paginate=True, per_page=1)
    assert shown(get(article.url + "comment-page-5/")) == ["Reply to one.", "Reply to the reply."]
    assert shown(get(article.url)) == ["Reply to one again."]  # page 6, the last
    response = get(reverse("comments:permalink", args=[first_held["R1a"].pk]))
    assert response["Location"] == f"{article.url}comment-page-5/#comment-{first_held['R1a'].pk}"
    response = get(reverse("comments:permalink", args=[first_held["R1b"].pk]))
    assert response["Location"] == f"{article.url}#comment-{first_held['R1b'].pk}"


# --- addresses: one page, one address -------------------------------------------------------


def test_default_page_under_its_number_redirects_to_the_article(configure, article, comments):
    configure(paginate=True, per_page=2)
    response = get(article.url + "comment-page-3/")
    assert response.status_code == 302
    assert response["Location"] == article.url


def test_the_last_page_redirect_is_temporary_as_pages_grow(
    configure, article, comments, comment_factory
):
    """The last page is the default today; two more comments make it a page of its own, so a
    browser must not keep its redirect for ever (a 301 would be)."""
    configure(paginate=True, per_page=2)
    assert get(article.url + "comment-page-3/").status_code == 302
    thread = Thread.objects.get(page_id=article.pk)
    comment_factory(thread, text="Top 6.")
    comment_factory(thread, text="Top 7.")
    response = get(article.url + "comment-page-3/")
    assert response.status_code == 200
    assert shown(response) == ["Top 5.", "Top 6."]


@pytest.mark.parametrize("suffix", ["comment-page-4/", "comment-page-0/", "comment-page-01/"])
def test_pages_that_do_not_exist_are_404(configure, article, comments, suffix):
    configure(paginate=True, per_page=2)
    assert get(article.url + suffix).status_code == 404


def test_an_article_without_comments_has_one_page(configure, article):
    configure(paginate=True, per_page=2)
    assert get(article.url).status_code == 200
    assert get(article.url + "comment-page-1/").status_code == 302
    assert get(article.url + "comment-page-2/").status_code == 404


def test_navigation_links_and_canonical_address(configure, article, comments):
    configure(paginate=True, per_page=2)
    html = get(article.url + "comment-page-2/").content.decode()
    assert f'href="{article.url}comment-page-1/#comments" rel="prev">Older comments' in html
    assert f'href="{article.url}#comments" rel="next">Newer comments' in html
    assert f'<link rel="canonical" href="http://testserver{article.url}comment-page-2/">' in html

    last = get(article.url).content.decode()
    assert "Newer comments" not in last
    assert f'href="{article.url}comment-page-2/#comments" rel="prev"' in last
    assert f'<link rel="canonical" href="http://testserver{article.url}">' in last


def test_cpage_query_redirects_to_the_path_form(configure, article, comments):
    configure(paginate=True, per_page=2)
    response = get(article.url, {"cpage": "2"})
    assert response.status_code == 301
    assert response["Location"] == article.url + "comment-page-2/"
    response = get(article.url, {"cpage": "1", "replytocom": "5"})
    assert response["Location"] == article.url + "comment-page-1/?replytocom=5"
    # Nonsense is not redirected anywhere.
    assert get(article.url, {"cpage": "abc"}).status_code == 200


@pytest.mark.parametrize("path", ["//evil.example/", "/\\evil.example/", "/\t/evil.example/"])
def test_cpage_never_redirects_to_another_site(path):
    """``//evil.example/?cpage=2`` must not answer ``Location: //evil.example/comment-page-2/``
    (another site, to a browser)."""
    from django.test import RequestFactory

    from broadsheet.wordpress.middleware import LegacyQueryRedirectMiddleware

    request = RequestFactory().get("/", {"cpage": "2"})
    request.path = request.path_info = request.META["PATH_INFO"] = path
    passed_on = HttpResponse("the page itself")
    response = LegacyQueryRedirectMiddleware(lambda request: passed_on)(request)
    assert response is passed_on


def test_wrongly_dated_comment_page_redirects_to_the_right_date(configure, article, comments):
    configure(paginate=True, per_page=2)
    wrong = "/1999/01/01/" + article.slug + "/comment-page-1/"
    response = get(wrong)
    assert response.status_code == 301
    assert response["Location"] == article.url + "comment-page-1/"


def test_anonymous_readers_get_the_same_comment_page(configure, article, comments):
    configure(paginate=True, per_page=2)
    responses = [get(article.url + "comment-page-1/") for _ in range(5)]
    assert len({r.content for r in responses}) == 1
    assert all(not r.cookies for r in responses)
    assert "@example.org" not in responses[0].content.decode()


# --- permalinks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "suffix"),
    [("T1", "comment-page-1/"), ("R1a", "comment-page-1/"), ("R4", "comment-page-2/"), ("T5", "")],
)
def test_permalink_lands_on_the_page_holding_the_comment(configure, article, comments, key, suffix):
    configure(paginate=True, per_page=2)
    comment = comments[key]
    response = get(reverse("comments:permalink", args=[comment.pk]))
    assert response.status_code == 302
    assert response["Location"] == f"{article.url}{suffix}#comment-{comment.pk}"
    page = get(response["Location"].split("#")[0]).content.decode()
    assert f'id="comment-{comment.pk}"' in page


def test_permalink_without_pages_goes_to_the_article(article, comments):
    comment = comments["R4"]
    response = get(reverse("comments:permalink", args=[comment.pk]))
    assert response["Location"] == f"{article.url}#comment-{comment.pk}"


# --- cost ---------------------------------------------------------------------------------


def queries_for(url: str) -> int:
    client = Client()
    client.get(url)  # warm Wagtail's site cache
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_a_comment_page_costs_the_same_queries_however_many_replies(
    configure, article, comments, comment_factory, django_assert_max_num_queries
):
    configure(paginate=True, per_page=2)
    url = article.url + "comment-page-1/"
    before = queries_for(url)
    thread = Thread.objects.get(page_id=article.pk)
    for n in range(40):
        comment_factory(thread, parent=comments["T1"] if n % 2 else comments["R1"], text="More.")
    for n in range(10):
        comment_factory(thread, text=f"Later top-level {n}.")
    after = queries_for(url)
    print(f"queries per comment page: {before} before, {after} after 50 more comments")
    assert after == before
    with django_assert_max_num_queries(before):
        Client().get(url)
    assert get(url).content.decode().count("More.") == 40


# --- pages other than articles -------------------------------------------------------------


def test_a_standard_page_with_comments_has_comment_pages(configure, home, comment_factory):
    configure(paginate=True, per_page=1, default_page="first")
    page = StandardPage(title="About us", slug="about", allow_comments=True, live=False)
    home.add_child(instance=page)
    page.save_revision().publish()
    thread = Thread.objects.get(page_id=page.pk)
    comment_factory(thread, text="Top 1.")
    comment_factory(thread, text="Top 2.")
    url = StandardPage.objects.get(pk=page.pk).url
    assert shown(get(url)) == ["Top 1."]
    assert shown(get(url + "comment-page-2/")) == ["Top 2."]
    assert get(url + "comment-page-3/").status_code == 404
    assert Comment.objects.count() == 2
