"""L01 (issue 6): scale-out. Two app processes (``broadsheet serve``, granian) behind one front
server (nginx, from ``broadsheet nginx-config``), on one PostgreSQL database and one Redis
database, all on loopback. What one process does, the other and the front server show at once:

- a session started on A (an editor's sign-in) is valid on B, and ending it on B ends it on A;
- a guest's comment posted through A is held; a moderator approves it through B; the very next
  anonymous read, through the front server and directly from A and from B, shows it (the page
  cache is files in one shared directory, and approval deletes them before it answers);
- a comment that needs no moderation, posted through B, is shown at once by all three;
- an article edited and published through A is shown at once through B and the front server.

Staleness is measured as the first read after the action: it must show the change (0 s).

Rate limits shared by the two processes (counted once in Redis: multiplier 1x) are checked by
``tests/test_rate_limits_redis.py``, with the same two-server set-up; not repeated here.

The last test is about app processes without ``SECRET_KEY``, which must share the key
generated into their var directory (they once raced to write it).

The database is a copy of the suite's migrated test database (``CREATE DATABASE … TEMPLATE``:
a second ``migrate`` on PostgreSQL takes about a minute), dropped after the module. The module
runs in the suite's PostgreSQL run only (CI runs the suite on SQLite and on PostgreSQL side by
side), and skips without Redis or nginx unless ``BROADSHEET_REQUIRE_REDIS`` (or, for nginx,
``BROADSHEET_REQUIRE_NGINX``) is set, as in CI.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import pytest
from bs4 import BeautifulSoup

from tests._env import suite_on_postgresql, suite_redis_db
from tests.appserver import (
    AppServer,
    Nginx,
    database_url,
    free_port,
    require_nginx,
    server_env,
    suite_redis,
)

REDIS_DB = suite_redis_db()
EDITOR_PASSWORD = secrets.token_urlsafe(16)


pytestmark = [
    pytest.mark.skipif(
        not suite_on_postgresql(),
        reason="runs in the PostgreSQL run of the suite (DATABASE_URL=postgres://…)",
    ),
    # pytest-django runs tests that use the database without ``transaction=True`` before any
    # that do, and the latter flush it: the copy below is taken while the suite's test
    # database still holds exactly what the migrations made (root page, site, locale).
    pytest.mark.django_db,
]


# --- the set-up: a database copy, two app servers, nginx in front ---------------------------

SETUP = """
import json, os, sys
import django
django.setup()
from urllib.parse import urlsplit
from django.contrib.auth import get_user_model
from wagtail.models import Page
from broadsheet.comments.models import Thread
from broadsheet.publishing.demo import SEED_SLUG, load_demo
from broadsheet.publishing.models import ArticlePage

if not Page.objects.filter(depth=1).exists():
    sys.exit("The copy of the suite's test database has no root page: a transactional test "
             "flushed it before this module ran (pytest-django runs those last).")
load_demo(base_url=os.environ["BROADSHEET_BASE_URL"])
get_user_model().objects.create_superuser(
    "editor", "editor@example.org", os.environ["SCALE_EDITOR_PASSWORD"]
)
article = ArticlePage.objects.get(slug=SEED_SLUG)
thread = Thread.objects.get(page_id=article.pk)
print(json.dumps({"page_id": article.pk, "thread_id": thread.pk, "title": article.title,
                  "path": urlsplit(article.full_url).path}))
