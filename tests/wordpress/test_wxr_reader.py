"""The streaming WXR reader: the fixture facts of docs/wxr-plan.md §1 and hostile files (I01/I02).

No database: the reader is plain Python.
"""

import io
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from broadsheet.wordpress.wxr import Author, Channel, Item, Term, WXRError, read_wxr

FIXTURES = Path(__file__).parent / "fixtures"
THEME = FIXTURES / "themeunittestdata.wordpress.xml"
SEED = FIXTURES / "seed-article-export.xml"
WP_HTTP = "http://wordpress.org/export/1.2/"


def by_type(records, cls):
    return [r for r in records if isinstance(r, cls)]


def depth_of(comment, by_id):
    depth = 1
    while comment.parent_wp_id:
        comment = by_id[comment.parent_wp_id]
        depth += 1
    return depth


def wxr(body="", *, wp=WP_HTTP, version="1.2", before_rss="", channel_head=None):
    """A minimal WXR document around ``body`` (items, authors, terms)."""
    version_el = f"<wp:wxr_version>{version}</wp:wxr_version>" if version else ""
    head = channel_head if channel_head is not None else f"<title>Test</title>{version_el}"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{before_rss}'
        f'<rss version="2.0" xmlns:wp="{wp}" xmlns:excerpt="{wp}excerpt/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        f"<channel>{head}\n{body}\n</channel></rss>\n"
    )


def write(tmp_path, text, name="hostile.xml"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def refused_quickly(path, label, **kwargs):
    """Read ``path`` expecting a WXRError; return it after checking it came in under 1 s."""
    started = time.perf_counter()
    with pytest.raises(WXRError) as info:
        list(read_wxr(path, **kwargs))
    elapsed = time.perf_counter() - started
    print(f"\n{label}: refused in {elapsed:.6f} s: {info.value}")
    assert elapsed < 1.0
    return info.value


@pytest.fixture(scope="module")
def theme():
    return list(read_wxr(THEME))


@pytest.fixture(scope="module")
def seed():
    return list(read_wxr(SEED))


@pytest.fixture
def canary():
    """An HTTP server on loopback that counts every request it gets."""
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"canary")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- themeunittestdata.wordpress.xml --


def test_theme_channel(theme):
    channel = theme[0]
    assert isinstance(channel, Channel)
    assert channel.wxr_version == "1.2"
    assert channel.base_site_url == "https://wordpress.com/"
    assert channel.base_blog_url == "https://wpthemetestdata.wordpress.com"
    assert channel.link == "https://wpthemetestdata.wordpress.com"
    assert channel.language == "en"
    assert sum(isinstance(r, Channel) for r in theme) == 1


def test_theme_items_per_type_and_status(theme):
    items = by_type(theme, Item)
    assert len(items) == 186
    assert Counter(i.post_type for i in items) == {
        "post": 58,
        "page": 21,
        "attachment": 37,
        "nav_menu_item": 70,
    }
    assert Counter((i.post_type, i.status) for i in items) == {
        ("post", "publish"): 56,
        ("post", "future"): 1,
        ("post", "draft"): 1,
        ("page", "publish"): 21,
        ("attachment", "inherit"): 37,
        ("nav_menu_item", "publish"): 70,
    }
    duplicated = {k for k, n in Counter(i.wp_id for i in items).items() if n > 1}
    assert duplicated == set(range(1643, 1661))
    assert {i.post_type for i in items if i.wp_id in duplicated} == {"nav_menu_item"}
    assert [i.wp_id for i in items if i.sticky] == [1241]
    assert Counter(
        (i.post_type, i.comment_status) for i in items if i.post_type in ("post", "page")
    ) == {
        ("post", "open"): 19,
        ("post", "closed"): 39,
        ("page", "open"): 11,
        ("page", "closed"): 10,
    }


