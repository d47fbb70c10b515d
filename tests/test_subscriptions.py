"""“Notify me of follow-up comments / of new posts via email”: double opt-in, notifications,
one-click unsubscribe (RFC 8058) and a reader's own subscriptions page, with mail delivered over
SMTP to a real server on loopback (catalog row U01)."""

from __future__ import annotations

import base64
import re
import time
from unittest import mock

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from broadsheet.comments import outbox, services, subscriptions
from broadsheet.comments.identity import Identity
from broadsheet.comments.models import Comment, OutboxMessage, Subscription
from tests.mailbox import drain_outbox

SCANNER_UA = "Mozilla/5.0 (compatible; Barracuda Sentinel; +https://barracuda.com) LinkScanner"
BASE = "https://news.example"


@pytest.fixture(autouse=True)
def base_url(settings):
    settings.BROADSHEET_BASE_URL = BASE
    settings.WAGTAIL_SITE_NAME = "Broadsheet"


def run_worker():
    """`broadsheet worker --batch` in this process (tests/mailbox.drain_outbox): it sweeps,
    runs the queued tasks, the subscriber fan-outs among them, then exits. The worker drops
    its database connection between tasks when it looks stale; inside a test's transaction it
    always looks so, and dropping it would end the test, so that one call is kept from
    closing it (the tasks themselves run as in the worker)."""
    with mock.patch("django_tasks_db.management.commands.db_worker.close_old_connections"):
        drain_outbox()


def deliver():
    """What the worker does, until nothing is left: run the fan-out tasks (they queue one mail
    per subscriber), then send every due message over SMTP. Inside a test's transaction the
    mails' on-commit wake-ups never fire, so the second pass's sweep queues them, as the
    sweeper does for a lost wake-up."""
    run_worker()
    run_worker()
    assert not outbox.deliver_due()  # the worker left nothing due behind


def fan_out_tasks():
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(task_path__in=subscriptions.FAN_OUT_PATHS)


def mail_to(mailbox, address: str) -> list:
    return [m for m in mailbox.messages if address in str(m["To"])]


def body(message, kind: str = "plain") -> str:
    return message.get_body(preferencelist=(kind,)).get_content()


def link_in(text: str, what: str) -> str:
    match = re.search(rf"{re.escape(BASE)}/comments/subscriptions/{what}/[^/\s]+/", text)
    assert match, text
    return match.group(0)


def path_of(url: str) -> str:
    return url.removeprefix(BASE)


@pytest.fixture
def moderator(user_factory):
    return user_factory(moderator=True, email="editor@news.example")


@pytest.fixture
def post(db):
    """Post through the comment service, as the form view does; each commenter from their own
    address, so the flood guard sees different people."""
    counter = iter(range(1, 1000))

    def make(thread, *, email, name="Reader", text=None, user=None, identity=None, **boxes):
        n = next(counter)
        result = services.post_comment(
            thread=thread,
            text=text or f"Comment number {n} on the statement.",
            author_name=name,
            author_email=email,
            user=user,
            identity=identity,
            ip=f"192.0.2.{n}",
            **boxes,
        )
        return result.comment

    return make


@pytest.fixture
def approve(moderator):
    def make(comment):
        services.moderate(comment_ids=[comment.pk], action="approve", moderator=moderator)
        comment.refresh_from_db()
        return comment

    return make


@pytest.fixture
def confirmed(thread_factory, post):
    """A confirmed follow-up subscription of ana@example.org on a thread."""

    def make(thread=None, email="ana@example.org", kind=Subscription.Kind.THREAD):
        thread = thread or thread_factory()
        subscription = subscriptions.subscribe(email=email, kind=kind, thread=thread)
        subscriptions.confirm(subscription)
        OutboxMessage.objects.filter(kind=subscriptions.KIND_CONFIRM).delete()
        return subscription

    return make


# --- double opt-in -------------------------------------------------------------------------------


