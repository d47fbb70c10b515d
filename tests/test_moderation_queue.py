"""Moderators work the queue in the Wagtail admin: counts, filters, bulk actions, editing."""

import pytest
from django.test import Client
from django.urls import reverse

from broadsheet.comments.models import Comment

QUEUE = reverse("comment_moderation:queue")
BULK = reverse("comment_moderation:bulk")


@pytest.fixture
def moderator_client(user_factory):
    client = Client()
    client.force_login(user_factory(moderator=True))
    return client


@pytest.fixture
def queue_data(thread_factory, comment_factory):
    first, second = thread_factory(title="First article"), thread_factory(title="Second article")
    return {
        "first": first,
        "second": second,
        "pending": [
            comment_factory(
                first, status=Comment.Status.PENDING, text=f"Held {n}", email=f"held{n}@example.org"
            )
            for n in range(3)
        ],
        "other": comment_factory(second, status=Comment.Status.PENDING, text="Held elsewhere"),
        "approved": comment_factory(first, text="Already public"),
        "spam": comment_factory(first, status=Comment.Status.SPAM, text="Buy pills"),
    }


def test_queue_lists_pending_comments_with_counts(moderator_client, queue_data):
    body = moderator_client.get(QUEUE).content.decode()
    assert 'data-status-count="pending">(4)' in body
    assert 'data-status-count="approved">(1)' in body
    assert 'data-status-count="spam">(1)' in body
    assert "Held 0" in body and "Held elsewhere" in body
    assert "Already public" not in body
    assert "held0@example.org" in body  # moderators see the email, readers never do


def test_menu_shows_the_pending_count(moderator_client, queue_data):
    body = moderator_client.get(reverse("wagtailadmin_home")).content.decode()
    assert "Comments (4)" in body


def test_queue_filters_by_status_article_and_search(moderator_client, queue_data):
    by_status = moderator_client.get(QUEUE, {"status": "spam"}).content.decode()
    assert "Buy pills" in by_status and "Held 0" not in by_status
    by_article = moderator_client.get(
        QUEUE, {"status": "pending", "thread": queue_data["second"].pk}
    ).content.decode()
    assert "Held elsewhere" in by_article and "Held 0" not in by_article
    by_search = moderator_client.get(QUEUE, {"status": "all", "q": "held1@example.org"})
    assert "Held 1" in by_search.content.decode()
    assert "Held 2" not in by_search.content.decode()


@pytest.mark.parametrize(
    ("action", "status"), [("approve", "approved"), ("spam", "spam"), ("trash", "trash")]
)
def test_bulk_action_changes_every_selected_comment(moderator_client, queue_data, action, status):
    ids = [c.pk for c in queue_data["pending"][:2]]
    response = moderator_client.post(BULK, {"action": action, "ids": ids, "next": QUEUE})
    assert response.status_code == 302
    assert set(Comment.objects.filter(pk__in=ids).values_list("status", flat=True)) == {status}
    assert Comment.objects.get(pk=queue_data["pending"][2].pk).status == "pending"


def test_bulk_delete_removes_comments_for_ever(moderator_client, queue_data):
    spam = queue_data["spam"]
    moderator_client.post(BULK, {"action": "delete", "ids": [spam.pk]})
    assert not Comment.objects.filter(pk=spam.pk).exists()


def test_approved_comment_appears_to_readers(moderator_client, thread_factory, comment_data):
    from broadsheet.publishing.demo import load_demo

    load_demo(base_url="http://testserver")
    from broadsheet.comments.models import Thread

    thread = Thread.objects.get(title__startswith="Greetings from Lugansk")
    Client().post(reverse("comments:post"), comment_data(thread, comment="Wait for me."))
    held = Comment.objects.get(text="Wait for me.")
    assert "Wait for me." not in Client().get(thread.url).content.decode()
    moderator_client.post(BULK, {"action": "approve", "ids": [held.pk]})
    assert "Wait for me." in Client().get(thread.url).content.decode()


def test_moderator_edits_a_comment(moderator_client, queue_data):
    comment = queue_data["pending"][0]
    url = reverse("comment_moderation:edit", args=[comment.pk])
    assert "Held 0" in moderator_client.get(url).content.decode()
    response = moderator_client.post(
        url, {"author_name": "Fixed Name", "author_url": "", "text": "Corrected text."}
    )
    assert response.status_code == 302
    comment.refresh_from_db()
    assert (comment.author_name, comment.text) == ("Fixed Name", "Corrected text.")


