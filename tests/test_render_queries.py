"""The article page's comments are cheap to show: a constant number of queries whatever their
number, and each comment's HTML made once, when it is saved, by the one comment policy
(``core.html.render_comment``), then shown as stored while that policy stands."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from wagtail.models import Site

from broadsheet.comments import services
from broadsheet.comments.models import Comment, Thread
from broadsheet.core import html as html_policy
from broadsheet.publishing.discussion import DiscussionSettings
from broadsheet.publishing.models import ArticlePage

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert('x')</script>"


def thread_of(article: ArticlePage) -> Thread:
    return Thread.objects.get(page_id=article.pk)


def add_comments(thread: Thread, count: int, comment_factory) -> None:
    """A third top-level, the rest replies (some nested deeper), as conversations go."""
    made: list[Comment] = []
    for n in range(count):
        parent = made[-1 - n % min(5, len(made))] if made and n % 3 else None
        made.append(comment_factory(thread, parent=parent, text=f"Comment {n}.\n\n<em>Two</em>."))


def page_queries(url: str) -> tuple[int, str]:
    client = Client()
    assert client.get(url).status_code == 200  # the first view of a page may set things up
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.content.decode()


@pytest.mark.parametrize("paginate", [False, True], ids=["one page", "pages of 50"])
def test_article_page_queries_do_not_grow_with_its_comments(
    article_factory, comment_factory, paginate
):
    DiscussionSettings.objects.update_or_create(
        site=Site.objects.get(is_default_site=True),
        defaults={"paginate": paginate, "per_page": 50, "default_page": "first"},
    )
    few, many = article_factory(slug="few"), article_factory(slug="many")
    add_comments(thread_of(few), 10, comment_factory)
    add_comments(thread_of(many), 200, comment_factory)

    few_queries, few_page = page_queries(few.url)
    many_queries, many_page = page_queries(many.url)

    assert few_page.count('class="comment-body') == 10
    assert many_page.count('class="comment-body') > 50  # 50 top-level with their replies
    assert many_queries == few_queries


def test_comment_html_is_made_on_save_by_the_comment_policy(thread_factory, comment_factory):
    comment = comment_factory(thread_factory(), text=f"Hi {SCRIPT}\n\n<b onclick='x()'>bold</b>")
    stored = Comment.objects.get(pk=comment.pk)
    assert stored.text_html == html_policy.render_comment(comment.text)
    assert stored.text_html_policy == html_policy.COMMENT_POLICY
    assert "<script" not in stored.text_html and "onclick" not in stored.text_html
    assert "<b>bold</b>" in stored.text_html


def test_the_page_shows_the_stored_html(article_factory, comment_factory):
    article = article_factory(slug="stored")
    comment = comment_factory(thread_of(article), text="Typed words.")
    # What the policy made when it was saved is what the page shows: not made again per view.
    Comment.objects.filter(pk=comment.pk).update(text_html="<p>Made when <em>saved</em>.</p>")

    _, page = page_queries(article.url)

    assert "<p>Made when <em>saved</em>.</p>" in page
    assert "Typed words." not in page


def test_a_script_in_a_comment_never_reaches_the_page(article_factory, comment_factory):
    article = article_factory(slug="script")
    comment_factory(
        thread_of(article),
        text=f"{SCRIPT}<img src=x onerror=alert(1)><a href='javascript:alert(2)'>link</a>",
        name=f"Evil {SCRIPT}",
        url="javascript:alert(3)",
    )

    _, page = page_queries(article.url)
    section = BeautifulSoup(page, "html.parser").find(id="comments")

    scripts = section.find_all("script")
    assert len(scripts) == 1 and scripts[0]["src"].startswith("/static/")
    assert not any(name.startswith("on") for tag in section.find_all(True) for name in tag.attrs)
    assert "javascript:" not in str(section)
    assert f"Evil {SCRIPT}" in section.get_text()  # the name is shown, as text


def test_html_stored_by_another_policy_is_never_shown(article_factory, comment_factory):
    article = article_factory(slug="stale")
    comment = comment_factory(thread_of(article), text="Plain words.")
    # As if a looser policy had made it: the stamp says so, so the text is rendered again.
    Comment.objects.filter(pk=comment.pk).update(text_html=SCRIPT, text_html_policy="older")

    _, page = page_queries(article.url)

    assert SCRIPT not in page
    assert "<p>Plain words.</p>" in page


def test_refresh_html_stores_what_the_current_policy_makes(thread_factory, comment_factory):
    thread = thread_factory()
    stale = comment_factory(thread, text="One <em>two</em>.")
    fresh = comment_factory(thread, text="Three.")
    Comment.objects.filter(pk=stale.pk).update(text_html=SCRIPT, text_html_policy="older")

    assert Comment.objects.stale_html().count() == 1
    assert Comment.objects.refresh_html() == 1

    stale.refresh_from_db()
    assert stale.text_html == "<p>One <em>two</em>.</p>"
    assert stale.text_html_policy == html_policy.COMMENT_POLICY
    assert Comment.objects.stale_html().count() == 0
    assert Comment.objects.get(pk=fresh.pk).text_html == "<p>Three.</p>"


def test_bulk_created_comments_have_their_html(thread_factory):
    """The WordPress importer inserts comments with ``bulk_create`` (no ``save()``)."""
    thread = thread_factory()
    Comment.objects.bulk_create(
        [
            Comment(
                thread=thread,
                author_name="Imported",
                text=f"Imported {SCRIPT}",
                status=Comment.Status.APPROVED,
                created_at=timezone.now(),
            )
        ]
    )
    stored = Comment.objects.get(thread=thread)
    assert stored.text_html == "<p>Imported </p>"
    assert stored.text_html_policy == html_policy.COMMENT_POLICY


def test_a_moderators_edit_stores_new_html(thread_factory, comment_factory, user_factory):
    comment = comment_factory(thread_factory(), text="Before.")
    services.edit_comment(
        comment=comment,
        moderator=user_factory(moderator=True),
        text=f"After, <strong>corrected</strong>. {SCRIPT}",
        author_name=comment.author_name,
        author_url=comment.author_url,
    )
    stored = Comment.objects.get(pk=comment.pk)
    assert stored.text_html == "<p>After, <strong>corrected</strong>. </p>"
    assert stored.html == stored.text_html


def test_an_authors_own_edit_stores_new_html(thread_factory, comment_factory):
    comment = comment_factory(thread_factory(), text="Before.", browser_key="k" * 64)
    services.edit_own_comment(comment=comment, text="After <em>edit</em>.", browser_key="k" * 64)
    stored = Comment.objects.get(pk=comment.pk)
    assert stored.text_html == "<p>After <em>edit</em>.</p>"
    assert stored.text_html_policy == html_policy.COMMENT_POLICY