def test_theme_attachments(theme):
    attachments = [i for i in by_type(theme, Item) if i.post_type == "attachment"]
    assert len(attachments) == 37
    assert all(
        a.attachment_url.startswith("https://wpthemetestdata.files.wordpress.com/")
        for a in attachments
    )
    assert Counter(a.attachment_url.rsplit(".", 1)[-1].lower() for a in attachments) == {
        "jpg": 34,
        "gif": 1,
        "mp3": 1,
        "mov": 1,
    }
    assert sum(1 for a in attachments if a.parent_wp_id) == 35
    thumbnails = {
        i.wp_id: value
        for i in by_type(theme, Item)
        for key, value in i.meta
        if key == "_thumbnail_id"
    }
    assert sorted(thumbnails) == [51, 1011, 1016, 1163, 1177, 1752]
    attachment_ids = {a.wp_id for a in attachments}
    assert all(int(v) in attachment_ids for v in thumbnails.values())


def test_theme_comments_by_status_type_and_item(theme):
    items = by_type(theme, Item)
    comments = [c for i in items for c in i.comments]
    assert len(comments) == 33
    assert Counter(c.approved for c in comments) == {"1": 30, "0": 3}
    assert Counter(c.type for c in comments) == {
        "": 28,
        "comment": 1,
        "pingback": 2,
        "trackback": 2,
    }
    per_item = {i.wp_id: len(i.comments) for i in items if i.comments}
    assert per_item == {1148: 20, 1149: 5, 155: 4, 51: 1, 703: 1, 1168: 1, 1170: 1}
    assert sum(1 for c in comments if c.user_wp_id == 24783058) == 4
    assert all(c.ip == "" for c in comments)
    pings = [c.author for i in items if i.wp_id == 1149 for c in i.comments if c.type != ""]
    assert "Ping 1 « What’s a tellyworth?" in pings
    assert all("&" not in name for name in pings)


def test_theme_comment_threading(theme):
    depths = Counter()
    for item in by_type(theme, Item):
        seen = {}
        for comment in item.comments:
            if comment.parent_wp_id:
                assert comment.parent_wp_id in seen, "parent in the same item, before its child"
            seen[comment.wp_id] = comment
        for comment in item.comments:
            depths[depth_of(comment, seen)] += 1
        if item.wp_id == 1148:
            assert max(depth_of(c, seen) for c in item.comments) == 10
            chain = [904]
            while child := [c.wp_id for c in item.comments if c.parent_wp_id == chain[-1]]:
                chain.append(child[0])
            assert chain == [904, 905, 906, 907, *range(910, 916)]
    assert depths == {1: 23, 2: 2, **{d: 1 for d in range(3, 11)}}


def test_theme_categories_tags_and_terms(theme):
    terms = by_type(theme, Term)
    categories = [t for t in terms if t.taxonomy == "category"]
    tags = [t for t in terms if t.taxonomy == "post_tag"]
    # 68 wp:category records plus the one category among the 7 wp:term records.
    assert len(categories) == 69
    assert len(tags) == 110
    assert Counter(t.taxonomy for t in terms) == {"category": 69, "post_tag": 110, "nav_menu": 6}
    declared = [t for t in categories if t.wp_id is not None]
    assert sum(1 for t in categories if t.parent_slug) >= 10
    by_slug = {t.slug: t for t in categories}
    assert by_slug["child-2"].parent_slug == "child-1"
    assert by_slug["child-1"].parent_slug == "parent"
    assert by_slug["grandchild-category"].parent_slug == "child-category-03"
    assert by_slug["child-category-03"].parent_slug == "parent-category"
    assert len(declared) == 69
    assert sum(1 for t in tags if t.description) == 14
    alignment = next(t for t in tags if t.slug == "alignment-2")
    assert alignment.name == "alignment"
    item_terms = Counter(domain for i in by_type(theme, Item) for domain, _, _ in i.terms)
    assert item_terms == {"post_tag": 188, "category": 175, "nav_menu": 70, "post_format": 13}


