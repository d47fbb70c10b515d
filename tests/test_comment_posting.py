"""Posting a comment as a guest: moderation defaults, trust, threading, bad input."""

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from broadsheet.comments.models import Comment

POST = reverse("comments:post")


def post(client, data):
    return client.post(POST, data)


def earn_trust(client, thread, comment_data):
    """This browser's first comment, approved by a moderator: its later ones are trusted."""
    post(client, comment_data(thread))
    Comment.objects.update(status=Comment.Status.APPROVED)


# --- moderation defaults ---------------------------------------------------------------------


def test_guest_first_comment_is_held(client, thread_factory, comment_data):
    thread = thread_factory()
    response = post(client, comment_data(thread))
    comment = Comment.objects.get()
    assert response.status_code == 303
    assert response["Location"] == f"{thread.url}#comment-{comment.pk}"
    assert comment.status == Comment.Status.PENDING
    assert "prior_approval: first comment from this commenter" in comment.reason_lines


def test_guest_is_trusted_after_approval_from_the_same_browser(
    client, thread_factory, comment_data
):
    thread = thread_factory()
    earn_trust(client, thread, comment_data)
    post(client, comment_data(thread, comment="A second thought."))
    assert Comment.objects.get(text="A second thought.").status == Comment.Status.APPROVED


def test_impostor_with_an_approved_name_and_email_is_held(thread_factory, comment_data):
    thread = thread_factory()
    reader, impostor = Client(), Client()
    post(reader, comment_data(thread))
    Comment.objects.update(status=Comment.Status.APPROVED)
    post(impostor, comment_data(thread, comment="Pretending to be Ana."))
    held = Comment.objects.get(text="Pretending to be Ana.")
    assert held.status == Comment.Status.PENDING
    assert held.author_email == "ana@example.org"


def test_trusted_browser_with_another_email_is_held(client, thread_factory, comment_data):
    thread = thread_factory()
    earn_trust(client, thread, comment_data)
    post(client, comment_data(thread, email="other@example.org", comment="New identity."))
    assert Comment.objects.get(text="New identity.").status == Comment.Status.PENDING


def test_account_with_an_approved_comment_is_trusted_in_any_browser(
    thread_factory, comment_data, comment_factory, user_factory
):
    thread = thread_factory()
    user = user_factory()
    comment_factory(thread, user=user)
    browser = Client()
    browser.force_login(user)
    post(browser, comment_data(thread, comment="Signed in."))
    assert Comment.objects.get(text="Signed in.").status == Comment.Status.APPROVED


def test_moderator_comment_is_approved(client, thread_factory, comment_data, user_factory):
    thread = thread_factory()
    client.force_login(user_factory(moderator=True))
    post(client, comment_data(thread, comment="From the editors."))
    assert Comment.objects.get().status == Comment.Status.APPROVED


def test_comment_with_more_than_two_links_is_held_even_when_trusted(
    client, thread_factory, comment_data
):
    thread = thread_factory()
    earn_trust(client, thread, comment_data)
    text = "See https://a.example https://b.example and https://c.example"
    post(client, comment_data(thread, comment=text))
    held = Comment.objects.get(text=text)
    assert held.status == Comment.Status.PENDING
    assert held.reason_lines == ["links: more than 2 links (3)"]


def test_comment_with_two_links_from_trusted_browser_is_approved(
    client, thread_factory, comment_data
):
    thread = thread_factory()
    earn_trust(client, thread, comment_data)
    text = "See https://a.example and https://b.example"
    post(client, comment_data(thread, comment=text))
    assert Comment.objects.get(text=text).status == Comment.Status.APPROVED


# --- threading -------------------------------------------------------------------------------


def test_reply_is_threaded_under_its_parent(client, thread_factory, comment_data, comment_factory):
    thread = thread_factory()
    parent = comment_factory(thread)
    post(client, comment_data(thread, comment_parent=parent.pk, comment="A reply."))
    reply = Comment.objects.get(text="A reply.")
    assert reply.parent == parent
    assert reply.depth == 2


@override_settings(COMMENTS_MAX_DEPTH=3)
def test_reply_at_the_deepest_level_attaches_to_its_parents_level(
    client, thread_factory, comment_data, comment_factory
):
    thread = thread_factory()
    level1 = comment_factory(thread)
    level2 = comment_factory(thread, parent=level1)
    level3 = comment_factory(thread, parent=level2)
    post(client, comment_data(thread, comment_parent=level3.pk, comment="Too deep."))
    reply = Comment.objects.get(text="Too deep.")
    assert reply.parent == level2
    assert reply.depth == 3


# --- bad input: a clear message next to the field, the text kept, no row -------------------

