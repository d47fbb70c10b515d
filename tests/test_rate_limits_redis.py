"""A01 across processes: two real app servers (``broadsheet serve``, granian) on loopback share
one SQLite file and one Redis database; 100 comment POSTs alternate between them, each with a
new forged ``X-Forwarded-For`` (the peer, 127.0.0.1, is not a trusted proxy) and a new email
address, so only the per-IP limit can stop them. Accepted must not exceed the configured limit:
the count is shared, and the forged header is ignored.

haproxy is not installed here, so the client alternates between the two servers itself (the
load balancer's only job in the catalogue's set-up).
"""

import re
import sqlite3
import time

import pytest

from tests._env import suite_redis_db
from tests.appserver import SQLITE_FILE, AppServer, django_shell, suite_redis

# This suite's own database, the only one it flushes (CI runs two suites side by side, each
# with its own).
REDIS_DB = suite_redis_db()
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
POSTS = 100


@pytest.fixture
def redis_db():
    client = suite_redis()
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


SETUP = """
from wagtail.models import Site
from broadsheet.comments.services import sync_thread
from broadsheet.publishing.discussion import DiscussionSettings
thread = sync_thread(url="/a01/", page_id=None, title="A01", is_open=True)
DiscussionSettings.objects.update_or_create(
    site=Site.objects.get(is_default_site=True), defaults={"flood_seconds": 0}
)
print("THREAD", thread.pk, "LIMIT", DiscussionSettings.objects.get().rate_per_minute_ip)
"""


@pytest.fixture
def two_servers(request, tmp_path, redis_db, migrated_sqlite_env):
    shared = getattr(request, "param", "redis") == "redis"
    env = migrated_sqlite_env(
        tmp_path,
        REDIS_URL=REDIS_URL if shared else "",
        BROADSHEET_TRUSTED_PROXIES="",
        DEBUG="0",
        LOG_LEVEL="ERROR",
    )
    out = django_shell(env, SETUP)
    thread_id, limit = map(int, re.search(r"THREAD (\d+) LIMIT (\d+)", out).groups())
    servers = [AppServer(env, tmp_path / f"server-{n}.log") for n in (1, 2)]
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_until_up(f"/comments/session/?thread={thread_id}")
        yield [server.base for server in servers], thread_id, limit, tmp_path / SQLITE_FILE
    finally:
        for server in servers:
            server.stop()


def hammer(bases, thread_id):
    """100 POSTs, alternating servers, each with a new forged X-Forwarded-For and email."""
    import httpx

    with httpx.Client(timeout=10, follow_redirects=False) as client:
        # What comments.js does on the (cached) article page: fetch the personal parts.
        session = client.get(f"{bases[0]}/comments/session/", params={"thread": thread_id}).json()
        time.sleep(3.2)  # no one sends a comment within 3 s of loading the form
        # Start in a fresh minute window, so one window holds the whole run.
        if 60 - time.time() % 60 < 25:
            time.sleep(60 - time.time() % 60 + 0.2)
        window = int(time.time() // 60)
        started = time.monotonic()
        per_server = {base: [] for base in bases}
        for n in range(POSTS):
            base = bases[n % 2]
            response = client.post(
                f"{base}/comments/post/",
                data={
                    "csrfmiddlewaretoken": session["csrf_token"],
                    "form_token": session["form_token"],
                    "thread": thread_id,
                    "comment_parent": 0,
                    "author": f"Reader {n}",
                    "email": f"reader{n}@example.org",
                    "url": "",
                    "comment": f"Comment number {n} from a script.",
                },
                headers={"X-Forwarded-For": f"198.51.100.{n % 250}, 203.0.113.{n % 250}"},
            )
            per_server[base].append(response.status_code)
        elapsed = time.monotonic() - started
    windows = int(time.time() // 60) - window + 1
    return per_server, elapsed, windows


def report(label, per_server, elapsed, windows, limit, stored):
    statuses = [code for codes in per_server.values() for code in codes]
    accepted, refused = statuses.count(303), statuses.count(429)
    print(
        f"\nA01 {label}: {POSTS} POSTs in {elapsed:.1f} s over 2 servers: "
        f"accepted {accepted} vs limit {limit}/min per IP ({windows} window); "
        f"429: {refused} ({refused / POSTS:.0%}); stored rows {stored}; "
        + "; ".join(f"port {b.rsplit(':', 1)[1]}: {s.count(303)} accepted, {s.count(429)} refused"
                    for b, s in per_server.items())
    )  # fmt: skip
    return statuses, accepted, refused


def stored_rows(db_file, thread_id):
    with sqlite3.connect(db_file) as db:
        return db.execute(
            "SELECT COUNT(*) FROM comments_comment WHERE thread_id = ?", [thread_id]
        ).fetchone()[0]


def test_comment_rate_limit_is_shared_by_two_app_servers_and_ignores_forged_xff(two_servers):
    bases, thread_id, limit, db_file = two_servers
    per_server, elapsed, windows = hammer(bases, thread_id)
    stored = stored_rows(db_file, thread_id)
    statuses, accepted, refused = report(
        f"(Redis db {REDIS_DB})", per_server, elapsed, windows, limit, stored
    )
    assert elapsed < 60
    assert accepted + refused == POSTS, sorted(set(statuses))
    assert windows == 1
    assert accepted == limit  # shared: not one limit per server, not one per forged address
    assert stored == accepted
    assert all(s.count(429) > 0 for s in per_server.values())


@pytest.mark.parametrize("two_servers", ["locmem"], indirect=True)
def test_without_a_shared_cache_each_server_counts_alone(two_servers):
    """The control, and why ``broadsheet.W001`` warns: without REDIS_URL each process has its
    own count, so two servers accept the limit twice."""
    bases, thread_id, limit, db_file = two_servers
    per_server, elapsed, windows = hammer(bases, thread_id)
    stored = stored_rows(db_file, thread_id)
    _statuses, accepted, _refused = report(
        "(LocMemCache, no REDIS_URL)", per_server, elapsed, windows, limit, stored
    )
    assert windows == 1
    assert accepted == 2 * limit == stored
