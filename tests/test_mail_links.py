"""H01: links in mail come from BROADSHEET_BASE_URL, never from the request's Host or
X-Forwarded-Host; a poisoned Host is refused with 400 and queues nothing."""

import re

import pytest
from django.urls import reverse

from broadsheet.comments.models import Comment, OutboxMessage
from tests.mailbox import drain_outbox

BASE = "https://news.example.org"
# Django's own poisoned-host cases (tests/requests_tests) and a plain foreign host.
POISONED_HOSTS = [
    "evil.test",
    "example.com@evil.tld",
    "example.com:dr.frankenstein@evil.tld",
    "example.com:dr.frankenstein@evil.tld:80",
    "example.com:80/badpath",
    "example.com: recovermypassword.com",
]


@pytest.mark.django_db
@pytest.mark.parametrize("host", POISONED_HOSTS)
def test_a_comment_posted_with_a_poisoned_host_is_refused(
    client, host, thread_factory, comment_data, user_factory, quiet_request_log
):
    user_factory(moderator=True)
    thread = thread_factory()
    response = client.post(reverse("comments:post"), comment_data(thread), HTTP_HOST=host)
    assert response.status_code == 400
    assert not Comment.objects.exists()
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_links_in_mail_use_the_configured_address_whatever_the_request_said(
    client, settings, smtp_mailbox, thread_factory, comment_data, user_factory
):
    settings.BROADSHEET_BASE_URL = BASE
    settings.ALLOWED_HOSTS = ["127.0.0.1", "evil.test"]  # even a host Django accepts
    user_factory(moderator=True, email="mod@example.org")
    thread = thread_factory(url="/articles/budget/")
    response = client.post(
        reverse("comments:post"),
        comment_data(thread, comment="See http://127.0.0.1:9/x"),
        HTTP_HOST="evil.test",
        HTTP_X_FORWARDED_HOST="evil.test",
        HTTP_X_FORWARDED_PROTO="http",
    )
    assert response.status_code == 303
    drain_outbox()
    [message] = smtp_mailbox.wait_for(1)
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    hrefs = re.findall(r'href="([^"]+)"', html)
    text_links = re.findall(r"https?://\S+", text)
    assert len(hrefs) >= 5  # article, approve, spam, trash, queue
    assert all(href.startswith(BASE + "/") for href in hrefs), hrefs
    comment_links = {"http://127.0.0.1:9/x"}  # the comment's own text, shown as text
    assert all(link.startswith(BASE + "/") for link in set(text_links) - comment_links)
    assert "evil.test" not in text and "evil.test" not in html
    assert f"{BASE}/articles/budget/" in text
    assert "Message-ID" in message and message["Message-ID"].endswith("@news.example.org>")
