"""Akismet, against a fake Akismet on loopback (the real one is not reachable from tests): a post
never waits on it (the comment is held "being checked"); what the comment becomes for each
answer once the outbox worker has asked, what is sent (and that nothing is sent without a key),
and moderators' corrections reported once per change, through the same worker."""

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock
from urllib.parse import parse_qs

import httpx
import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from broadsheet.comments import akismet as akismet_guard_module
from broadsheet.comments import signals
from broadsheet.comments.antispam import issue_form_token
from broadsheet.comments.conf import DiscussionSettings
from broadsheet.comments.models import Comment, Thread
from broadsheet.comments.services import moderate

POST = reverse("comments:post")
KEY = "0123456789ab"
SUBMITTED = "Thanks for making the web a better place."


class FakeAkismet:
    """Answers like rest.akismet.com and records every request (path, form fields, headers).
    ``answer`` decides comment-check: "ham", "spam", "discard", "invalid" or "hang"."""

    def __init__(self):
        self.answer = "ham"
        self.requests = []
        self.release = threading.Event()
        self.stopped = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                endpoint = self.path.rsplit("/", 1)[-1]
                fake.requests.append((endpoint, form, dict(self.headers)))
                headers = {}
                if endpoint == "verify-key":
                    body = "valid" if form.get("key") == KEY else "invalid"
                elif form.get("api_key") != KEY:
                    body = "invalid"
                elif endpoint == "comment-check":
                    if fake.answer == "hang":
                        fake.release.wait(5)  # bounded; the client gives up long before
                        return
                    body = {"ham": "false", "invalid": "invalid"}.get(fake.answer, "true")
                    if fake.answer == "discard":
                        headers["X-akismet-pro-tip"] = "discard"
                elif endpoint in ("submit-spam", "submit-ham"):
                    body = SUBMITTED
                else:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def sent(self, endpoint):
        return [form for name, form, _ in self.requests if name == endpoint]


FAKE = {"port": None}


class ToFakeAkismet(httpx.HTTPTransport):
    """Sends what the akismet client addresses to https://rest.akismet.com to the fake."""

    def handle_request(self, request):
        assert request.url.host == "rest.akismet.com"
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=FAKE["port"])
        return super().handle_request(request)


def fake_http_client(timeout):
    """COMMENTS_AKISMET_HTTP_CLIENT for these tests."""
    return httpx.Client(timeout=timeout, transport=ToFakeAkismet())


def site_settings(thread):
    return DiscussionSettings(previously_approved=False)


def notifying_settings(thread):
    return DiscussionSettings(previously_approved=False, notify_on_post=True, notify_on_hold=True)


@pytest.fixture
def fake_akismet(settings):
    with FakeAkismet() as fake:
        FAKE["port"] = fake.port
        settings.AKISMET_API_KEY = KEY
        settings.BROADSHEET_BASE_URL = "https://news.example"
        settings.COMMENTS_AKISMET_HTTP_CLIENT = "tests.test_akismet.fake_http_client"
        settings.COMMENTS_AKISMET_TIMEOUT = 0.5
        settings.COMMENTS_SETTINGS_RESOLVER = "tests.test_akismet.site_settings"
        settings.COMMENTS_FORM_MIN_SECONDS = 0
        cache.clear()
        yield fake
        cache.clear()


def post(client, thread, text, *, ip="192.0.2.20", email="sam@example.org", **extra):
    data = {
        "thread": thread.pk,
        "comment_parent": extra.pop("parent", 0),
        "author": "Sam Reader",
        "email": email,
        "url": "https://sam.example/",
        "comment": text,
        "form_token": issue_form_token(thread),
    }
    return client.post(
        POST,
        data,
        REMOTE_ADDR=ip,
        HTTP_USER_AGENT="Mozilla/5.0 (test)",
        HTTP_REFERER="https://news.example/articles/1/",
    )


