"""“Import from WordPress” in the Wagtail admin: the upload is streamed to disk under a size cap,
the import runs in a background process (on this very database), its progress can be watched,
and its report read at the end."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dj_database_url
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from playwright.sync_api import Error as PlaywrightError
from wagtail.models import Page

from broadsheet.comments.models import Comment
from broadsheet.publishing.models import ArticlePage
from broadsheet.wordpress import jobs
from broadsheet.wordpress.models import WordPressImport
from tests.appserver import relearn_content_types
from tests.wordpress.test_wxr_reader import SEED

# Committed rows (transaction=True), so the import process sees them; serialized_rollback
# keeps Wagtail's root page and default site, which a flush would remove.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

ROOT = Path(__file__).resolve().parents[2]
INDEX = "/admin/wordpress-import/"
SEED_SLUG = "greetings-from-lugansk-communists-to-workers-world-party-2017-conference"
WAIT_SECONDS = 60


@pytest.fixture(autouse=True)
def var_dir(settings, tmp_path, quiet_request_log):
    """Each test gets its own VAR_DIR (uploads, progress files, logs), and no import process
    outlives it."""
    settings.VAR_DIR = tmp_path
    # A page tree and a site, as after `broadsheet migrate`, whatever earlier tests left.
    from broadsheet.publishing.services import home_for_site

    relearn_content_types()
    home_for_site()
    yield tmp_path
    for process in list(jobs._children.values()):
        if process.poll() is None:
            process.kill()
            process.wait(10)
    jobs._children.clear()


@pytest.fixture
def superuser_client(django_user_model):
    user = django_user_model.objects.create_superuser(
        username="chief", email="chief@example.org", password="correct horse 42"
    )
    client = Client()
    client.force_login(user)
    client.get("/admin/")  # first admin visit: Wagtail writes the user's profile here
    return client


def upload(client, content: bytes, name: str, *, dry_run: bool = False, **extra):
    data = {"file": SimpleUploadedFile(name, content, content_type="text/xml")}
    if dry_run:
        data["dry_run"] = "on"
    return client.post(INDEX, data, **extra)


def job_id_from(response) -> int:
    assert response.status_code == 302, response.content[:2000]
    match = re.fullmatch(r"/admin/wordpress-import/(\d+)/", response["Location"])
    assert match, response["Location"]
    return int(match.group(1))


def status_of(client, job_id: int) -> dict:
    response = client.get(f"{INDEX}{job_id}/status.json", HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 200
    return response.json()


def wait_until_finished(client, job_id: int) -> tuple[WordPressImport, list[dict]]:
    """Poll the JSON status as the page's script does, at most WAIT_SECONDS."""
    seen = []
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        data = status_of(client, job_id)
        seen.append(data)
        if data["finished"]:
            return WordPressImport.objects.get(pk=job_id), seen
        time.sleep(0.1)
    log = jobs.log_path(job_id)
    pytest.fail(
        f"import {job_id} not finished after {WAIT_SECONDS} s; last status {seen[-1]}; "
        f"log: {log.read_text() if log.exists() else '(none)'}"
    )


def content_block(html: str) -> str:
    """Our part of an admin page (Wagtail's own furniture carries its own scripts)."""
    start = html.index('<div class="nice-padding wxr-import">')
    return html[start:]


def leftovers(folder) -> list[str]:
    imports = folder / "imports"
    if not imports.exists():
        return []
    return sorted(p.name for p in imports.iterdir() if not p.name.endswith(".log"))


# --- the whole path ---------------------------------------------------------------------------


