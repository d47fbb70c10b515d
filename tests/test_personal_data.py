"""A person asks for their data: moderators export everything stored for an email address as
JSON, and erase it (the comments stay, anonymous)."""

import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from broadsheet.comments import privacy, services
from broadsheet.comments.models import Block, Comment, CommentEvent, OutboxMessage, Subscription

URL = reverse("comment_moderation:personal_data")
POST = reverse("comments:post")


@pytest.fixture
def moderator(user_factory):
    return user_factory(moderator=True)


@pytest.fixture
def moderator_client(moderator):
    client = Client()
    client.force_login(moderator)
    return client


@pytest.fixture
def person(thread_factory, comment_data, moderator):
    """Rosa's comments (posted through the form, so with IP, browser and user agent), her
    subscription, mail to her (sent and waiting), a block; and someone else's comment."""
    thread = thread_factory(title="On strikes")
    browser = Client(HTTP_USER_AGENT="RosaBrowser/5.0")
    browser.post(
        POST,
        comment_data(
            thread,
            comment="The mass strike is the method.",
            author="Rosa L.",
            email="Rosa@Example.org",
            url="https://rosa.example/",
        ),
    )
    browser.post(
        POST, comment_data(thread, comment="And a second thought.", email="rosa@example.org")
    )
    mine = list(Comment.objects.filter(author_email__iexact="rosa@example.org"))
    assert len(mine) == 2 and all(c.ip_address and c.browser_key for c in mine)
    services.moderate(comment_ids=[mine[0].pk], action="approve", moderator=moderator)
    services.edit_comment(
        comment=mine[0],
        moderator=moderator,
        text=mine[0].text,
        author_name="Rosa Luxemburg",
        author_url="https://rosa.example/",
    )
    Client().post(POST, comment_data(thread, comment="Someone else.", email="karl@example.org"))
    Subscription.objects.create(
        email="rosa@example.org",
        kind="thread",
        thread=thread,
        secret="s" * 64,
        confirmed_at=timezone.now(),
    )
    Subscription.objects.create(email="karl@example.org", kind="posts", secret="k" * 64)
    for key, status in [("sent", "sent"), ("waiting", "pending"), ("failed", "failed")]:
        OutboxMessage.objects.create(
            kind="reply",
            to="rosa@example.org",
            subject=f"Mail {key}",
            text="x",
            message_id=f"<{key}@x>",
            dedupe_key=f"rosa-{key}",
            status=status,
        )
    OutboxMessage.objects.create(
        kind="reply",
        to="karl@example.org",
        subject="Karl's",
        text="x",
        message_id="<k@x>",
        dedupe_key="karl",
        status="pending",
    )
    Block.objects.create(kind="email", value="rosa@example.org", note="test")
    return {"thread": thread, "comments": mine}