"""


@dataclass
class Cluster:
    front: str  # http://127.0.0.1:P, the site's address (BROADSHEET_BASE_URL)
    a: str
    b: str
    page_id: int
    thread_id: int
    title: str
    path: str
    env: dict = field(default_factory=dict, repr=False)

    @property
    def host(self) -> str:
        return urlsplit(self.front).netloc

    def read(self, base: str, path: str | None = None) -> httpx.Response:
        """An anonymous reader's GET (no cookies), with the site's own Host, as the front
        server passes it on: so the page cache's rules are the same whichever base is asked."""
        return httpx.get(base + (path or self.path), headers={"Host": self.host}, timeout=10)

    def first_reads(self, wanted: str, *, since: float, reads=None) -> dict:
        """The first read through each of ``reads`` (label, base, path; by default the article
        through every server) after an action at ``since``: whether it shows ``wanted``, its
        ``X-Page-Cache``, and how many ms after the action it came."""
        seen = {}
        for label, base, path in reads or (
            ("front", self.front, None),
            ("A", self.a, None),
            ("B", self.b, None),
        ):
            response = self.read(base, path)
            seen[label] = (
                wanted in response.text,
                response.headers.get("X-Page-Cache"),
                round((time.monotonic() - since) * 1000),
            )
        return seen

    def post_comment(self, client: httpx.Client, base: str, text: str, **guest: str) -> None:
        """Post ``text`` through ``base`` as the page's script does: the form's personal parts,
        then the form. A guest gives author, email and url; without them, the poster is the
        user signed in on ``client``."""
        session = client.get(f"{base}/comments/session/", params={"thread": self.thread_id}).json()
        if not guest:
            assert session["user"] is not None, f"the signed-in session is not known on {base}"
        posted = client.post(
            f"{base}/comments/post/",
            data={
                "csrfmiddlewaretoken": session["csrf_token"],
                "form_token": session["form_token"],
                "submission_key": session["submission_key"],
                "thread": self.thread_id,
                "comment_parent": 0,
                **guest,
                "website2": "",
                "comment": text,
            },
        )
        assert posted.status_code == 303, posted.text[:2000]


def _admin_db(settings_dict: dict):
    import psycopg

    return psycopg.connect(
        dbname="postgres",
        host=settings_dict.get("HOST") or "127.0.0.1",
        port=settings_dict.get("PORT") or 5432,
        user=settings_dict.get("USER") or "postgres",
        password=settings_dict.get("PASSWORD") or None,
        autocommit=True,
        connect_timeout=5,
    )


def _copy_database(settings_dict: dict, name: str) -> None:
    """A copy of the suite's test database (nobody may be connected to it meanwhile)."""
    import psycopg
    from psycopg import sql

    template = settings_dict["NAME"]
    deadline = time.monotonic() + 10
    with _admin_db(settings_dict) as db:
        while True:
            try:
                db.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
                return
            except psycopg.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def _drop_database(settings_dict: dict, name: str) -> None:
    from psycopg import sql

    with _admin_db(settings_dict) as db:
        db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker, tmp_path_factory):
    require_nginx()
    redis_client = suite_redis()
    from django.db import connection, connections

    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            pytest.skip("runs in the PostgreSQL run of the suite (DATABASE_URL=postgres://…)")
        settings_dict = dict(connection.settings_dict)
        connections.close_all()  # a template database may have no one connected
    name = f"broadsheet_scale_{os.getpid()}_{secrets.token_hex(3)}"
    folder = tmp_path_factory.mktemp("scale-out")
    front_port = free_port()
    front = f"http://127.0.0.1:{front_port}"
    env = server_env(
        folder / "var",
        # One directory of page files for both processes and nginx (one machine).
        BROADSHEET_PAGE_CACHE_DIR=str(folder / "var" / "pagecache"),
        DATABASE_URL=database_url({**settings_dict, "NAME": name}),
        REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
        BROADSHEET_BASE_URL=front,
        SECRET_KEY=secrets.token_urlsafe(50),
        BROADSHEET_TRUSTED_PROXIES="127.0.0.1",  # nginx, as the README's deployment says
        SCALE_EDITOR_PASSWORD=EDITOR_PASSWORD,
    )
    env.pop("BROADSHEET_SITE_URL", None)
    servers: list[AppServer] = []
    nginx = None
    redis_client.flushdb()
    try:
        started = time.monotonic()
        _copy_database(settings_dict, name)
        servers = [AppServer(env, folder / f"app-{n}.log") for n in "ab"]
        upstreams = [f"127.0.0.1:{server.port}" for server in servers]
        # The content is loaded while the servers start (both only need the database copy).
        with ThreadPoolExecutor(4) as pool:
            loading = pool.submit(
                subprocess.run,
                [sys.executable, "-c", SETUP], env=env, timeout=120, capture_output=True,
            )  # fmt: skip
            starting = [pool.submit(server.start) for server in servers]
            making_nginx = pool.submit(
                Nginx,
                env,
                folder / "nginx",
                listen=f"127.0.0.1:{front_port}",
                upstreams=upstreams,
                workers=1,
            )
            made = loading.result()
            for future in starting:
                future.result()
            nginx = making_nginx.result()
        if made.returncode:
            pytest.fail(f"loading the demo content failed: {made.stderr.decode()[-3000:]}")
        content = json.loads(made.stdout.decode().strip().splitlines()[-1])
        nginx.wait_until_up(front)
        print(f"\nL01 set-up (content, two app servers, nginx): {time.monotonic() - started:.1f} s")
        yield Cluster(front=front, a=servers[0].base, b=servers[1].base, env=env, **content)
    finally:
        if nginx is not None:
            nginx.stop()
        for server in servers:
            server.stop()
        _drop_database(settings_dict, name)
        redis_client.flushdb()
        redis_client.close()


