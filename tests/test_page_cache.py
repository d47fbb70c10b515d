"""The full-page cache (core/pagecache.py, publishing/page_cache.py), called through the real
WSGI entry point (``broadsheet.config.wsgi`` builds the same handler): what a reader gets,
what is shared, what clears it. K01 (nothing personal in a shared page) and K02 (no
poisoning through headers the cache does not key on) of the security catalogue."""

from __future__ import annotations

import io
import re

import pytest
from django.utils import timezone

from broadsheet.comments.models import Comment, Thread
from broadsheet.core import pagecache

HOST = "testserver"


class Wsgi:
    """A reader talking to the WSGI application, as a server would call it. As Django's own
    test client does, the test's database connection is kept open across requests (the
    handler would close it at the end of each)."""

    def __init__(self, app):
        self.app = app

    def request(self, path, *, method="GET", cookies=None, headers=None, query="", host=HOST):
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path.encode().decode("latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": host,
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": io.StringIO(),
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        answer = {}

        def start_response(status, response_headers, exc_info=None):
            answer["status"] = int(status.split()[0])
            answer["headers"] = response_headers

        from django.core import signals
        from django.db import close_old_connections

        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            chunks = self.app(environ, start_response)
            body = b"".join(chunks)
            if hasattr(chunks, "close"):
                chunks.close()
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)
        return Response(answer["status"], answer["headers"], body)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.header_list = headers
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        self.text = body.decode("utf-8", "replace")

    @property
    def cache(self):
        return self.headers.get("x-page-cache")


@pytest.fixture
def site(db, settings, tmp_path, django_capture_on_commit_callbacks):
    """The demo publication behind the page cache (files in a temporary directory)."""
    from broadsheet.publishing.demo import load_demo

    settings.BROADSHEET_BASE_URL = f"http://{HOST}"
    settings.BROADSHEET_PAGE_CACHE_DIR = str(tmp_path / "pagecache")
    pagecache.reset()
    load_demo(base_url=f"http://{HOST}")
    from broadsheet.core.pagecache import PageCacheHandler

    yield Wsgi(PageCacheHandler())
    pagecache.reset()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a change as if its transaction committed (invalidation waits for the commit)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def seed_thread() -> Thread:
    return Thread.objects.get(title__startswith="Greetings from Lugansk Communists")


def other_thread() -> Thread:
    return Thread.objects.exclude(pk=seed_thread().pk).exclude(page_id=None).first()


def without_per_response(headers):
    return sorted((k.lower(), v) for k, v in headers if k.lower() not in {"x-page-cache"})


def test_second_anonymous_read_is_the_stored_page_with_the_same_bytes_and_headers(site):
    url = seed_thread().url
    first = site.request(url)
    second = site.request(url)
    assert (first.status, first.cache) == (200, "stored")
    assert (second.status, second.cache) == (200, "hit")
    assert second.body == first.body
    assert without_per_response(second.header_list) == without_per_response(first.header_list)
    assert "set-cookie" not in first.headers and "set-cookie" not in second.headers
    assert "Greetings from Lugansk Communists" in second.text


def test_head_is_answered_from_the_cache_without_a_body(site):
    url = seed_thread().url
    full = site.request(url)
    head = site.request(url, method="HEAD")
    assert head.cache == "hit" and head.body == b""
    assert head.headers["content-length"] == str(len(full.body))


def test_home_and_feed_are_shared_too(site):
    assert site.request("/").cache == "stored"
    assert site.request("/").cache == "hit"
    site.request("/feed/")
    feed = site.request("/feed/")
    assert feed.cache == "hit"
    assert feed.headers["content-type"].startswith("application/rss+xml")


def test_query_strings_other_hosts_and_posts_are_never_served_from_the_cache(site, settings):
    url = seed_thread().url
    site.request(url)
    assert site.request(url, query="replytocom=1").cache != "hit"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    assert site.request(url, host="localhost").cache == "bypass"
    assert site.request(url, method="POST").cache != "hit"


# --- K01: nothing personal in a shared page ----------------------------------------------------


def test_signed_in_reader_gets_a_fresh_private_page_never_the_shared_one(
    site, client, user_factory
):
    url = seed_thread().url
    site.request(url)  # the shared copy exists
    moderator = user_factory(moderator=True)
    client.force_login(moderator)
    session = client.cookies["sessionid"].value
    page = site.request(url, cookies={"sessionid": session})
    assert page.cache == "bypass"
    assert "private" in page.headers["cache-control"]
    assert "Cookie" in page.headers["vary"]


