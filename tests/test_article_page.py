"""The article page as anonymous readers get it: identical for all (K01), constant queries,
security headers on every route (C02), pending comments only for their own browser."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from broadsheet.comments.models import Comment, Thread

pytestmark = pytest.mark.django_db


@pytest.fixture
def article(db):
    """The demo's seed article thread (the page is published by the demo loader)."""
    from broadsheet.publishing.demo import load_demo

    load_demo(base_url="http://testserver")
    return Thread.objects.get(title__startswith="Greetings from Lugansk Communists")


def test_seed_article_page_has_the_discussion_with_the_seeds_wording(client, article):
    body = client.get(article.url).content.decode()
    count = Comment.objects.visible().filter(thread=article).count()
    assert f"{count} responses to “{article.title}”" in body
    assert ">Leave a Reply" in body
    assert "Fill in your details below or click an icon to log in:" in body
    assert "Your email address will not be published." in body
    assert 'value="Post Comment"' in body
    for label in (">Email <", ">Name <", ">Website<"):
        assert label in body


def test_anonymous_readers_get_byte_identical_pages_without_tokens(article, comment_data):
    bodies, cookies_set, csp = set(), 0, set()
    for _ in range(100):
        response = Client().get(article.url)
        assert response.status_code == 200
        bodies.add(response.content)
        cookies_set += len(response.cookies)
        csp.add(response["Content-Security-Policy"])
    assert len(bodies) == 1
    assert cookies_set == 0
    assert len(csp) == 1 and "nonce" not in csp.pop()
    body = bodies.pop().decode()
    for personal in (
        "csrfmiddlewaretoken",
        "csrftoken",
        "sessionid",
        "@example.org",
        "awaiting moderation",
        "/admin/comments/",
    ):
        assert personal not in body
    assert "Cookie" not in response.get("Vary", "")


def test_a_held_comment_is_shown_to_its_browser_only_and_marks_that_page_private(
    article, comment_data
):
    before = Client().get(article.url).content
    author = Client()
    author.post(reverse("comments:post"), comment_data(article, comment="Held for review."))
    own = author.get(article.url)
    assert "Held for review." in own.content.decode()
    assert "Your comment is awaiting moderation." in own.content.decode()
    assert "private" in own["Cache-Control"]
    stranger = Client().get(article.url)
    assert stranger.content == before
    assert "Held for review." not in stranger.content.decode()


def test_held_comment_is_not_shown_to_another_browser_with_a_copied_pending_cookie(
    article, comment_data
):
    author = Client()
    author.post(reverse("comments:post"), comment_data(article, comment="Held for review."))
    thief = Client()
    thief.cookies["bs_pending"] = author.cookies["bs_pending"].value
    assert "Held for review." not in thief.get(article.url).content.decode()


def test_email_and_ip_of_commenters_never_reach_the_page(article, comment_factory):
    comment_factory(article, email="secret-address@example.org")
    Comment.objects.update(ip_address="127.0.0.42", user_agent="SecretAgent/1.0")
    body = Client().get(article.url).content.decode()
    assert "secret-address@example.org" not in body
    assert "127.0.0.42" not in body
    assert "SecretAgent" not in body


def _queries_for(url: str) -> int:
    client = Client()
    client.get(url)  # warm caches that are not per-request (site root, content types)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_article_queries_do_not_grow_with_the_number_of_comments(article, comment_factory):
    Comment.objects.filter(thread=article).delete()
    for _ in range(3):
        comment_factory(article)
    few = _queries_for(article.url)
    parents = list(Comment.objects.filter(thread=article))
    for n in range(120):
        parent = parents[n % len(parents)] if n % 2 else None
        if parent is not None and parent.depth >= 5:
            parent = None
        parents.append(
            comment_factory(
                article, parent=parent, text=f"Comment {n}", url=f"https://reader{n}.example"
            )
        )
    many = _queries_for(article.url)
    assert Comment.objects.visible().filter(thread=article).count() == 123
    assert 0 < many == few


def test_reply_form_without_javascript_sits_under_the_comment(article, client):
    parent = Comment.objects.visible().filter(thread=article, parent=None).first()
    body = client.get(f"{article.url}?replytocom={parent.pk}").content.decode()
    comment_at = body.index(f'id="comment-{parent.pk}"')
    form_at = body.index('id="respond"')
    assert form_at > comment_at
    assert f'Leave a Reply to <a href="#comment-{parent.pk}">{parent.author_name}</a>' in body
    assert f'name="comment_parent" id="comment_parent" value="{parent.pk}"' in body


