"""A01 in one process: comment rate limits per IP bucket (IPv6 by /64), per email address
(whatever its case, accents, +tag or Gmail dots) and per account; a forged X-Forwarded-For from
an untrusted peer changes nothing, a trusted proxy's is believed. The two-process variant, over
Redis, is in test_rate_limits_redis.py."""

import os
import time
from types import SimpleNamespace

import pytest
from django.core.checks import Warning
from django.urls import reverse

from broadsheet.comments.models import Comment
from broadsheet.core import checks, net, ratelimit

POST = reverse("comments:post")


# --- The keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "bucket"),
    [
        ("203.0.113.7", "203.0.113.7/32"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7/32"),
        ("not an address", None),
        ("", None),
        (None, None),
    ],
)
def test_ip_buckets(ip, bucket):
    assert ratelimit.ip_bucket(ip) == bucket


@pytest.mark.parametrize(
    "variant",
    [
        "ana@example.org",
        "Ana@Example.ORG",
        " ANA@example.org ",
        "ana+comments@example.org",
        "ana+a+b@example.org",
        "ána@example.org",  # composed accent
        "a\u0301na@example.org",  # decomposed accent
        "ａｎａ@example.org",  # full-width letters
        "ANA@EXAMPLE.ORG.",
    ],
)
def test_email_variants_share_one_key(variant):
    assert ratelimit.normalise_email(variant) == "ana@example.org"


def test_gmail_dots_and_googlemail_share_one_key_other_domains_keep_dots():
    key = ratelimit.normalise_email
    assert key("a.n.a+x@GMail.com") == key("ana@googlemail.com") == "ana@gmail.com"
    assert key("a.na@example.org") != key("ana@example.org")
    assert key("no-at-sign") == key("") == key(None) == ""


def test_window_number_is_in_the_key():
    t = 1_800_000_000.0  # a multiple of 60
    assert ratelimit.window_key("s", "k", 60, t) == ratelimit.window_key("s", "k", 60, t + 59.9)
    assert ratelimit.window_key("s", "k", 60, t) != ratelimit.window_key("s", "k", 60, t + 60)
    assert ratelimit.window_key("s", "k", 60, t).endswith(f":{int(t // 60)}")
    assert ratelimit.window_key("s", "k", 60, t) != ratelimit.window_key("s", "other", 60, t)


def test_hit_counts_in_a_window_and_starts_again_in_the_next():
    t = 1_800_000_000.0
    results = [ratelimit.hit("t", "k", limit=3, period=60, now=t + 10) for _ in range(5)]
    assert [r.count for r in results] == [1, 2, 3, 4, 5]
    assert [r.allowed for r in results] == [True, True, True, False, False]
    assert results[-1].retry_after == 50
    assert ratelimit.hit("t", "k", limit=3, period=60, now=t + 61).count == 1


# --- Through the comment form ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def one_window(monkeypatch):
    """The limiter's clock stands at the first second of the current hour for the whole test,
    so all its posts fall in one minute and one hour window: a real minute ending between two
    posts would start a fresh count and let a post through that the test expects refused."""
    start = time.time() // 3600 * 3600 + 1
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: start))


@pytest.fixture
def post(client, antispam_on, comment_data, form_token):
    counter = iter(range(1, 10_000))

    def send(thread, *, ip="127.0.0.1", forwarded=None, email=None, **overrides):
        n = next(counter)
        values = {
            "comment": f"Comment number {n}.",
            "email": email or f"reader{n}@example.org",
            "form_token": form_token(thread),
        }
        data = comment_data(thread, **{**values, **overrides})
        extra = {"REMOTE_ADDR": ip}
        if forwarded:
            extra["HTTP_X_FORWARDED_FOR"] = forwarded
        return client.post(POST, data, **extra)

    return send


@pytest.fixture
def limits(discussion_settings):
    def save(**fields):
        values = {
            "flood_seconds": 0,
            "rate_per_minute_ip": 100,
            "rate_per_hour_ip": 100,
            "rate_per_minute_email": 100,
            "rate_per_minute_account": 100,
        }
        discussion_settings(**{**values, **fields})

    return save


@pytest.fixture
def trusted_proxies(settings):
    def trust(*networks):
        settings.BROADSHEET_TRUSTED_PROXIES = list(networks)
        net._trusted.cache_clear()

    yield trust
    net._trusted.cache_clear()


def test_per_ip_limit_ignores_a_forged_forwarded_header(
    post, limits, thread_factory, trusted_proxies
):
    limits(rate_per_minute_ip=3)
    trusted_proxies()  # nobody is trusted: the peer address counts
    thread = thread_factory()
    statuses = [post(thread, forwarded=f"198.51.100.{n}").status_code for n in range(6)]
    assert statuses == [303, 303, 303, 429, 429, 429]
    assert Comment.objects.count() == 3


