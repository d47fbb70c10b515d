"""A02: duplicate comments and floods are refused with WordPress's words; nothing is stored;
the reader's text comes back in the form; moderators are exempt."""

import pytest
from django.urls import reverse

from broadsheet.comments.models import Comment

POST = reverse("comments:post")
DUPLICATE = "Duplicate comment detected; it looks as though you’ve already said that!"
FLOOD = "You are posting comments too quickly. Slow down."

pytestmark = pytest.mark.django_db


def send(client, thread, comment_data, form_token, ip="198.51.100.7", **overrides):
    data = comment_data(thread, form_token=form_token(thread), **overrides)
    return client.post(POST, data, REMOTE_ADDR=ip)


def test_same_text_twice_is_refused_with_409_and_stored_once(
    client, antispam_on, thread_factory, comment_data, form_token
):
    thread = thread_factory()
    first = send(client, thread, comment_data, form_token, comment="Power to the people.")
    assert first.status_code == 303
    again = send(client, thread, comment_data, form_token, comment="  power to the   PEOPLE. ")
    assert again.status_code == 409
    assert DUPLICATE in again.content.decode()
    assert "power to the   PEOPLE." in again.content.decode()  # the text is kept in the form
    assert Comment.objects.filter(thread=thread).count() == 1


def test_same_text_said_before_by_the_same_email_is_a_duplicate(
    client, antispam_on, thread_factory, comment_data, form_token, comment_factory
):
    thread = thread_factory()
    comment_factory(thread, text="Ｓolidarity from Lisbon.", name="Ana", email="ANA@example.org")
    response = send(client, thread, comment_data, form_token, comment="solidarity from lisbon.")
    assert response.status_code == 409
    assert Comment.objects.filter(thread=thread).count() == 1


def test_another_reader_may_say_the_same_words(
    client, antispam_on, thread_factory, comment_data, form_token, comment_factory
):
    """WordPress refuses the same words only from the same commenter: a second "Thank you!"
    from someone else is not a duplicate."""
    thread = thread_factory()
    comment_factory(thread, text="Solidarity from Lisbon.", name="Rosa", email="rosa@example.net")
    response = send(client, thread, comment_data, form_token, comment="Solidarity from Lisbon.")
    assert response.status_code == 303
    assert Comment.objects.filter(thread=thread).count() == 2


def test_text_in_the_trash_or_on_another_article_is_no_duplicate(
    client, antispam_on, thread_factory, comment_data, form_token, comment_factory
):
    thread, other = thread_factory(), thread_factory()
    comment_factory(thread, text="Free the press.", status=Comment.Status.TRASH)
    comment_factory(other, text="Free the press.")
    response = send(client, thread, comment_data, form_token, comment="Free the press.")
    assert response.status_code == 303
    assert Comment.objects.filter(thread=thread).count() == 2


def test_different_text_within_15_seconds_is_refused_with_429(
    client, antispam_on, thread_factory, comment_data, form_token
):
    thread = thread_factory()
    first = send(client, thread, comment_data, form_token, comment="First thought.")
    assert first.status_code == 303
    second = send(client, thread, comment_data, form_token, comment="Second thought.")
    assert second.status_code == 429
    assert FLOOD in second.content.decode()
    assert "Second thought." in second.content.decode()
    assert 1 <= int(second["Retry-After"]) <= 15
    assert not Comment.objects.filter(text="Second thought.").exists()


def test_flood_counts_the_same_email_from_another_address(
    client, antispam_on, thread_factory, comment_data, form_token
):
    thread, other = thread_factory(), thread_factory()
    assert send(client, thread, comment_data, form_token, comment="One.").status_code == 303
    second = send(
        client, other, comment_data, form_token, ip="203.0.113.9", comment="Two.",
        email="ANA@example.org",
    )  # fmt: skip
    assert second.status_code == 429
    assert Comment.objects.count() == 1


def test_flood_counts_the_same_address_with_another_email(
    client, antispam_on, thread_factory, comment_data, form_token
):
    thread = thread_factory()
    assert send(client, thread, comment_data, form_token, comment="One.").status_code == 303
    second = send(client, thread, comment_data, form_token, comment="Two.", email="b@example.net")
    assert second.status_code == 429


def test_a_refused_duplicate_does_not_count_as_a_flood(
    client, antispam_on, thread_factory, comment_data, form_token, comment_factory
):
    thread = thread_factory()
    comment_factory(thread, text="Already said.", email="ana@example.org")  # last week, say
    refused = send(client, thread, comment_data, form_token, comment="Already said.")
    assert refused.status_code == 409
    # The reader changes their text and sends it at once: it is not a flood (nothing stored).
    assert send(client, thread, comment_data, form_token, comment="Said anew.").status_code == 303


def test_flood_interval_comes_from_the_discussion_settings(
    client, antispam_on, thread_factory, comment_data, form_token, discussion_settings
):
    discussion_settings(flood_seconds=0)
    thread = thread_factory()
    assert send(client, thread, comment_data, form_token, comment="One.").status_code == 303
    assert send(client, thread, comment_data, form_token, comment="Two.").status_code == 303


def test_moderator_is_exempt(client, antispam_on, thread_factory, user_factory, form_token):
    thread = thread_factory()
    client.force_login(user_factory(moderator=True))
    for text in ("Note from the editors.", "Note from the editors.", "A correction."):
        response = client.post(
            POST,
            {"thread": thread.pk, "comment_parent": 0, "comment": text,
             "form_token": form_token(thread)},
        )  # fmt: skip
        assert response.status_code == 303
    assert Comment.objects.filter(thread=thread).count() == 3