BAD_INPUT = [
    ("missing name", {"author": ""}, "author", "Please enter your name."),
    ("missing email", {"email": ""}, "email", "Please enter your email address."),
    ("invalid email", {"email": "ana@"}, "email", "Please enter a valid email address"),
    ("javascript url", {"url": "javascript:alert(1)"}, "url", "starting with http:// or https://"),
    ("data url", {"url": "data:text/html,<b>x</b>"}, "url", "starting with http:// or https://"),
    ("empty comment", {"comment": "   \n  "}, "comment", "Please type your comment."),
    ("nul in name", {"author": "Ana\x00"}, "author", "Null characters are not allowed."),
]


@pytest.mark.parametrize(
    ("case", "overrides", "field", "message"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_is_reported_next_to_its_field_and_text_is_kept(
    client, thread_factory, comment_data, case, overrides, field, message
):
    thread = thread_factory()
    data = comment_data(thread, **{"comment": "My carefully written comment.", **overrides})
    response = post(client, data)
    body = response.content.decode()
    assert response.status_code == 400
    assert Comment.objects.count() == 0
    assert f'id="{field}-error"' in body
    assert message in body
    if case != "empty comment":
        assert "My carefully written comment.</textarea>" in body


def test_reply_to_a_missing_comment_is_rejected(client, thread_factory, comment_data):
    thread = thread_factory()
    response = post(client, comment_data(thread, comment_parent=999999, comment="Kept text."))
    assert response.status_code == 400
    assert "does not exist on this article" in response.content.decode()
    assert "Kept text.</textarea>" in response.content.decode()
    assert Comment.objects.count() == 0


def test_reply_to_a_held_comment_is_rejected(client, thread_factory, comment_data, comment_factory):
    thread = thread_factory()
    held = comment_factory(thread, status=Comment.Status.PENDING)
    response = post(client, comment_data(thread, comment_parent=held.pk, comment="Kept text."))
    assert response.status_code == 400
    assert "not published" in response.content.decode()
    assert Comment.objects.count() == 1


@pytest.mark.parametrize("status", [Comment.Status.SPAM, Comment.Status.TRASH])
def test_reply_to_spam_or_trash_is_rejected(
    client, thread_factory, comment_data, comment_factory, status
):
    thread = thread_factory()
    target = comment_factory(thread, status=status)
    response = post(client, comment_data(thread, comment_parent=target.pk))
    assert response.status_code == 400
    assert Comment.objects.count() == 1


def test_reply_to_a_comment_on_another_article_is_rejected(
    client, thread_factory, comment_data, comment_factory
):
    thread, other = thread_factory(), thread_factory()
    foreign = comment_factory(other)
    response = post(client, comment_data(thread, comment_parent=foreign.pk, comment="Kept."))
    assert response.status_code == 400
    assert "does not exist on this article" in response.content.decode()
    assert Comment.objects.count() == 1


def test_comment_on_a_closed_article_is_rejected_with_text_kept(
    client, thread_factory, comment_data
):
    thread = thread_factory(is_open=False)
    response = post(client, comment_data(thread, comment="Kept text."))
    assert response.status_code == 403
    body = response.content.decode()
    assert "Comments are closed on this article." in body
    assert "Kept text.</textarea>" in body
    assert Comment.objects.count() == 0


def test_comment_on_a_missing_thread_gives_the_text_back(client, db):
    response = client.post(
        POST, {"thread": 424242, "comment": "Kept text.", "author": "A", "email": "a@example.org"}
    )
    assert response.status_code == 404
    assert "Kept text.</textarea>" in response.content.decode()


@pytest.mark.parametrize("thread_value", ["", "abc", "-1", "9" * 40])
def test_garbage_thread_values_never_cause_a_server_error(client, db, thread_value):
    response = client.post(POST, {"thread": thread_value, "comment": "x"})
    assert response.status_code == 404


@pytest.mark.parametrize("parent_value", ["9" * 40, "²", "-5", "1.5", "abc", "١"])
def test_garbage_parent_values_are_reported_not_crashed(
    client, thread_factory, comment_data, parent_value
):
    thread = thread_factory()
    response = post(client, comment_data(thread, comment_parent=parent_value, comment="Kept."))
    assert response.status_code == 400
    assert "Kept.</textarea>" in response.content.decode()
    assert Comment.objects.count() == 0


def test_get_on_the_post_url_is_not_allowed(client, db):
    assert client.get(POST).status_code == 405


# --- what the commenter's browser keeps ------------------------------------------------------


def test_commenter_cookies_are_signed_httponly_and_lax(client, thread_factory, comment_data):
    thread = thread_factory()
    response = post(client, comment_data(thread))
    for name in ("bs_commenter", "bs_guest", "bs_pending"):
        morsel = response.cookies[name]
        assert morsel["httponly"]
        assert morsel["samesite"] == "Lax"
        assert ":" in morsel.value  # signed


def test_session_endpoint_returns_token_and_remembered_details_privately(
    client, thread_factory, comment_data
):
    thread = thread_factory()
    post(client, comment_data(thread, url="https://ana.example"))
    response = client.get(reverse("comments:session"))
    data = response.json()
    assert data["csrf_token"]
    assert data["guest"] == {
        "name": "Ana Reader",
        "email": "ana@example.org",
        "url": "https://ana.example",
    }
    assert "private" in response["Cache-Control"]
    assert "no-store" in response["Cache-Control"]


def test_tampered_commenter_cookie_earns_no_trust(client, thread_factory, comment_data):
    thread = thread_factory()
    earn_trust(client, thread, comment_data)
    client.cookies["bs_commenter"] = client.cookies["bs_commenter"].value + "x"
    post(client, comment_data(thread, comment="Second."))
    assert Comment.objects.get(text="Second.").status == Comment.Status.PENDING


@pytest.mark.parametrize(
    ("mode", "stored"),
    [("full", "127.13.0.77"), ("truncated", "127.13.0.0"), ("none", None)],
)
def test_ip_address_is_kept_as_configured(
    client, thread_factory, comment_data, settings, mode, stored
):
    settings.COMMENTS_STORE_IP = mode
    thread = thread_factory()
    client.post(POST, comment_data(thread), REMOTE_ADDR="127.13.0.77")
    assert Comment.objects.get().ip_address == stored


def test_forged_forwarded_for_is_ignored_without_trusted_proxy(
    client, thread_factory, comment_data
):
    thread = thread_factory()
    client.post(
        POST, comment_data(thread), REMOTE_ADDR="127.9.9.9", HTTP_X_FORWARDED_FOR="127.66.6.6"
    )
    assert Comment.objects.get().ip_address == "127.9.9.9"


def test_two_written_links_count_as_two_and_a_trusted_comment_goes_live(
    client, thread_factory, comment_data
):
    thread = thread_factory()
    earn_trust(client, thread, comment_data)
    text = 'Read <a href="https://a.example/">this</a> and <a href="https://b.example/">that</a>.'
    post(client, comment_data(thread, comment=text))
    assert Comment.objects.get(text=text).status == Comment.Status.APPROVED


def test_three_written_links_are_held(client, thread_factory, comment_data):
    thread = thread_factory()
    earn_trust(client, thread, comment_data)
    text = "".join(f'<a href="https://{c}.example/">{c}</a> ' for c in "abc")
    post(client, comment_data(thread, comment=text))
    held = Comment.objects.get(text=text)
    assert held.reason_lines == ["links: more than 2 links (3)"]


def test_reply_to_a_comment_removed_meanwhile_can_be_sent_as_a_new_comment(
    client, thread_factory, comment_data, comment_factory
):
    thread = thread_factory()
    gone = comment_factory(thread, status=Comment.Status.TRASH)
    response = post(client, comment_data(thread, comment_parent=gone.pk, comment="Kept."))
    body = response.content.decode()
    assert "If you send it again, it will be posted as a new comment." in body
    assert 'name="comment_parent" id="comment_parent" value="0"' in body
    resent = post(client, comment_data(thread, comment_parent=0, comment="Kept."))
    assert resent.status_code == 303
    assert Comment.objects.get(text="Kept.").parent is None


def test_errors_of_hidden_fields_are_shown_and_a_bad_key_is_replaced(
    client, thread_factory, comment_data
):
    thread = thread_factory()
    response = post(client, comment_data(thread, submission_key="k" * 65, comment="Kept."))
    body = response.content.decode()
    assert response.status_code == 400
    assert "at most 64 characters" in body
    assert 'id="submission_key" value="' + "k" * 65 not in body
    assert "Kept.</textarea>" in body


def test_avatar_is_drawn_locally_and_carries_nothing_derived_from_the_email(
    thread_factory, comment_factory
):
    import hashlib

    from django.template.loader import render_to_string

    comment = comment_factory(thread_factory(), name="ana", email="Secret@Example.org")
    html = render_to_string("comments/_comment.html", {"comment": comment})
    assert '<span class="avatar avatar-initial avatar-hue-' in html
    assert ">A</span>" in html
    assert "<img" not in html and "gravatar" not in html
    for digest in (hashlib.sha256, hashlib.md5):
        assert digest(b"secret@example.org").hexdigest() not in html


def test_gravatar_can_be_chosen(thread_factory, comment_factory, settings):
    from django.template.loader import render_to_string

    settings.COMMENTS_AVATARS = "gravatar"
    comment = comment_factory(thread_factory(), email="ana@example.org")
    html = render_to_string("comments/_comment.html", {"comment": comment})
    assert 'src="https://www.gravatar.com/avatar/' in html


@override_settings(COMMENTS_MAX_DEPTH=2)
def test_a_deep_reply_never_attaches_to_an_ancestor_readers_cannot_see(
    client, thread_factory, comment_data, comment_factory
):
    thread = thread_factory()
    top = comment_factory(thread)
    deepest = comment_factory(thread, parent=top)
    Comment.objects.filter(pk=top.pk).update(status=Comment.Status.TRASH)
    post(client, comment_data(thread, comment_parent=deepest.pk, comment="Answer."))
    assert Comment.objects.get(text="Answer.").parent_id == deepest.pk