def test_refusal_says_when_to_try_again_and_keeps_the_text(post, limits, thread_factory):
    limits(rate_per_minute_ip=1)
    thread = thread_factory()
    assert post(thread).status_code == 303
    response = post(thread, comment="My considered view.")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    page = response.content.decode()
    assert "You have sent too many comments for now. Please wait" in page
    assert "My considered view." in page


def test_trusted_proxy_forwarded_address_is_counted(post, limits, thread_factory, trusted_proxies):
    limits(rate_per_minute_ip=2)
    trusted_proxies("127.0.0.1/32")
    thread = thread_factory()
    # Each reader behind the proxy has their own count...
    for n in range(4):
        assert post(thread, forwarded=f"198.51.100.{n}").status_code == 303
    # ...and a client cannot hide behind an extra forged entry: the right-most untrusted one counts.
    statuses = [post(thread, forwarded=f"10.9.9.{n}, 198.51.100.77").status_code for n in range(3)]
    assert statuses == [303, 303, 429]


def test_ipv6_addresses_in_one_64_share_a_count(post, limits, thread_factory):
    limits(rate_per_minute_ip=2)
    thread = thread_factory()
    assert post(thread, ip="2001:db8:1:2::1").status_code == 303
    assert post(thread, ip="2001:db8:1:2:ffff:ffff:ffff:fffe").status_code == 303
    assert post(thread, ip="2001:db8:1:2:abcd::9").status_code == 429
    assert post(thread, ip="2001:db8:1:3::1").status_code == 303  # the next /64


def test_per_hour_ip_limit(post, limits, thread_factory):
    limits(rate_per_hour_ip=2)
    thread = thread_factory()
    assert [post(thread).status_code for _ in range(3)] == [303, 303, 429]


def test_per_email_limit_sees_through_variants(post, limits, thread_factory):
    limits(rate_per_minute_email=2)
    thread = thread_factory()
    variants = ["Ana@Example.org", "ana+news@example.org", "ANA@EXAMPLE.ORG", "ana+x@Example.Org"]
    statuses = [
        post(thread, ip=f"203.0.113.{n}", email=email).status_code
        for n, email in enumerate(variants)
    ]
    assert statuses == [303, 303, 429, 429]


def test_per_account_limit(client, post, limits, thread_factory, user_factory):
    limits(rate_per_minute_account=2)
    client.force_login(user_factory())
    thread = thread_factory()
    statuses = [post(thread, ip=f"203.0.113.{n}").status_code for n in range(3)]
    assert statuses == [303, 303, 429]


def test_moderators_are_not_limited(client, post, limits, thread_factory, user_factory):
    limits(rate_per_minute_ip=1, rate_per_minute_account=1)
    client.force_login(user_factory(moderator=True))
    thread = thread_factory()
    assert [post(thread).status_code for _ in range(3)] == [303, 303, 303]


@pytest.mark.parametrize("guard", ["rate_limits", "flood"])
def test_counting_guards_fail_closed_when_the_cache_is_down(
    antispam_on, thread_factory, settings, guard
):
    """Guard level: with the cache down, the request dies earlier today (Wagtail's site root
    lookup in the discussion settings resolver uses the cache too), so the form cannot show it."""
    from broadsheet.comments import antispam
    from broadsheet.comments.conf import DiscussionSettings
    from broadsheet.comments.guards import REFUSE, Submission

    thread = thread_factory()
    # A real Redis client against a loopback port where nothing listens.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"socket_connect_timeout": 1},
        }
    }
    sub = Submission(
        comment=Comment(thread=thread, text="Sent while the cache was down.", author_email="a@b.c"),
        settings=DiscussionSettings(),
        ip="203.0.113.5",
        form_token=None,
    )
    verdict = getattr(antispam, guard)(sub)
    assert (verdict.action, verdict.status, verdict.retry_after) == (REFUSE, 503, 60)
    assert "try again in a minute" in verdict.detail


# --- broadsheet.W001 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "workers", "debug", "warns"),
    [
        ("django.core.cache.backends.locmem.LocMemCache", "2", False, True),
        ("django.core.cache.backends.locmem.LocMemCache", None, False, True),  # serve's default
        ("django.core.cache.backends.locmem.LocMemCache", "1", False, False),
        ("django.core.cache.backends.locmem.LocMemCache", "4", True, False),  # development
        ("django.core.cache.backends.redis.RedisCache", "4", False, False),
    ],
)
def test_w001_warns_when_workers_do_not_share_the_cache(
    settings, monkeypatch, backend, workers, debug, warns
):
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": "redis://127.0.0.1:6379/13"}}
    settings.DEBUG = debug
    if workers is None:
        monkeypatch.delenv("BROADSHEET_WORKERS", raising=False)
    else:
        monkeypatch.setenv("BROADSHEET_WORKERS", workers)
    found = checks.shared_cache_check()
    assert [(type(w), w.id) for w in found] == ([(Warning, "broadsheet.W001")] if warns else [])
    assert os.environ.get("BROADSHEET_WORKERS") == workers