# --- checking new comments -------------------------------------------------------------------


def run_akismet_queue():
    """`broadsheet worker`'s job for the akismet queue, once, in this process. The worker drops
    its database connection between tasks when it looks stale; inside a test's transaction it
    always looks so, so that call is kept from closing it (as tests/test_subscriptions.py
    does); the tasks themselves run as in the worker."""
    with mock.patch("django_tasks_db.management.commands.db_worker.close_old_connections"):
        call_command(
            "db_worker",
            "--batch",
            "--backend",
            "outbox",
            "--queue-name",
            "akismet",
            "--no-startup-delay",
            "--no-reload",
            "--verbosity",
            "0",
        )


@pytest.fixture
def post_held(client, django_capture_on_commit_callbacks, fake_akismet):
    """Post as a reader does, and check what the reader's request did: it answered without a
    word to Akismet, and the comment waits, held "being checked", with its check queued."""

    def make(thread, text, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            response = post(client, thread, text, **kwargs)
        assert response.status_code == 303
        assert fake_akismet.requests == []
        comment = Comment.objects.get(text=text)
        assert comment.status == Comment.Status.PENDING
        assert "Akismet: being checked" in comment.reason_lines
        assert comment.akismet_verdict == ""
        return comment

    return make


def checks_queued():
    return DBTaskResult.objects.filter(queue_name="akismet", task_path__endswith="check_comment")


def test_nothing_is_sent_to_akismet_without_a_key(
    client, thread_factory, fake_akismet, settings, django_capture_on_commit_callbacks
):
    settings.AKISMET_API_KEY = ""
    thread = thread_factory()
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, thread, "A fine article.")
    assert response.status_code == 303
    comment = Comment.objects.get()
    assert comment.status == Comment.Status.APPROVED
    assert comment.akismet_verdict == ""
    assert not checks_queued().exists()
    assert fake_akismet.requests == []


def test_posting_does_not_wait_on_akismet(thread_factory, fake_akismet, post_held, settings):
    fake_akismet.answer = "hang"  # asked during the post, it would take 4 s (the client's limit)
    settings.COMMENTS_AKISMET_TIMEOUT = 4
    started = time.monotonic()
    comment = post_held(thread_factory(), "Posted in a hurry.")
    assert time.monotonic() - started < 3  # slack for a loaded machine, well short of 4 s
    assert comment.reason_lines == ["Akismet: being checked"]
    assert checks_queued().count() == 1


def test_ham_is_published_and_akismet_is_told_what_it_needs(
    thread_factory, fake_akismet, post_held
):
    thread = thread_factory(url="/articles/strike/")
    comment = post_held(thread, "Solidarity with the strikers.", ip="192.0.2.21")
    run_akismet_queue()
    comment.refresh_from_db()
    assert comment.status == Comment.Status.APPROVED
    assert comment.akismet_verdict == "ham"
    assert comment.moderation_reasons == []
    [sent] = fake_akismet.sent("comment-check")
    assert sent["api_key"] == KEY
    assert sent["blog"] == "https://news.example"
    assert sent["user_ip"] == "192.0.2.21"
    assert sent["comment_content"] == "Solidarity with the strikers."
    assert sent["comment_author"] == "Sam Reader"
    assert sent["comment_author_email"] == "sam@example.org"
    assert sent["comment_author_url"] == "https://sam.example/"
    assert sent["comment_type"] == "comment"
    assert sent["permalink"] == "https://news.example/articles/strike/"
    assert sent["referrer"] == "https://news.example/articles/1/"
    assert sent["user_agent"] == "Mozilla/5.0 (test)"
    assert sent["honeypot_field_name"] == "website2"
    assert sent["blog_lang"]
    assert [name for name, _, _ in fake_akismet.requests] == ["comment-check"]
    event = comment.events.last()
    assert (event.actor_kind, event.action, event.after["status"]) == (
        "akismet",
        "approve",
        "approved",
    )
    assert checks_queued().get().status == "SUCCESSFUL"


