"""Importing WordPress exports: idempotency, all-or-nothing, hostile and broken files."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from broadsheet.comments.models import Comment
from broadsheet.publishing.models import ArticlePage, StandardPage
from broadsheet.wordpress.importer import ImportFailed, import_wxr
from broadsheet.wordpress.wxr import Item, read_wxr
from tests.wordpress.helpers import comment_for, counts_of_everything, page_for
from tests.wordpress.test_wxr_reader import SEED, THEME, canary, write, wxr  # noqa: F401

pytestmark = pytest.mark.django_db


# --- idempotency and atomicity ------------------------------------------------------------------


def test_importing_the_same_file_again_changes_nothing(db):
    first = import_wxr(path=SEED)
    before = counts_of_everything()
    stamps = sorted(Comment.objects.values_list("updated_at", flat=True))
    again = import_wxr(path=SEED)
    assert counts_of_everything() == before
    assert sorted(Comment.objects.values_list("updated_at", flat=True)) == stamps
    assert first.counts["comments.approved"] == 100
    assert again.counts["comments.already_imported"] == 100
    assert again.counts["posts.already_imported"] == 2


def test_a_second_file_adds_only_the_new_comments(db, tmp_path):
    import_wxr(path=SEED)
    text = SEED.read_text()
    extra = (
        "<wp:comment><wp:comment_id>500</wp:comment_id><wp:comment_author><![CDATA[Late reader]]>"
        "</wp:comment_author><wp:comment_author_email>late@example.org</wp:comment_author_email>"
        "<wp:comment_date_gmt>2017-11-25 10:00:00</wp:comment_date_gmt>"
        "<wp:comment_content><![CDATA[A reply added later.]]></wp:comment_content>"
        "<wp:comment_approved>1</wp:comment_approved><wp:comment_parent>2</wp:comment_parent>"
        "</wp:comment>"
    )
    head, _, tail = text.partition("</wp:comment>")
    later = write(tmp_path, head + "</wp:comment>" + extra + tail, "later.xml")
    before = Comment.objects.count()
    report = import_wxr(path=later)
    assert Comment.objects.count() == before + 1
    assert report.counts["comments.approved"] == 1
    late = comment_for(500, "127.0.0.1:8081")
    assert late.parent == comment_for(2, "127.0.0.1:8081")
    assert late.depth == late.parent.depth + 1


def test_a_failure_midway_leaves_the_site_as_it_was(db, monkeypatch):
    from broadsheet.wordpress import importer

    before = counts_of_everything()
    calls = {"n": 0}
    real = importer._Run._create_page

    def failing(self, item):
        calls["n"] += 1
        if calls["n"] == 20:
            raise RuntimeError("disk full")
        return real(self, item)

    monkeypatch.setattr(importer._Run, "_create_page", failing)
    with pytest.raises(RuntimeError):
        import_wxr(path=THEME)
    assert calls["n"] == 20
    after = counts_of_everything()
    # A fresh site gets a home page before anything else; nothing else may remain.
    assert after == before


def test_dry_run_reports_but_writes_nothing(db):
    before = counts_of_everything()
    report = import_wxr(path=SEED, dry_run=True)
    assert report.counts["comments.approved"] == 100
    assert counts_of_everything() == before


# --- hostile and broken files -------------------------------------------------------------------


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{canary}/entity">]>',
        '<!DOCTYPE rss [<!ENTITY % p SYSTEM "{canary}/param"> %p;]>',
        '<!DOCTYPE rss SYSTEM "{canary}/wxr.dtd">',
        '<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY xxe "&c;&c;&c;&c;&c;&c;&c;&c;">]>',
    ],
    ids=["file-entity", "network-entity", "parameter-entity", "external-dtd", "billion-laughs"],
)
def test_hostile_files_are_refused_and_import_nothing(db, tmp_path, canary, doctype):  # noqa: F811
    base, hits = canary
    body = (
        "<item><title>&xxe;</title><wp:post_id>1</wp:post_id><wp:post_type>post</wp:post_type>"
        "<wp:status>publish</wp:status></item>"
    )
    path = write(tmp_path, wxr(body, before_rss=doctype.replace("{canary}", base) + "\n"))
    before = counts_of_everything()
    with pytest.raises(ImportFailed) as info:
        import_wxr(path=path)
    assert "nothing was imported" in str(info.value)
    assert "root:" not in str(info.value)
    assert counts_of_everything() == before
    assert hits == []


def test_truncated_file_imports_nothing(db, tmp_path):
    data = SEED.read_bytes()
    path = write(tmp_path, data[: len(data) // 2], "cut.xml")
    before = counts_of_everything()
    with pytest.raises(ImportFailed, match=r"line \d+, column \d+"):
        import_wxr(path=path)
    assert counts_of_everything() == before


def test_a_file_that_is_not_a_wordpress_export_is_refused(db, tmp_path):
    path = write(tmp_path, "<html><body>hello</body></html>", "page.html")
    with pytest.raises(ImportFailed, match="not a WordPress export"):
        import_wxr(path=path)


# Characters XML 1.0 allows (a WordPress export cannot carry the others).
XML_SAFE = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


def _post_with_comments(comments: str, *, post_id=10) -> str:
    return wxr(
        f"<item><title>Post</title><link>http://old.test/2020/01/02/post/</link>"
        f"<wp:post_id>{post_id}</wp:post_id><wp:post_name>post</wp:post_name>"
        "<wp:post_type>post</wp:post_type><wp:status>publish</wp:status>"
        "<wp:post_date_gmt>2020-01-02 10:00:00</wp:post_date_gmt>"
        "<wp:comment_status>open</wp:comment_status>"
        f"<content:encoded><![CDATA[<p>Body</p>]]></content:encoded>{comments}</item>",
        channel_head="<title>T</title><link>http://old.test</link>"
        "<wp:wxr_version>1.2</wp:wxr_version><wp:base_blog_url>http://old.test</wp:base_blog_url>",
    )


def _comment(wp_id, parent=0, *, text="Hello", author="A", url="", approved="1"):
    return (
        f"<wp:comment><wp:comment_id>{wp_id}</wp:comment_id>"
        f"<wp:comment_author><![CDATA[{author}]]></wp:comment_author>"
        f"<wp:comment_author_url>{url}</wp:comment_author_url>"
        f"<wp:comment_date_gmt>2020-01-03 10:00:0{wp_id % 10}</wp:comment_date_gmt>"
        f"<wp:comment_content><![CDATA[{text}]]></wp:comment_content>"
        f"<wp:comment_approved>{approved}</wp:comment_approved>"
        f"<wp:comment_parent>{parent}</wp:comment_parent></wp:comment>"
    )


def test_comment_parent_loops_and_missing_parents_become_top_level(db, tmp_path):
    path = write(
        tmp_path,
        _post_with_comments(
            _comment(1, 2) + _comment(2, 1) + _comment(3, 99) + _comment(4, 3) + _comment(5, 5)
        ),
    )
    report = import_wxr(path=path)
    got = {c: comment_for(c, "old.test") for c in (1, 2, 3, 4, 5)}
    assert got[1].parent is None and got[2].parent == got[1]
    assert got[3].parent is None and got[4].parent == got[3] and got[4].depth == 2
    assert got[5].parent is None
    assert report.counts["comments.loops_broken"] == 1
    assert report.counts["comments.parent_missing"] == 2  # 3 → 99, and 5 → itself
    assert Comment.objects.count() == 5


def test_hostile_comments_are_stored_as_written_and_never_run(db, tmp_path, client):
    from tests.payloads import NAME_PAYLOADS, XSS_PAYLOADS

    payloads = [(n, p) for n, p in XSS_PAYLOADS if XML_SAFE.fullmatch(p) and "]]>" not in p]
    comments = "".join(
        _comment(n, text=payload, author=NAME_PAYLOADS[n % len(NAME_PAYLOADS)])
        for n, payload in payloads
    )
    comments += _comment(900, url="javascript:alert(1)", author="Linker")
    report = import_wxr(path=write(tmp_path, _post_with_comments(comments)))
    assert Comment.objects.get(author_name="Linker").author_url == ""
    assert any("javascript" in n for n in report.notes["cleaned"])
    stored = set(Comment.objects.values_list("text", flat=True))
    assert {p for _, p in payloads} <= stored  # nothing lost
    html = client.get("/2020/01/02/post/").content.decode()
    from bs4 import BeautifulSoup

    discussion = BeautifulSoup(html, "html.parser").find(id="comments")
    shown = discussion.select(".comment-body")
    assert len(shown) == len(payloads) + 1
    for element in (e for comment in shown for e in comment.find_all(True)):
        assert element.name not in ("script", "svg", "iframe", "object", "math"), element
        for name, value in element.attrs.items():
            assert not name.startswith("on"), element
            text = " ".join(value) if isinstance(value, list) else value
            assert not text.strip().lower().startswith(("javascript:", "data:")), element


def test_draft_without_gmt_date_uses_the_source_time_zone(db, tmp_path):
    import zoneinfo

    body = (
        "<item><title>Draft</title><wp:post_id>7</wp:post_id><wp:post_type>post</wp:post_type>"
        "<wp:status>draft</wp:status><wp:post_date>2021-06-01 12:00:00</wp:post_date>"
        "<wp:post_date_gmt>0000-00-00 00:00:00</wp:post_date_gmt></item>"
    )
    import_wxr(path=write(tmp_path, wxr(body)), source_tz=zoneinfo.ZoneInfo("America/New_York"))
    draft = ArticlePage.objects.get(title="Draft")
    assert not draft.live
    assert draft.date == datetime(2021, 6, 1, 16, 0, tzinfo=UTC)


# --- media from the old site's uploads folder ---------------------------------------------------


def _fake_uploads(root, source=THEME) -> int:
    """The theme file's images as small real files under ``root/Y/m/``, as a copied
    ``wp-content/uploads`` folder would hold them. Returns how many were written."""
    from PIL import Image

    written = 0
    for record in read_wxr(source):
        if not isinstance(record, Item) or record.post_type != "attachment":
            continue
        path = record.attachment_url.split(".files.wordpress.com/", 1)[1]
        if not path.endswith((".jpg", ".gif")):
            continue
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (200, 30, 30)).save(
            target, "GIF" if path.endswith(".gif") else "JPEG"
        )
        written += 1
    return written


def test_uploads_become_images_and_bodies_and_featured_images_use_them(
    db, tmp_path, settings, client
):
    from wagtail.images import get_image_model

    settings.MEDIA_ROOT = str(tmp_path / "media")
    uploads = tmp_path / "uploads"
    assert _fake_uploads(uploads) == 35
    report = import_wxr(path=THEME, uploads=uploads)
    assert report.counts["attachments.images_created"] == 35
    assert get_image_model().objects.count() == 35
    assert report.counts["attachments.not_an_image"] == 2  # the mp3 and the mov
    site = "wpthemetestdata.wordpress.com"
    featured = page_for(1177, site_key=site).featured_image
    assert featured is not None and featured.title == "I Am Worth Loving Wallpaper"  # 1023
    assert report.counts["attachments.featured_images"] == 6
    body = page_for(1177, site_key=site).body
    assert '<embed embedtype="image"' in body
    html = client.get(page_for(1177, site_key=site).url).content.decode()
    assert "/media/images/" in html  # the reader gets a rendition served from here
    from bs4 import BeautifulSoup

    shown = BeautifulSoup(html, "html.parser").select_one("figure.featured-image img")
    assert shown is not None and shown["src"].startswith("/media/images/")
    assert shown["alt"] == featured.default_alt_text
    # Importing again creates no second copy of any image.
    import_wxr(path=THEME, uploads=uploads)
    assert get_image_model().objects.count() == 35


def test_uploads_outside_the_folder_are_never_read(db, tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    secret = tmp_path / "secret.jpg"
    from PIL import Image

    Image.new("RGB", (4, 4)).save(secret, "JPEG")
    body = (
        "<item><title>Sneaky</title><wp:post_id>3</wp:post_id><wp:post_type>attachment</wp:post_type>"
        "<wp:status>inherit</wp:status>"
        "<wp:attachment_url>http://old.test/wp-content/uploads/../secret.jpg</wp:attachment_url>"
        "</item>"
    )
    report = import_wxr(path=write(tmp_path, wxr(body)), uploads=uploads)
    from wagtail.images import get_image_model

    assert get_image_model().objects.count() == 0
    assert report.counts["attachments.file_missing"] == 1


def test_xinclude_is_not_expanded(db, tmp_path):
    """I01: an XInclude element is an unknown element to the reader, never a fetch."""
    body = (
        '<item xmlns:xi="http://www.w3.org/2001/XInclude"><title>Included</title>'
        "<wp:post_id>8</wp:post_id><wp:post_type>post</wp:post_type><wp:status>publish</wp:status>"
        "<wp:post_date_gmt>2020-01-02 10:00:00</wp:post_date_gmt>"
        "<content:encoded><![CDATA[<p>Body</p>]]></content:encoded>"
        '<xi:include href="file:///etc/passwd" parse="text"/>'
        "</item>"
    )
    import_wxr(path=write(tmp_path, wxr(body)))
    article = ArticlePage.objects.get(title="Included")
    assert "root:" not in article.body and article.body == "<p>Body</p>"


def test_entity_expansion_bombs_cost_no_memory(db, tmp_path):
    """I02: refused before any expansion: the process's peak memory does not move."""
    import time
    import tracemalloc

    entities = '<!ENTITY a0 "' + "x" * 200_000 + '">'
    path = write(
        tmp_path,
        wxr(
            "<item><title>" + "&a0;" * 20_000 + "</title></item>",
            before_rss=f"<!DOCTYPE rss [{entities}]>\n",
        ),
    )
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ImportFailed):
        import_wxr(path=path)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\nquadratic blowup: refused in {seconds:.4f} s, peak allocation {peak / 2**20:.1f} MB")
    assert peak < 50 * 2**20
    assert seconds < 1.0


