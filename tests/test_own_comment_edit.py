"""A commenter edits or deletes their own comment within the edit window, from the browser that
posted it or from their account; after the window, or from elsewhere, they are refused."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from broadsheet.comments import services
from broadsheet.comments.models import Comment, CommentEvent

POST = reverse("comments:post")
SESSION = reverse("comments:session")


def edit_url(comment):
    return reverse("comments:own_edit", args=[comment.pk])


def delete_url(comment):
    return reverse("comments:own_delete", args=[comment.pk])


@pytest.fixture
def posted(thread_factory, comment_data):
    """A guest's comment posted through the form, with the browser that posted it."""
    thread = thread_factory()
    browser = Client()
    response = browser.post(POST, comment_data(thread, comment="Original words."))
    assert response.status_code == 303
    return browser, Comment.objects.get(text="Original words."), thread


def own_ids(client, thread):
    data = json.loads(client.get(SESSION, {"thread": thread.pk}).content)
    return {item["id"]: item for item in data["own"]}


def age(comment, minutes):
    Comment.objects.filter(pk=comment.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes)
    )


def test_session_tells_only_the_posting_browser_what_it_may_edit(posted):
    browser, comment, thread = posted
    mine = own_ids(browser, thread)
    assert set(mine) == {comment.pk}
    assert mine[comment.pk]["edit_url"] == edit_url(comment)
    until = timezone.datetime.fromisoformat(mine[comment.pk]["until"])
    assert timedelta(minutes=14) < until - timezone.now() <= timedelta(minutes=15)
    assert own_ids(Client(), thread) == {}
    age(comment, 16)
    assert own_ids(browser, thread) == {}


def test_author_edits_within_the_window(posted):
    browser, comment, thread = posted
    page = browser.get(edit_url(comment))
    assert page.status_code == 200
    assert "Original words." in page.content.decode()
    assert "no-store" in page["Cache-Control"] and "private" in page["Cache-Control"]
    response = browser.post(edit_url(comment), {"text": "Better words."})
    assert response.status_code == 303
    assert response["Location"].endswith(f"#comment-{comment.pk}")
    comment.refresh_from_db()
    assert comment.text == "Better words." and comment.edited_at is not None
    event = CommentEvent.objects.get(comment=comment, action="edited")
    assert (event.actor_kind, event.before, event.after) == (
        "author",
        {"text": "Original words."},
        {"text": "Better words."},
    )


def test_after_the_window_the_author_gets_a_clear_403_and_keeps_the_text(posted):
    browser, comment, thread = posted
    age(comment, 16)
    page = browser.get(edit_url(comment))
    assert page.status_code == 403
    body = page.content.decode()
    assert "The time to change this comment is over" in body
    assert "15 minutes" in body and "Original words." in body
    response = browser.post(edit_url(comment), {"text": "Too late words."})
    assert response.status_code == 403
    assert "Too late words." in response.content.decode()  # what they typed is given back
    comment.refresh_from_db()
    assert comment.text == "Original words."


def test_the_window_follows_the_discussion_setting(posted, discussion_settings):
    browser, comment, thread = posted
    discussion_settings(edit_window_minutes=5)
    age(comment, 6)
    assert browser.get(edit_url(comment)).status_code == 403
    discussion_settings(edit_window_minutes=30)
    assert browser.get(edit_url(comment)).status_code == 200


def test_another_browser_is_refused_and_sees_no_text(posted):
    browser, comment, thread = posted
    other = Client()
    page = other.get(edit_url(comment))
    assert page.status_code == 403
    assert "Original words." not in page.content.decode()  # a held comment stays private
    assert other.post(edit_url(comment), {"text": "Hijacked"}).status_code == 403
    assert other.post(delete_url(comment)).status_code == 403
    comment.refresh_from_db()
    assert (comment.text, comment.status) == ("Original words.", "pending")


def test_the_account_may_edit_from_another_browser(user_factory, thread_factory, comment_data):
    thread = thread_factory()
    member = user_factory()
    first = Client()
    first.force_login(member)
    first.post(POST, comment_data(thread, comment="From my laptop."))
    comment = Comment.objects.get(text="From my laptop.")
    phone = Client()
    phone.force_login(member)
    assert set(own_ids(phone, thread)) == {comment.pk}
    assert phone.post(edit_url(comment), {"text": "From my phone."}).status_code == 303
    comment.refresh_from_db()
    assert comment.text == "From my phone."
    assert CommentEvent.objects.get(comment=comment, action="edited").actor == member
    # Another account, and the same account signed out, are refused.
    stranger = Client()
    stranger.force_login(user_factory())
    assert stranger.post(edit_url(comment), {"text": "Not mine"}).status_code == 403
    assert Client().get(edit_url(comment)).status_code == 403