def test_published_ham_is_announced_as_an_approval_without_a_moderator(
    thread_factory, fake_akismet, post_held
):
    heard = []

    def receiver(sender, **kwargs):
        heard.append(kwargs)

    signals.comment_moderated.connect(receiver)
    try:
        comment = post_held(thread_factory(), "Tell my subscribers.")
        run_akismet_queue()
    finally:
        signals.comment_moderated.disconnect(receiver)
    [kwargs] = heard
    assert kwargs["comment"].pk == comment.pk
    assert (kwargs["old_status"], kwargs["new_status"]) == ("pending", "approved")
    assert kwargs["moderator"] is None and kwargs["via"] == "akismet"


@pytest.mark.django_db(transaction=True)
def test_reader_sees_their_comment_awaiting_moderation_until_akismet_clears_it(fake_akismet):
    from broadsheet.publishing.demo import load_demo

    load_demo(base_url="http://testserver")
    article = Thread.objects.get(title__startswith="Greetings from Lugansk Communists")
    author, other = Client(), Client()
    response = post(author, article, "Checked in the background.")
    assert response.status_code == 303
    assert fake_akismet.requests == []
    own = author.get(article.url).content.decode()
    assert "Checked in the background." in own
    assert "Your comment is awaiting moderation." in own
    assert "Checked in the background." not in other.get(article.url).content.decode()
    run_akismet_queue()
    assert "Checked in the background." in other.get(article.url).content.decode()
    own = author.get(article.url).content.decode()
    assert "Your comment is awaiting moderation." not in own


def test_akismet_gets_the_full_ip_address_the_site_does_not_store(
    thread_factory, fake_akismet, post_held, settings
):
    settings.COMMENTS_STORE_IP = "none"
    comment = post_held(thread_factory(), "Private person.", ip="192.0.2.77")
    assert comment.ip_address is None
    run_akismet_queue()
    [sent] = fake_akismet.sent("comment-check")
    assert sent["user_ip"] == "192.0.2.77"
    # The queue's row outlives the check: it keeps neither the address nor the referrer.
    row = checks_queued().get()
    assert row.args_kwargs == {"args": [comment.pk], "kwargs": {}}


def test_reply_is_checked_as_a_reply(thread_factory, comment_factory, fake_akismet, post_held):
    thread = thread_factory()
    parent = comment_factory(thread)
    post_held(thread, "I agree with you.", parent=parent.pk)
    run_akismet_queue()
    [sent] = fake_akismet.sent("comment-check")
    assert sent["comment_type"] == "reply"


def test_spam_goes_to_the_spam_folder_with_the_reason(thread_factory, fake_akismet, post_held):
    fake_akismet.answer = "spam"
    comment = post_held(thread_factory(), "Cheap watches at my site.")
    run_akismet_queue()
    comment.refresh_from_db()
    assert comment.status == Comment.Status.SPAM
    assert comment.akismet_verdict == "spam"
    assert comment.reason_lines == ["Akismet: spam"]
    event = comment.events.last()
    assert (event.actor_kind, event.action) == ("akismet", "spam")


def test_blatant_spam_akismet_says_to_discard_is_kept_in_spam_not_deleted(
    thread_factory, fake_akismet, post_held
):
    fake_akismet.answer = "discard"
    post_held(thread_factory(), "Casino casino casino.")
    run_akismet_queue()
    comment = Comment.objects.get()  # stored, not discarded
    assert comment.status == Comment.Status.SPAM
    assert comment.akismet_verdict == "discard"
    [line] = comment.reason_lines
    assert line.startswith("Akismet: spam") and "advised discarding" in line


def word_settings(thread):
    return DiscussionSettings(previously_approved=False, moderation_words="crypto")