def test_theme_authors(theme):
    authors = by_type(theme, Author)
    assert [(a.login, a.display_name, a.wp_id) for a in authors] == [
        ("themedemos", "Theme Buster", None),
        ("themereviewteam", "Theme Reviewer", None),
    ]
    creators = {i.wp_id: i.creator for i in by_type(theme, Item)}
    assert creators[1730] == "themereviewteam"  # written `>themereviewteam` in the file
    assert creators[1723] == "themereviewteam"  # written `themereviewteam>`
    assert {i.creator for i in by_type(theme, Item)} <= {a.login for a in authors}


def test_theme_hard_cases(theme):
    posts = {i.wp_id: i for i in by_type(theme, Item) if i.post_type != "nav_menu_item"}
    long_title = posts[1175]
    assert long_title.title == (
        "Taumatawhakatangihangakoauauotamateaturipukakapikimaungahoronukupokaiwhenuakitanatahu"
    )
    assert len(long_title.title) == 85
    assert long_title.name == "title-should-not-overflow-the-content-area"

    protected = posts[1168]
    assert protected.password == "enter"
    assert protected.title == 'Template: Password Protected (the password is "enter")'
    assert sum(1 for p in posts.values() if p.password) == 1

    scheduled = posts[1153]
    assert scheduled.status == "future"
    assert scheduled.date_gmt == datetime(2030, 1, 1, 19, 0, 18, tzinfo=UTC)
    assert scheduled.date_local == datetime(2030, 1, 1, 12, 0, 18)
    assert urlsplit(scheduled.link).path == "/2020/01/01/scheduled/"

    many = posts[1152]
    assert sum(1 for domain, _, _ in many.terms if domain == "category") == 63
    assert sum(1 for domain, _, _ in many.terms if domain == "post_tag") == 2
    assert sum(1 for domain, _, _ in posts[1151].terms if domain == "post_tag") == 45

    assert posts[1169].title == ""
    assert posts[1170].content == ""
    draft = posts[1164]
    assert (draft.status, draft.name, urlsplit(draft.link).query) == ("draft", "", "p=1164")
    assert posts[1173].title == "Markup: Title <em>With</em> <b>Mark<sup>up</sup></b>"
    assert "<h1>" in posts[1178].content and "<table>" in posts[1178].content
    assert not any("%" in p.name for p in posts.values())
    assert posts[1811].name.startswith("επ")
    assert dict(posts[8].meta)["_wp_old_slug"] == "8-2"


# -- seed-article-export.xml --


def test_seed_channel_author_and_posts(seed):
    channel, author = seed[0], seed[1]
    assert channel == Channel(
        title="WordPress Anchor",
        link="http://127.0.0.1:8081",
        base_site_url="http://127.0.0.1:8081",
        base_blog_url="http://127.0.0.1:8081",
        language="en-US",
        wxr_version="1.2",
    )
    assert (author.wp_id, author.login, author.display_name) == (1, "admin", "WW Editor")
    assert [t.slug for t in by_type(seed, Term) if t.taxonomy == "category"][0] == "uncategorized"
    assert not [t for t in by_type(seed, Term) if t.taxonomy == "post_tag"]
    items = by_type(seed, Item)
    assert [(i.wp_id, i.post_type, i.status, i.comment_status) for i in items] == [
        (4, "post", "publish", "open"),
        (5, "post", "publish", "open"),
    ]
    article = items[0]
    assert "\xa0" in article.title
    assert urlsplit(article.link).path == (
        "/2017/11/20/greetings-from-lugansk-communists-to-workers-world-party-2017-conference/"
    )
    assert article.name == (
        "greetings-from-lugansk-communists-to-workers-world-party-2017-conference"
    )
    assert article.date_gmt == datetime(2017, 11, 20, 9, 30, tzinfo=UTC)
    assert len(article.excerpt) == 121
    assert urlsplit(items[1].link).path == "/2017/11/21/a-second-post-with-no-comments/"