def test_a_signed_in_moderators_render_is_never_stored_for_others(site, client, user_factory):
    url = seed_thread().url
    moderator = user_factory(moderator=True, username="moderator-kay")
    client.force_login(moderator)
    site.request(url, cookies={"sessionid": client.cookies["sessionid"].value})
    anonymous = site.request(url)
    assert anonymous.cache == "stored"  # the moderator's render did not fill the cache
    assert "moderator-kay" not in anonymous.text


def test_reader_with_a_held_comment_sees_a_fresh_page_not_the_shared_one(site):
    url = seed_thread().url
    site.request(url)
    assert site.request(url, cookies={"bs_pending": "anything"}).cache == "bypass"
    # Other cookies (analytics, the remembered guest details) do not split the cache.
    assert site.request(url, cookies={"_ga": "1", "bs_guest": "x", "csrftoken": "y"}).cache == "hit"


def test_shared_page_holds_no_token_nonce_or_moderator_link_over_500_reads(site):
    url = seed_thread().url
    bodies = {site.request(url).body for _ in range(500)}
    assert len(bodies) == 1  # one page for everyone
    text = bodies.pop().decode()
    for secret in ("csrfmiddlewaretoken", "csrftoken", "nonce=", 'form_token" value="', "/admin/"):
        assert secret not in text, secret
    # Inline scripts would need a nonce a cache replays: there are none.
    assert not re.search(
        r"<script(?![^>]*\bsrc=)[^>]*>\s*[^<\s]",
        text.replace('<script type="application/ld+json">', "<x>"),
    )


# --- K02: headers the cache does not key on cannot poison it ---------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-Host": "evil.example"},
        {"X-Forwarded-Proto": "https"},
        {"Origin": "https://evil.example"},
        {"Accept-Language": "de-DE"},
        {"X-Original-URL": "/admin/"},
        {"X-Forwarded-Host": "evil.example", "Forwarded": "host=evil.example;proto=https"},
    ],
)
def test_unkeyed_headers_do_not_change_the_shared_page(site, headers):
    url = seed_thread().url
    poisoned = site.request(url, headers=headers)
    assert (poisoned.status, poisoned.cache) == (200, "stored")
    plain = site.request(url)
    assert plain.cache == "hit"
    assert b"evil.example" not in plain.body
    pagecache.clear()
    clean = site.request(url)  # rendered for a reader who sent none of those headers
    assert clean.cache == "stored"
    assert clean.body == plain.body


def test_a_host_outside_allowed_hosts_is_refused_and_stores_nothing(site, tmp_path):
    url = seed_thread().url
    assert site.request(url, host="evil.example").status == 400
    assert site.request(url).cache == "stored"


# --- precise invalidation -------------------------------------------------------------------


def warm(site, *urls):
    for url in urls:
        site.request(url)
        assert site.request(url).cache == "hit", url


def approve_held_comment(thread, text, committed, comment_factory):
    comment = comment_factory(thread, status=Comment.Status.PENDING, name="Dana", text=text)
    with committed():
        comment.status = Comment.Status.APPROVED
        comment.save()
    return comment


def test_approving_a_comment_clears_its_article_and_nothing_else(site, committed, comment_factory):
    seed, other = seed_thread(), other_thread()
    warm(site, seed.url, other.url, "/", "/feed/")
    approve_held_comment(seed, "Solidarity from the print shop.", committed, comment_factory)
    fresh = site.request(seed.url)
    assert fresh.cache == "stored"
    assert "Solidarity from the print shop." in fresh.text
    for url in (other.url, "/", "/feed/"):
        assert site.request(url).cache == "hit", url


def test_a_held_comment_changes_no_page_and_clears_nothing(site, committed, comment_factory):
    seed = seed_thread()
    warm(site, seed.url)
    with committed():
        comment_factory(seed, status=Comment.Status.PENDING, name="Eli", text="Held, for now.")
    page = site.request(seed.url)
    assert page.cache == "hit"
    assert "Held, for now." not in page.text


def test_removing_a_shown_comment_clears_its_article(site, committed):
    seed = seed_thread()
    shown = seed.comments.filter(status=Comment.Status.APPROVED).first()
    warm(site, seed.url)
    with committed():
        shown.status = Comment.Status.SPAM
        shown.save()
    assert site.request(seed.url).cache == "stored"


def test_publishing_an_article_clears_it_and_the_listings_but_not_other_articles(site, committed):
    from broadsheet.publishing.models import ArticlePage

    seed, other = seed_thread(), other_thread()
    warm(site, seed.url, other.url, "/", "/feed/")
    article = ArticlePage.objects.get(pk=seed.page_id)
    article.title = "Greetings from Lugansk Communists, revised"
    with committed():
        article.save_revision().publish()
    for url in (seed.url, "/", "/feed/"):
        page = site.request(url)
        assert page.cache == "stored", url
        assert "Greetings from Lugansk Communists, revised" in page.text, url
    assert site.request(other.url).cache == "hit"