def test_ham_another_guard_held_stays_held_for_that_reason_only(
    thread_factory, fake_akismet, post_held, settings
):
    settings.COMMENTS_SETTINGS_RESOLVER = "tests.test_akismet.word_settings"
    comment = post_held(thread_factory(), "My thoughts on crypto.")
    assert len(comment.reason_lines) == 2
    run_akismet_queue()
    comment.refresh_from_db()
    assert comment.status == Comment.Status.PENDING
    assert comment.akismet_verdict == "ham"
    [line] = comment.reason_lines
    assert line.startswith("moderation_words: moderation word “crypto”")


def test_spam_another_guard_held_goes_to_spam_with_both_reasons(
    thread_factory, fake_akismet, post_held, settings
):
    settings.COMMENTS_SETTINGS_RESOLVER = "tests.test_akismet.word_settings"
    fake_akismet.answer = "spam"
    comment = post_held(thread_factory(), "Buy crypto now.")
    run_akismet_queue()
    comment.refresh_from_db()
    assert comment.status == Comment.Status.SPAM
    assert comment.reason_lines[-1] == "Akismet: spam"
    assert comment.reason_lines[0].startswith("moderation_words:")


@pytest.mark.parametrize(
    "answer, why",
    [
        ("hang", "no answer in time"),
        ("invalid", "the Akismet API key or site address is not valid"),
        ("down", "Akismet could not be reached"),
    ],
)
def test_comment_stays_held_when_akismet_cannot_check_it(
    thread_factory, fake_akismet, post_held, caplog, answer, why
):
    fake_akismet.answer = answer
    if answer == "down":
        fake_akismet.stop()  # nothing listens on its port any more
    comment = post_held(thread_factory(), "Posted while Akismet is unwell.")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="broadsheet.comments.akismet"):
        run_akismet_queue()
    elapsed = time.monotonic() - started
    comment.refresh_from_db()
    assert comment.status == Comment.Status.PENDING
    assert comment.akismet_verdict == ""
    assert comment.reason_lines == [
        f"Akismet: unable to check this comment ({why}); held for a moderator"
    ]
    assert "Akismet could not check a comment" in caplog.text
    assert len(fake_akismet.sent("comment-check")) == (0 if answer == "down" else 1)
    if answer == "hang":
        assert elapsed < 5  # the client gave up; the fake would have answered after 5 s
    # Done with, not failed: the worker does not try again (a moderator decides now).
    assert checks_queued().get().status == "SUCCESSFUL"


def test_unreachable_akismet_lets_comments_through_when_configured_so(
    thread_factory, fake_akismet, post_held, settings
):
    settings.COMMENTS_AKISMET_HOLD_ON_ERROR = False
    fake_akismet.answer = "hang"
    comment = post_held(thread_factory(), "Posted while Akismet is down.")
    run_akismet_queue()
    comment.refresh_from_db()
    assert comment.status == Comment.Status.APPROVED
    assert comment.moderation_reasons == []


def test_a_moderators_decision_before_the_check_stands(
    thread_factory, user_factory, fake_akismet, post_held
):
    comment = post_held(thread_factory(), "Approved by hand first.")
    gone = post_held(thread_factory(url="/articles/other/"), "Deleted first.")
    moderator = user_factory(moderator=True)
    moderate(comment_ids=[comment.pk], action="approve", moderator=moderator)
    moderate(comment_ids=[gone.pk], action="delete", moderator=moderator)
    fake_akismet.answer = "spam"
    run_akismet_queue()
    comment.refresh_from_db()
    assert comment.status == Comment.Status.APPROVED
    assert fake_akismet.requests == []
    assert list(checks_queued().values_list("status", flat=True)) == ["SUCCESSFUL"] * 2


def test_moderators_comments_are_not_sent(
    client, thread_factory, user_factory, fake_akismet, django_capture_on_commit_callbacks
):
    client.force_login(user_factory(moderator=True))
    thread = thread_factory()
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, thread, "From the editors.")
    assert response.status_code == 303
    assert Comment.objects.get().status == Comment.Status.APPROVED
    assert not checks_queued().exists()
    assert fake_akismet.requests == []


