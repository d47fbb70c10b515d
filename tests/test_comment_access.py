"""Z01 — access control on comments: nobody changes another's comment by id, moderation and
personal-data endpoints refuse guests and members, every moderator POST needs the CSRF token,
and no commenter's email or IP address reaches a public page or the session JSON."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from broadsheet.comments.models import Block, Comment, CommentEvent, OutboxMessage, Subscription

POST = reverse("comments:post")
SESSION = reverse("comments:session")


def snapshot():
    """Everything a refused request must leave as it was."""
    return (
        sorted(Comment.objects.values_list("pk", "status", "text", "author_name", "author_email")),
        sorted(Block.objects.values_list("kind", "value")),
        CommentEvent.objects.count(),
        sorted(OutboxMessage.objects.values_list("pk", "status")),
        Subscription.objects.count(),
    )


@pytest.fixture
def victim(thread_factory, comment_data):
    """A guest's comment, posted from their browser a minute ago (inside the edit window)."""
    thread = thread_factory()
    browser = Client()
    browser.post(POST, comment_data(thread, comment="The victim's words.", email="v@example.org"))
    return browser, Comment.objects.get(text="The victim's words."), thread


@pytest.fixture
def attackers(victim, user_factory, comment_data):
    _, _, thread = victim
    other_browser = Client()  # a reader with their own commenter cookie and comment
    other_browser.post(POST, comment_data(thread, comment="Attacker's own.", email="a@x.org"))
    other_account = Client()
    other_account.force_login(user_factory())
    return {"guest": Client(), "other browser": other_browser, "other account": other_account}


def test_nobody_edits_or_deletes_another_readers_comment(victim, attackers):
    _, comment, _ = victim
    before = snapshot()
    attempts = successes = 0
    for name, client in attackers.items():
        for url, data in [
            (reverse("comments:own_edit", args=[comment.pk]), {"text": "Defaced"}),
            (reverse("comments:own_delete", args=[comment.pk]), {}),
        ]:
            for method in ("get", "post"):
                response = getattr(client, method)(url, data)
                attempts += 1
                if response.status_code not in (403, 404):
                    successes += 1
                assert response.status_code in (403, 404), (name, method, url)
                assert "The victim's words." not in response.content.decode()
    assert (attempts, successes) == (12, 0)
    after = snapshot()
    assert after[0] == before[0] and after[2] == before[2]


@pytest.mark.parametrize("pk", [0, 999_999, 2**63, 10**30])
def test_unknown_or_absurd_ids_are_404(victim, pk):
    browser, _, _ = victim
    assert browser.get(f"/comments/own/{pk}/edit/").status_code == 404
    assert browser.post(f"/comments/own/{pk}/delete/").status_code == 404


def admin_posts(comment, block):
    return [
        (reverse("comment_moderation:bulk"), {"action": "approve", "ids": [comment.pk]}),
        (reverse("comment_moderation:bulk"), {"quick": f"delete:{comment.pk}"}),
        (
            reverse("comment_moderation:edit", args=[comment.pk]),
            {"author_name": "X", "author_url": "", "text": "Defaced"},
        ),
        (reverse("comment_moderation:reply", args=[comment.pk]), {"text": "Fake reply"}),
        (reverse("comment_moderation:blocks"), {"kind": "ip", "value": "127.0.0.0/8"}),
        (reverse("comment_moderation:unblock", args=[block.pk]), {}),
        (reverse("comment_moderation:mail"), {"ids": ["1"]}),
        (
            reverse("comment_moderation:personal_data"),
            {"email": "v@example.org", "action": "export"},
        ),
        (
            reverse("comment_moderation:personal_data"),
            {"email": "v@example.org", "action": "erase", "confirm": "yes"},
        ),
    ]


ADMIN_GETS = ["queue", "blocks", "mail", "personal_data"]


@pytest.fixture
def existing_block(db):
    return Block.objects.create(kind="email", value="someone@example.org")


@pytest.mark.parametrize("who", ["guest", "member", "admin without moderation"])
def test_moderation_and_privacy_endpoints_refuse_non_moderators(
    who, victim, existing_block, user_factory
):
    _, comment, _ = victim
    OutboxMessage.objects.create(
        kind="x",
        to="v@example.org",
        subject="s",
        text="t",
        message_id="<m@x>",
        dedupe_key="d",
        status="failed",
    )
    client = Client()
    if who != "guest":
        user = user_factory()
        if who == "admin without moderation":
            user.user_permissions.add(Permission.objects.get(codename="access_admin"))
        client.force_login(user)
    before = snapshot()
    for name in ADMIN_GETS:
        response = client.get(reverse(f"comment_moderation:{name}"))
        assert response.status_code in (302, 403), name
        assert "v@example.org" not in response.content.decode()
    for url in [
        reverse("comment_moderation:edit", args=[comment.pk]),
        reverse("comment_moderation:reply", args=[comment.pk]),
    ]:
        response = client.get(url)
        assert response.status_code in (302, 403) and b"victim" not in response.content
    successes = 0
    for url, data in admin_posts(comment, existing_block):
        response = client.post(url, data)
        body = response.content.decode()
        if response.status_code not in (302, 403) or "v@example.org" in body:
            successes += 1
        if response.status_code == 302:
            # To the login page (guests, members) or the admin's home (no permission).
            assert response["Location"].split("?")[0] in ("/admin/login/", "/admin/")
    assert successes == 0
    assert snapshot() == before


def test_every_moderator_post_needs_the_csrf_token(victim, existing_block, user_factory):
    _, comment, _ = victim
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_factory(moderator=True))
    before = snapshot()
    posts = admin_posts(comment, existing_block)
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    assert snapshot() == before
    assert len(posts) == 9


def test_no_email_or_ip_in_the_public_page_or_the_session_json(db, comment_data):
    from broadsheet.comments.models import Thread
    from broadsheet.publishing.demo import load_demo

    load_demo(base_url="http://testserver")
    thread = Thread.objects.get(title__startswith="Greetings from Lugansk")
    author = Client()
    author.post(POST, comment_data(thread, comment="Mine, held.", email="secret1@example.org"))
    held = Comment.objects.get(text="Mine, held.")
    Comment.objects.filter(thread=thread).update(
        ip_address="203.0.113.77", user_agent="SecretAgent/1.0", author_email="secret2@example.org"
    )
    Comment.objects.filter(pk=held.pk).update(author_email="secret1@example.org")
    approved = list(thread.comments.visible())
    assert approved  # the page has public comments
    leaks = 0
    for client in (Client(), author):
        page = client.get(thread.url).content.decode()
        session = client.get(SESSION, {"thread": thread.pk}).content.decode()
        data = json.loads(session)
        assert data["own"] == ([] if client is not author else data["own"])
        assert "/comments/own/" not in page  # edit links come only through the session JSON
        for needle in ("secret2@example.org", "203.0.113.77", "SecretAgent"):
            leaks += (needle in page) + (needle in session)
        # The author's own browser may hold its own typed details; nobody else gets them.
        if client is not author:
            leaks += ("secret1@example.org" in page) + ("secret1@example.org" in session)
    assert leaks == 0
    # The author's browser is told which comment is theirs: an id, never an address.
    own = json.loads(author.get(SESSION, {"thread": thread.pk}).content)["own"]
    assert [item["id"] for item in own] == [held.pk]
    assert set(own[0]) == {"id", "until", "edit_url", "delete_url"}
