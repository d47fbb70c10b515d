"""Settings > Discussion in the Wagtail admin, per site, and what each setting changes for a
reader: what the article shows, and the status a comment posted through the real view gets."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from bs4 import BeautifulSoup
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from wagtail.models import Page, Site

from broadsheet.comments.conf import settings_for
from broadsheet.comments.models import Comment, Thread
from broadsheet.publishing.discussion import (
    DiscussionSettings,
    author_emails_for_thread,
    settings_for_thread,
)
from broadsheet.publishing.models import HomePage, Person

pytestmark = pytest.mark.django_db

POST = reverse("comments:post")


# --- a publication of our own: two sites (conftest's home page and ``other_home``) -----------


@pytest.fixture
def other_home(home) -> HomePage:
    root = Page.get_first_root_node()
    other = HomePage(title="The Other Paper", slug="other-home")
    root.add_child(instance=other)
    Site.objects.create(hostname="other.test", port=80, root_page=other, site_name="Other")
    return other


@pytest.fixture
def configure(home):
    def set_(site=None, **values) -> DiscussionSettings:
        site = site or Site.objects.get(is_default_site=True)
        row, _ = DiscussionSettings.objects.update_or_create(site=site, defaults=values)
        return row

    return set_


def thread_of(article) -> Thread:
    return Thread.objects.get(page_id=article.pk)


def post(client, data, **extra):
    return client.post(POST, data, **extra)


def text_of(response) -> str:
    return response.content.decode()


# --- the admin page ------------------------------------------------------------------------


@pytest.fixture
def admin_client(home, user_factory):
    user = user_factory(username="editor-in-chief")
    user.is_superuser = user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def edit_url(site) -> str:
    return reverse("wagtailsettings:edit", args=["publishing", "discussionsettings", site.pk])


def form_data(response) -> dict[str, str]:
    """What the browser would send back: every field of the settings form as it stands."""
    soup = BeautifulSoup(response.content, "html.parser")
    form = next(f for f in soup.find_all("form") if f.find(attrs={"name": "max_links"}))
    data: dict[str, str] = {}
    for field in form.find_all(["input", "textarea", "select"]):
        name = field.get("name")
        if not name:
            continue
        if field.name == "textarea":
            data[name] = field.text.lstrip("\n")
        elif field.name == "select":
            chosen = field.find("option", selected=True) or field.find("option")
            data[name] = chosen.get("value", "")
        elif field.get("type") == "checkbox":
            if field.has_attr("checked"):
                data[name] = field.get("value", "on")
        else:
            data[name] = field.get("value", "")
    return data


def test_admin_settings_page_uses_wordpress_wording_and_wordpress_defaults(admin_client):
    site = Site.objects.get(is_default_site=True)
    response = admin_client.get(edit_url(site))
    assert response.status_code == 200
    page = text_of(response)
    for words in (
        "Allow people to submit comments on new articles",
        "Comment author must fill out name and email",
        "Users must be registered and logged in to comment",
        "Automatically close comments on articles older than",
        "Enable threaded (nested) comments",
        "Break comments into pages",
        "Top level comments per page",
        "Levels deep",
        "Page displayed by default",
        "Comments should be displayed with the",
        "Anyone posts a comment",
        "A comment is held for moderation",
        "Comment must be manually approved",
        "Comment author must have a previously approved comment",
        "Hold a comment in the queue if it contains more than",
        "Comment Moderation",
        "Disallowed Comment Keys",
    ):
        assert words in page, words
    data = form_data(response)
    assert data["max_links"] == "2"
    assert data["thread_depth"] == "5"
    assert data["per_page"] == "50"
    assert data["default_page"] == "last"
    assert data["order"] == "asc"
    assert "previously_approved" in data and "manual_approval" not in data


def test_admin_saves_settings_per_site(admin_client, other_home):
    main = Site.objects.get(is_default_site=True)
    other = Site.objects.get(hostname="other.test")
    data = form_data(admin_client.get(edit_url(other)))
    data.update(max_links="7", moderation_words="viagra\r\ncasino", paginate="on", per_page="3")
    data.pop("threaded", None)  # unticked
    response = admin_client.post(edit_url(other), data)
    assert response.status_code == 302

    saved = DiscussionSettings.objects.get(site=other)
    assert (saved.max_links, saved.per_page, saved.paginate, saved.threaded) == (7, 3, True, False)
    assert saved.as_conf().moderation_word_list == ["viagra", "casino"]
    # The main site keeps WordPress's defaults, and its page shows them.
    assert form_data(admin_client.get(edit_url(main)))["max_links"] == "2"
    assert not DiscussionSettings.objects.filter(site=main).exclude(max_links=2).exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("thread_depth", "11", "less than or equal to 10"),
        ("thread_depth", "1", "greater than or equal to 2"),
        ("per_page", "0", "greater than or equal to 1"),
        ("rate_per_minute_ip", "0", "greater than or equal to 1"),
    ],
)
def test_admin_refuses_out_of_range_values_with_a_clear_error(admin_client, field, value, message):
    site = Site.objects.get(is_default_site=True)
    data = form_data(admin_client.get(edit_url(site)))
    data[field] = value
    response = admin_client.post(edit_url(site), data)
    assert response.status_code == 200
    assert message in text_of(response)
    assert not DiscussionSettings.objects.filter(site=site, **{field: value}).exists()


def test_settings_follow_the_site_of_the_article(configure, article_factory, other_home):
    configure(max_links=9)
    configure(site=Site.objects.get(hostname="other.test"), max_links=4, threaded=False)
    here = article_factory()
    there = article_factory(parent=other_home)
    assert settings_for(thread_of(here)).max_links == 9
    assert settings_for(thread_of(there)).max_links == 4
    assert settings_for(thread_of(there)).effective_depth == 1
    # A thread with no page (a static site) gets the default site's settings.
    loose = Thread.objects.create(url="/static/page/", title="Loose")
    assert settings_for_thread(loose).max_links == 9


def test_reading_settings_never_writes_a_row(article_factory, django_assert_max_num_queries):
    thread = thread_of(article_factory())
    with django_assert_max_num_queries(3):
        cfg = settings_for_thread(thread)
    assert cfg.max_links == 2 and cfg.thread_depth == 5
    assert not DiscussionSettings.objects.exists()


RESOLVED = []


def counting_resolver(thread):
    """``COMMENTS_SETTINGS_RESOLVER`` that counts how often it is asked."""
    RESOLVED.append(thread.pk)
    return settings_for_thread(thread)


def test_one_request_asks_for_the_settings_once_and_the_next_sees_a_change(
    settings, configure, article_factory, comment_data
):
    """Posting a comment reads the settings in the view, the guards, the redirect and the
    mail: asked once per request (each request loads its thread afresh), and a setting saved
    in between applies to the next comment."""
    settings.COMMENTS_SETTINGS_RESOLVER = "tests.test_discussion_settings.counting_resolver"
    configure(notify_on_post=True, previously_approved=False)
    thread = thread_of(article_factory())
    RESOLVED.clear()
    response = post(Client(), comment_data(thread, comment="First, published."))
    assert response.status_code == 303
    assert len(RESOLVED) == 1
    assert Comment.objects.get(text="First, published.").status == Comment.Status.APPROVED

    configure(manual_approval=True)
    RESOLVED.clear()
    post(Client(), comment_data(thread, comment="Second, held.", email="b@example.org"))
    assert len(RESOLVED) == 1
    assert Comment.objects.get(text="Second, held.").status == Comment.Status.PENDING
    # A thread object kept across the change (a long-lived caller) sees it too.
    assert settings_for(thread).manual_approval is True
    configure(manual_approval=False)
    assert settings_for(thread).manual_approval is False


# --- each setting, as a reader meets it ------------------------------------------------------


def test_registration_required_refuses_a_guest_with_403_and_keeps_the_text(
    configure, article_factory, comment_data, user_factory
):
    configure(registration_required=True)
    article = article_factory()
    thread = thread_of(article)
    assert "You must be logged in to post a comment." in text_of(Client().get(article.url))
    response = post(Client(), comment_data(thread, comment="Kept while I log in."))
    assert response.status_code == 403
    assert "You must be logged in to comment" in text_of(response)
    assert "Kept while I log in." in text_of(response)
    assert not Comment.objects.exists()

    member = Client()
    member.force_login(user_factory())
    assert post(member, comment_data(thread, comment="A member speaks.")).status_code == 303
    assert Comment.objects.get().text == "A member speaks."


def test_without_name_and_email_required_a_guest_may_post_as_anonymous(
    configure, article_factory, comment_data
):
    configure(require_name_email=False, previously_approved=False)
    article = article_factory()
    response = post(Client(), comment_data(thread_of(article), author="", email="", comment="Hi."))
    assert response.status_code == 303
    comment = Comment.objects.get()
    assert comment.status == Comment.Status.APPROVED
    assert "Anonymous" in text_of(Client().get(article.url))


def test_name_and_email_are_required_by_default(article_factory, comment_data):
    thread = thread_of(article_factory())
    response = post(Client(), comment_data(thread, email="", comment="Kept text."))
    assert response.status_code == 400
    assert "Kept text." in text_of(response)
    assert not Comment.objects.exists()


def test_comments_close_on_articles_older_than_n_days(configure, article_factory, comment_data):
    configure(close_after_days=14)
    old = article_factory(date=timezone.now() - timedelta(days=30))
    new = article_factory(date=timezone.now() - timedelta(days=3))
    assert thread_of(old).published_at == old.date

    old_page = text_of(Client().get(old.url))
    assert "Comments are closed." in old_page
    assert 'id="respond"' not in old_page
    new_page = text_of(Client().get(new.url))
    assert "Comments are closed." not in new_page
    assert 'id="respond"' in new_page

    response = post(Client(), comment_data(thread_of(old), comment="Too late?"))
    assert response.status_code == 403
    assert "older than 14 days" in text_of(response)
    assert "Too late?" in text_of(response)
    assert post(Client(), comment_data(thread_of(new))).status_code == 303


def test_per_article_override_closes_one_article(configure, article_factory, comment_data):
    closed = article_factory(allow_comments=False)
    open_ = article_factory()
    assert "Comments are closed." in text_of(Client().get(closed.url))
    assert "Comments are closed." not in text_of(Client().get(open_.url))
    response = post(Client(), comment_data(thread_of(closed), comment="Kept."))
    assert response.status_code == 403
    assert "Kept." in text_of(response)


def reply_links(html: str) -> list[str]:
    return re.findall(r'class="comment-reply-link"[^>]*data-comment-id="(\d+)"', html)


def test_thread_depth_hides_reply_at_the_deepest_level(configure, article_factory, comment_factory):
    configure(thread_depth=2)
    article = article_factory()
    thread = thread_of(article)
    top = comment_factory(thread)
    reply = comment_factory(thread, parent=top, text="Second level.")
    html = text_of(Client().get(article.url))
    assert reply_links(html) == [str(top.pk)]
    assert 'class="children"' in html

    configure(thread_depth=3)
    assert reply_links(text_of(Client().get(article.url))) == [str(top.pk), str(reply.pk)]


def test_threading_off_shows_replies_flat_without_reply_links(
    configure, article_factory, comment_factory
):
    configure(threaded=False)
    article = article_factory()
    thread = thread_of(article)
    top = comment_factory(thread, text="First.")
    comment_factory(thread, parent=top, text="An old reply.")
    html = text_of(Client().get(article.url))
    assert "An old reply." in html
    assert 'class="children"' not in html
    assert reply_links(html) == []
    assert html.count('class="comment depth-1') == 2


def test_threading_off_makes_a_posted_reply_top_level(
    configure, article_factory, comment_data, comment_factory
):
    configure(threaded=False, previously_approved=False)
    thread = thread_of(article_factory())
    top = comment_factory(thread)
    post(Client(), comment_data(thread, comment_parent=top.pk, comment="A reply."))
    assert Comment.objects.get(text="A reply.").parent_id is None


def test_links_limit_holds_a_comment_with_more_links(configure, article_factory, comment_data):
    configure(max_links=0, previously_approved=False)
    thread = thread_of(article_factory())
    post(Client(), comment_data(thread, comment="See https://example.net/"))
    held = Comment.objects.get()
    assert held.status == Comment.Status.PENDING
    assert any(line.startswith("links:") for line in held.reason_lines)

    configure(max_links=1, previously_approved=False)
    post(Client(), comment_data(thread, comment="Only https://example.com/ here"))
    assert Comment.objects.get(text__startswith="Only").status == Comment.Status.APPROVED


def test_moderation_words_hold_a_comment_with_the_reason(configure, article_factory, comment_data):
    configure(moderation_words="casino\npills", previously_approved=False)
    thread = thread_of(article_factory())
    post(Client(), comment_data(thread, comment="Best CASINO in town."))
    held = Comment.objects.get()
    assert held.status == Comment.Status.PENDING
    assert "moderation_words: moderation word “casino” in the text" in held.reason_lines
    post(Client(), comment_data(thread, comment="Clean words only.", email="b@example.org"))
    assert Comment.objects.get(text="Clean words only.").status == Comment.Status.APPROVED


@pytest.mark.parametrize(
    ("where", "overrides", "extra"),
    [
        ("text", {"comment": "buy spamword now"}, {}),
        ("name", {"author": "Spamword Seller"}, {}),
        ("email", {"email": "spamword@example.org"}, {}),
        ("website", {"url": "https://spamword.example/"}, {}),
        ("IP", {}, {"REMOTE_ADDR": "203.0.113.66"}),
        ("user agent", {}, {"HTTP_USER_AGENT": "SpamwordBot/1.0"}),
    ],
)
def test_disallowed_words_send_a_comment_to_the_trash(
    configure, article_factory, comment_data, where, overrides, extra
):
    configure(disallowed_words="spamword\n203.0.113.66", previously_approved=False)
    article = article_factory()
    thread = thread_of(article)
    data = comment_data(thread, **{"comment": "An ordinary comment.", **overrides})
    response = post(Client(), data, **extra)
    assert response.status_code == 303
    comment = Comment.objects.get()
    assert comment.status == Comment.Status.TRASH
    assert any(f"in the {where}" in line for line in comment.reason_lines), comment.reason_lines
    assert data["comment"] not in text_of(Client().get(article.url))


def test_manual_approval_holds_even_a_trusted_commenter(configure, article_factory, comment_data):
    thread = thread_of(article_factory())
    reader = Client()
    post(reader, comment_data(thread, comment="First."))
    Comment.objects.update(status=Comment.Status.APPROVED)
    post(reader, comment_data(thread, comment="Second, trusted."))
    assert Comment.objects.get(text="Second, trusted.").status == Comment.Status.APPROVED

    configure(manual_approval=True)
    post(reader, comment_data(thread, comment="Third, by hand."))
    third = Comment.objects.get(text="Third, by hand.")
    assert third.status == Comment.Status.PENDING
    assert "manual_approval: every comment must be approved by hand" in third.reason_lines


def test_previously_approved_off_publishes_a_first_comment(
    configure, article_factory, comment_data
):
    article = article_factory()
    post(Client(), comment_data(thread_of(article), comment="Held by default."))
    assert Comment.objects.get().status == Comment.Status.PENDING
    configure(previously_approved=False)
    post(Client(), comment_data(thread_of(article), comment="Live at once.", email="x@e.org"))
    assert Comment.objects.get(text="Live at once.").status == Comment.Status.APPROVED
    assert "Live at once." in text_of(Client().get(article.url))


def allow_comments_box(response):
    soup = BeautifulSoup(response.content, "html.parser")
    return soup.find("input", attrs={"name": "allow_comments"})


def test_new_articles_start_open_or_closed_as_the_site_says(admin_client, configure, home):
    url = reverse("wagtailadmin_pages:add", args=["publishing", "articlepage", home.pk])
    box = allow_comments_box(admin_client.get(url))
    assert box is not None and box.has_attr("checked")

    configure(comments_open_by_default=False)
    box = allow_comments_box(admin_client.get(url))
    assert box is not None and not box.has_attr("checked")


def test_an_existing_article_keeps_its_own_choice(admin_client, configure, article_factory):
    article = article_factory()
    configure(comments_open_by_default=False)
    response = admin_client.get(reverse("wagtailadmin_pages:edit", args=[article.pk]))
    assert allow_comments_box(response).has_attr("checked")


# --- the article's authors ----------------------------------------------------------------


def test_author_emails_are_the_bylines_linked_accounts(article_factory, user_factory):
    linked = Person.objects.create(
        name="Ana Author", slug="ana", user=user_factory(email="a@x.org")
    )
    again = Person.objects.create(name="Ana Again", slug="ana-2", user=linked.user)
    plain = Person.objects.create(name="No Account", slug="none")
    gone = user_factory(email="gone@x.org")
    gone.is_active = False
    gone.save()
    inactive = Person.objects.create(name="Gone", slug="gone", user=gone)
    article = article_factory(authors=[plain, linked, again, inactive])
    assert author_emails_for_thread(thread_of(article)) == ["a@x.org"]
    assert author_emails_for_thread(Thread.objects.create(url="/x/")) == []


def test_person_account_is_kept_null_when_the_account_is_deleted(user_factory):
    user = user_factory()
    person = Person.objects.create(name="Bo", slug="bo", user=user)
    user.delete()
    person.refresh_from_db()
    assert person.user is None


def test_thread_published_at_follows_the_article_date(article_factory):
    when = datetime(2017, 11, 20, 9, 0, tzinfo=UTC)
    article = article_factory(date=when)
    assert thread_of(article).published_at == when