def test_comment_bound_for_the_trash_is_not_sent(
    client, thread_factory, fake_akismet, settings, django_capture_on_commit_callbacks
):
    settings.COMMENTS_SETTINGS_RESOLVER = "tests.test_akismet.strict_settings"
    thread = thread_factory()
    with django_capture_on_commit_callbacks(execute=True):
        post(client, thread, "Buy followers now.")
    comment = Comment.objects.get()
    assert comment.status == Comment.Status.TRASH
    assert "Akismet: being checked" not in comment.reason_lines
    assert not checks_queued().exists()
    assert fake_akismet.requests == []


def strict_settings(thread):
    return DiscussionSettings(previously_approved=False, disallowed_words="followers")


# --- moderators' corrections -----------------------------------------------------------------


def reports_queued():
    return DBTaskResult.objects.filter(
        queue_name="akismet", task_path__endswith="report_to_akismet"
    )


# The worker (django_tasks_db's db_worker) closes the database connection between tasks, and the
# report is queued only when the moderation commits: these tests commit for real.
@pytest.mark.django_db(transaction=True)
def test_false_positive_and_missed_spam_are_reported_once_per_change(
    client, thread_factory, user_factory, fake_akismet
):
    moderator = user_factory(moderator=True)
    thread = thread_factory()
    fake_akismet.answer = "spam"
    post(client, thread, "Honest comment Akismet got wrong.", ip="192.0.2.30")
    run_akismet_queue()
    fake_akismet.answer = "ham"
    post(client, thread, "Sneaky spam Akismet missed.", ip="192.0.2.31", email="x@example.org")
    run_akismet_queue()
    wrong = Comment.objects.get(text__startswith="Honest")
    missed = Comment.objects.get(text__startswith="Sneaky")
    assert (wrong.status, missed.status) == (Comment.Status.SPAM, Comment.Status.APPROVED)

    def act(comment, action):
        moderate(comment_ids=[comment.pk], action=action, moderator=moderator)
        run_akismet_queue()

    assert not reports_queued().exists()
    act(wrong, "approve")  # not spam: submit-ham
    act(missed, "spam")  # spam after all: submit-spam
    act(wrong, "unapprove")
    act(wrong, "approve")  # already reported as ham: nothing new
    act(missed, "trash")
    act(missed, "spam")  # already reported as spam: nothing new

    [ham] = fake_akismet.sent("submit-ham")
    [spam] = fake_akismet.sent("submit-spam")
    assert ham["comment_content"] == "Honest comment Akismet got wrong."
    assert ham["user_ip"] == "192.0.2.30"
    assert ham["api_key"] == KEY
    assert spam["comment_content"] == "Sneaky spam Akismet missed."
    assert spam["user_ip"] == "192.0.2.31"

    act(wrong, "spam")  # the moderator changes their mind again: a new correction
    statuses = list(reports_queued().values_list("status", flat=True))
    assert statuses == ["SUCCESSFUL"] * 3
    assert len(fake_akismet.sent("submit-spam")) == 2
    assert len(fake_akismet.sent("submit-ham")) == 1


@pytest.mark.django_db(transaction=True)
def test_agreeing_with_akismet_or_unchecked_comments_report_nothing(
    client, thread_factory, comment_factory, user_factory, fake_akismet
):
    moderator = user_factory(moderator=True)
    thread = thread_factory()
    fake_akismet.answer = "spam"
    post(client, thread, "Spam Akismet caught.")
    run_akismet_queue()
    caught = Comment.objects.get()
    assert caught.status == Comment.Status.SPAM
    unchecked = comment_factory(thread, status=Comment.Status.PENDING, text="Imported.")
    moderate(comment_ids=[caught.pk], action="trash", moderator=moderator)
    moderate(comment_ids=[unchecked.pk], action="spam", moderator=moderator)
    assert not reports_queued().exists()
    run_akismet_queue()
    assert fake_akismet.sent("submit-spam") == []
    assert fake_akismet.sent("submit-ham") == []