def test_moderator_edit_refuses_a_javascript_website(moderator_client, queue_data):
    comment = queue_data["pending"][0]
    url = reverse("comment_moderation:edit", args=[comment.pk])
    response = moderator_client.post(
        url, {"author_name": "X", "author_url": "javascript:alert(1)", "text": "Corrected text."}
    )
    assert response.status_code == 200
    assert "starting with http:// or https://" in response.content.decode()
    comment.refresh_from_db()
    assert comment.text == "Held 0"


def test_people_without_the_permission_cannot_moderate(user_factory, queue_data):
    client = Client()
    client.force_login(user_factory())
    ids = [c.pk for c in queue_data["pending"]]
    client.post(BULK, {"action": "approve", "ids": ids})
    assert Comment.objects.filter(pk__in=ids, status="pending").count() == 3
    assert client.get(QUEUE).status_code in (302, 403)


def test_anonymous_visitors_are_sent_to_the_login(queue_data):
    response = Client().get(QUEUE)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_bulk_actions_need_post_and_a_csrf_token(user_factory, queue_data):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_factory(moderator=True))
    ids = [c.pk for c in queue_data["pending"]]
    assert client.get(BULK, {"action": "approve", "ids": ids}).status_code == 405
    assert client.post(BULK, {"action": "approve", "ids": ids}).status_code == 403
    assert Comment.objects.filter(pk__in=ids, status="pending").count() == 3


def test_members_of_wagtails_moderators_group_can_moderate(queue_data):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user("mod", "mod@example.org", "correct horse 42")
    user.groups.add(Group.objects.get(name="Moderators"))
    client = Client()
    client.force_login(user)
    assert "Held 0" in client.get(QUEUE).content.decode()


def test_unapprove_takes_a_comment_off_the_page(moderator_client, queue_data):
    approved = queue_data["approved"]
    moderator_client.post(BULK, {"action": "unapprove", "ids": [approved.pk]})
    approved.refresh_from_db()
    assert approved.status == Comment.Status.PENDING


def test_deleting_a_comment_for_ever_keeps_its_replies(
    moderator_client, thread_factory, comment_factory
):
    thread = thread_factory()
    top = comment_factory(thread, text="Top")
    middle = comment_factory(thread, parent=top, text="Middle")
    reply = comment_factory(thread, parent=middle, text="Reply")
    deeper = comment_factory(thread, parent=reply, text="Deeper")
    response = moderator_client.post(BULK, {"action": "delete", "ids": [middle.pk]}, follow=True)
    assert "1 comment: delete for ever done." in response.content.decode()
    reply.refresh_from_db()
    deeper.refresh_from_db()
    assert (reply.parent_id, reply.depth) == (top.pk, 2)
    assert (deeper.parent_id, deeper.depth) == (reply.pk, 3)
    assert not Comment.objects.filter(pk=middle.pk).exists()


def test_moderator_edit_keeps_the_readers_length_limits(moderator_client, queue_data):
    comment = queue_data["pending"][0]
    url = reverse("comment_moderation:edit", args=[comment.pk])
    response = moderator_client.post(
        url, {"author_name": "X", "author_url": "", "text": "é" * 65_526}
    )
    assert "the limit is 65,535 bytes" in response.content.decode()
    comment.refresh_from_db()
    assert comment.text == "Held 0"


def test_a_rows_own_button_acts_on_that_comment_only(moderator_client, queue_data):
    first, second = queue_data["pending"][:2]
    moderator_client.post(BULK, {"quick": f"approve:{first.pk}", "ids": [second.pk]})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("approved", "pending")


# --- Issue 5: filters, reasons, blocks, reply as the publication, history, mail ----------------

from django.conf import settings as django_settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from broadsheet.comments import services  # noqa: E402
from broadsheet.comments.models import Block, CommentEvent, OutboxMessage  # noqa: E402

BLOCKS = reverse("comment_moderation:blocks")
MAIL = reverse("comment_moderation:mail")