def test_uploaded_seed_export_is_imported_in_the_background_with_a_report(
    superuser_client, var_dir
):
    started = time.monotonic()
    response = upload(superuser_client, SEED.read_bytes(), "seed-article-export.xml")
    job_id = job_id_from(response)
    job, seen = wait_until_finished(superuser_client, job_id)
    elapsed = time.monotonic() - started
    phases = list(dict.fromkeys(f"{s['status']}/{s['phase']}" for s in seen))
    print(f"\nseed import through the admin: {elapsed:.1f} s, {len(seen)} polls, seen {phases}")

    assert job.status == WordPressImport.Status.DONE, job.error
    assert job.file_name == "seed-article-export.xml"
    assert job.file_size == SEED.stat().st_size
    assert job.finished_at is not None
    assert job.report["file"] == "seed-article-export.xml"
    assert job.report["counts"]["comments.approved"] == 100
    assert Comment.objects.count() == 100
    article = ArticlePage.objects.get(slug=SEED_SLUG)
    assert article.live
    # The upload and the progress file are gone; the log stays.
    assert leftovers(var_dir) == []
    assert seen[0]["finished"] is False
    assert seen[-1]["status"] == "done"

    page = superuser_client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert "Import finished" in html
    assert re.search(r"<td>approved</td><td class=\"wxr-number\">100</td>", html)
    assert reverse("wagtailadmin_pages:edit", args=[article.pk]) in html
    assert article.url in html
    assert "<progress" not in html
    # It is listed among past imports.
    listing = superuser_client.get(INDEX).content.decode()
    assert f'href="/admin/wordpress-import/{job_id}/"' in listing


def test_dry_run_reports_everything_and_keeps_nothing(superuser_client, var_dir):
    job_id = job_id_from(
        upload(superuser_client, SEED.read_bytes(), "seed-article-export.xml", dry_run=True)
    )
    job, _ = wait_until_finished(superuser_client, job_id)
    assert job.status == WordPressImport.Status.DONE, job.error
    assert job.dry_run
    assert job.report["dry_run"] is True
    assert job.report["counts"]["comments.approved"] == 100
    assert Comment.objects.count() == 0
    assert not ArticlePage.objects.filter(slug=SEED_SLUG).exists()
    html = superuser_client.get(f"{INDEX}{job_id}/").content.decode()
    assert "Dry run finished: nothing was kept" in html
    assert leftovers(var_dir) == []


def test_a_file_that_is_not_wxr_fails_with_the_readers_message_and_imports_nothing(
    superuser_client, var_dir
):
    job_id = job_id_from(
        upload(superuser_client, b"<html><body><p>Hello</p></body></html>", "page.html")
    )
    job, _ = wait_until_finished(superuser_client, job_id)
    assert job.status == WordPressImport.Status.FAILED
    assert "not a WordPress export" in job.error and "<html>" in job.error
    assert job.error.startswith("page.html: ")  # the editor's file name, not the server's path
    assert str(var_dir) not in job.error
    assert job.report == {}
    assert ArticlePage.objects.count() == 0
    assert Comment.objects.count() == 0
    assert leftovers(var_dir) == []
    html = superuser_client.get(f"{INDEX}{job_id}/").content.decode()
    assert "The import failed" in html
    assert "not a WordPress export (the document is &lt;html&gt;" in html


# --- the size cap (I03) -------------------------------------------------------------------------


def test_upload_over_the_cap_gets_413_while_streaming_and_leaves_no_file(
    superuser_client, var_dir, settings
):
    settings.BROADSHEET_WXR_UPLOAD_MAX_BYTES = 50_000
    # 98 kB: within the declared-length allowance, so it is refused by counting the bytes.
    assert 50_000 < SEED.stat().st_size < 50_000 + 64 * 1024
    response = upload(superuser_client, SEED.read_bytes(), "seed-article-export.xml")
    assert response.status_code == 413
    assert "larger than the upload limit" in response.content.decode()
    assert WordPressImport.objects.count() == 0
    assert leftovers(var_dir) == []


def test_upload_declaring_a_length_over_the_cap_is_refused_before_reading(
    superuser_client, var_dir, settings
):
    settings.BROADSHEET_WXR_UPLOAD_MAX_BYTES = 10_000
    response = upload(superuser_client, b"x" * 200_000, "big.xml")
    assert response.status_code == 413
    assert WordPressImport.objects.count() == 0
    assert leftovers(var_dir) == []


def test_an_empty_or_missing_file_is_a_form_error(superuser_client, var_dir):
    response = upload(superuser_client, b"", "empty.xml")
    assert response.status_code == 400
    assert "The submitted file is empty." in response.content.decode()
    response = superuser_client.post(INDEX, {"dry_run": "on"})
    assert response.status_code == 400
    assert WordPressImport.objects.count() == 0
    assert leftovers(var_dir) == []


