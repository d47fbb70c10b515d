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