@pytest.fixture
def addressed(thread_factory, comment_factory):
    """Comments from known addresses, names and IPs, all held."""
    thread = thread_factory(title="Addressed")
    rows = {}
    for key, name, email, ip in [
        ("v4a", "Rosa Luxemburg", "rosa@example.org", "192.0.2.7"),
        ("v4b", "Karl Liebknecht", "karl@example.org", "192.0.2.200"),
        ("v4c", "Clara Zetkin", "clara@example.org", "198.51.100.9"),
        ("v6a", "Leo Jogiches", "leo@example.org", "2001:db8:1:2::5"),
        ("v6b", "Paul Levi", "paul@example.org", "2001:db8:9::5"),
    ]:
        comment = comment_factory(
            thread, status=Comment.Status.PENDING, text=f"Text by {name}", name=name, email=email
        )
        Comment.objects.filter(pk=comment.pk).update(ip_address=ip)
        rows[key] = comment
    return rows


def _listed(client, **params) -> set[str]:
    body = client.get(QUEUE, {"status": "all", **params}).content.decode()
    return {name for name in ("Rosa", "Karl", "Clara", "Leo", "Paul") if f"Text by {name}" in body}


def test_queue_filters_by_author_email_and_ip(moderator_client, addressed):
    assert _listed(moderator_client, author="luxem") == {"Rosa"}
    assert _listed(moderator_client, email="KARL@example.org") == {"Karl"}
    assert _listed(moderator_client, ip="192.0.2.7") == {"Rosa"}
    assert _listed(moderator_client, ip="192.0.2.") == {"Rosa", "Karl"}  # typed prefix
    assert _listed(moderator_client, ip="192.0.2.0/24") == {"Rosa", "Karl"}
    assert _listed(moderator_client, ip="192.0.0.0/8") == {"Rosa", "Karl"}
    assert _listed(moderator_client, ip="2001:db8:1:2::/64") == {"Leo"}
    assert _listed(moderator_client, ip="2001:db8::/32") == {"Leo", "Paul"}
    # Filters combine, and the status tabs keep them.
    body = moderator_client.get(QUEUE, {"status": "pending", "ip": "192.0.2.0/24"}).content
    assert b"ip=192.0.2.0%2F24" in body
    assert _listed(moderator_client, ip="192.0.2.0/24", author="karl") == {"Karl"}


def test_held_spam_and_trash_rows_show_why(moderator_client, thread_factory, comment_data):
    thread = thread_factory()
    text = "See http://a.example http://b.example http://c.example"
    Client().post(reverse("comments:post"), comment_data(thread, comment=text))
    held = Comment.objects.get(text=text)
    assert held.status == "pending"
    body = moderator_client.get(QUEUE).content.decode()
    row = body[body.index(f'id="queue-comment-{held.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Held because:" in row and "links: more than 2 links (3)" in row
    # A comment a moderator sent to the spam says who did it, and the original reasons.
    moderator_client.post(BULK, {"quick": f"spam:{held.pk}"})
    body = moderator_client.get(QUEUE, {"status": "spam"}).content.decode()
    assert "Marked as spam by user" in body
    assert "When posted, held because: links: more than 2 links (3)" in body


def test_a_blocked_guard_trash_row_shows_blocked(moderator_client, thread_factory, comment_data):
    thread = thread_factory()
    moderator_client.post(BLOCKS, {"kind": "email", "value": "Spammer@Example.org"})
    Client().post(reverse("comments:post"), comment_data(thread, email="spammer@example.ORG"))
    comment = Comment.objects.get(author_email="spammer@example.ORG")
    assert comment.status == "trash"
    body = moderator_client.get(QUEUE, {"status": "trash"}).content.decode()
    assert "Trashed because: blocked: blocked email address spammer@example.org" in body


@pytest.mark.parametrize(
    ("kind", "value", "stored"),
    [
        ("email", " Troll@Example.ORG ", "troll@example.org"),
        ("ip", "127.0.0.1", "127.0.0.1/32"),
        ("ip", "127.0.0.77/24", "127.0.0.0/24"),
    ],
)
def test_block_then_a_new_comment_goes_to_the_trash(
    moderator_client, thread_factory, comment_data, kind, value, stored
):
    thread = thread_factory()
    response = moderator_client.post(BLOCKS, {"kind": kind, "value": value, "note": "abuse"})
    assert response.status_code == 302
    assert Block.objects.filter(kind=kind, value=stored).exists()
    assert stored in moderator_client.get(BLOCKS).content.decode()
    Client().post(
        reverse("comments:post"), comment_data(thread, email="troll@example.org", comment="Hi")
    )
    comment = Comment.objects.get(text="Hi")
    assert comment.status == "trash"
    assert comment.moderation_reasons[0]["guard"] == "blocked"


def test_block_an_account(moderator_client, user_factory, thread_factory, comment_data):
    thread = thread_factory()
    member = user_factory()
    moderator_client.post(BLOCKS, {"kind": "user", "value": str(member.pk)})
    client = Client()
    client.force_login(member)
    client.post(reverse("comments:post"), comment_data(thread, comment="From the account"))
    comment = Comment.objects.get(text="From the account")
    assert (comment.status, comment.user_id) == ("trash", member.pk)
    assert "blocked account" in comment.reason_lines[0]


def test_unblock_lets_the_commenter_back(moderator_client, thread_factory, comment_data):
    thread = thread_factory()
    moderator_client.post(BLOCKS, {"kind": "ip", "value": "127.0.0.0/24"})
    block = Block.objects.get()
    moderator_client.post(reverse("comment_moderation:unblock", args=[block.pk]))
    assert not Block.objects.exists()
    Client().post(reverse("comments:post"), comment_data(thread, comment="Back again"))
    assert Comment.objects.get(text="Back again").status == "pending"  # first comment: held


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("ip", "192.0.2.0/33", "Enter an IP address"),
        ("ip", "not an address", "Enter an IP address"),
        ("ip", "0.0.0.0/0", "That range is too wide"),
        ("email", "no-at-sign", "Enter a valid email address."),
        ("user", "999999", "There is no such account."),
        ("nonsense", "x", "Choose what to block"),
    ],
)
def test_a_bad_block_value_is_refused_and_kept(moderator_client, kind, value, message):
    response = moderator_client.post(BLOCKS, {"kind": kind, "value": value})
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert f'value="{value}"' in body
    assert not Block.objects.exists()