def test_report_task_sends_the_stored_comment(client, thread_factory, fake_akismet):
    fake_akismet.answer = "spam"
    thread = thread_factory()
    post(client, thread, "Reported by hand.", ip="192.0.2.40")
    comment = Comment.objects.get()
    assert akismet_guard_module.report_to_akismet.call(comment.pk, "ham") is True
    [ham] = fake_akismet.sent("submit-ham")
    assert ham["comment_content"] == "Reported by hand."
    assert ham["permalink"] == f"https://news.example{thread.url}"


@pytest.mark.django_db(transaction=True)
def test_spam_approved_by_way_of_the_trash_is_reported_as_ham_once(
    client, thread_factory, user_factory, fake_akismet
):
    moderator = user_factory(moderator=True)
    fake_akismet.answer = "discard"
    post(client, thread_factory(), "Not spam at all.")
    run_akismet_queue()
    comment = Comment.objects.get()
    assert comment.status == Comment.Status.SPAM
    for action in ("trash", "approve", "trash", "approve"):
        moderate(comment_ids=[comment.pk], action=action, moderator=moderator)
        run_akismet_queue()
    [ham] = fake_akismet.sent("submit-ham")
    assert ham["comment_content"] == "Not spam at all."
    assert fake_akismet.sent("submit-spam") == []


@pytest.mark.parametrize(
    "answer, subject_has",
    [("ham", "comment"), ("invalid", "moderat"), ("spam", None)],
)
def test_moderators_hear_of_a_new_comment_once_akismet_has_answered(
    thread_factory,
    fake_akismet,
    post_held,
    user_factory,
    settings,
    django_capture_on_commit_callbacks,
    answer,
    subject_has,
):
    """While only Akismet holds it, a new comment is news for no one; then moderators get the
    mail its post would have given: a new comment (ham), one held for them (Akismet could not
    check it), or none (spam)."""
    from broadsheet.comments.models import OutboxMessage

    user_factory(moderator=True, email="mod@example.org")
    settings.COMMENTS_SETTINGS_RESOLVER = "tests.test_akismet.notifying_settings"
    fake_akismet.answer = answer
    comment = post_held(thread_factory(), "Posted before Akismet answered.")
    assert not OutboxMessage.objects.filter(to="mod@example.org").exists()
    with django_capture_on_commit_callbacks(execute=True):
        run_akismet_queue()
    mail = list(OutboxMessage.objects.filter(to="mod@example.org"))
    comment.refresh_from_db()
    if subject_has is None:
        assert comment.status == Comment.Status.SPAM
        assert mail == []
    else:
        assert len(mail) == 1
        assert subject_has in mail[0].subject.lower()


def test_a_check_that_was_never_queued_is_queued_by_the_sweep(client, thread_factory, fake_akismet):
    """The process died between storing the comment and queueing its check: the worker's
    sweep finds it and asks, once."""
    from datetime import timedelta

    from django.utils import timezone

    from broadsheet.comments.akismet import requeue_lost_checks

    response = post(client, thread_factory(), "Stored, but its check was lost.")
    assert response.status_code == 303  # on_commit never ran: nothing queued
    comment = Comment.objects.get()
    assert not checks_queued().exists()
    assert requeue_lost_checks() == 0  # too recent: its check may be on its way
    Comment.objects.filter(pk=comment.pk).update(created_at=timezone.now() - timedelta(minutes=20))
    assert requeue_lost_checks() == 1
    assert requeue_lost_checks() == 0  # queued now
    run_akismet_queue()
    comment.refresh_from_db()
    assert comment.status == Comment.Status.APPROVED