def test_unpublishing_an_article_takes_it_out_of_the_cache(site, committed):
    from broadsheet.publishing.models import ArticlePage

    seed = seed_thread()
    warm(site, seed.url, "/")
    with committed():
        ArticlePage.objects.get(pk=seed.page_id).unpublish()
    assert site.request(seed.url).status == 404
    assert "Greetings from Lugansk Communists" not in site.request("/").text


def test_changing_discussion_settings_clears_every_page(site, committed, discussion_settings):
    seed, other = seed_thread(), other_thread()
    warm(site, seed.url, other.url, "/")
    with committed():
        discussion_settings(thread_depth=3)
    for url in (seed.url, other.url, "/"):
        assert site.request(url).cache == "stored", url


def test_a_render_that_began_before_an_invalidation_is_not_stored(tmp_path):
    import time

    store = pagecache.PageStore(tmp_path)
    began = time.time_ns()
    store.invalidate("page:7")  # a comment was approved while the page was being rendered
    stored = store.store(
        "/a/", ext="html", body=b"old", headers=[], tags={"page:7"}, started_ns=began
    )
    assert stored is False
    assert store.lookup("/a/") is None
    later = time.time_ns() + pagecache.STAMP_MARGIN_NS + 1
    assert store.store(
        "/a/", ext="html", body=b"new", headers=[], tags={"page:7"}, started_ns=later
    )
    assert store.lookup("/a/").body == b"new"


@pytest.mark.parametrize(
    "path", ["/../etc/", "/a/../", "//", "/.tags/", "/a/./", "/a\\b/", "/a\x00/", "/no-slash"]
)
def test_paths_that_could_leave_the_cache_directory_are_never_read_or_written(tmp_path, path):
    store = pagecache.PageStore(tmp_path / "cache")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "index.html").write_text("outside")
    assert not store.store(path, ext="html", body=b"x", headers=[], tags={"t"}, started_ns=10**20)
    assert store.lookup(path) is None


def test_the_cache_can_be_turned_off(db, settings, tmp_path):
    from broadsheet.core.pagecache import PageCacheHandler
    from broadsheet.publishing.demo import load_demo

    settings.BROADSHEET_BASE_URL = f"http://{HOST}"
    settings.BROADSHEET_PAGE_CACHE_DIR = None
    pagecache.reset()
    load_demo(base_url=f"http://{HOST}")
    wsgi = Wsgi(PageCacheHandler())
    url = seed_thread().url
    assert wsgi.request(url).status == 200
    assert wsgi.request(url).cache is None
    pagecache.reset()


def test_a_page_whose_comments_close_with_time_is_swept_when_they_close(
    site, committed, discussion_settings
):
    """ "Close comments on articles older than N days" changes a page with no event: the
    worker's sweep deletes the shared copy once the time comes."""
    from datetime import timedelta

    seed = seed_thread()
    with committed():
        # The seed article is from 2017-11-20: it closes some days from now.
        age = (timezone.now() - seed.published_at).days
        discussion_settings(close_after_days=age + 3)
    warm(site, seed.url, "/")
    store = pagecache.store()
    assert store.sweep_expired() == 0  # not yet
    assert site.request(seed.url).cache == "hit"
    later = timezone.now() + timedelta(days=4)
    assert store.sweep_expired(int(later.timestamp() * 1e9)) == 1
    reopened = site.request(seed.url)
    assert reopened.cache == "stored"
    assert site.request("/").cache == "hit"  # the home page does not change with it


def test_publishing_the_home_page_clears_every_page_its_masthead_is_on(site, committed):
    from broadsheet.publishing.models import HomePage

    seed = seed_thread()
    warm(site, seed.url, "/")
    home = HomePage.objects.get()
    home.tagline = "News from the picket lines"
    with committed():
        home.save_revision().publish()
    article = site.request(seed.url)
    assert article.cache == "stored"
    assert "News from the picket lines" in article.text


def test_an_article_that_expires_leaves_the_cache_and_the_listings_when_it_does(site, committed):
    from datetime import timedelta

    from broadsheet.publishing.models import ArticlePage

    seed = seed_thread()
    article = ArticlePage.objects.get(pk=seed.page_id)
    with committed():
        article.expire_at = timezone.now() + timedelta(hours=1)
        article.save_revision().publish()
    warm(site, seed.url, "/", "/feed/")
    store = pagecache.store()
    later = timezone.now() + timedelta(hours=2)
    assert store.sweep_expired(int(later.timestamp() * 1e9)) == 3


def test_empty_archives_are_not_kept(site):
    empty = site.request("/1234/05/06/")
    assert empty.status in (200, 404)
    assert empty.cache != "stored"
    assert site.request("/1234/05/06/").cache != "hit"