def test_ticking_the_box_on_the_form_sends_only_a_confirmation(
    client, thread_factory, comment_data, smtp_mailbox, post, approve
):
    thread = thread_factory(title="On the strike")
    response = client.post(reverse("comments:post"), comment_data(thread, subscribe_thread="on"))
    assert response.status_code == 303
    subscription = Subscription.objects.get()
    assert subscription.email == "ana@example.org" and not subscription.is_active
    # Someone else's comment appears before Ana confirms: she gets nothing but the request.
    approve(post(thread, email="bo@example.org", name="Bo"))
    deliver()
    [message] = mail_to(smtp_mailbox, "ana@example.org")
    assert message["Subject"].strip() == "[Broadsheet] Please confirm your subscription"
    assert "On the strike" in body(message)
    assert message["List-Unsubscribe"] is None
    link_in(body(message), "confirm")
    assert link_in(body(message, "html"), "confirm")


def test_confirming_takes_a_button_press_then_replies_arrive(
    thread_factory, smtp_mailbox, post, approve
):
    thread = thread_factory(title="On the strike")
    post(thread, email="ana@example.org", name="Ana", subscribe_thread=True)
    deliver()
    [request] = mail_to(smtp_mailbox, "ana@example.org")
    confirm = path_of(link_in(body(request), "confirm"))

    browser = Client(enforce_csrf_checks=True)
    page = browser.get(confirm, HTTP_USER_AGENT=SCANNER_UA)
    assert page.status_code == 200
    assert "Yes, subscribe me" in page.content.decode()
    assert not Subscription.objects.get().is_active  # a GET (a scanner) confirms nothing
    assert browser.post(confirm).status_code == 403  # no CSRF token: nothing done
    assert not Subscription.objects.get().is_active
    done = browser.post(confirm, {"csrfmiddlewaretoken": page.context["csrf_token"]})
    assert "You are subscribed" in done.content.decode()
    assert Subscription.objects.get().is_active

    smtp_mailbox.clear()
    approve(post(thread, email="bo@example.org", name="Bo", text="<b>Bo</b> replies."))
    deliver()
    [reply] = mail_to(smtp_mailbox, "ana@example.org")
    assert reply["To"] == "ana@example.org"
    assert reply["Subject"].strip() == "[Broadsheet] New comment on “On the strike”"
    comment = Comment.objects.get(author_name="Bo")
    assert f"{BASE}/comments/{comment.pk}/" in body(reply)
    assert "Bo replies." in body(reply)
    assert "<b>Bo</b> replies." in body(reply, "html")
    unsubscribe = link_in(body(reply), "unsubscribe")
    assert reply["List-Unsubscribe"].strip() == f"<{unsubscribe}>"
    assert reply["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe in body(reply, "html")


def test_a_confirmed_subscription_is_not_asked_again(thread_factory, post, confirmed):
    subscription = confirmed()
    post(subscription.thread, email="ANA@example.org", subscribe_thread=True)
    assert Subscription.objects.count() == 1
    assert not OutboxMessage.objects.filter(kind=subscriptions.KIND_CONFIRM).exists()


def test_a_pending_subscription_is_sent_one_confirmation_per_hour(thread_factory, post):
    thread = thread_factory()
    post(thread, email="ana@example.org", subscribe_thread=True)
    post(thread, email="ana@example.org", subscribe_thread=True, text="Again, later.")
    assert OutboxMessage.objects.filter(kind=subscriptions.KIND_CONFIRM).count() == 1


def test_a_stranger_cannot_flood_an_address_with_confirmations(thread_factory):
    for _ in range(8):
        subscriptions.subscribe(
            email="victim@example.org", kind=Subscription.Kind.THREAD, thread=thread_factory()
        )
    sent = OutboxMessage.objects.filter(kind=subscriptions.KIND_CONFIRM, to="victim@example.org")
    assert sent.count() == subscriptions.CONFIRMATIONS_PER_DAY


def test_spam_subscribes_nobody(thread_factory, post):
    thread = thread_factory()
    comment = post(thread, email="ana@example.org", subscribe_thread=True)
    Subscription.objects.all().delete()
    OutboxMessage.objects.all().delete()
    comment.status = Comment.Status.SPAM
    subscriptions.on_comment_posted(Comment, comment=comment, subscribe_thread=True)
    assert not Subscription.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_a_signed_in_reader_with_a_confirmed_address_is_subscribed_at_once(
    thread_factory, post, user_factory
):
    from allauth.account.models import EmailAddress

    user = user_factory(email="cam@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    post(
        thread_factory(),
        email=user.email,
        user=user,
        identity=Identity(kind=Identity.ACCOUNT, name="Cam"),
        subscribe_thread=True,
        subscribe_posts=True,
    )
    assert {(s.kind, s.is_active, s.user_id) for s in Subscription.objects.all()} == {
        ("thread", True, user.pk),
        ("posts", True, user.pk),
    }
    assert not OutboxMessage.objects.filter(kind=subscriptions.KIND_CONFIRM).exists()


def test_a_provider_identity_without_email_gets_no_subscription(thread_factory, post):
    post(
        thread_factory(),
        email="",
        name="",
        identity=Identity(kind=Identity.PROVIDER, name="Dee", provider="mastodon"),
        subscribe_thread=True,
        subscribe_posts=True,
    )
    assert not Subscription.objects.exists()


def test_expired_confirmation_link_shows_a_clear_page_and_changes_nothing(client, thread_factory):
    subscription = subscriptions.subscribe(
        email="ana@example.org", kind=Subscription.Kind.THREAD, thread=thread_factory()
    )
    eight_days_ago = time.time() - 8 * 24 * 3600
    with mock.patch("django.core.signing.time.time", return_value=eight_days_ago):
        old = reverse(
            "comments:subscription_confirm", args=[subscriptions.confirm_token(subscription)]
        )
    for response in (client.get(old), client.post(old)):
        assert response.status_code == 410
        assert "This link has expired" in response.content.decode()
    assert not Subscription.objects.get().is_active


def test_tampered_confirmation_links_are_refused(client, thread_factory):
    thread = thread_factory()
    ana = subscriptions.subscribe(
        email="ana@example.org", kind=Subscription.Kind.THREAD, thread=thread
    )
    bo = subscriptions.subscribe(
        email="bo@example.org", kind=Subscription.Kind.THREAD, thread=thread
    )
    token = subscriptions.confirm_token(ana)
    for forged in (
        _flip(token, 3),
        _flip(token, len(token) - 2),
        subscriptions.unsubscribe_token(bo),  # another purpose's token
        signing.dumps({"s": bo.pk, "k": ana.secret[:16]}, salt=subscriptions.CONFIRM_SALT),
    ):
        url = reverse("comments:subscription_confirm", args=[forged])
        assert client.post(url).status_code == 400, forged
    assert not any(s.is_active for s in Subscription.objects.all())


# --- notifications -----------------------------------------------------------------------------


def test_a_held_reply_is_announced_once_when_approved(
    thread_factory, smtp_mailbox, post, approve, moderator, confirmed
):
    subscription = confirmed()
    reply = post(subscription.thread, email="bo@example.org")
    assert reply.status == Comment.Status.PENDING
    deliver()
    assert not mail_to(smtp_mailbox, "ana@example.org")  # held: nobody told
    approve(reply)
    services.moderate(comment_ids=[reply.pk], action="unapprove", moderator=moderator)
    approve(reply)
    deliver()
    assert len(mail_to(smtp_mailbox, "ana@example.org")) == 1


def test_the_author_of_a_comment_is_not_told_of_it(thread_factory, post, approve, confirmed):
    subscription = confirmed()
    confirmed(subscription.thread, email="bo@example.org")
    approve(post(subscription.thread, email="Ana@Example.ORG", name="Ana"))
    run_worker()
    assert list(
        OutboxMessage.objects.filter(kind="subscription_reply").values_list("to", flat=True)
    ) == ["bo@example.org"]


def test_reply_mail_has_no_images_or_links_from_the_comment(
    thread_factory, smtp_mailbox, post, approve, confirmed
):
    subscription = confirmed()
    approve(
        post(
            subscription.thread,
            email="bo@example.org",
            text='See <a href="https://evil.example/x">this</a> <img src="https://evil.example/p.gif">',
        )
    )
    deliver()
    [reply] = mail_to(smtp_mailbox, "ana@example.org")
    html = body(reply, "html")
    assert "<img" not in html
    assert 'href="https://evil.example' not in html
    assert "evil.example/x" in html  # the address, shown as text


def test_only_subscribers_of_that_thread_hear_of_it(thread_factory, post, approve, confirmed):
    mine = confirmed()
    confirmed(email="other@example.org")  # another thread
    approve(post(mine.thread, email="bo@example.org"))
    run_worker()
    assert list(
        OutboxMessage.objects.values_list("to", flat=True).filter(kind="subscription_reply")
    ) == ["ana@example.org"]


def test_a_title_with_line_breaks_cannot_add_mail_headers(
    thread_factory, smtp_mailbox, post, approve, confirmed
):
    subscription = confirmed(thread_factory(title="Strike\r\nBcc: everyone@example.org"))
    approve(post(subscription.thread, email="bo@example.org"))
    deliver()
    [reply] = mail_to(smtp_mailbox, "ana@example.org")
    assert reply["Bcc"] is None
    recipients = [rcpt for _, rcpts in smtp_mailbox.envelopes for rcpt in rcpts]
    assert "everyone@example.org" not in recipients
    assert reply["Subject"].strip() == (
        "[Broadsheet] New comment on “Strike Bcc: everyone@example.org”"
    )


# --- unsubscribe (U01) -----------------------------------------------------------------------


@pytest.fixture
def two_subscriptions(thread_factory, confirmed):
    """Ana follows a thread and new posts; Bo follows the same thread."""
    thread = thread_factory(title="On the strike")
    ana = confirmed(thread)
    ana_posts = confirmed(email="ana@example.org", kind=Subscription.Kind.POSTS)
    bo = confirmed(thread, email="bo@example.org")
    return ana, ana_posts, bo


def unsubscribe_path(subscription) -> str:
    return path_of(subscriptions.unsubscribe_url(subscription))


def states() -> dict[int, bool]:
    return {s.pk: s.is_active for s in Subscription.objects.all()}


def test_one_click_post_without_cookies_ends_that_subscription_only(two_subscriptions):
    ana, ana_posts, bo = two_subscriptions
    mail_client = Client(enforce_csrf_checks=True)  # no cookies, no CSRF token
    response = mail_client.post(
        unsubscribe_path(ana),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    assert states() == {ana.pk: False, ana_posts.pk: True, bo.pk: True}
    # Again: still fine, nothing else changes.
    assert mail_client.post(unsubscribe_path(ana)).status_code == 200
    assert states() == {ana.pk: False, ana_posts.pk: True, bo.pk: True}


def test_get_of_the_unsubscribe_link_changes_nothing(client, two_subscriptions):
    ana, *_ = two_subscriptions
    before = states()
    for method in (client.get, client.head):
        response = method(unsubscribe_path(ana), HTTP_USER_AGENT=SCANNER_UA)
        assert response.status_code == 200
    page = client.get(unsubscribe_path(ana)).content.decode()
    assert "Stop email about follow-up comments on “On the strike”?" in page
    assert "ana@example.org" not in page
    assert states() == before


def test_unsubscribing_from_the_mail_stops_the_mail(two_subscriptions, smtp_mailbox, post, approve):
    ana, _, bo = two_subscriptions
    comment = post(ana.thread, email="cy@example.org")
    approve(comment)  # queued for Ana and Bo, not yet sent
    Client().post(unsubscribe_path(ana), {"List-Unsubscribe": "One-Click"})
    deliver()
    readers = [m["To"] for m in smtp_mailbox.messages if m["To"].endswith("@example.org")]
    assert readers == ["bo@example.org"]  # not Ana (the moderator is told of the held comment)


def _flip(token: str, at: int) -> str:
    chars = list(token)
    chars[at] = "A" if chars[at] != "A" else "B"
    return "".join(chars)


def _with_id(token: str, pk: int) -> str:
    """The same signature over a payload naming another subscription."""
    payload, rest = token.lstrip(".").split(":", 1)
    data = signing.loads(token, salt=subscriptions.UNSUBSCRIBE_SALT)
    data["s"] = pk
    raw = base64.urlsafe_b64encode(signing.JSONSerializer().dumps(data)).rstrip(b"=").decode()
    return f"{raw}:{rest}"


def test_tampered_unsubscribe_links_are_refused_and_change_nothing(client, two_subscriptions):
    ana, ana_posts, bo = two_subscriptions
    token = subscriptions.unsubscribe_token(ana)
    before = states()
    bad = [
        _flip(token, 3),  # a byte of the payload
        _flip(token, len(token) - 2),  # a byte of the signature
        token[:-4],  # cut short
        _with_id(token, bo.pk),  # Ana's signature, Bo's id
        subscriptions.confirm_token(bo),  # a confirmation link's token for Bo
        signing.dumps({"s": bo.pk, "k": ana.secret[:16]}, salt=subscriptions.UNSUBSCRIBE_SALT),
        "not-a-token",
    ]
    for forged in bad:
        url = reverse("comments:subscription_unsubscribe", args=[forged])
        for response in (client.get(url), client.post(url, {"List-Unsubscribe": "One-Click"})):
            assert response.status_code == 400, forged
            assert "This link is not valid" in response.content.decode()
    assert states() == before


def test_a_rotated_secret_voids_old_links(client, two_subscriptions):
    ana, *_ = two_subscriptions
    old = unsubscribe_path(ana)
    ana.secret = subscriptions.new_secret()
    ana.save(update_fields=["secret"])
    assert client.post(old).status_code == 400
    assert Subscription.objects.get(pk=ana.pk).is_active


def test_the_unsubscribe_token_carries_no_email(two_subscriptions):
    ana, *_ = two_subscriptions
    token = subscriptions.unsubscribe_token(ana)
    payload = signing.loads(token, salt=subscriptions.UNSUBSCRIBE_SALT)
    assert set(payload) == {"s", "k"}
    assert "ana" not in token and "ana" not in str(payload)


# --- new posts -----------------------------------------------------------------------------------


@pytest.fixture
def home(db):
    from broadsheet.publishing.demo import load_demo
    from broadsheet.publishing.models import HomePage

    load_demo(base_url="http://testserver")
    return HomePage.objects.get()


def new_article(home, title="The general strike", publish=True):
    from broadsheet.publishing.models import ArticlePage

    article = ArticlePage(
        title=title,
        slug="general-strike",
        standfirst="Workers & students walk out.",
        body="<p>Body.</p>",
        live=False,
    )
    home.add_child(instance=article)
    revision = article.save_revision()
    if publish:
        revision.publish()
    return ArticlePage.objects.get(pk=article.pk)


def test_a_new_article_is_announced_once_to_confirmed_post_subscribers(
    home, smtp_mailbox, confirmed
):
    confirmed(email="ana@example.org", kind=Subscription.Kind.POSTS)
    subscriptions.subscribe(email="pending@example.org", kind=Subscription.Kind.POSTS)
    OutboxMessage.objects.all().delete()
    article = new_article(home)
    deliver()
    article.standfirst = "Edited."
    article.save_revision().publish()  # an edit: not a new post
    deliver()
    [message] = smtp_mailbox.messages
    assert message["To"] == "ana@example.org"
    assert message["Subject"].strip() == "[Broadsheet] The general strike"
    text = body(message)
    assert "Workers & students walk out." in text
    assert f"{BASE}{article.url}" in text
    assert message["List-Unsubscribe"].strip() == f"<{link_in(text, 'unsubscribe')}>"


def test_unpublish_and_publish_again_announces_nothing(home, confirmed):
    confirmed(email="ana@example.org", kind=Subscription.Kind.POSTS)
    article = new_article(home)
    run_worker()
    assert OutboxMessage.objects.filter(kind="subscription_post").count() == 1
    OutboxMessage.objects.all().delete()
    article.unpublish()
    article.save_revision().publish()
    assert not fan_out_tasks().filter(status="READY").exists()
    run_worker()
    assert not OutboxMessage.objects.exists()


def test_imported_articles_are_not_announced(home, confirmed):
    from broadsheet.publishing import services as publishing
    from broadsheet.publishing.models import ArticlePage

    confirmed(email="ana@example.org", kind=Subscription.Kind.POSTS)
    publishing.place_page(
        parent=home,
        page=ArticlePage(title="From the archive", slug="archive", body="<p>Old.</p>"),
        state=publishing.State.LIVE,
    )
    assert not fan_out_tasks().exists()
    run_worker()
    assert not OutboxMessage.objects.exists()


# --- fan-out in the worker, not in the request ---------------------------------------------------


def many_confirmed(count, thread=None, kind=Subscription.Kind.THREAD):
    """``count`` confirmed subscriptions, reader0@… onwards."""
    from django.utils import timezone

    Subscription.objects.bulk_create(
        Subscription(
            email=f"reader{n}@example.org",
            kind=kind,
            thread=thread,
            secret=subscriptions.new_secret(),
            confirmed_at=timezone.now(),
        )
        for n in range(count)
    )
    return sorted(f"reader{n}@example.org" for n in range(count))


def readers(mailbox) -> list[str]:
    return sorted(str(m["To"]) for m in mailbox.messages if str(m["To"]).startswith("reader"))


def test_approving_for_many_subscribers_queues_one_task_and_the_worker_mails_them_all(
    thread_factory, post, moderator, smtp_mailbox
):
    thread = thread_factory(title="On the strike")
    everyone = many_confirmed(40, thread)
    comment = post(thread, email="bo@example.org", name="Bo")
    assert comment.status == Comment.Status.PENDING
    browser = Client()
    browser.force_login(moderator)
    response = browser.post(
        reverse("comment_moderation:bulk"), {"action": "approve", "ids": [comment.pk]}
    )
    assert response.status_code == 302
    assert Comment.objects.get(pk=comment.pk).status == Comment.Status.APPROVED
    # The request queued one task and not one mail.
    assert fan_out_tasks().filter(status="READY").count() == 1
    assert not OutboxMessage.objects.filter(kind=subscriptions.KIND_REPLY).exists()
    deliver()
    assert readers(smtp_mailbox) == everyone
    assert fan_out_tasks().get().status == "SUCCESSFUL"
    assert {m["Subject"].strip() for m in smtp_mailbox.messages if m["To"] in everyone} == {
        "[Broadsheet] New comment on “On the strike”"
    }


def test_a_comment_posted_for_many_subscribers_queues_one_task(
    client, thread_factory, comment_data, post, approve, smtp_mailbox
):
    thread = thread_factory()
    # Ana's first comment from this browser is held; once approved, her next one is not.
    assert client.post(reverse("comments:post"), comment_data(thread)).status_code == 303
    approve(Comment.objects.get())
    everyone = many_confirmed(40, thread)
    response = client.post(reverse("comments:post"), comment_data(thread, comment="Thanks."))
    assert response.status_code == 303
    assert Comment.objects.latest("pk").status == Comment.Status.APPROVED
    assert fan_out_tasks().count() == 1
    assert not OutboxMessage.objects.filter(kind=subscriptions.KIND_REPLY).exists()
    deliver()
    assert readers(smtp_mailbox) == everyone


def test_a_comment_unapproved_before_the_worker_runs_mails_nobody(
    smtp_mailbox, post, approve, moderator, confirmed
):
    subscription = confirmed()
    reply = approve(post(subscription.thread, email="bo@example.org"))
    services.moderate(comment_ids=[reply.pk], action="unapprove", moderator=moderator)
    deliver()
    assert not mail_to(smtp_mailbox, "ana@example.org")
    assert fan_out_tasks().get().status == "SUCCESSFUL"


def test_an_approval_rolled_back_leaves_no_task(post, approve, confirmed):
    from django.db import transaction

    subscription = confirmed()
    reply = post(subscription.thread, email="bo@example.org")
    with pytest.raises(RuntimeError), transaction.atomic():
        approve(reply)
        raise RuntimeError("the request failed after the approval")
    assert not fan_out_tasks().exists()


def test_a_fan_out_whose_worker_was_killed_is_run_again_and_mails_each_once(
    thread_factory, smtp_mailbox, post, approve, confirmed
):
    from datetime import timedelta

    from django.utils import timezone

    ana = confirmed()
    confirmed(ana.thread, email="bo@example.org")
    reply = approve(post(ana.thread, email="cy@example.org"))
    # The worker had queued Ana's mail, not yet Bo's, when it was killed: its task stays
    # "running", and a new worker never runs it again.
    subscription_reply = subscriptions.KIND_REPLY
    subscriptions.notify_thread(reply)
    OutboxMessage.objects.filter(kind=subscription_reply, to="bo@example.org").delete()
    fan_out_tasks().update(
        status="RUNNING", started_at=timezone.now() - timedelta(minutes=1), worker_ids=["killed"]
    )
    run_worker()
    assert OutboxMessage.objects.filter(kind=subscription_reply).count() == 1
    assert subscriptions.sweep_fan_outs() == 0  # it may still be running somewhere
    fan_out_tasks().update(started_at=timezone.now() - subscriptions.FAN_OUT_STALE)
    assert subscriptions.sweep_fan_outs() == 1
    assert subscriptions.sweep_fan_outs() == 0  # queued once, not at every sweep
    deliver()
    assert len(mail_to(smtp_mailbox, "ana@example.org")) == 1
    assert len(mail_to(smtp_mailbox, "bo@example.org")) == 1
    assert OutboxMessage.objects.filter(kind=subscription_reply).count() == 2


def test_a_fan_out_that_fails_is_tried_again_later(post, approve, confirmed):
    ana = confirmed()
    reply = approve(post(ana.thread, email="bo@example.org"))
    with mock.patch.object(subscriptions, "render", side_effect=OSError("disk full")):
        run_worker()
    failed = fan_out_tasks().get(status="FAILED")
    assert "disk full" in failed.traceback
    again = fan_out_tasks().get(status="READY")
    assert again.args_kwargs == {"args": [reply.pk], "kwargs": {"attempt": 2}}
    assert not OutboxMessage.objects.filter(kind=subscriptions.KIND_REPLY).exists()


def test_publishing_for_many_subscribers_queues_one_task_and_the_worker_mails_them(
    home, smtp_mailbox
):
    everyone = many_confirmed(30, kind=Subscription.Kind.POSTS)
    new_article(home)
    assert fan_out_tasks().count() == 1
    assert not OutboxMessage.objects.exists()
    deliver()
    assert readers(smtp_mailbox) == everyone


def test_an_article_unpublished_before_the_worker_runs_is_not_announced(home, confirmed):
    confirmed(email="ana@example.org", kind=Subscription.Kind.POSTS)
    article = new_article(home)
    assert fan_out_tasks().count() == 1
    article.unpublish()
    run_worker()
    assert not OutboxMessage.objects.filter(kind=subscriptions.KIND_POST).exists()


def test_an_account_is_tied_only_to_subscriptions_of_its_own_verified_address(
    user_factory, thread_factory
):
    from allauth.account.models import EmailAddress

    thread = thread_factory(title="On the strike")
    anas = subscriptions.subscribe(email="ana@example.org", kind="thread", thread=thread)
    subscriptions.confirm(anas)
    # Someone signs up with Ana's address (never verified) and ticks the boxes.
    other = user_factory(email="ana@example.org")
    again = subscriptions.subscribe(
        email="ana@example.org", kind="thread", thread=thread, user=other
    )
    posts = subscriptions.subscribe(email="ana@example.org", kind="posts", user=other)
    assert again.pk == anas.pk and again.user_id is None
    assert posts.user_id is None and not posts.is_active
    browser = Client()
    browser.force_login(other)
    assert "On the strike" not in browser.get(reverse("comments:subscriptions")).content.decode()
    # Once the account has verified the address, it is its own.
    EmailAddress.objects.create(user=other, email="ana@example.org", verified=True, primary=True)
    again = subscriptions.subscribe(
        email="ana@example.org", kind="thread", thread=thread, user=other
    )
    assert again.user_id == other.pk
    assert "On the strike" in browser.get(reverse("comments:subscriptions")).content.decode()


# --- a reader's own subscriptions -----------------------------------------------------------


def test_subscriptions_page_needs_sign_in(client):
    response = client.get(reverse("comments:subscriptions"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_reader_sees_and_ends_their_own_subscriptions_only(user_factory, thread_factory, confirmed):
    from allauth.account.models import EmailAddress

    user = user_factory(email="ana@example.org")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    mine = confirmed(thread_factory(title="On the strike"))
    theirs = confirmed(thread_factory(title="Elsewhere"), email="bo@example.org")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    page = browser.get(reverse("comments:subscriptions"))
    html = page.content.decode()
    assert "On the strike" in html and "Elsewhere" not in html
    end_mine = reverse("comments:subscription_unsubscribe_own", args=[mine.pk])
    end_theirs = reverse("comments:subscription_unsubscribe_own", args=[theirs.pk])
    assert browser.post(end_mine).status_code == 403  # no CSRF token
    csrf = {"csrfmiddlewaretoken": page.context["csrf_token"]}
    assert browser.post(end_theirs, csrf).status_code == 404
    done = browser.post(end_mine, csrf, follow=True)
    assert "You will no longer get email about follow-up comments on “On the strike”." in (
        done.content.decode()
    )
    assert states() == {mine.pk: False, theirs.pk: True}


# --- in a real browser -------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_reader_subscribes_confirms_and_unsubscribes_in_a_browser(
    demo_site, new_page, smtp_mailbox, settings, user_factory
):
    base, thread = demo_site
    settings.BROADSHEET_BASE_URL = base
    page = new_page()
    page.goto(f"{base}{thread.url}")
    page.wait_for_selector('#commentform[data-ready="1"]', state="attached")
    page.fill("#comment", "Keep me posted, comrades.")
    page.fill("#author", "Ana Reader")
    page.fill("#email", "ana@example.org")
    page.check("#subscribe_thread")
    page.click("#submit")
    page.wait_for_url(f"**{thread.url}#comment-*")
    deliver()
    [request] = mail_to(smtp_mailbox, "ana@example.org")
    confirm = re.search(r"http://\S+/comments/subscriptions/confirm/\S+/", body(request))[0]

    page.goto(confirm)
    assert "Confirm your subscription" in page.inner_text("main")
    page.get_by_role("button", name="Yes, subscribe me").click()
    page.wait_for_selector("text=You are subscribed")
    assert Subscription.objects.get().is_active

    moderator = user_factory(moderator=True)
    reply = services.post_comment(
        thread=thread, text="Will do.", author_name="Bo", author_email="bo@example.org"
    ).comment
    services.moderate(comment_ids=[reply.pk], action="approve", moderator=moderator)
    smtp_mailbox.clear()
    deliver()
    [note] = mail_to(smtp_mailbox, "ana@example.org")
    assert "Will do." in body(note)
    unsubscribe = re.search(r"http://\S+/comments/subscriptions/unsubscribe/\S+/", body(note))[0]

    page.goto(unsubscribe)
    assert Subscription.objects.get().is_active  # opening the link changed nothing
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_selector("text=You are unsubscribed")
    assert not Subscription.objects.get().is_active