# --- what the review of this importer found -----------------------------------------------------


def _item(wp_id, *, title, status="publish", body="<p>Body</p>", post_type="post", extra=""):
    return (
        f"<item><title>{title}</title><link>http://old.test/2020/01/02/p{wp_id}/"
        f"</link><wp:post_id>{wp_id}</wp:post_id><wp:post_name>p{wp_id}</wp:post_name>"
        f"<wp:post_type>{post_type}</wp:post_type><wp:status>{status}</wp:status>"
        f"<wp:post_date_gmt>{'2040' if status == 'future' else '2020'}-01-02 10:00:00"
        f"</wp:post_date_gmt><content:encoded><![CDATA[{body}]]></content:encoded>{extra}</item>"
    )


def _site(items: str) -> str:
    return wxr(
        items,
        channel_head="<title>T</title><link>http://old.test</link>"
        "<wp:wxr_version>1.2</wp:wxr_version><wp:base_blog_url>http://old.test</wp:base_blog_url>"
        "<wp:author><wp:author_id>7</wp:author_id><wp:author_login>chief</wp:author_login>"
        "<wp:author_email>CHIEF@example.org</wp:author_email></wp:author>",
    )


def test_old_addresses_of_unpublished_posts_tell_nothing(db, tmp_path, client):
    items = (
        _item(60, title="Minister resigns tomorrow", status="draft")
        + _item(61, title="Embargoed", status="future")
        + _item(62, title="Staff only", status="private")
        + _item(63, title="Public")
    )
    import_wxr(path=write(tmp_path, _site(items)))
    for wp_id in (60, 61, 62):
        response = client.get(f"/?p={wp_id}")
        assert response.status_code == 200, wp_id  # the front page, no redirect
        assert "resigns" not in response.content.decode()
        old = client.get(f"/2020/01/02/p{wp_id}/")
        assert old.status_code in (302, 404), wp_id  # not found, or the login page
        assert "Staff only" not in old.content.decode()
    assert client.get("/?p=63")["Location"].endswith("/2020/01/02/p63/")