def test_a_page_that_cannot_be_written_is_still_served(site, settings, tmp_path):
    url = seed_thread().url
    first_part = url.strip("/").split("/")[0]
    blocked = tmp_path / "pagecache" / first_part
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("a file where a directory should be")
    page = site.request(url)
    assert (page.status, page.cache) == (200, "bypass")
    assert "Greetings from Lugansk Communists" in page.text


def test_a_stamp_never_moves_back(tmp_path):
    import os

    store = pagecache.PageStore(tmp_path)
    store.invalidate("page:1")
    stamp = tmp_path / ".stamps" / "page:1"
    ahead = os.stat(stamp).st_mtime_ns + 10**12  # another invalidation, stamped later
    os.utime(stamp, ns=(ahead, ahead))
    store.invalidate("page:1")
    assert os.stat(stamp).st_mtime_ns > ahead


def test_deleting_a_held_comment_moves_its_shown_reply_up_on_the_page(
    site, committed, comment_factory, user_factory
):
    from broadsheet.comments.services import moderate

    seed = seed_thread()
    shown = seed.comments.filter(status=Comment.Status.APPROVED, parent=None).first()
    held = comment_factory(seed, parent=shown, status=Comment.Status.PENDING, text="Held.")
    reply = comment_factory(seed, parent=held, text="A reply to a held comment.")
    before = site.request(seed.url)
    # Its parent is not shown, so the reply stands at the top level.
    assert re.search(rf'id="comment-{reply.pk}" class="comment depth-1\b', before.text)
    assert site.request(seed.url).cache == "hit"
    with committed():
        moderate(comment_ids=[held.pk], action="delete", moderator=user_factory(moderator=True))
    after = site.request(seed.url)
    assert after.cache == "stored"
    assert re.search(rf'id="comment-{reply.pk}" class="comment depth-2\b', after.text)

    # Deleting spam that no one replied to changes no page.
    spam = comment_factory(seed, status=Comment.Status.SPAM, text="Cheap pills.")
    assert site.request(seed.url).cache == "hit"
    with committed():
        moderate(comment_ids=[spam.pk], action="delete", moderator=user_factory(moderator=True))
    assert site.request(seed.url).cache == "hit"


@pytest.fixture
def image_on_the_seed_article(site, committed):
    """An image in the seed article's body, as an editor puts it there (a Wagtail embed)."""
    from wagtail.images import get_image_model
    from wagtail.images.tests.utils import get_test_image_file

    from broadsheet.publishing.models import ArticlePage

    image = get_image_model().objects.create(title="Boat", file=get_test_image_file())
    article = ArticlePage.objects.get(pk=seed_thread().page_id)
    article.body = (
        f'<embed embedtype="image" id="{image.pk}" format="left" alt="A boat at dawn"/>'
        + article.body
    )
    with committed():
        article.save_revision().publish()
    return image, seed_thread().url


def test_changing_an_image_clears_the_pages_that_show_it(
    site, committed, image_on_the_seed_article, django_user_model
):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client
    from wagtail.images import get_image_model
    from wagtail.images.tests.utils import get_test_image_file

    image, url = image_on_the_seed_article
    first = site.request(url)
    old_src = re.search(r'<img[^>]*alt="A boat at dawn"[^>]*src="([^"]+)"', first.text)
    old_src = old_src or re.search(r'<img[^>]*src="([^"]+)"[^>]*alt="A boat at dawn"', first.text)
    assert old_src, "the image is on the page"
    assert site.request(url).cache == "hit"

    with committed():  # a new upload is on no page: nothing is cleared
        get_image_model().objects.create(title="Unused", file=get_test_image_file())
    assert site.request(url).cache == "hit"

    with committed():  # nor is the size Wagtail fills in when its admin shows the image
        image.file_size = None
        assert image.get_file_size() > 0
    assert site.request(url).cache == "hit"

    editor = Client()
    editor.force_login(
        django_user_model.objects.create_superuser("chief", "chief@example.org", "correct horse 42")
    )
    with committed():  # the editor replaces the file in the admin: the old renditions go
        response = editor.post(
            f"/admin/images/{image.pk}/",
            {
                "title": "Boat",
                "file": SimpleUploadedFile(
                    "boat-2.png", get_test_image_file(colour="red").file.getvalue(), "image/png"
                ),
                "collection": image.collection_id,
                "tags": "",
            },
        )
    assert response.status_code == 302, response.context["form"].errors
    fresh = site.request(url)
    assert fresh.cache == "stored"
    assert old_src.group(1) not in fresh.text

    assert site.request(url).cache == "hit"
    with committed():
        image.delete()
    gone = site.request(url)
    assert gone.cache == "stored"
    assert "A boat at dawn" not in gone.text