# --- people ------------------------------------------------------------------------------------


def csrf_token(html: str) -> str:
    field = BeautifulSoup(html, "html.parser").find("input", attrs={"name": "csrfmiddlewaretoken"})
    assert field is not None, "no CSRF token on the page"
    return field["value"]


def sign_in(base: str) -> httpx.Client:
    """The editor signs in through Wagtail's login form on ``base``."""
    client = httpx.Client(timeout=15, follow_redirects=False)
    form = client.get(f"{base}/admin/login/")
    assert form.status_code == 200
    response = client.post(
        f"{base}/admin/login/",
        data={
            "csrfmiddlewaretoken": csrf_token(form.text),
            "username": "editor",
            "password": EDITOR_PASSWORD,
            "next": "/admin/",
        },
    )
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["Location"] == "/admin/"
    return client


@pytest.fixture(scope="module")
def editor(cluster):
    """An editor (a superuser: moderates comments too), signed in through server A."""
    client = sign_in(cluster.a)
    yield client
    client.close()


def form_fields(form) -> list[tuple[str, str]]:
    """What a browser sends for ``form`` without pressing any button (no JavaScript)."""
    fields: list[tuple[str, str]] = []
    for element in form.find_all(["input", "textarea", "select"]):
        name = element.get("name")
        if not name or element.has_attr("disabled"):
            continue
        if element.name == "textarea":
            fields.append((name, element.text))
        elif element.name == "select":
            chosen = element.find_all("option", selected=True) or element.find_all("option")[:1]
            if element.has_attr("multiple"):
                chosen = element.find_all("option", selected=True)
            fields.extend((name, option.get("value", option.text)) for option in chosen)
        else:
            kind = element.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                continue
            if kind in ("checkbox", "radio") and not element.has_attr("checked"):
                continue
            fields.append((name, element.get("value", "on" if kind == "checkbox" else "")))
    return fields


# --- the tests ---------------------------------------------------------------------------------


def test_session_started_on_one_server_is_valid_on_the_other(cluster):
    client = sign_in(cluster.a)
    try:
        on_b = client.get(f"{cluster.b}/admin/")
        assert on_b.status_code == 200, on_b.headers.get("Location")
        assert "editor" in on_b.text
        on_a = client.get(f"{cluster.a}/admin/")
        assert on_a.status_code == 200

        # Signing out on B ends the session on A too (one row in PostgreSQL, not per process).
        cookie = client.cookies["sessionid"]
        logout = client.post(
            f"{cluster.b}/admin/logout/",
            data={"csrfmiddlewaretoken": client.cookies["csrftoken"]},
        )
        assert logout.status_code == 302
        client.cookies.set("sessionid", cookie)  # a copy kept elsewhere is no longer valid
        after = client.get(f"{cluster.a}/admin/")
        assert after.status_code == 302
        assert after.headers["Location"].startswith("/admin/login/")
    finally:
        client.close()