def test_wagtail_references_in_a_file_are_not_followed(db, tmp_path, client):
    body = (
        '<p>Watch <embed embedtype="media"/><embed embedtype="media" url="https://v.example/1"/>'
        '<embed embedtype="image" id="1" format="bogus"/>'
        '<a linktype="page" id="1">home</a></p>'
    )
    import_wxr(path=write(tmp_path, _site(_item(70, title="Refs", body=body))))
    article = ArticlePage.objects.get(title="Refs")
    assert "<embed" not in article.body and "linktype" not in article.body
    response = client.get(article.url)
    assert response.status_code == 200
    assert b"<iframe" not in response.content


def test_pages_never_take_the_home_pages_own_addresses(db, tmp_path, client):
    items = _item(80, title="Tag", post_type="page") + _item(81, title="2019", post_type="page")
    items = items.replace("<wp:post_name>p80</wp:post_name>", "<wp:post_name>tag</wp:post_name>")
    items = items.replace("<wp:post_name>p81</wp:post_name>", "<wp:post_name>2019</wp:post_name>")
    items += _item(
        82, title="Tagged", extra='<category domain="post_tag" nicename="x">x</category>'
    )
    report = import_wxr(path=write(tmp_path, _site(items)))
    slugs = set(StandardPage.objects.values_list("slug", flat=True))
    assert "tag" not in slugs and "2019" not in slugs
    assert client.get("/tag/x/").status_code == 200
    assert any("tag" in n for n in report.notes["slugs"])