def test_seed_comments_and_threads(seed):
    article, second = by_type(seed, Item)
    comments = article.comments
    assert len(comments) == 100 and second.comments == ()
    assert [c.wp_id for c in comments] == list(range(2, 102))
    assert {c.approved for c in comments} == {"1"} and {c.type for c in comments} == {"comment"}
    by_id = {}
    for comment in comments:
        if comment.parent_wp_id:
            assert comment.parent_wp_id in by_id, "every parent is in the same item, before"
            assert comment.date_gmt >= by_id[comment.parent_wp_id].date_gmt
        by_id[comment.wp_id] = comment
    assert sum(1 for c in comments if not c.parent_wp_id) == 27
    assert len({c.parent_wp_id for c in comments if c.parent_wp_id}) == 49
    depths = Counter(depth_of(c, by_id) for c in comments)
    assert depths == {1: 27, 2: 26, 3: 20, 4: 13, 5: 14}
    assert sorted(c.wp_id for c in comments if c.user_wp_id == 1) == [41, 81]
    assert all(c.date_gmt.replace(tzinfo=None) == c.date_local for c in comments)
    # Documentation ranges: 98 from 203.0.113.0/24, 2 from 198.51.100.0/24.
    assert Counter(c.ip.rsplit(".", 1)[0] for c in comments) == {"203.0.113": 98, "198.51.100": 2}
    assert all(c.email for c in comments)


def test_both_namespace_spellings_read_the_same(tmp_path, seed):
    text = (
        SEED.read_text(encoding="utf-8")
        .replace('xmlns:wp="http://', 'xmlns:wp="https://')
        .replace('xmlns:excerpt="http://', 'xmlns:excerpt="https://')
    )
    assert 'xmlns:wp="https://wordpress.org/export/1.2/"' in text
    assert list(read_wxr(write(tmp_path, text))) == seed


def test_file_object_and_progress(seed):
    calls = []
    with SEED.open("rb") as fp:
        records = list(read_wxr(fp, progress=lambda done, total: calls.append((done, total))))
    assert records == seed
    size = SEED.stat().st_size
    assert calls[-1] == (size, size)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    # A stream with no size still reads; the total is unknown.
    calls.clear()
    stream = io.BufferedReader(io.BytesIO(SEED.read_bytes()))
    stream.seekable = lambda: False
    assert list(read_wxr(stream, progress=lambda d, t: calls.append(t))) == seed
    assert set(calls) == {None}


def test_zero_gmt_dates_use_source_timezone(tmp_path):
    item = (
        "<item><title>Draft &amp; co</title><wp:post_id>7</wp:post_id>"
        "<wp:post_date>2024-07-01 12:00:00</wp:post_date>"
        "<wp:post_date_gmt>0000-00-00 00:00:00</wp:post_date_gmt>"
        "<wp:post_name>caf%c3%a9</wp:post_name><wp:status>draft</wp:status>"
        "<wp:post_type>post</wp:post_type>"
        "<content:encoded>  kept as is  </content:encoded>"
        "<wp:comment><wp:comment_id>1</wp:comment_id>"
        "<wp:comment_date>0000-00-00 00:00:00</wp:comment_date>"
        "<wp:comment_date_gmt>garbage</wp:comment_date_gmt>"
        "<wp:comment_content> hi </wp:comment_content>"
        "<wp:commentmeta><wp:meta_key>akismet_result</wp:meta_key>"
        "<wp:meta_value>false</wp:meta_value></wp:commentmeta>"
        "</wp:comment></item>"
    )
    path = write(tmp_path, wxr(item), "dates.xml")
    (_, parsed) = read_wxr(path, source_tz=ZoneInfo("Europe/Paris"))
    assert parsed.date_local == datetime(2024, 7, 1, 12, 0)
    assert parsed.date_gmt == datetime(2024, 7, 1, 10, 0, tzinfo=UTC)
    assert parsed.modified_gmt is None
    assert (parsed.title, parsed.name, parsed.content) == ("Draft & co", "café", "  kept as is  ")
    (comment,) = parsed.comments
    assert comment.date_gmt is None and comment.date_local is None
    assert comment.content == " hi "
    assert comment.meta == (("akismet_result", "false"),)
    (_, in_utc) = read_wxr(path)
    assert in_utc.date_gmt == datetime(2024, 7, 1, 12, 0, tzinfo=UTC)


