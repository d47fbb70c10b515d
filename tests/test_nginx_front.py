"""The production serving mode: nginx (Debian's) in front of a real app server, with the
configuration ``broadsheet nginx-config`` writes. nginx answers cached pages from the page
cache's files without the app, with the same bytes and headers the app gives; everything
personal or unsafe reaches the app; an approval through the app is what nginx serves next."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests._env import suite_on_postgresql
from tests.appserver import (
    BROADSHEET,
    ROOT,
    AppServer,
    Nginx,
    django_shell,
    free_port,
    require_nginx,
)

SETUP = """
from broadsheet.comments.models import Thread
from broadsheet.publishing.demo import load_demo
from django.conf import settings
load_demo(base_url=settings.BROADSHEET_BASE_URL)
seed = Thread.objects.get(title__startswith="Greetings from Lugansk Communists")
other = Thread.objects.exclude(pk=seed.pk).exclude(page_id=None).first()
print("SEED", seed.pk, seed.url, "OTHER", other.url)
"""

APPROVE = """
from django.utils import timezone
from broadsheet.comments.models import Comment, Thread
thread = Thread.objects.get(pk={thread})
comment = Comment.objects.create(thread=thread, status="pending", author_name="Dana",
    author_email="dana@example.org", text="{text}", created_at=timezone.now())
comment.status = "approved"
comment.save()
"""


@pytest.fixture(scope="module")
def front(tmp_path_factory, migrated_sqlite_env):
    if suite_on_postgresql():
        # It runs its own SQLite app: once per CI run is enough (the PostgreSQL run has the
        # two-app scale-out tests, tests/test_scale_out.py).
        pytest.skip("runs in the SQLite run of the suite")
    require_nginx()
    var = tmp_path_factory.mktemp("front")
    front_port = free_port()
    base = f"http://127.0.0.1:{front_port}"
    env = migrated_sqlite_env(var, BROADSHEET_BASE_URL=base, LOG_LEVEL="ERROR")
    seed_id, seed_url, other_url = re.search(
        r"SEED (\d+) (\S+) OTHER (\S+)", django_shell(env, SETUP)
    ).groups()
    app = AppServer(env, var / "app.log")
    nginx = None
    try:
        nginx = Nginx(
            env,
            var / "nginx",
            listen=f"127.0.0.1:{front_port}",
            upstreams=[f"127.0.0.1:{app.port}"],
        )
        app.start()
        nginx.wait_until_up(base)
        yield {
            "base": base,
            "app": app.base,
            "seed": int(seed_id),
            "seed_url": seed_url,
            "other_url": other_url,
            "env": env,
            "var": var,
        }
    finally:
        if nginx is not None:
            nginx.stop()
        app.stop()


def get(url, **kwargs):
    import httpx

    return httpx.get(url, timeout=10, follow_redirects=False, **kwargs)


def served_by_nginx(response) -> bool:
    return (
        response.headers.get("server") == "nginx"
        and response.headers.get("x-page-cache") == ("hit")
        and "granian" not in response.headers.get("server", "")
    )


def test_nginx_serves_the_cached_page_with_the_apps_bytes_and_headers(front):
    url = front["base"] + front["seed_url"]
    first = get(url)
    assert first.headers["x-page-cache"] == "stored"  # the app rendered it, through nginx
    again = get(url)
    assert served_by_nginx(again)
    assert again.content == first.content
    # The app's own hit path (same Host) gives the same page.
    from_app = get(front["app"] + front["seed_url"], headers={"Host": front["base"][7:]})
    assert from_app.headers["x-page-cache"] == "hit"
    assert from_app.content == again.content
    ignored = {"date", "server", "content-length", "connection", "etag", "last-modified",
               "accept-ranges", "x-page-cache", "keep-alive"}  # fmt: skip
    assert {k: v for k, v in again.headers.items() if k not in ignored} == {
        k: v for k, v in from_app.headers.items() if k not in ignored
    }
    assert "set-cookie" not in again.headers


def test_personal_requests_and_posts_reach_the_app(front):
    url = front["base"] + front["seed_url"]
    get(url)
    assert served_by_nginx(get(url))
    assert not served_by_nginx(get(url, cookies={"sessionid": "x"}))
    assert not served_by_nginx(get(url, cookies={"bs_pending": "x"}))
    assert not served_by_nginx(get(url + "?replytocom=1"))
    assert served_by_nginx(get(url, cookies={"_ga": "1", "csrftoken": "abc"}))
    import httpx

    posted = httpx.post(url, timeout=10)
    assert posted.headers.get("x-page-cache") != "hit"
    assert posted.status_code in (403, 405)


def test_a_comment_approved_through_the_app_is_what_nginx_serves_next(front):
    seed_url, other_url = front["base"] + front["seed_url"], front["base"] + front["other_url"]
    for url in (seed_url, other_url, front["base"] + "/"):
        get(url)
        assert served_by_nginx(get(url))
    django_shell(
        front["env"], APPROVE.format(thread=front["seed"], text="Greetings back from Newark.")
    )
    fresh = get(seed_url)
    assert not served_by_nginx(fresh)
    assert "Greetings back from Newark." in fresh.text
    assert served_by_nginx(get(seed_url))
    assert served_by_nginx(get(other_url))
    assert served_by_nginx(get(front["base"] + "/"))


def test_feeds_keep_their_type_when_nginx_serves_them(front):
    url = front["base"] + "/feed/"
    get(url)
    feed = get(url)
    assert served_by_nginx(feed)
    assert feed.headers["content-type"] == "application/rss+xml; charset=utf-8"


def test_the_shipped_example_configuration_is_what_the_command_writes(front):
    """deploy/nginx/broadsheet.conf stays in step with the code that writes it."""
    env = {
        **front["env"],
        "BROADSHEET_BASE_URL": "https://news.example.org",
        "BROADSHEET_HTTPS": "1",
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "news.example.org",
        "BROADSHEET_VAR_DIR": "/srv/broadsheet/var",
        "STATIC_ROOT": "/srv/broadsheet/var/static",
        "MEDIA_ROOT": "/srv/broadsheet/var/media",
        "BROADSHEET_PAGE_CACHE_DIR": "/srv/broadsheet/var/pagecache",
        "BROADSHEET_PLAIN_STATIC": "",  # nothing is created under /srv
    }
    written = subprocess.run(
        [BROADSHEET, "nginx-config", "--upstream", "127.0.0.1:8001",
         "--upstream", "127.0.0.1:8002"],
        env=env, check=True, timeout=60, capture_output=True,
    ).stdout.decode()  # fmt: skip
    shipped = (ROOT / "deploy" / "nginx" / "broadsheet.conf").read_text()
    assert written == shipped, "regenerate deploy/nginx/broadsheet.conf (see the README)"
