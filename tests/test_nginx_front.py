"""The production serving mode: nginx (Debian's) in front of a real app server, with the
configuration ``broadsheet nginx-config`` writes. nginx answers cached pages from the page
cache's files without the app, with the same bytes and headers the app gives; everything
personal or unsafe reaches the app; an approval through the app is what nginx serves next."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_rate_limits_redis import free_port, wait_until_up

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

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


def manage(env, code: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "django", "shell", "-c", code],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    ).stdout.decode()


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        # It runs its own SQLite app: once per CI run is enough (the PostgreSQL run has the
        # two-app scale-out tests, tests/test_scale_out.py).
        pytest.skip("runs in the SQLite run of the suite")
    if not os.path.exists(NGINX):
        if os.environ.get("BROADSHEET_REQUIRE_NGINX"):
            pytest.fail("nginx is not installed (apt-get install nginx-light)")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    var = tmp_path_factory.mktemp("front")
    app_port, front_port = free_port(), free_port()
    base = f"http://127.0.0.1:{front_port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "broadsheet.config.settings",
        "BROADSHEET_VAR_DIR": str(var),
        "BROADSHEET_BASE_URL": base,
        "BROADSHEET_PLAIN_STATIC": "1",
        "REDIS_URL": "",
        "LOG_LEVEL": "ERROR",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "PYTHONPATH": str(ROOT / "src"),
    }
    env.pop("DATABASE_URL", None)
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"],
        env=env,
        check=True,
        timeout=300,
    )
    seed_id, seed_url, other_url = re.search(
        r"SEED (\d+) (\S+) OTHER (\S+)", manage(env, SETUP)
    ).groups()
    conf_dir = var / "nginx"
    conf_dir.mkdir()
    broadsheet = str(Path(sys.executable).with_name("broadsheet"))
    conf = subprocess.run(
        [broadsheet, "nginx-config", "--listen", f"127.0.0.1:{front_port}",
         "--upstream", f"127.0.0.1:{app_port}", "--standalone", str(conf_dir)],
        env=env, check=True, timeout=60, capture_output=True,
    ).stdout  # fmt: skip
    (conf_dir / "nginx.conf").write_bytes(conf)
    processes = [
        subprocess.Popen(
            [broadsheet, "serve", "--port", str(app_port), "--workers", "1",
             "--no-collectstatic"],
            env=env, start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=(var / "app.log").open("w"),
        ),
        subprocess.Popen(
            [NGINX, "-c", str(conf_dir / "nginx.conf"), "-p", str(conf_dir)],
            start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=(var / "nginx.log").open("w"),
        ),
    ]  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{app_port}/healthz")
        wait_until_up(f"{base}/healthz")
        yield {
            "base": base,
            "app": f"http://127.0.0.1:{app_port}",
            "seed": int(seed_id),
            "seed_url": seed_url,
            "other_url": other_url,
            "env": env,
            "var": var,
        }
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


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
    manage(front["env"], APPROVE.format(thread=front["seed"], text="Greetings back from Newark."))
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
    broadsheet = str(Path(sys.executable).with_name("broadsheet"))
    written = subprocess.run(
        [broadsheet, "nginx-config", "--upstream", "127.0.0.1:8001",
         "--upstream", "127.0.0.1:8002"],
        env=env, check=True, timeout=60, capture_output=True,
    ).stdout.decode()  # fmt: skip
    shipped = (ROOT / "deploy" / "nginx" / "broadsheet.conf").read_text()
    assert written == shipped, "regenerate deploy/nginx/broadsheet.conf (see the README)"