# --- who may import -----------------------------------------------------------------------------


def test_anonymous_and_non_staff_users_cannot_import(client, user_factory, var_dir):
    job = WordPressImport.objects.create(file_name="x.xml", status="done")
    reader = Client()
    reader.force_login(user_factory())
    moderator = Client()
    moderator.force_login(user_factory(moderator=True))  # in the admin, without the permission
    for who in (client, reader, moderator):
        for url in (INDEX, f"{INDEX}{job.pk}/", f"{INDEX}{job.pk}/status.json"):
            response = who.get(url)
            assert response.status_code == 302, url
            assert not response["Location"].startswith(INDEX)
            xhr = who.get(url, HTTP_X_REQUESTED_WITH="XMLHttpRequest")
            assert xhr.status_code == 403, url
        response = upload(who, SEED.read_bytes(), "seed.xml")
        assert response.status_code == 302
    assert WordPressImport.objects.count() == 1
    assert leftovers(var_dir) == []
    home = moderator.get("/admin/").content.decode()
    assert "Import from WordPress" not in home


def test_the_permission_lets_an_editor_in_and_the_menu_shows_it(user_factory, var_dir):
    from django.contrib.auth.models import Permission

    editor = user_factory(moderator=True)
    editor.user_permissions.add(Permission.objects.get(codename="add_wordpressimport"))
    client = Client()
    client.force_login(editor)
    assert client.get(INDEX).status_code == 200
    assert "Import from WordPress" in client.get("/admin/").content.decode()


def test_csrf_is_checked_and_a_refused_upload_leaves_no_file(
    django_user_model, var_dir, monkeypatch
):
    from broadsheet.wordpress.admin_views import CappedUploadHandler

    streamed = []
    discard = CappedUploadHandler.discard

    def spy(handler):
        if handler.path is not None and handler.path.exists():
            streamed.append(handler.path.stat().st_size)
        discard(handler)

    monkeypatch.setattr(CappedUploadHandler, "discard", spy)
    user = django_user_model.objects.create_superuser("c", "c@example.org", "correct horse 42")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = upload(client, SEED.read_bytes(), "seed.xml")
    assert response.status_code == 403  # no CSRF cookie: refused before reading the body
    client.get(INDEX)  # now it has the cookie, and the token is checked after the upload
    response = client.post(
        INDEX,
        {
            "csrfmiddlewaretoken": "x" * 64,
            "file": SimpleUploadedFile("seed.xml", SEED.read_bytes(), content_type="text/xml"),
        },
    )
    assert response.status_code == 403
    assert streamed == [SEED.stat().st_size]  # it was on disk, and was deleted
    assert WordPressImport.objects.count() == 0
    assert leftovers(var_dir) == []


# --- watching an import ---------------------------------------------------------------------------


def test_status_json_and_page_show_the_progress_of_a_running_import(superuser_client, var_dir):
    job = WordPressImport.objects.create(file_name="big.xml", file_size=2_000_000, status="running")
    jobs.progress_path(job.pk).write_text(
        json.dumps({"phase": "import", "done": 500_000, "total": 2_000_000})
    )
    data = status_of(superuser_client, job.pk)
    assert data["status"] == "running"
    assert data["finished"] is False
    assert (data["phase"], data["done"], data["total"], data["percent"]) == (
        "import",
        500_000,
        2_000_000,
        25,
    )
    assert data["phase_label"] == "Importing"

    response = superuser_client.get(f"{INDEX}{job.pk}/")
    html = content_block(response.content.decode())
    assert response["Cache-Control"].startswith("max-age=0")
    assert '<progress class="wxr-bar" max="2000000" value="500000"' in html
    assert f'data-status-url="/admin/wordpress-import/{job.pk}/status.json"' in html
    # Works without script: a plain link reloads the page (no meta refresh, no inline script).
    assert f'href="/admin/wordpress-import/{job.pk}/">Refresh</a>' in html
    assert "http-equiv" not in response.content.decode().lower()
    assert "<script" not in html and "style=" not in html
    assert "/static/wordpress/admin/import.js" in response.content.decode()
    # While it runs, no second upload is taken.
    response = upload(superuser_client, SEED.read_bytes(), "seed.xml")
    assert response.status_code == 409
    assert WordPressImport.objects.count() == 1
    assert leftovers(var_dir) == [f"{job.pk}.json"]