# -- hostile and broken files (I01, I02) --


def test_xxe_file_entity_rejected(tmp_path):
    path = write(
        tmp_path,
        wxr(
            "<item><title>&xxe;</title></item>",
            before_rss='<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n',
        ),
    )
    error = refused_quickly(path, "file entity")
    assert "DTD" in str(error) and "root:" not in str(error)


def test_xxe_network_entity_rejected(tmp_path, canary):
    base, hits = canary
    path = write(
        tmp_path,
        wxr(
            "<item><title>&xxe;</title></item>",
            before_rss=f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{base}/entity">]>\n',
        ),
    )
    refused_quickly(path, "network entity")
    print(f"canary hits: {len(hits)}")
    assert hits == []


def test_parameter_entity_rejected(tmp_path, canary):
    base, hits = canary
    path = write(
        tmp_path,
        wxr(before_rss=f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "{base}/param"> %p;]>\n'),
    )
    refused_quickly(path, "parameter entity")
    print(f"canary hits: {len(hits)}")
    assert hits == []


def test_external_dtd_rejected(tmp_path, canary):
    base, hits = canary
    path = write(tmp_path, wxr(before_rss=f'<!DOCTYPE rss SYSTEM "{base}/wxr.dtd">\n'))
    refused_quickly(path, "external DTD")
    print(f"canary hits: {len(hits)}")
    assert hits == []


def test_canary_counts_requests(canary):
    # Without this, a canary that never counts would make the tests above pass vacuously.
    from urllib.request import urlopen

    base, hits = canary
    with urlopen(f"{base}/self-test", timeout=5) as response:  # noqa: S310 - loopback
        assert response.read() == b"canary"
    assert hits == ["/self-test"]


def test_billion_laughs_rejected_fast(tmp_path):
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    ]
    path = write(
        tmp_path,
        wxr(
            "<item><title>&lol9;</title></item>",
            before_rss=f"<!DOCTYPE rss [{''.join(entities)}]>\n",
        ),
    )
    refused_quickly(path, "billion laughs")


def test_quadratic_blowup_rejected_fast(tmp_path):
    blob = "x" * 200_000
    path = write(
        tmp_path,
        wxr(
            f"<item><title>{'&a;' * 20_000}</title></item>",
            before_rss=f'<!DOCTYPE rss [<!ENTITY a "{blob}">]>\n',
        ),
    )
    print(f"\nquadratic blowup file: {path.stat().st_size:,} bytes")
    refused_quickly(path, "quadratic blowup")


