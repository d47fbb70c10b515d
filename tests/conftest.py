import pytest


@pytest.fixture
def thread_factory(db):
    from broadsheet.comments.services import sync_thread

    counter = iter(range(1, 10_000))

    def make(*, url=None, title="A statement", is_open=True, page_id=None):
        return sync_thread(
            url=url or f"/articles/{next(counter)}/", page_id=page_id, title=title, is_open=is_open
        )

    return make


@pytest.fixture
def comment_factory(db):
    from django.utils import timezone

    from broadsheet.comments.models import Comment

    def make(
        thread,
        *,
        parent=None,
        status=Comment.Status.APPROVED,
        text="A comment.",
        name="Reader",
        email="reader@example.org",
        url="",
        browser_key="",
        user=None,
    ):
        return Comment.objects.create(
            thread=thread,
            parent=parent,
            status=status,
            author_name=name,
            author_email=email,
            author_url=url,
            text=text,
            browser_key=browser_key,
            user=user,
            created_at=timezone.now(),
        )

    return make


@pytest.fixture
def user_factory(db):
    from django.contrib.auth import get_user_model

    counter = iter(range(1, 10_000))

    def make(*, username=None, email=None, moderator=False, password="correct horse 42"):
        n = next(counter)
        user = get_user_model().objects.create_user(
            username=username or f"user{n}",
            email=email or f"user{n}@example.org",
            password=password,
        )
        if moderator:
            from django.contrib.auth.models import Permission

            user.user_permissions.add(
                Permission.objects.get(codename="moderate_comment"),
                Permission.objects.get(codename="access_admin"),
            )
            user.is_staff = True
            user.save()
        return user

    return make


@pytest.fixture
def comment_data():
    """A valid guest submission; override any field."""

    def make(thread, **overrides):
        data = {
            "thread": thread.pk,
            "comment_parent": 0,
            "author": "Ana Reader",
            "email": "ana@example.org",
            "url": "",
            "comment": "Solidarity from Lisbon.",
        }
        data.update(overrides)
        return data

    return make


# --- browser tests: Debian's Chromium driven by Playwright -----------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Real names for distinct sites, all on loopback.
    "--host-resolver-rules=MAP *.test 127.0.0.1",
]


@pytest.fixture(scope="session")
def browser():
    import os

    if not os.path.exists(CHROMIUM):
        message = f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("BROADSHEET_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """Open a page in a fresh browser profile (its own cookies), with dialogs recorded: any
    alert/confirm/prompt is an executed XSS payload."""
    contexts = []

    def make(*, javascript=True, width=1280, height=900):
        context = browser.new_context(
            java_script_enabled=javascript, viewport={"width": width, "height": height}
        )
        contexts.append(context)
        page = context.new_page()
        page.dialogs = []

        def on_dialog(dialog):
            page.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.set_default_timeout(10_000)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def demo_site(live_server):
    """The demo publication served by a live server; returns (base_url, article_thread)."""
    from broadsheet.comments.models import Thread
    from broadsheet.publishing.demo import load_demo

    load_demo(base_url=live_server.url)
    thread = max(Thread.objects.all(), key=lambda t: t.comments.count())
    return live_server.url, thread


@pytest.fixture
def quiet_request_log():
    """Suites that send hundreds of expected 400s would otherwise log a warning for each."""
    import logging

    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture
def smtp_mailbox(settings):
    """A real SMTP server on 127.0.0.1 (a free port) that Django's SMTP backend sends to.
    Yields the Mailbox: ``.messages`` (email.message.EmailMessage) and ``.wait_for(n)``."""
    from tests.mailbox import Mailbox

    with Mailbox("127.0.0.1") as mailbox:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = mailbox.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        yield mailbox