def test_an_import_whose_process_died_is_marked_failed(superuser_client, var_dir):
    probe = subprocess.Popen(["true"])  # a process that has ended and been reaped
    probe.wait()
    dead_pid = probe.pid
    job = WordPressImport.objects.create(file_name="x.xml", status="running")
    jobs.upload_path(job.pk).write_text("<rss/>")
    jobs.progress_path(job.pk).write_text(
        json.dumps(
            {
                "phase": "import",
                "done": 1,
                "total": 2,
                "pid": dead_pid,
                "host": socket.gethostname(),
            }
        )  # fmt: skip
    )
    data = status_of(superuser_client, job.pk)
    assert data["status"] == "failed"
    assert data["finished"] is True
    job.refresh_from_db()
    assert "stopped before it finished" in job.error
    assert leftovers(var_dir) == []


def test_an_import_killed_midway_is_marked_failed_and_keeps_nothing(
    superuser_client, var_dir, tmp_path
):
    """I04 through the admin: SIGKILL the import process while it writes pages; the page says
    it failed, nothing of it stayed, and the next upload is taken."""
    big = tmp_path / "big.xml"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "wxr_generate.py"), str(big), "--posts", "300",
         "--comments", "300"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    pages_before = Page.objects.count()
    job_id = job_id_from(upload(superuser_client, big.read_bytes(), "big.xml"))
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        data = status_of(superuser_client, job_id)
        assert not data["finished"], "the import finished before it could be killed"
        if data["phase"] == "import" and data["done"]:  # inside the import's transaction
            break
        time.sleep(0.05)
    time.sleep(0.5)  # writing pages by now
    pid = json.loads(jobs.progress_path(job_id).read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    job, _ = wait_until_finished(superuser_client, job_id)
    assert job.status == WordPressImport.Status.FAILED
    assert "stopped before it finished" in job.error
    assert Page.objects.count() == pages_before
    assert Comment.objects.count() == 0
    assert leftovers(var_dir) == []
    again = upload(superuser_client, SEED.read_bytes(), "seed-article-export.xml")
    job, _ = wait_until_finished(superuser_client, job_id_from(again))
    assert job.status == WordPressImport.Status.DONE, job.error


def test_a_running_import_process_is_recognised_by_its_command_line():
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "run_wxr_import", "7"]
    )
    try:
        deadline = time.monotonic() + 10
        while not jobs._running(sleeper.pid, 7) and time.monotonic() < deadline:
            time.sleep(0.05)  # until exec has replaced the forked copy's command line
        assert jobs._running(sleeper.pid, 7)
        assert not jobs._running(sleeper.pid, 8)  # a reused pid: another job's, or not ours
        assert not jobs._running(os.getpid(), 7)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not jobs._running(sleeper.pid, 7)


def test_file_names_and_report_notes_are_escaped(superuser_client):
    hostile = '<img src=x onerror="alert(1)">'
    job = WordPressImport.objects.create(
        file_name=f"{hostile}.xml",
        status="done",
        report={
            "file": f"{hostile}.xml",
            "site_key": f"{hostile}.example",
            "counts": {"posts.live": 1, f"comments.{hostile}": 2},
            "notes": {"titles": [f"post 1: markup removed from the title “{hostile}”"]},
            "note_counts": {"titles": 1},
            "seconds": {"survey": 0.1},
        },
    )
    failed = WordPressImport.objects.create(
        file_name=f"{hostile}.xml", status="failed", error=f"{hostile}.xml: not well-formed"
    )
    for url in (f"{INDEX}{job.pk}/", f"{INDEX}{failed.pk}/", INDEX):
        html = superuser_client.get(url).content.decode()
        assert hostile not in html
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


# --- the background process's database ----------------------------------------------------------