def test_block_form_from_a_row_is_prefilled(moderator_client, addressed):
    leo = addressed["v6a"]
    body = moderator_client.get(BLOCKS, {"comment": leo.pk}).content.decode()
    assert 'value="leo@example.org"' in body
    assert "2001:db8:1:2::/64" in body  # the /64 suggested
    body = moderator_client.get(BLOCKS, {"comment": addressed["v4a"].pk}).content.decode()
    assert "192.0.2.0/24" in body


def test_reply_as_the_publication_approves_the_held_parent(moderator_client, queue_data):
    parent = queue_data["pending"][0]
    url = reverse("comment_moderation:reply", args=[parent.pk])
    page = moderator_client.get(url).content.decode()
    assert "Held 0" in page and "Approve and reply" in page
    response = moderator_client.post(url, {"text": "Thank you, comrade.", "next": QUEUE})
    assert response.status_code == 302
    parent.refresh_from_db()
    reply = Comment.objects.get(text="Thank you, comrade.")
    assert parent.status == reply.status == "approved"
    assert reply.parent_id == parent.pk
    assert reply.author_name == django_settings.WAGTAIL_SITE_NAME
    assert reply.author_email == ""
    assert reply.user.has_perm("comments.moderate_comment")
    actions = list(CommentEvent.objects.filter(comment=parent).values_list("action", flat=True))
    assert actions[-2:] == ["approve", "replied"]


def test_reply_messages_say_whether_the_comment_was_approved(moderator_client, queue_data):
    held, public = queue_data["pending"][1], queue_data["approved"]
    response = moderator_client.post(
        reverse("comment_moderation:reply", args=[held.pk]), {"text": "Answer one."}, follow=True
    )
    assert "Reply posted as" in response.content.decode()
    assert "and the comment approved." in response.content.decode()
    response = moderator_client.post(
        reverse("comment_moderation:reply", args=[public.pk]), {"text": "Answer two."}, follow=True
    )
    assert "Reply posted as" in response.content.decode()
    assert "and the comment approved." not in response.content.decode()


