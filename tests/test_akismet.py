"""Akismet, against a fake Akismet on loopback (the real one is not reachable from tests): what a
new comment becomes for each answer, what is sent (and that nothing is sent without a key), and
moderators' corrections reported once per change, through the outbox worker."""

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from broadsheet.comments import akismet as akismet_guard_module
from broadsheet.comments.antispam import issue_form_token
from broadsheet.comments.conf import DiscussionSettings
from broadsheet.comments.models import Comment
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


def test_nothing_is_sent_to_akismet_without_a_key(client, thread_factory, fake_akismet, settings):
    settings.AKISMET_API_KEY = ""
    thread = thread_factory()
    response = post(client, thread, "A fine article.")
    assert response.status_code == 303
    comment = Comment.objects.get()
    assert comment.status == Comment.Status.APPROVED
    assert comment.akismet_verdict == ""
    assert fake_akismet.requests == []


def test_ham_is_published_and_akismet_is_told_what_it_needs(client, thread_factory, fake_akismet):
    thread = thread_factory(url="/articles/strike/")
    response = post(client, thread, "Solidarity with the strikers.", ip="192.0.2.21")
    assert response.status_code == 303
    comment = Comment.objects.get()
    assert comment.status == Comment.Status.APPROVED
    assert comment.akismet_verdict == "ham"
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


def test_reply_is_checked_as_a_reply(client, thread_factory, comment_factory, fake_akismet):
    thread = thread_factory()
    parent = comment_factory(thread)
    data_parent = parent.pk
    response = post(client, thread, "I agree with you.", parent=data_parent)
    assert response.status_code == 303
    [sent] = fake_akismet.sent("comment-check")
    assert sent["comment_type"] == "reply"


def test_spam_goes_to_the_spam_folder_with_the_reason(client, thread_factory, fake_akismet):
    fake_akismet.answer = "spam"
    thread = thread_factory()
    response = post(client, thread, "Cheap watches at my site.")
    assert response.status_code == 303
    comment = Comment.objects.get()
    assert comment.status == Comment.Status.SPAM
    assert comment.akismet_verdict == "spam"
    assert comment.reason_lines == ["Akismet: spam"]


def test_blatant_spam_akismet_says_to_discard_is_kept_in_spam_not_deleted(
    client, thread_factory, fake_akismet
):
    fake_akismet.answer = "discard"
    thread = thread_factory()
    post(client, thread, "Casino casino casino.")
    comment = Comment.objects.get()  # stored, not discarded
    assert comment.status == Comment.Status.SPAM
    assert comment.akismet_verdict == "discard"
    [line] = comment.reason_lines
    assert line.startswith("Akismet: spam") and "advised discarding" in line


@pytest.mark.parametrize(
    "answer, why",
    [
        ("hang", "no answer in time"),
        ("invalid", "the Akismet API key or site address is not valid"),
        ("down", "Akismet could not be reached"),
    ],
)
def test_comment_is_held_when_akismet_cannot_check_it(
    client, thread_factory, fake_akismet, caplog, answer, why
):
    fake_akismet.answer = answer
    if answer == "down":
        fake_akismet.stop()  # nothing listens on its port any more
    thread = thread_factory()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="broadsheet.comments.akismet"):
        response = post(client, thread, "Posted while Akismet is unwell.")
    elapsed = time.monotonic() - started
    assert response.status_code == 303
    comment = Comment.objects.get()
    assert comment.status == Comment.Status.PENDING
    assert comment.akismet_verdict == ""
    assert comment.reason_lines == [
        f"Akismet: unable to check this comment ({why}); held for a moderator"
    ]
    assert "Akismet could not check a comment" in caplog.text
    assert len(fake_akismet.sent("comment-check")) == (0 if answer == "down" else 1)
    if answer == "hang":
        assert elapsed < 5  # the client gave up; the fake would have answered after 5 s


def test_unreachable_akismet_lets_comments_through_when_configured_so(
    client, thread_factory, fake_akismet, settings
):
    settings.COMMENTS_AKISMET_HOLD_ON_ERROR = False
    fake_akismet.answer = "hang"
    thread = thread_factory()
    post(client, thread, "Posted while Akismet is down.")
    assert Comment.objects.get().status == Comment.Status.APPROVED


def test_moderators_comments_are_not_sent(client, thread_factory, user_factory, fake_akismet):
    client.force_login(user_factory(moderator=True))
    thread = thread_factory()
    response = post(client, thread, "From the editors.")
    assert response.status_code == 303
    assert Comment.objects.get().status == Comment.Status.APPROVED
    assert fake_akismet.requests == []


def test_comment_bound_for_the_trash_is_not_sent(client, thread_factory, fake_akismet, settings):
    settings.COMMENTS_SETTINGS_RESOLVER = "tests.test_akismet.strict_settings"
    thread = thread_factory()
    post(client, thread, "Buy followers now.")
    assert Comment.objects.get().status == Comment.Status.TRASH
    assert fake_akismet.requests == []


def strict_settings(thread):
    return DiscussionSettings(previously_approved=False, disallowed_words="followers")


# --- moderators' corrections -----------------------------------------------------------------


def run_akismet_queue():
    call_command(
        "db_worker",
        "--batch",
        "--backend",
        "outbox",
        "--queue-name",
        "akismet",
        "--no-startup-delay",
        "--no-reload",
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
    fake_akismet.answer = "ham"
    post(client, thread, "Sneaky spam Akismet missed.", ip="192.0.2.31", email="x@example.org")
    wrong = Comment.objects.get(text__startswith="Honest")
    missed = Comment.objects.get(text__startswith="Sneaky")
    assert (wrong.status, missed.status) == (Comment.Status.SPAM, Comment.Status.APPROVED)

    def act(comment, action):
        moderate(comment_ids=[comment.pk], action=action, moderator=moderator)
        run_akismet_queue()

    assert not DBTaskResult.objects.filter(queue_name="akismet").exists()
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
    statuses = list(
        DBTaskResult.objects.filter(queue_name="akismet").values_list("status", flat=True)
    )
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
    caught = Comment.objects.get()
    unchecked = comment_factory(thread, status=Comment.Status.PENDING, text="Imported.")
    moderate(comment_ids=[caught.pk], action="trash", moderator=moderator)
    moderate(comment_ids=[unchecked.pk], action="spam", moderator=moderator)
    assert not DBTaskResult.objects.filter(queue_name="akismet").exists()
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
    comment = Comment.objects.get()
    for action in ("trash", "approve", "trash", "approve"):
        moderate(comment_ids=[comment.pk], action=action, moderator=moderator)
        run_akismet_queue()
    [ham] = fake_akismet.sent("submit-ham")
    assert ham["comment_content"] == "Not spam at all."
    assert fake_akismet.sent("submit-spam") == []
