"""The honeypot and the signed form timestamp: invisible to people, refusing robots that fill
every field, send a form faster than anyone types, replay an old or foreign form, or forge one.
A refused reader gets the form back with their text and a fresh token, and sends it again."""

import re
import time

import pytest
from django.urls import reverse

from broadsheet.comments import antispam, services
from broadsheet.comments.models import Comment

POST = reverse("comments:post")
STALE = "Please check your comment and send it again."
QUICK = "That was quick: please wait a moment and send it again."

pytestmark = pytest.mark.django_db


def token_in(response) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', response.content.decode())
    assert found, "the form page carries a fresh form token"
    return found.group(1)


def test_filled_honeypot_is_refused_with_the_text_kept(
    client, antispam_on, thread_factory, comment_data, form_token
):
    thread = thread_factory()
    data = comment_data(
        thread,
        comment="Buy cheap watches.",
        website2="http://spam.example",
        form_token=form_token(thread),
    )
    response = client.post(POST, data)
    assert response.status_code == 400
    page = response.content.decode()
    assert antispam.HONEYPOT_MESSAGE in page
    assert "Buy cheap watches." in page
    assert 'name="website2" type="text" value=""' in page  # a person can simply send it again
    assert not Comment.objects.exists()


def test_form_sent_faster_than_anyone_types_is_refused(
    client, antispam_on, thread_factory, comment_data, form_token
):
    thread = thread_factory()
    response = client.post(POST, comment_data(thread, form_token=form_token(thread, age=0)))
    assert response.status_code == 400
    assert QUICK in response.content.decode()
    assert "Solidarity from Lisbon." in response.content.decode()
    assert not Comment.objects.exists()


def test_a_too_quick_reader_keeps_the_time_already_spent(
    client, antispam_on, thread_factory, comment_data, form_token
):
    """The page that says "too quick" gives back the reader's own token, so their wait is not
    started over: once the minimum has passed since the form was handed out, it goes through."""
    antispam_on.COMMENTS_FORM_MIN_SECONDS = 5  # room for a slow machine between the steps
    thread = thread_factory()
    sent = form_token(thread, age=1)
    refused = client.post(POST, comment_data(thread, form_token=sent))
    assert refused.status_code == 400
    assert QUICK in refused.content.decode()
    assert token_in(refused) == sent
    _, issued = antispam.read_form_token(sent)
    time.sleep(max(0.0, issued + 5.2 - time.time()))  # the rest of the wait, not all of it
    again = client.post(POST, comment_data(thread, form_token=token_in(refused)))
    assert again.status_code == 303
    assert Comment.objects.count() == 1


def test_minimum_time_is_a_setting(
    client, antispam_on, thread_factory, comment_data, form_token, settings
):
    settings.COMMENTS_FORM_MIN_SECONDS = 10
    thread = thread_factory()
    assert (
        client.post(POST, comment_data(thread, form_token=form_token(thread, age=5))).status_code
        == 400
    )
    assert (
        client.post(POST, comment_data(thread, form_token=form_token(thread, age=11))).status_code
        == 303
    )


def tampered(thread, make):
    token = make(thread)
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def value_swapped(thread, make):
    return make(thread).replace(f"{thread.pk}:", f"{thread.pk + 1}:", 1)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda thread, make: make(thread, age=3 * 86400), id="expired"),
        pytest.param(tampered, id="tampered"),
        pytest.param(value_swapped, id="value-swapped"),
        pytest.param(lambda thread, make: make(thread.pk + 1), id="other-thread"),
        pytest.param(lambda thread, make: make(None), id="no-thread"),
        pytest.param(lambda thread, make: "", id="missing"),
        pytest.param(lambda thread, make: "garbage", id="garbage"),
    ],
)
def test_bad_form_token_gets_the_form_again_with_a_fresh_token(
    client, antispam_on, thread_factory, comment_data, form_token, token
):
    thread = thread_factory()
    thread_factory()  # so that thread.pk + 1 is a real thread
    data = comment_data(
        thread, comment="Kept, whatever the token.", form_token=token(thread, form_token)
    )
    response = client.post(POST, data)
    assert response.status_code == 400
    assert STALE in response.content.decode()
    assert "Kept, whatever the token." in response.content.decode()
    assert not Comment.objects.exists()
    # The page the reader gets carries a good token for this thread: sending again works.
    fresh = token_in(response)
    value, _issued = antispam.read_form_token(fresh)
    assert value == str(thread.pk)
    antispam_on.COMMENTS_FORM_MIN_SECONDS = 0
    again = client.post(POST, {**data, "form_token": fresh})
    assert again.status_code == 303
    assert Comment.objects.filter(text="Kept, whatever the token.").count() == 1


def test_token_age_limit_is_a_setting(
    client, antispam_on, thread_factory, comment_data, form_token
):
    antispam_on.COMMENTS_FORM_MAX_AGE = 600
    thread = thread_factory()
    response = client.post(POST, comment_data(thread, form_token=form_token(thread, age=700)))
    assert response.status_code == 400
    assert STALE in response.content.decode()


def test_comment_not_from_the_form_needs_no_token(antispam_on, thread_factory):
    """Imports and a future API call the service without a form token (None): no form to time."""
    thread = thread_factory()
    result = services.post_comment(
        thread=thread, text="Imported.", author_name="Ana", author_email="ana@example.org"
    )
    assert result.created


def test_session_endpoint_gives_a_token_for_the_thread(client, thread_factory):
    thread = thread_factory()
    data = client.get(reverse("comments:session"), {"thread": thread.pk}).json()
    assert antispam.read_form_token(data["form_token"])[0] == str(thread.pk)


def test_reader_without_javascript_posts_after_one_confirmation(demo_site, new_page, antispam_on):
    """With the real minimum (3 s): the reader already typed the comment, so pressing the
    button again at once on the confirmation page is not "too quick"."""
    assert antispam_on.COMMENTS_FORM_MIN_SECONDS == 3
    base, thread = demo_site
    page = new_page(javascript=False)
    page.goto(f"{base}{thread.url}")
    assert page.locator('#commentform input[name="form_token"]').count() == 0  # cached page
    page.fill("#comment", "No scripts, one confirmation.")
    page.fill("#author", "Ana Reader")
    page.fill("#email", "ana.nojs@example.org")
    page.click("#submit")
    # The confirmation page (no CSRF token and no form token on the cached page) keeps the
    # text and carries both tokens.
    assert page.input_value("#comment") == "No scripts, one confirmation."
    assert page.locator('#commentform input[name="form_token"]').count() == 1
    page.click("#submit")
    page.wait_for_url(f"**{thread.url}#comment-*")
    assert Comment.objects.filter(text="No scripts, one confirmation.").count() == 1


def test_reader_with_javascript_posts_with_the_token_from_the_session(
    demo_site, new_page, antispam_on
):
    antispam_on.COMMENTS_FORM_MIN_SECONDS = 1
    base, thread = demo_site
    page = new_page()
    page.goto(f"{base}{thread.url}")
    page.wait_for_selector('#commentform[data-ready="1"]', state="attached")
    assert page.locator('#commentform input[name="form_token"]').count() == 1
    page.fill("#comment", "Scripts on, no confirmation.")
    page.fill("#author", "Ana Reader")
    page.fill("#email", "ana.js@example.org")
    time.sleep(1.2)
    page.click("#submit")
    page.wait_for_url(f"**{thread.url}#comment-*")
    assert Comment.objects.filter(text="Scripts on, no confirmation.").count() == 1