def test_author_deletes_within_the_window_and_replies_stay(posted, comment_factory, user_factory):
    browser, comment, thread = posted
    moderator = user_factory(moderator=True)
    services.moderate(comment_ids=[comment.pk], action="approve", moderator=moderator)
    reply = comment_factory(thread, parent=comment, text="A reply to it")
    page = browser.get(delete_url(comment))
    assert page.status_code == 200 and "Delete your comment?" in page.content.decode()
    comment.refresh_from_db()
    assert comment.status == "approved"  # GET changes nothing
    response = browser.post(delete_url(comment))
    assert response.status_code == 303
    comment.refresh_from_db()
    reply.refresh_from_db()
    assert comment.status == "trash"
    assert (reply.status, reply.parent_id) == ("approved", comment.pk)
    event = CommentEvent.objects.filter(comment=comment).last()
    assert (event.action, event.actor_kind, event.before, event.after) == (
        "deleted",
        "author",
        {"status": "approved"},
        {"status": "trash"},
    )
    # Gone from the session list, and cannot be edited afterwards.
    assert own_ids(browser, thread) == {}
    assert browser.post(edit_url(comment), {"text": "Again"}).status_code == 403


def test_an_approved_comment_edited_into_spam_goes_back_to_moderation(
    posted, user_factory, discussion_settings
):
    browser, comment, thread = posted
    discussion_settings(moderation_words="casino")
    services.moderate(
        comment_ids=[comment.pk], action="approve", moderator=user_factory(moderator=True)
    )
    browser.post(edit_url(comment), {"text": "Fine words, still."})
    comment.refresh_from_db()
    assert comment.status == "approved"  # a harmless edit keeps it published
    browser.post(edit_url(comment), {"text": "Visit my casino http://x.example"})
    comment.refresh_from_db()
    assert comment.status == "pending"
    assert "moderation_words" in " ".join(comment.reason_lines)
    assert list(CommentEvent.objects.filter(comment=comment).values_list("action", flat=True))[
        -3:
    ] == ["edited", "edited", "unapprove"]


def test_an_accounts_comment_is_not_editable_by_whoever_uses_its_browser_next(
    user_factory, thread_factory, comment_data
):
    """A comment posted from an account belongs to the account: signed out, or signed in as
    someone else, the same browser (same commenter cookie) may not change it."""
    thread = thread_factory()
    member = user_factory()
    shared = Client()
    shared.force_login(member)
    shared.post(POST, comment_data(thread, comment="Posted signed in."))
    comment = Comment.objects.get(text="Posted signed in.")
    assert comment.user == member and comment.browser_key
    assert set(own_ids(shared, thread)) == {comment.pk}

    shared.logout()  # the commenter cookie stays in the browser
    assert own_ids(shared, thread) == {}
    assert shared.get(edit_url(comment)).status_code == 403
    assert shared.post(edit_url(comment), {"text": "Not the account."}).status_code == 403
    shared.force_login(user_factory())
    assert own_ids(shared, thread) == {}
    assert shared.post(delete_url(comment)).status_code == 403
    comment.refresh_from_db()
    assert (comment.text, comment.status) == ("Posted signed in.", "pending")


def test_an_authors_edit_makes_the_classifier_forget_not_relearn(posted, user_factory):
    """An approved comment taught the classifier "approved"; its author's new words were
    approved by nobody, so they are not learnt as approved (a spammer would edit in spam)."""
    from broadsheet.comments.models import SpamToken

    browser, comment, thread = posted
    services.moderate(
        comment_ids=[comment.pk], action="approve", moderator=user_factory(moderator=True)
    )
    comment.refresh_from_db()
    assert comment.learned_as == "ham"
    assert SpamToken.objects.get(token="original").ham == 1

    assert browser.post(edit_url(comment), {"text": "Cheap pills online."}).status_code == 303
    comment.refresh_from_db()
    assert comment.learned_as == "" and comment.status == "approved"
    counts = dict(SpamToken.objects.values_list("token", "ham"))
    assert counts.get("original", 0) == 0 and counts.get("pills", 0) == 0


def test_an_edit_that_sends_a_comment_back_tells_the_moderation_receivers(
    posted, user_factory, discussion_settings
):
    """Back in the queue after its author's edit: ``comment_moderated`` goes out (with no
    moderator), as for any change of status, so the classifier and the mail hear of it."""
    from broadsheet.comments import signals

    browser, comment, thread = posted
    discussion_settings(moderation_words="casino")
    services.moderate(
        comment_ids=[comment.pk], action="approve", moderator=user_factory(moderator=True)
    )
    heard = []

    def listen(sender, *, comment, old_status, new_status, moderator, **kwargs):
        heard.append((comment.pk, old_status, new_status, moderator))

    signals.comment_moderated.connect(listen, dispatch_uid="test-own-edit-listener")
    try:
        browser.post(edit_url(comment), {"text": "Visit my casino."})
    finally:
        signals.comment_moderated.disconnect(dispatch_uid="test-own-edit-listener")
    assert heard == [(comment.pk, "approved", "pending", None)]
    comment.refresh_from_db()
    assert (comment.status, comment.learned_as) == ("pending", "")