@pytest.mark.parametrize("bogus", ["abc", "999999", "-1", "1 OR 1=1"])
def test_bogus_replytocom_shows_the_ordinary_form(article, client, bogus):
    response = client.get(article.url, {"replytocom": bogus})
    assert response.status_code == 200
    assert 'name="comment_parent" id="comment_parent" value="0"' in response.content.decode()


def test_closed_article_shows_no_form(article, client):
    from broadsheet.publishing.models import ArticlePage

    page = ArticlePage.objects.get(pk=article.page_id)
    page.allow_comments = False
    page.save_revision().publish()
    body = client.get(article.url).content.decode()
    assert "Comments are closed." in body
    assert 'id="commentform"' not in body
    assert not Thread.objects.get(pk=article.pk).is_open


# --- C02: security headers on every kind of route ----------------------------------------------

ROUTES = ["article", "/", "/feed/", "/admin/login/", "/comments/session/", "/no-such-page/"]


@pytest.mark.parametrize("route", ROUTES)
def test_security_headers_are_on_every_route(article, client, settings, route):
    settings.SECURE_HSTS_SECONDS = 31536000
    url = article.url if route == "article" else route
    response = client.get(url, secure=True)
    assert response.status_code in (200, 404)
    missing = [
        name
        for name in (
            "Content-Security-Policy",
            "X-Content-Type-Options",
            "Referrer-Policy",
            "Cross-Origin-Opener-Policy",
            "Strict-Transport-Security",
            "X-Frame-Options",
        )
        if name not in response
    ]
    assert missing == []
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors" in csp
    if not url.startswith("/admin/"):
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin-allow-popups"


def _article_page(thread):
    from broadsheet.publishing.models import ArticlePage

    return ArticlePage.objects.get(pk=thread.page_id)


def test_unpublished_article_takes_no_comments(article, client, comment_data):
    _article_page(article).unpublish()
    response = client.post(reverse("comments:post"), comment_data(article, comment="Late."))
    assert response.status_code == 403
    assert "Comments are closed on this article." in response.content.decode()
    assert not Comment.objects.filter(text="Late.").exists()


def test_private_article_takes_no_comments_until_made_public_again(article, client, comment_data):
    from wagtail.models import PageViewRestriction

    restriction = PageViewRestriction.objects.create(
        page=_article_page(article), restriction_type=PageViewRestriction.LOGIN
    )
    response = client.post(reverse("comments:post"), comment_data(article, comment="Private."))
    assert response.status_code == 403
    assert not Comment.objects.filter(text="Private.").exists()
    restriction.delete()
    response = client.post(reverse("comments:post"), comment_data(article, comment="Public."))
    assert response.status_code == 303


def test_a_returning_commenter_gets_the_same_bytes_as_a_new_reader(article, comment_data):
    returning = Client()
    returning.post(reverse("comments:post"), comment_data(article, comment="Earlier."))
    Comment.objects.filter(text="Earlier.").update(status=Comment.Status.APPROVED)
    returning.get(reverse("comments:session"))  # sets the CSRF cookie, as the page script does
    del returning.cookies["bs_pending"]  # nothing of theirs is held any more
    assert {"bs_commenter", "bs_guest", "csrftoken"} <= set(returning.cookies)
    assert returning.get(article.url).content == Client().get(article.url).content


def test_preview_of_a_draft_changes_nothing_public(article, client, user_factory):
    from django.test import RequestFactory

    page = _article_page(article)
    page.title = "EMBARGOED draft headline"
    page.allow_comments = False
    page.save_revision()
    request = RequestFactory().get(article.url)
    request.user = user_factory()
    page.make_preview_request(request)
    article.refresh_from_db()
    assert article.title.startswith("Greetings from Lugansk")
    assert article.is_open


def test_pending_cookie_is_dropped_once_nothing_is_waiting(article, comment_data):
    author = Client()
    author.post(reverse("comments:post"), comment_data(article, comment="Held for review."))
    still_waiting = author.get(article.url)
    assert "bs_pending" not in still_waiting.cookies  # kept while the comment waits
    Comment.objects.filter(text="Held for review.").update(status=Comment.Status.APPROVED)
    approved = author.get(article.url)
    assert approved.cookies["bs_pending"].value == ""  # deleted
    assert "Your comment is awaiting moderation." not in approved.content.decode()
    assert author.get(article.url).content == Client().get(article.url).content