def test_comment_approved_through_one_server_is_shown_by_every_server_at_once(cluster, editor):
    # An anonymous reader's page is shared: a second read is answered from the page cache by
    # nginx, and by either app process directly (one directory of files for all of them).
    assert cluster.read(cluster.front).status_code == 200
    warm = cluster.read(cluster.front)
    assert (warm.headers.get("X-Page-Cache"), warm.headers.get("Server")) == ("hit", "nginx")
    for base in (cluster.a, cluster.b):
        assert cluster.read(base).headers.get("X-Page-Cache") == "hit"

    # A guest posts through A, as the page's script does: personal parts, then the form.
    marker = uuid.uuid4().hex
    email = f"guest-{marker}@example.org"
    text = f"Greetings from the second app server, check {marker}."
    with httpx.Client(timeout=10, follow_redirects=False) as guest:
        cluster.post_comment(guest, cluster.a, text, author="Guest Reader", email=email, url="")
    # Held (a first comment from this address): no shared page shows it yet.
    for base in (cluster.front, cluster.a, cluster.b):
        assert marker not in cluster.read(base).text

    # A moderator approves it through B, from the admin's queue.
    queue = editor.get(f"{cluster.b}/admin/comments/", params={"status": "pending", "email": email})
    assert queue.status_code == 200
    ids = [
        box["value"]
        for box in BeautifulSoup(queue.text, "html.parser").find_all(
            "input", attrs={"type": "checkbox", "name": "ids"}
        )
    ]
    assert len(ids) == 1, "the guest's comment is not (only) in the pending queue"
    approved = editor.post(
        f"{cluster.b}/admin/comments/bulk/",
        data={"csrfmiddlewaretoken": csrf_token(queue.text), "action": "approve", "ids": ids},
    )
    assert approved.status_code == 302
    approved_at = time.monotonic()

    # The very next read, whichever way it comes in, shows it: staleness 0 s.
    seen = cluster.first_reads(marker, since=approved_at)
    print(f"\nL01 first reads after approval (shown, X-Page-Cache, ms after approval): {seen}")
    assert all(shown for shown, _cache, _ms in seen.values()), seen
    again = cluster.read(cluster.front)
    assert (again.headers.get("X-Page-Cache"), marker in again.text) == ("hit", True)


def test_comment_posted_through_one_server_is_shown_by_every_server_at_once(cluster, editor):
    """A comment that needs no moderation (the editor's own, posted through B with the session
    started on A) is on the shared page at the very next read."""
    for base in (cluster.front, cluster.front, cluster.a):
        cluster.read(base)  # the page is in the cache before the comment
    marker = uuid.uuid4().hex
    text = f"An editor's note through the other server, check {marker}."
    cluster.post_comment(editor, cluster.b, text)  # the session started on A is known on B
    posted_at = time.monotonic()
    seen = cluster.first_reads(marker, since=posted_at)
    print(f"\nL01 first reads after posting (shown, X-Page-Cache, ms after posting): {seen}")
    assert all(shown for shown, _cache, _ms in seen.values()), seen


