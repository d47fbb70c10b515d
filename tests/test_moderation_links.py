"""F03: signed moderation links in notification mail. Opening one never acts; only its
confirmation POST (CSRF-checked, by the moderator it was sent to, still a moderator) does, once.
Altered, expired and borrowed links get a clear 4xx page and change nothing."""

import re
import time

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from broadsheet.comments import moderation_links
from broadsheet.comments.models import Comment, CommentEvent, OutboxMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(client, thread_factory, comment_data, user_factory):
    """A guest's held comment, and the moderator mailed about it with its three links."""
    moderator = user_factory(moderator=True, email="mod@example.org")
    thread = thread_factory(title="Budget vote")
    response = client.post(reverse("comments:post"), comment_data(thread, comment="Hold me."))
    assert response.status_code == 303
    comment = Comment.objects.get()
    assert comment.status == Comment.Status.PENDING
    row = OutboxMessage.objects.get(dedupe_key=f"held:{comment.pk}:{moderator.pk}")
    links = dict(re.findall(r"^(Approve|Mark|Move) it[^:]*: (\S+)$", row.text, re.M))
    links = {"approve": links["Approve"], "spam": links["Mark"], "trash": links["Move"]}
    assert all(url.startswith("http://127.0.0.1:8000/comments/moderate/") for url in links.values())
    paths = {k: v.removeprefix("http://127.0.0.1:8000") for k, v in links.items()}
    return comment, moderator, paths


def status_of(comment):
    comment.refresh_from_db()
    return comment.status


def csrf_client(user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    return browser


def csrf_token(browser):
    """A valid CSRF token for this browser (the comment form's session endpoint gives one)."""
    return browser.get(reverse("comments:session")).json()["csrf_token"]


def confirm(browser, path):
    browser.get(path)
    return browser.post(path, {"csrfmiddlewaretoken": csrf_token(browser)})


def test_get_shows_a_confirmation_page_and_changes_nothing(held):
    comment, moderator, paths = held
    events = CommentEvent.objects.count()
    browser = csrf_client(moderator)
    for path in paths.values():
        response = browser.get(path)
        assert response.status_code == 200
        page = response.content.decode()
        assert "Nothing changes until you press the button." in page
        assert "Hold me." in page and '<form class="account-form' in page
    assert status_of(comment) == Comment.Status.PENDING
    assert CommentEvent.objects.count() == events


def test_a_signed_out_moderator_is_sent_to_sign_in_and_back(held, client):
    comment, moderator, paths = held
    client.logout()
    response = client.get(paths["approve"])
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login") + "?next=")
    assert status_of(comment) == Comment.Status.PENDING


def test_confirmed_post_acts_once_through_the_service(held):
    comment, moderator, paths = held
    browser = csrf_client(moderator)
    response = confirm(browser, paths["approve"])
    assert response.status_code == 200
    assert "The comment was approved." in response.content.decode()
    assert status_of(comment) == Comment.Status.APPROVED
    event = CommentEvent.objects.filter(comment=comment).latest("pk")
    assert (event.action, event.actor, event.after["via"]) == ("approve", moderator, "email link")
    # The same link, and the other two links of that mail, no longer act.
    again = browser.post(paths["approve"], {})
    assert again.status_code == 403  # no CSRF token: refused before anything
    for action in ("approve", "trash"):
        response = confirm(browser, paths[action])
        assert response.status_code == 409
        assert "already moderated" in response.content.decode()
    assert status_of(comment) == Comment.Status.APPROVED


def test_post_without_csrf_token_is_refused(held):
    comment, moderator, paths = held
    browser = csrf_client(moderator)
    response = browser.post(paths["trash"], {})
    assert response.status_code == 403
    assert status_of(comment) == Comment.Status.PENDING


def tampered(path):
    token = path.rstrip("/").rsplit("/", 1)[1]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    return path.replace(token, flipped)


def test_tampered_expired_and_other_action_links_are_refused(held, monkeypatch):
    comment, moderator, paths = held
    browser = csrf_client(moderator)
    bad = {
        "tampered": tampered(paths["approve"]),
        "other action": paths["approve"].replace("/approve/", "/trash/"),
        "unknown action": paths["approve"].replace("/approve/", "/delete/"),
    }
    real_time = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() - 8 * 24 * 3600)
    old = moderation_links.link(comment, "approve", moderator)
    monkeypatch.setattr(signing.time, "time", real_time)
    bad["expired"] = old.removeprefix("http://127.0.0.1:8000")
    expected = {"tampered": 400, "other action": 400, "unknown action": 404, "expired": 410}
    for name, path in bad.items():
        page = browser.get(path)
        assert page.status_code == expected[name], name
        assert '<form class="account-form' not in page.content.decode()
        # Even a POST with a valid CSRF token does nothing.
        response = browser.post(path, {"csrfmiddlewaretoken": csrf_token(browser)})
        assert response.status_code == expected[name]
    assert "This link has expired" in browser.get(bad["expired"]).content.decode()
    assert "This link is not valid" in browser.get(bad["tampered"]).content.decode()
    assert status_of(comment) == Comment.Status.PENDING
    assert not CommentEvent.objects.filter(comment=comment).exclude(action="posted").exists()


def test_non_moderators_and_other_moderators_cannot_use_a_link(held, user_factory):
    comment, moderator, paths = held
    reader = user_factory()
    other = user_factory(moderator=True)
    for user in (reader, other):
        response = confirm(csrf_client(user), paths["spam"])
        assert response.status_code == 403
        assert "You cannot use this link" in response.content.decode()
    # A moderator who lost the permission since the mail was sent.
    moderator.user_permissions.clear()
    moderator.is_superuser = False
    moderator.save()
    from django.contrib.auth import get_user_model

    demoted = get_user_model().objects.get(pk=moderator.pk)
    assert confirm(csrf_client(demoted), paths["spam"]).status_code == 403
    assert status_of(comment) == Comment.Status.PENDING