@pytest.mark.parametrize(
    "db",
    [
        {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/var/test 1.sqlite3"},
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "test_broad/sheet",
            "USER": "bs@user",
            "PASSWORD": "p:a/s s@w#rd",
            "HOST": "127.0.0.1",
            "PORT": 5433,
            "OPTIONS": {"sslmode": "require"},
        },
        {"ENGINE": "django.db.backends.postgresql", "NAME": "bs", "USER": "", "HOST": ""},
    ],
)
def test_the_import_process_is_given_this_processes_database(db):
    parsed = dj_database_url.parse(jobs.database_url(db))
    for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST"):
        assert parsed.get(key, "") == db.get(key, ""), key
    assert str(parsed.get("PORT", "")) == str(db.get("PORT", ""))
    assert parsed.get("OPTIONS", {}).get("sslmode") == db.get("OPTIONS", {}).get("sslmode")


# --- in a browser (Debian's Chromium) -----------------------------------------------------------


def sign_in(page, base, django_user_model):
    page.set_default_timeout(30_000)  # a loaded machine: the import competes for the CPU
    django_user_model.objects.create_superuser("chief", "chief@example.org", "correct horse 42")
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "chief")
    page.fill("#id_password", "correct horse 42")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin/")


@pytest.mark.browser
def test_in_a_browser_the_bar_moves_and_the_report_replaces_it(
    live_server, new_page, django_user_model, tmp_path
):
    big = tmp_path / "generated.xml"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "wxr_generate.py"), str(big), "--posts", "120",
         "--comments", "120"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    page = new_page(height=3000 if os.environ.get("SHOTS") else 900)
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    sign_in(page, live_server.url, django_user_model)
    page.goto(f"{live_server.url}{INDEX}")
    page.set_input_files("input[type=file]", str(big))
    page.click("form.wxr-upload button[type=submit]")
    page.wait_for_selector(".wxr-progress progress, .wxr-report, .wxr-failed")
    values = set()
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and page.locator(".wxr-report").count() == 0:
        # One read of the page: the report may replace the bar between two locator calls, and
        # the script may load the report page while we read.
        try:
            state = page.evaluate(
                """() => {
                    const bar = document.querySelector('.wxr-progress progress');
                    const phase = document.querySelector('.wxr-phase');
                    return bar ? [phase ? phase.textContent : '', bar.getAttribute('value')] : null;
                }"""
            )
        except PlaywrightError as error:
            if "context was destroyed" not in str(error):
                raise
            page.wait_for_load_state("load")
            continue
        if state:
            values.add(tuple(state))
            if os.environ.get("SHOTS") and len(values) == 3:
                page.screenshot(path="/tmp/wxr-progress.png", full_page=True)
        time.sleep(0.2)
    job = WordPressImport.objects.get()
    assert job.status == WordPressImport.Status.DONE, (job.status, job.error)
    assert page.locator(".wxr-report h2").inner_text() == "Import finished"
    assert len(values) > 1, values  # the script moved the bar without a reload
    assert page.locator(".wxr-counts").count() == 1
    if os.environ.get("SHOTS"):
        page.screenshot(path="/tmp/wxr-report.png", full_page=True)
        page.goto(f"{live_server.url}{INDEX}")
        page.screenshot(path="/tmp/wxr-index.png", full_page=True)
    # Wagtail's own avatars and upgrade check aside, nothing of ours was blocked.
    assert [m for m in blocked if "wordpress" in m] == []
    assert page.dialogs == []


@pytest.mark.browser
def test_without_javascript_the_refresh_link_leads_to_the_report(
    live_server, new_page, django_user_model
):
    page = new_page(javascript=False)
    sign_in(page, live_server.url, django_user_model)
    page.goto(f"{live_server.url}{INDEX}")
    page.set_input_files("input[type=file]", str(SEED))
    page.click("form.wxr-upload button[type=submit]")
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        # Wait for the whole page: a count taken while it loads could miss the report.
        page.wait_for_load_state("load")
        shown = page.wait_for_selector("a.wxr-refresh, .wxr-report, .wxr-failed")
        if "wxr-refresh" not in shown.get_attribute("class").split():
            break
        time.sleep(0.5)
        page.click("a.wxr-refresh")
    assert page.locator(".wxr-failed").count() == 0, page.locator(".wxr-failed").inner_text()
    assert page.locator(".wxr-report h2").inner_text() == "Import finished"
    assert page.get_by_role("link", name=re.compile("Greetings from Lugansk")).count() == 1
