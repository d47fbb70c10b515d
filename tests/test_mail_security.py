"""X06: comment text, names and addresses cannot inject headers or remote content into the
notification mail moderators and authors receive (GHSA-74pc-3r2m-ppx3)."""

import re

import pytest
from django.urls import reverse

from broadsheet.comments.models import Comment, OutboxMessage
from tests.mailbox import drain_outbox

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE_TEXT = (
    'Look <a href="http://127.0.0.1:9/phish">my site</a> and '
    '<img src="http://127.0.0.1:9/p" alt="x"> <a href="javascript:alert(1)">click</a> '
    "http://127.0.0.1:9/bare <style>@import url(http://127.0.0.1:9/css)</style>"
    '<p style="background:url(http://127.0.0.1:9/bg)">styled</p>'
)
HOSTILE_NAME = "Mallory\r\nBcc: victim@example.org\r\nX-Injected: yes"


def remote_refs(html: str) -> list[str]:
    """Everything in an HTML part that would make a mail client fetch or link to a comment's
    address: src/href/url() pointing at 127.0.0.1:9, plus any <img>."""
    refs = re.findall(r"""(?:src|href|background)\s*=\s*["']?[^"'\s>]*127\.0\.0\.1:9""", html)
    refs += re.findall(r"url\([^)]*127\.0\.0\.1:9", html)
    refs += re.findall(r"<img\b", html, re.I)
    return refs


def test_hostile_comment_reaches_moderator_without_headers_or_remote_refs(
    client, smtp_mailbox, thread_factory, comment_data, user_factory
):
    moderator = user_factory(moderator=True, email="mod@example.org")
    thread = thread_factory(title="Budget\r\nBcc: evil@example.org vote")
    response = client.post(
        reverse("comments:post"),
        comment_data(thread, author=HOSTILE_NAME, comment=HOSTILE_TEXT, url="http://127.0.0.1:9/u"),
    )
    assert response.status_code == 303
    comment = Comment.objects.get()
    assert comment.status == Comment.Status.PENDING  # a guest's first comment is held
    drain_outbox()
    [message] = smtp_mailbox.wait_for(1)
    assert smtp_mailbox.envelopes[0][1] == [moderator.email]  # no Bcc slipped in
    # One-line subject, no header made from the name or title.
    subject = str(message["Subject"]).strip()  # Python's parser keeps a folded header's space
    assert "\n" not in subject and "\r" not in subject
    assert subject == "[Broadsheet] Please moderate: “Budget Bcc: evil@example.org vote”"
    for header in ("Bcc", "X-Injected"):
        assert message[header] is None
    assert "Mallory" not in message["From"]
    assert message.get_content_type() == "multipart/alternative"
    html = message.get_body(preferencelist=("html",)).get_content()
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert remote_refs(html) == []
    assert "<a" not in html.split("<blockquote", 1)[1].split("</blockquote>", 1)[0]
    assert "javascript:" not in html
    # The link's address is still shown, as text, for the moderator to judge.
    assert "my site (http://127.0.0.1:9/phish)" in html
    assert "my site (http://127.0.0.1:9/phish)" in text
    # The name is shown, on one line, in the body only.
    assert "Mallory Bcc: victim@example.org X-Injected: yes" in text
    row = OutboxMessage.objects.get()
    assert row.status == OutboxMessage.Status.SENT
    assert message["Message-ID"] == row.message_id


def test_headers_of_a_queued_message_are_made_single_line(transactional_db, smtp_mailbox):
    from broadsheet.comments.outbox import queue_mail

    queue_mail(
        kind="test",
        to="reader@example.org",
        subject="Hello\r\nBcc: evil@example.org",
        text="Body",
        headers={"List-Unsubscribe": "<http://127.0.0.1:8000/u/1/>\r\nX-Evil: 1"},
        dedupe_key="test:1",
    )
    drain_outbox()
    [message] = smtp_mailbox.wait_for(1)
    assert str(message["Subject"]).strip() == "Hello Bcc: evil@example.org"
    assert message["X-Evil"] is None and message["Bcc"] is None
    assert message["List-Unsubscribe"] == "<http://127.0.0.1:8000/u/1/> X-Evil: 1"
    assert smtp_mailbox.envelopes[0][1] == ["reader@example.org"]
