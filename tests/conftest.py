import pytest

# --- anti-automation: clean counters for every test, and test-friendly limits -----------------


@pytest.fixture(autouse=True)
def _antispam_for_tests(request, settings, monkeypatch):
    """Every test starts with an empty (per-process) cache. Unless it asks for ``antispam_on``,
    the anti-automation guards let a test post as fast and as often as it likes: no minimum
    form time, no rate limits, flood or duplicate check, and posts through the Django test
    client to the comment form carry a valid form token (as the page's script adds one). The
    guards themselves stay strict: nothing here is read by the application."""
    from django.core.cache import cache

    from broadsheet.publishing import discussion

    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        cache.clear()
    discussion.forget()  # settings remembered from a test whose rows were rolled back
    if "antispam_on" in request.fixturenames:
        yield
        return
    from collections.abc import Mapping
    from urllib.parse import urlsplit

    from django.test import Client
    from django.urls import reverse

    from broadsheet.comments import antispam

    settings.COMMENTS_FORM_MIN_SECONDS = 0
    monkeypatch.setattr(
        antispam, "limits_for", lambda cfg: antispam.Limits(0, 0, 0, 0, 0, duplicates=False)
    )
    original_post = Client.post

    def post(self, path, data=None, *args, **kwargs):
        if (
            isinstance(data, Mapping)
            and "thread" in data
            and "form_token" not in data
            and urlsplit(str(path)).path == reverse("comments:post")
        ):
            data = {**data, "form_token": antispam.sign_form_value(str(data["thread"]))}
        return original_post(self, path, data, *args, **kwargs)

    monkeypatch.setattr(Client, "post", post)
    yield


@pytest.fixture
def form_token():
    """A signed form token for a thread (or any raw value), issued ``age`` seconds ago."""
    import time

    from django.core import signing

    from broadsheet.comments.antispam import FORM_SALT

    def make(thread_or_value, *, age=60):
        class Issued(signing.TimestampSigner):
            def timestamp(self):
                return signing.b62_encode(int(time.time() - age))

        value = getattr(thread_or_value, "pk", thread_or_value)
        return Issued(salt=FORM_SALT).sign("" if value is None else str(value))

    return make


@pytest.fixture
def discussion_settings(db):
    """Save the default site's discussion settings (the admin's Settings > Discussion)."""

    def save(**fields):
        from wagtail.models import Site

        from broadsheet.publishing.discussion import DiscussionSettings

        site = Site.objects.get(is_default_site=True)
        DiscussionSettings.objects.update_or_create(site=site, defaults=fields)

    return save


@pytest.fixture
def antispam_on(settings):
    """The anti-automation guards as in production (3 s minimum form time, the discussion
    settings' rate limits and flood interval, duplicates refused); a test may change them."""
    settings.COMMENTS_FORM_MIN_SECONDS = 3
    return settings


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


# --- Wagtail pages: a home page as the default site's root, articles published under it ----


@pytest.fixture
def home(db):
    """A home page of our own, the default site's root (for ``testserver``)."""
    from wagtail.models import Page, Site

    from broadsheet.publishing.models import HomePage

    home = HomePage(title="The Broadsheet", slug="broadsheet-home")
    Page.get_first_root_node().add_child(instance=home)
    Site.objects.update_or_create(
        is_default_site=True,
        defaults={"hostname": "testserver", "port": 80, "root_page": home},
    )
    return home


@pytest.fixture
def article_factory(home):
    """Publish an article as Wagtail's publishing does (a revision, then publish), under the
    home page unless ``parent`` is given; any field may be given. Returns it as stored."""
    from datetime import timedelta

    from django.utils import timezone

    from broadsheet.publishing.models import ArticleAuthor, ArticlePage

    counter = iter(range(1, 10_000))

    def make(*, parent=None, date=None, authors=(), **fields):
        n = next(counter)
        fields = {
            "title": f"Statement number {n}",
            "slug": f"statement-{n}",
            "body": f"<p>Body {n}.</p>",
            **fields,
        }
        article = ArticlePage(date=date or timezone.now() - timedelta(days=1), live=False, **fields)
        article.article_authors = [
            ArticleAuthor(person=p, sort_order=i) for i, p in enumerate(authors)
        ]
        (parent or home).add_child(instance=article)
        article.save_revision().publish()
        return ArticlePage.objects.get(pk=article.pk)

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


# --- real processes on a SQLite file of their own (tests/appserver.py) ---------------------


@pytest.fixture(scope="session")
def migrated_sqlite_env(tmp_path_factory):
    """``make(var_dir, **env)`` puts a freshly migrated SQLite database in ``var_dir`` and
    returns the environment for Broadsheet processes on it. ``migrate`` (many seconds) runs
    once a session, at the first call; every var directory gets a copy of what it made."""
    import functools

    from tests.appserver import SQLITE_FILE, copy_sqlite, migrate_sqlite, sqlite_env

    @functools.cache
    def migrated():
        return migrate_sqlite(tmp_path_factory.mktemp("migrated"))

    def make(var_dir, **env):
        copy_sqlite(migrated(), var_dir / SQLITE_FILE)
        return sqlite_env(var_dir, **env)

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