def test_after_an_edit_or_delete_the_author_lands_on_the_comment_page_that_shows_it(
    posted, user_factory, comment_factory, discussion_settings
):
    """With pages of comments, the comment is not always on the article's own address."""
    browser, comment, thread = posted
    discussion_settings(paginate=True, per_page=1, default_page="last")
    services.moderate(
        comment_ids=[comment.pk], action="approve", moderator=user_factory(moderator=True)
    )
    comment_factory(thread, text="A later comment, on page 2.")
    response = browser.post(edit_url(comment), {"text": "Better words."})
    assert response.status_code == 303
    assert response["Location"] == f"{thread.url}comment-page-1/#comment-{comment.pk}"
    response = browser.post(delete_url(comment))
    assert response.status_code == 303
    assert response["Location"].startswith(f"{thread.url}")
    assert response["Location"].endswith("#comments")


def test_an_empty_edit_is_refused_with_the_form(posted):
    browser, comment, thread = posted
    response = browser.post(edit_url(comment), {"text": "   "})
    assert response.status_code == 400
    assert "Please type your comment." in response.content.decode()
    comment.refresh_from_db()
    assert comment.text == "Original words."


def test_edit_needs_csrf(posted):
    browser, comment, thread = posted
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = browser.cookies
    assert strict.post(edit_url(comment), {"text": "Forged"}).status_code == 403
    assert strict.post(delete_url(comment)).status_code == 403
    comment.refresh_from_db()
    assert (comment.text, comment.status) == ("Original words.", "pending")


# --- In a real browser: the links appear only for the author, through the session endpoint ----


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_author_edits_in_the_browser_and_others_see_no_links(demo_site, new_page):
    base, thread = demo_site
    page = new_page()
    page.goto(f"{base}{thread.url}")
    page.wait_for_selector('#commentform[data-ready="1"]', state="attached")
    page.fill("#comment", "Typed in Chromium.")
    page.fill("#author", "Ana Reader")
    page.fill("#email", "ana@example.org")
    page.click("#submit")
    page.wait_for_url(f"**{thread.url}#comment-*")
    comment = Comment.objects.get(text="Typed in Chromium.")
    own = page.locator(f"#div-comment-{comment.pk} .comment-own-actions")
    own.wait_for()
    assert "you can change it until" in own.inner_text()
    # No other comment got the links, and the HTML as served has none.
    assert page.locator(".comment-own-actions").count() == 1
    page.click(f"#div-comment-{comment.pk} .comment-own-edit")
    page.wait_for_selector("textarea#id_text")
    page.fill("textarea#id_text", "Edited in Chromium.")
    page.click("button[type=submit]")
    page.wait_for_url(f"**{thread.url}#comment-{comment.pk}")
    assert "Edited in Chromium." in page.locator(f"#div-comment-{comment.pk}").inner_text()
    comment.refresh_from_db()
    assert comment.text == "Edited in Chromium."

    other = new_page()
    other.goto(f"{base}{thread.url}")
    other.wait_for_selector('#commentform[data-ready="1"]', state="attached")
    assert other.locator(".comment-own-actions").count() == 0
    other.goto(f"{base}{edit_url(comment)}")
    assert "You cannot change this comment" in other.content()


def test_an_edit_that_holds_a_comment_again_mails_the_moderators(
    thread_factory, comment_data, user_factory, discussion_settings
):
    """Held at posting (the moderators were mailed), approved, then edited into a moderation
    word: back in the queue, and the moderators hear of it again (a new mail: the first one's
    dedupe key must not swallow it)."""
    from broadsheet.comments.models import OutboxMessage

    moderator = user_factory(moderator=True)
    discussion_settings(moderation_words="casino")
    thread = thread_factory()
    browser = Client()
    browser.post(POST, comment_data(thread, comment="Original words."))
    comment = Comment.objects.get(text="Original words.")
    assert comment.status == "pending"
    assert OutboxMessage.objects.filter(kind="moderator_held", to=moderator.email).count() == 1
    services.moderate(comment_ids=[comment.pk], action="approve", moderator=moderator)
    before = set(OutboxMessage.objects.values_list("pk", flat=True))
    browser.post(edit_url(comment), {"text": "Visit my casino."})
    new = list(OutboxMessage.objects.exclude(pk__in=before))
    assert [(m.kind, m.to) for m in new] == [("moderator_held", moderator.email)]
    assert "Visit my casino." in new[0].text