def test_moderators_may_reply_from_the_queue_on_a_closed_article(moderator_client, queue_data):
    """As in WordPress: comments closed keeps readers out, not the publication's answer."""
    parent = queue_data["pending"][2]
    parent.thread.is_open = False
    parent.thread.save(update_fields=["is_open"])
    url = reverse("comment_moderation:reply", args=[parent.pk])
    response = moderator_client.post(url, {"text": "Closed, but we answer.", "next": QUEUE})
    assert response.status_code == 302
    reply = Comment.objects.get(text="Closed, but we answer.")
    assert reply.status == "approved" and reply.parent_id == parent.pk
    # Readers are still refused.
    reader = Client().post(
        reverse("comments:post"),
        {
            "thread": parent.thread_id,
            "comment_parent": 0,
            "author": "Reader",
            "email": "reader@example.org",
            "comment": "Me too.",
        },
    )
    assert reader.status_code == 403
    assert not Comment.objects.filter(text="Me too.").exists()


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locks: PostgreSQL only (SQLite locks the whole database)",
)
@pytest.mark.django_db(transaction=True)
def test_a_bulk_action_locks_the_comments_not_their_article(
    thread_factory, comment_factory, user_factory
):
    """While a moderator's bulk action runs, the article's thread row stays free: publishing
    the article (which updates it) must not wait on the moderation queue."""
    import threading

    thread = thread_factory()
    comment = comment_factory(thread, status=Comment.Status.PENDING, text="Held.")
    moderator = user_factory(moderator=True)
    locked, release = threading.Event(), threading.Event()

    def bulk():
        try:
            with transaction.atomic():
                services.moderate(comment_ids=[comment.pk], action="approve", moderator=moderator)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    worker = threading.Thread(target=bulk)
    worker.start()
    try:
        assert locked.wait(10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            thread.title = "Renamed while moderating"
            thread.save(update_fields=["title"])  # raised "lock timeout" before
    finally:
        release.set()
        worker.join(15)
    comment.refresh_from_db()
    assert comment.status == "approved"


def test_reply_to_spam_is_refused_with_the_text_kept(moderator_client, queue_data):
    spam = queue_data["spam"]
    url = reverse("comment_moderation:reply", args=[spam.pk])
    response = moderator_client.post(url, {"text": "My careful answer."})
    assert response.status_code == 400
    assert "approve it before replying" in response.content.decode()
    assert "My careful answer." in response.content.decode()
    assert not Comment.objects.filter(text="My careful answer.").exists()


def test_edit_page_shows_the_history_of_edits_and_status_changes(moderator_client, queue_data):
    comment = queue_data["pending"][0]
    url = reverse("comment_moderation:edit", args=[comment.pk])
    moderator_client.post(
        url, {"author_name": "Fixed Name", "author_url": "", "text": "Corrected text."}
    )
    moderator_client.post(BULK, {"quick": f"approve:{comment.pk}"})
    events = list(CommentEvent.objects.filter(comment=comment))
    assert [e.action for e in events] == ["edited", "approve"]
    assert events[0].before == {"text": "Held 0", "author_name": "Reader"}
    body = moderator_client.get(url).content.decode()
    history = body[body.index('id="history"') :]
    assert history.count('class="history-row"') == 2
    assert "<del>Held 0</del> → <ins>Corrected text.</ins>" in history
    assert "<del>Reader</del> → <ins>Fixed Name</ins>" in history
    assert "<del>pending</del> → <ins>approved</ins>" in history
    assert "Approved" in history and "Edited" in history
    username = events[0].actor.get_username()
    assert history.count(f"<td>{username}</td>") == 2


def test_mail_view_lists_failed_and_waiting_mail(moderator_client, db):
    from broadsheet.comments import outbox

    failed = OutboxMessage.objects.create(
        kind="held",
        to="mod@example.org",
        subject="Held comment",
        text="x",
        message_id="<1@x>",
        dedupe_key="k1",
        status="failed",
        attempts=8,
        last_error="451 try later",
    )
    OutboxMessage.objects.create(
        kind="held",
        to="mod@example.org",
        subject="Still waiting",
        text="x",
        message_id="<2@x>",
        dedupe_key="k2",
    )
    OutboxMessage.objects.create(
        kind="held",
        to="mod@example.org",
        subject="Delivered",
        text="x",
        message_id="<3@x>",
        dedupe_key="k3",
        status="sent",
    )
    body = moderator_client.get(MAIL).content.decode()
    assert "Held comment" in body and "451 try later" in body and "Still waiting" in body
    assert "Delivered" not in body
    if hasattr(outbox, "retry_failed"):
        moderator_client.post(MAIL, {"ids": [failed.pk]})
        failed.refresh_from_db()
        assert failed.status == "pending"
    else:
        moderator_client.post(MAIL, {"ids": [failed.pk]})
        failed.refresh_from_db()
        assert failed.status == "failed"


def test_service_refuses_non_moderators(user_factory, queue_data):
    member = user_factory()
    with pytest.raises(PermissionError):
        services.block_commenter(kind="email", value="x@example.org", moderator=member)
    with pytest.raises(PermissionError):
        services.reply_as_publication(parent=queue_data["approved"], moderator=member, text="x")
    assert not Block.objects.exists()