def test_a_commenter_with_an_existing_accounts_email_is_not_that_account(
    db, tmp_path, user_factory
):
    chief = user_factory(email="chief@example.org")
    comment = _comment(1, author="Chief").replace(
        "</wp:comment>", "<wp:comment_user_id>7</wp:comment_user_id></wp:comment>"
    )
    report = import_wxr(path=write(tmp_path, _site(_item(90, title="C", extra=comment))))
    imported = comment_for(1, "old.test")
    assert imported.user is None and imported.identified_by == "guest"
    assert not chief.comments.exists()
    assert report.note_counts["accounts"] == 1


def test_featured_image_of_a_scheduled_post_is_in_the_version_that_goes_live(
    db, tmp_path, settings
):
    from PIL import Image

    settings.MEDIA_ROOT = str(tmp_path / "media")
    uploads = tmp_path / "uploads"
    (uploads / "2020" / "01").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(uploads / "2020" / "01" / "pic.jpg", "JPEG")
    attachment = _item(5, title="Pic", post_type="attachment", status="inherit").replace(
        "</item>",
        "<wp:attachment_url>http://old.test/wp-content/uploads/2020/01/pic.jpg"
        "</wp:attachment_url></item>",
    )
    thumb = (
        "<wp:postmeta><wp:meta_key>_thumbnail_id</wp:meta_key>"
        "<wp:meta_value>5</wp:meta_value></wp:postmeta>"
    )
    items = attachment + _item(95, title="Later", status="future", extra=thumb)
    import_wxr(path=write(tmp_path, _site(items)), uploads=uploads)
    later = ArticlePage.objects.get(title="Later")
    assert later.featured_image is not None
    assert later.get_latest_revision_as_object().featured_image_id == later.featured_image_id