def test_a_change_on_one_machine_clears_the_page_cache_of_another(cluster, editor, tmp_path):
    """A second machine keeps its own page files (another directory); what an app process on
    the first machine changes reaches it through Redis, at once."""
    other_machine = {
        **cluster.env,
        "BROADSHEET_VAR_DIR": str(tmp_path / "var-c"),
        "BROADSHEET_PAGE_CACHE_DIR": str(tmp_path / "var-c" / "pagecache"),
    }
    c = AppServer(other_machine, tmp_path / "app-c.log").start()
    try:
        cluster.read(c.base)
        assert cluster.read(c.base).headers.get("X-Page-Cache") == "hit"
        marker = uuid.uuid4().hex
        cluster.post_comment(editor, cluster.a, f"From the first machine, check {marker}.")
        deadline = time.monotonic() + 5  # bounded; the first read is expected to show it
        reads = 0
        while time.monotonic() < deadline:
            reads += 1
            if marker in cluster.read(c.base).text:
                break
            time.sleep(0.05)
        print(f"\nL01 other machine: shown after {reads} read(s)")
        assert marker in cluster.read(c.base).text
        assert reads <= 2, f"the other machine served its stale copy {reads - 1} time(s)"
    finally:
        c.stop()


def test_article_published_through_one_server_is_shown_by_the_other_at_once(cluster, editor):
    for base in (cluster.front, cluster.front, cluster.b):
        assert cluster.title in cluster.read(base).text
    assert cluster.read(cluster.b).headers.get("X-Page-Cache") == "hit"
    assert cluster.read(cluster.b, "/").headers.get("X-Page-Cache") in ("hit", "stored")

    # The editor changes the title and publishes, through A.
    edit_url = f"{cluster.a}/admin/pages/{cluster.page_id}/edit/"
    page = editor.get(edit_url)
    assert page.status_code == 200
    form = BeautifulSoup(page.text, "html.parser").find("form", attrs={"id": "page-edit-form"})
    assert form is not None
    new_title = f"{cluster.title} (updated {uuid.uuid4().hex[:8]})"
    data: dict[str, list[str]] = {"action-publish": ["action-publish"]}
    for name, value in form_fields(form):
        data.setdefault(name, []).append(new_title if name == "title" else value)
    published = editor.post(edit_url, data=data)
    assert published.status_code == 302, _form_errors(published.text)
    published_at = time.monotonic()

    seen = cluster.first_reads(
        new_title,
        since=published_at,
        reads=(
            ("B article", cluster.b, None),
            ("front article", cluster.front, None),
            ("B home page", cluster.b, "/"),
            ("front home page", cluster.front, "/"),
        ),
    )
    print(f"\nL01 first reads after publishing (shown, X-Page-Cache, ms after): {seen}")
    assert all(shown for shown, _cache, _ms in seen.values()), seen


def _form_errors(html: str) -> str:
    soup = BeautifulSoup(html, "html.parser")
    errors = [e.get_text(" ", strip=True) for e in soup.select(".error-message, .help-critical")]
    return "; ".join(errors) or re.sub(r"\s+", " ", soup.get_text(" "))[:1500]


# --- without SECRET_KEY: the generated key ------------------------------------------------------

# Each process waits at the line, then reads the settings (what the key's generation does) at
# the same moment as the others: two app servers started together on a fresh var directory.
READ_KEY = """
import os, sys, time
import dj_database_url, django.core.exceptions  # what the settings import before the key
deadline = time.monotonic() + 20
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.001)
from broadsheet.config import settings
print(settings.SECRET_KEY)
"""


def test_app_processes_started_together_without_secret_key_share_the_generated_key(tmp_path):
    """The README's laptop default (no SECRET_KEY: one generated into the var directory) must
    give every process on that directory the same key: sessions, form tokens and signed mail
    links made by one are checked by another."""
    for attempt in range(5):
        var = tmp_path / f"var-{attempt}"
        go = tmp_path / f"go-{attempt}"
        env = server_env(var)
        env.pop("SECRET_KEY", None)
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", READ_KEY, str(go)], env=env, stdout=subprocess.PIPE
            )
            for _ in range(4)
        ]
        time.sleep(1)  # all of them at the line
        go.touch()
        keys = {process.communicate(timeout=30)[0].decode().strip() for process in processes}
        assert all(process.returncode == 0 for process in processes)
        on_disk = (var / "secret_key").read_text().strip()
        agree = keys == {on_disk}  # (no key in the failure message)
        assert agree, f"attempt {attempt}: {len(keys)} keys in 4 processes, or not the file's"
