"""M01: mail is never sent in a request and never lost. Comments are posted while the SMTP
server is stopped, answers 451, or hangs; a real `broadsheet worker` process keeps trying, and
once the server is back every notification arrives exactly once, with the Message-ID it was
given when queued. A worker killed mid-send is replaced and the message re-sent (at least
once), with the same Message-ID."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from broadsheet.comments import outbox
from broadsheet.comments.models import Comment, OutboxMessage
from tests.mailbox import Mailbox, Tarpit, drain_outbox

pytestmark = pytest.mark.django_db(transaction=True)
Status = OutboxMessage.Status


def wait_until(predicate, *, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def rows():
    return list(OutboxMessage.objects.order_by("pk"))


class Worker:
    """`broadsheet worker` in its own process, on the test database."""

    def __init__(self, port: int, tmp_path, *, lease: float = 3, smtp_timeout: float = 0.5):
        from broadsheet.wordpress.jobs import child_environment

        env = child_environment()
        env.update(
            EMAIL_URL=f"smtp://127.0.0.1:{port}?timeout={smtp_timeout}",
            COMMENTS_OUTBOX_RETRY_SECONDS="0.2",
            COMMENTS_OUTBOX_SWEEP_SECONDS="0.5",
            COMMENTS_OUTBOX_LEASE_SECONDS=str(lease),
        )
        self.log = tmp_path / f"worker-{time.monotonic_ns()}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "broadsheet.cli", "worker", "--no-startup-delay",
                 "--interval", "0.1", "-v", "0"],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_factory(tmp_path):
    workers = []

    def start(port, **kwargs):
        worker = Worker(port, tmp_path, **kwargs)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def post_comments(client, thread, comment_data, count, start=0):
    """Post ``count`` guest comments (each held: a guest's first comment); returns the
    milliseconds each POST took."""
    timings = []
    for n in range(start, start + count):
        began = time.perf_counter()
        response = client.post(
            reverse("comments:post"),
            comment_data(thread, author=f"Reader {n}", email=f"r{n}@example.org",
                         comment=f"Comment number {n}."),
        )  # fmt: skip
        timings.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 303
    return timings


def test_mail_outage_loses_nothing_and_delivers_each_notification_once(
    client, thread_factory, comment_data, user_factory, worker_factory
):
    moderators = [user_factory(moderator=True, email=f"mod{n}@example.org") for n in (1, 2)]
    thread = thread_factory(title="Budget vote")
    mailbox = Mailbox().start()
    port = mailbox.port
    mailbox.stop()  # 1. the server is down
    try:
        worker = worker_factory(port)
        timings = post_comments(client, thread, comment_data, 2)
        assert Comment.objects.filter(status=Comment.Status.PENDING).count() == 2
        assert len(rows()) == 2 * len(moderators)
        wait_until(
            lambda: all(r.attempts >= 1 and r.status == Status.PENDING for r in rows()),
            what="a refused attempt on every message",
        )
        assert all("Connection refused" in r.last_error for r in rows())

        mailbox.mode = "451"  # 2. up, but "try again later"
        mailbox.start()
        timings += post_comments(client, thread, comment_data, 1, start=2)
        # Between two retries (backing off from 0.2 s): a retry's claim marks a row "sending".
        wait_until(
            lambda: all("451" in r.last_error and r.status == Status.PENDING for r in rows()),
            what="451 on every message, each waiting for its next try",
        )
        assert mailbox.messages == []
        mailbox.stop()

        with Tarpit(port) as tarpit:  # 3. accepts and never answers
            timings += post_comments(client, thread, comment_data, 1, start=3)
            wait_until(lambda: tarpit.connections, what="the worker to reach the tarpit")
            wait_until(lambda: any("timed out" in r.last_error for r in rows()), what="a time-out")
        assert all(r.status in (Status.PENDING, Status.SENDING) for r in rows())

        mailbox.mode = "accept"  # 4. back
        mailbox.start()
        wait_until(
            lambda: all(r.status == Status.SENT for r in rows()),
            timeout=60,
            what="every message sent",
        )
        final = rows()
        assert len(final) == 4 * len(moderators)
        time.sleep(1)  # nothing more arrives afterwards (a late duplicate would)
        received = [m["Message-ID"] for m in mailbox.messages]
        assert sorted(received) == sorted(r.message_id for r in final)  # each exactly once
        assert len({r.dedupe_key for r in final}) == len(final)
        assert all(r.attempts >= 2 for r in final[: 2 * len(moderators)])
        print(f"\nPOST ms during the outage: max {max(timings):.0f}, all {timings}")
    finally:
        mailbox.stop()
    assert worker.process.poll() is None  # the outage never stopped the worker


def test_a_worker_killed_mid_send_is_replaced_and_the_message_resent_with_its_id(
    client, thread_factory, comment_data, user_factory, worker_factory
):
    user_factory(moderator=True, email="mod@example.org")
    thread = thread_factory()
    with Mailbox() as mailbox:
        mailbox.hold_next()  # receive the message, withhold the "250"
        # The withheld "250" and the claim's lease outlast the steps up to the kill on a loaded
        # machine (past its lease, the worker's own sweeper would put the row back).
        first = worker_factory(mailbox.port, lease=10, smtp_timeout=30)
        post_comments(client, thread, comment_data, 1)
        [held] = mailbox.wait_for(1, timeout=30)
        [row] = rows()
        assert row.status == Status.SENDING
        first.kill()  # between DATA and recording success
        mailbox.release()
        assert OutboxMessage.objects.get().status == Status.SENDING
        worker_factory(mailbox.port, lease=2)
        wait_until(  # once the first worker's 10 s lease has run out
            lambda: OutboxMessage.objects.get().status == Status.SENT, timeout=60, what="re-sent"
        )
        messages = mailbox.wait_for(2)
        assert [m["Message-ID"] for m in messages] == [row.message_id, row.message_id]
        # One attempt taken back from the killed worker, one that succeeded.
        assert OutboxMessage.objects.get().attempts == 2


def test_refused_for_good_is_failed_and_retry_failed_sends_it(
    smtp_mailbox, thread_factory, comment_data, user_factory, client
):
    user_factory(moderator=True, email="mod@example.org")
    post_comments(client, thread_factory(), comment_data, 1)
    smtp_mailbox.mode = "550"
    drain_outbox()
    [row] = rows()
    assert (row.status, row.attempts) == (Status.FAILED, 1)
    assert "550" in row.last_error
    smtp_mailbox.mode = "accept"
    drain_outbox()
    assert smtp_mailbox.messages == []  # failed stays failed until a moderator retries
    assert outbox.retry_failed([row.pk, row.pk + 1000]) == 1
    drain_outbox()
    [message] = smtp_mailbox.wait_for(1)
    row.refresh_from_db()
    assert (row.status, row.last_error, message["Message-ID"]) == (Status.SENT, "", row.message_id)
    assert outbox.retry_failed([row.pk]) == 0  # a sent message is not sent again


def test_transient_failures_back_off_and_give_up_after_the_limit(
    smtp_mailbox, settings, thread_factory, comment_data, user_factory, client
):
    user_factory(moderator=True, email="mod@example.org")
    post_comments(client, thread_factory(), comment_data, 1)
    smtp_mailbox.mode = "451"
    [row] = rows()
    waits = []
    for attempt in range(1, settings.COMMENTS_OUTBOX_MAX_ATTEMPTS + 1):
        before = timezone.now()
        assert outbox.deliver.call(row.pk) == ("retry" if attempt < 20 else "failed")
        row.refresh_from_db()
        assert row.attempts == attempt
        if row.status == Status.PENDING:
            waits.append((row.next_attempt_at - before).total_seconds())
            OutboxMessage.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert row.status == Status.FAILED and "451" in row.last_error
    assert 27 <= waits[0] <= 33.5 and 54 <= waits[1] <= 66.5  # 30 s, 1 min, ±10 %
    assert max(waits) <= 3600 * 1.1 + 1 and waits[-1] >= 3600 * 0.9  # capped at an hour
    assert smtp_mailbox.messages == []


def test_the_sweeper_queues_due_messages_that_lost_their_task(
    smtp_mailbox, thread_factory, comment_data, user_factory, client
):
    from django_tasks_db.models import DBTaskResult

    user_factory(moderator=True, email="mod@example.org")
    post_comments(client, thread_factory(), comment_data, 1)
    DBTaskResult.objects.all().delete()  # as if the process died between COMMIT and enqueue
    OutboxMessage.objects.update(
        status=Status.SENDING, locked_until=timezone.now() - timedelta(seconds=1)
    )
    assert outbox.sweep() == {"reclaimed": 1, "queued": 1, "failed": 0}
    assert outbox.sweep()["queued"] == 0  # its task is waiting: not queued twice
    drain_outbox()
    [message] = smtp_mailbox.wait_for(1)
    assert OutboxMessage.objects.get().status == Status.SENT


# --- who gets what ----------------------------------------------------------------------------

AUTHORS = ["author@example.org", "R0@Example.org"]


def authors_of(thread):
    """A COMMENTS_THREAD_AUTHORS for these tests: the article's author, and an address that
    is also the commenter's (who must not be told about their own comment)."""
    return AUTHORS


def discussion(**fields):
    from broadsheet.comments.conf import DiscussionSettings

    return lambda thread: DiscussionSettings(**fields)


@pytest.fixture
def notify(settings):
    settings.COMMENTS_THREAD_AUTHORS = f"{__name__}.authors_of"

    def configure(**fields):
        settings.COMMENTS_SETTINGS_RESOLVER = f"{__name__}._resolver"
        globals()["_resolver"] = discussion(**fields)

    return configure


def by_kind():
    return sorted((r.kind, r.to) for r in OutboxMessage.objects.all())


@pytest.mark.django_db(transaction=False)
def test_held_comment_mails_moderators_and_approval_mails_the_author_once(
    client, notify, thread_factory, comment_data, user_factory
):
    from broadsheet.comments.services import moderate

    notify()  # the defaults: held → moderators; approved → authors
    moderator = user_factory(moderator=True, email="mod@example.org")
    user_factory(email="plain@example.org")  # not a moderator: nothing
    post_comments(client, thread_factory(), comment_data, 1)
    comment = Comment.objects.get()
    assert by_kind() == [("moderator_held", "mod@example.org")]
    for action in ("approve", "unapprove", "approve"):
        moderate(comment_ids=[comment.pk], action=action, moderator=moderator)
    # The author once; never the commenter (r0@example.org, whatever its case).
    assert by_kind() == [
        ("author_comment", "author@example.org"),
        ("moderator_held", "mod@example.org"),
    ]
    author_mail = OutboxMessage.objects.get(kind="author_comment")
    assert "r0@example.org" not in author_mail.text  # the commenter's address stays private
    assert "Comment number 0." in author_mail.text and author_mail.html


@pytest.mark.django_db(transaction=False)
def test_notify_on_post_and_switches_off(
    client, notify, thread_factory, comment_data, user_factory
):
    user_factory(moderator=True, email="mod@example.org")
    thread = thread_factory()
    notify(notify_on_post=True, notify_on_hold=False, previously_approved=False)
    post_comments(client, thread, comment_data, 1)
    assert by_kind() == [
        ("author_comment", "author@example.org"),
        ("moderator_posted", "mod@example.org"),
    ]
    OutboxMessage.objects.all().delete()
    notify(notify_on_post=False, notify_on_hold=False, notify_author=False)
    post_comments(client, thread, comment_data, 1, start=1)
    assert by_kind() == []


@pytest.mark.django_db(transaction=False)
def test_a_missing_author_resolver_means_no_author_mail_and_the_comment_is_posted(
    client, notify, settings, thread_factory, comment_data, user_factory
):
    notify(previously_approved=False)
    settings.COMMENTS_THREAD_AUTHORS = "broadsheet.publishing.discussion.no_such_function"
    post_comments(client, thread_factory(), comment_data, 1)
    assert Comment.objects.get().status == Comment.Status.APPROVED
    assert by_kind() == []


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), True),
        (smtplib.SMTPSenderRefused(550, b"relay not permitted", "noreply@localhost"), True),
        (smtplib.SMTPConnectError(554, b"no service"), True),
        (smtplib.SMTPDataError(451, b"try later"), True),
        (smtplib.SMTPDataError(550, b"message refused"), False),
        (smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"no such user")}), False),
        (smtplib.SMTPRecipientsRefused({"a@example.org": (450, b"greylisted")}), True),
        (ConnectionRefusedError(), True),
    ],
)
def test_a_server_refusing_us_is_retried_a_refused_message_is_not(error, retried):
    """A wrong password or relay setting fails every message alike: they wait for the settings
    to be mended instead of all failing for good on their first try."""
    assert outbox._classify(error) is retried