def test_truncated_file_gives_line_and_column(tmp_path):
    data = SEED.read_bytes()
    path = write(tmp_path, data[: len(data) // 2], "truncated.xml")
    error = refused_quickly(path, "truncated seed")
    assert "not well-formed XML at line" in str(error)
    assert ", column " in str(error)
    assert str(path) in str(error)


def test_truncated_file_yields_records_before_failing(tmp_path):
    # The reader streams: an importer must treat the run as all-or-nothing itself.
    data = SEED.read_bytes()
    path = write(tmp_path, data[: len(data) // 2], "truncated.xml")
    seen = []
    with pytest.raises(WXRError):
        for record in read_wxr(path):
            seen.append(record)
    assert isinstance(seen[0], Channel)


def test_empty_file_refused(tmp_path):
    error = refused_quickly(write(tmp_path, b"", "empty.xml"), "empty file")
    assert "line 1, column 0" in str(error)


def test_plain_rss_feed_is_not_wxr(tmp_path):
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>'
        "<link>https://example.org/</link><item><title>A post</title></item></channel></rss>"
    )
    error = refused_quickly(write(tmp_path, feed), "plain RSS")
    assert "not a WordPress export (no wp:wxr_version)" in str(error)
    empty_channel = '<rss version="2.0"><channel><title>News</title></channel></rss>'
    assert "no wp:wxr_version" in str(refused_quickly(write(tmp_path, empty_channel), "no items"))
    no_channel = '<rss version="2.0"><item/></rss>'
    assert "no <channel>" in str(refused_quickly(write(tmp_path, no_channel), "no channel"))


def test_html_document_is_not_wxr(tmp_path):
    error = refused_quickly(write(tmp_path, "<html><body>hi</body></html>"), "html")
    assert "not <rss>" in str(error)


def test_unknown_wxr_version_refused(tmp_path):
    error = refused_quickly(write(tmp_path, wxr(version="2.0")), "version 2.0")
    assert "'2.0' is not supported" in str(error)
    for version in ("1.0", "1.1", "1.2"):
        assert list(read_wxr(write(tmp_path, wxr(version=version))))[0].wxr_version == version


def test_prefix_hijack_is_not_wxr(tmp_path):
    path = write(
        tmp_path,
        wxr("<item><wp:post_id>1</wp:post_id></item>", wp="http://malicious.example.com/hijack/"),
    )
    error = refused_quickly(path, "prefix hijack")
    assert "no wp:wxr_version" in str(error)


def test_prefix_hijack_inside_item_is_ignored(tmp_path):
    body = (
        "<item><wp:post_id>10</wp:post_id><wp:post_type>post</wp:post_type></item>"
        '<item xmlns:wp="http://malicious.example.com/hijack/">'
        "<wp:post_id>11</wp:post_id><wp:post_type>page</wp:post_type>"
        "<wp:comment><wp:comment_id>5</wp:comment_id></wp:comment></item>"
        '<item xmlns:evil="http://wordpress.org/export/1.2/">'
        "<evil:post_id>12</evil:post_id></item>"
    )
    _, honest, hijacked, renamed = read_wxr(write(tmp_path, wxr(body)))
    assert (honest.wp_id, honest.post_type) == (10, "post")
    assert (hijacked.wp_id, hijacked.post_type, hijacked.comments) == (0, "", ())
    # The prefix is irrelevant: a WordPress URI under another prefix is read.
    assert renamed.wp_id == 12


def test_field_over_cap_refused(tmp_path):
    at_cap = write(tmp_path, wxr(f"<item><content:encoded>{'a' * 1000}</content:encoded></item>"))
    (_, item) = read_wxr(at_cap, max_field_chars=1000)
    assert len(item.content) == 1000
    over = write(
        tmp_path,
        wxr(f"<item><content:encoded><![CDATA[{'a' * 1001}]]></content:encoded></item>"),
        "over.xml",
    )
    error = refused_quickly(over, "field over 1000 chars", max_field_chars=1000)
    assert "longer than 1,000 characters" in str(error)
    comment = "<item><wp:comment><wp:comment_content>" + "b" * 1001
    comment += "</wp:comment_content></wp:comment></item>"
    refused_quickly(
        write(tmp_path, wxr(comment), "c.xml"), "comment over cap", max_field_chars=1000
    )


def test_file_over_max_bytes_refused_before_parsing(tmp_path):
    # Not XML at all: had the reader parsed anything, the error would be a parse error.
    path = write(tmp_path, b"\x00not xml" * 200, "big.xml")
    error = refused_quickly(path, "file over max_bytes", max_bytes=1000)
    assert "1,600 bytes, over the limit of 1,000 bytes" in str(error)
    with path.open("rb") as fp:
        refused_quickly(fp, "file object over max_bytes", max_bytes=1000)


def test_stream_without_size_stopped_at_max_bytes():
    stream = io.BufferedReader(io.BytesIO(SEED.read_bytes()))
    stream.seekable = lambda: False
    with pytest.raises(WXRError, match="over the limit of 70,000 bytes"):
        list(read_wxr(stream, max_bytes=70_000))


def test_missing_file_is_a_wxr_error(tmp_path):
    with pytest.raises(WXRError, match="cannot open"):
        list(read_wxr(tmp_path / "absent.xml"))