def test_a_dry_run_with_uploads_leaves_no_files(db, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    uploads = tmp_path / "uploads"
    _fake_uploads(uploads)
    report = import_wxr(path=THEME, uploads=uploads, dry_run=True)
    assert report.counts["attachments.images_created"] == 35
    media = tmp_path / "media"
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


def test_a_failed_import_removes_the_image_files_it_wrote(db, tmp_path, settings, monkeypatch):
    from broadsheet.wordpress import importer

    settings.MEDIA_ROOT = str(tmp_path / "media")
    uploads = tmp_path / "uploads"
    _fake_uploads(uploads)

    def fail(self, item):
        raise RuntimeError("disk full")

    monkeypatch.setattr(importer._Run, "_create_page", fail)
    with pytest.raises(RuntimeError):
        import_wxr(path=THEME, uploads=uploads)
    assert not any(p.is_file() for p in (tmp_path / "media").rglob("*"))


def test_a_scheduled_post_gets_its_old_addresses_once_live_and_imported_again(db, tmp_path, client):
    path = write(tmp_path, _site(_item(61, title="Embargoed", status="future")))
    import_wxr(path=path)
    assert client.get("/?p=61").status_code == 200  # the front page: no redirect yet
    article = ArticlePage.objects.get(title="Embargoed")
    article.go_live_at = None  # the embargo ends early: an editor publishes it now
    article.save_revision().publish()
    assert ArticlePage.objects.get(pk=article.pk).live
    import_wxr(path=path)
    assert client.get("/?p=61")["Location"].endswith(ArticlePage.objects.get(pk=article.pk).url)