def test_export_lists_everything_stored_for_the_address(moderator_client, person):
    response = moderator_client.post(URL, {"email": "ROSA@example.org", "action": "export"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    assert "no-store" in response.get("Cache-Control", "") or "max-age=0" in response.get(
        "Cache-Control", ""
    )
    data = json.loads(response.content)
    comments = {c["text"]: c for c in data["comments"]}
    assert set(comments) == {"The mass strike is the method.", "And a second thought."}
    first = comments["The mass strike is the method."]
    assert first["author_name"] == "Rosa Luxemburg"
    assert first["author_url"] == "https://rosa.example/"
    assert first["ip_address"] == "127.0.0.1"
    assert first["user_agent"] == "RosaBrowser/5.0"
    assert first["browser_key"] and first["article"] == "On strikes"
    assert {e["action"] for e in data["comment_history"]} >= {"posted", "approve", "edited"}
    assert [s["kind"] for s in data["subscriptions"]] == ["thread"]
    assert {m["subject"] for m in data["mail"]} == {"Mail sent", "Mail waiting", "Mail failed"}
    assert [b["value"] for b in data["blocks"]] == ["rosa@example.org"]
    assert "Someone else." not in response.content.decode()
    assert "karl@example.org" not in response.content.decode()


def mail_about(comment) -> list[OutboxMessage]:
    """The moderators' mail about a comment (``held:<comment>:<moderator>``)."""
    return list(OutboxMessage.objects.filter(dedupe_key__startswith=f"held:{comment.pk}:"))


def test_erase_asks_first_then_anonymises_and_cancels_mail(moderator_client, person):
    # Both of Rosa's comments were held: the moderator's mail about each quotes her address.
    about_rosa = [m for c in person["comments"] for m in mail_about(c)]
    assert len(about_rosa) == 2 and all("rosa@example.org" in m.text.lower() for m in about_rosa)
    about_karl = mail_about(Comment.objects.get(text="Someone else."))
    assert len(about_karl) == 1 and "karl@example.org" in about_karl[0].text

    first_step = moderator_client.post(URL, {"email": "rosa@example.org", "action": "erase"})
    body = first_step.content.decode()
    assert "Erase the data of rosa@example.org?" in body
    assert "2 comments will stay" in body and "1 subscription" in body
    assert "4 waiting messages cancelled" in body
    assert Comment.objects.filter(author_email__iexact="rosa@example.org").count() == 2  # not yet

    done = moderator_client.post(
        URL, {"email": "rosa@example.org", "action": "erase", "confirm": "yes"}
    )
    # Two to her (waiting, failed), two to the moderator about her comments.
    assert "2 comments anonymised, 1 subscription deleted, 4 messages cancelled" in (
        done.content.decode()
    )
    for comment in person["comments"]:
        comment.refresh_from_db()
        assert comment.text in ("The mass strike is the method.", "And a second thought.")
        assert comment.author_name == "Anonymous"
        assert (comment.author_email, comment.author_url, comment.author_avatar_url) == ("", "", "")
        assert (comment.ip_address, comment.user_agent, comment.browser_key) == (None, "", "")
        erased = CommentEvent.objects.get(comment=comment, action="erased")
        assert "rosa" not in json.dumps([erased.before, erased.after]).lower()
        # No earlier history line still carries the name or the website.
        history = json.dumps(list(comment.events.values("before", "after")))
        assert "Rosa" not in history and "rosa.example" not in history
    assert comment.status in ("approved", "pending")  # status untouched
    assert not Subscription.objects.filter(email__iexact="rosa@example.org").exists()
    to_rosa = {m.subject: m for m in OutboxMessage.objects.filter(to="rosa@example.org")}
    assert {k: m.status for k, m in to_rosa.items()} == {
        "Mail sent": "sent",
        "Mail waiting": "cancelled",
        "Mail failed": "cancelled",
    }
    for message in about_rosa:
        message.refresh_from_db()
        assert message.status == "cancelled"
        assert (message.text, message.html) == ("[erased]", "[erased]")
    for message in [*to_rosa.values(), *about_rosa]:
        assert "rosa" not in (message.text + message.html).lower()
    # Other people's mail goes on.
    assert OutboxMessage.objects.get(subject="Karl's").status == "pending"
    about_karl[0].refresh_from_db()
    assert about_karl[0].status == "pending" and "karl@example.org" in about_karl[0].text
    karl = Comment.objects.get(text="Someone else.")
    assert karl.author_email == "karl@example.org" and karl.ip_address
    assert Subscription.objects.filter(email="karl@example.org").exists()
    # The approved comment is still on the article page, anonymous.
    assert privacy.export_personal_data("rosa@example.org")["comments"] == []


def test_erase_takes_the_address_out_of_the_reasons_a_comment_was_trashed(
    thread_factory, comment_data, moderator
):
    """A blocked commenter's comment says why it went to the trash: "blocked email address
    rosa@example.org". Erasing her data leaves the reason, not the address."""
    Block.objects.create(kind="email", value="rosa@example.org")
    thread = thread_factory()
    Client().post(POST, comment_data(thread, comment="Blocked.", email="Rosa@Example.org"))
    comment = Comment.objects.get(text="Blocked.")
    assert comment.status == "trash"
    assert "rosa@example.org" in json.dumps(comment.moderation_reasons)
    assert "rosa@example.org" in json.dumps(list(comment.events.values_list("reasons", flat=True)))

    privacy.erase_personal_data("rosa@example.org", moderator=moderator)
    comment.refresh_from_db()
    assert "blocked: blocked email address [erased]" in comment.reason_lines
    stored = json.dumps([comment.moderation_reasons, list(comment.events.values("reasons"))])
    assert "rosa" not in stored.lower() and "127.0.0.1" not in stored


def test_a_bad_address_is_refused_with_the_form(moderator_client, person):
    response = moderator_client.post(URL, {"email": "not-an-address", "action": "export"})
    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    assert 'value="not-an-address"' in response.content.decode()


def test_export_and_erase_are_for_moderators_only(user_factory, person):
    member = Client()
    member.force_login(user_factory())
    for data in (
        {"email": "rosa@example.org", "action": "export"},
        {"email": "rosa@example.org", "action": "erase", "confirm": "yes"},
    ):
        response = member.post(URL, data)
        assert response.status_code in (302, 403)
        assert b"mass strike" not in response.content
    assert Comment.objects.filter(author_email__iexact="rosa@example.org").count() == 2
    with pytest.raises(PermissionError):
        privacy.erase_personal_data("rosa@example.org", moderator=user_factory())


def test_stored_ip_setting_still_applies_after_erasure(settings, person, comment_data, moderator):
    privacy.erase_personal_data("rosa@example.org", moderator=moderator)
    settings.COMMENTS_STORE_IP = "truncated"
    Client().post(POST, comment_data(person["thread"], comment="Later.", email="new@example.org"))
    assert Comment.objects.get(text="Later.").ip_address == "127.0.0.0"


def test_an_accounts_comments_are_found_by_its_address(
    moderator_client, user_factory, thread_factory, comment_data
):
    member = user_factory(email="member@example.org")
    client = Client()
    client.force_login(member)
    client.post(POST, comment_data(thread_factory(), comment="Signed in."))
    comment = Comment.objects.get(text="Signed in.")
    Comment.objects.filter(pk=comment.pk).update(author_email="typed-else@example.org")
    data = json.loads(
        moderator_client.post(URL, {"email": "member@example.org", "action": "export"}).content
    )
    assert [c["text"] for c in data["comments"]] == ["Signed in."]
    moderator_client.post(URL, {"email": "member@example.org", "action": "erase", "confirm": "yes"})
    comment.refresh_from_db()
    assert (comment.author_name, comment.user_id, comment.author_email) == ("Anonymous", None, "")


def test_the_page_asks_for_an_address(moderator_client):
    body = moderator_client.get(URL).content.decode()
    assert 'name="email"' in body and "Export (JSON)" in body and "Erase or anonymise" in body
    queue = moderator_client.get(reverse("comment_moderation:queue")).content.decode()
    assert f'href="{URL}"' in queue  # reachable from the queue
