"""Exporting the site as a WordPress export (WXR 1.2), B01.

- The file is well-formed, in WordPress core's shape, and our reader reads back what was
  written: statuses, parents, threads, postmeta, texts with ``]]>`` in them.
- WordPress's own three parsers (vendored under ``vendor/wordpress-importer``, run with
  ``php``) read the same counts as our reader.
- Round trip: the seed and theme fixtures imported, exported, everything deleted, the export
  imported again: the canonical dumps of the two sites are equal.
"""

from __future__ import annotations

import difflib
import io
import json
import os
import pprint
import re
import shutil
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from broadsheet.comments.models import Comment, Thread
from broadsheet.core import html as html_policy
from broadsheet.publishing import services as publishing
from broadsheet.publishing.models import (
    ArticleAuthor,
    ArticlePage,
    Person,
    Section,
    StandardPage,
)
from broadsheet.wordpress.export import export_wxr
from broadsheet.wordpress.wxr import Author, Channel, Item, Term, read_wxr
from tests.wordpress.test_wxr_reader import SEED, THEME

pytestmark = pytest.mark.django_db

HARNESS = Path(__file__).parent / "vendor" / "wordpress-importer" / "harness.php"
PARSERS = ("simplexml", "xml", "regex")
WP_URIS = (
    'xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/"',
    'xmlns:content="http://purl.org/rss/1.0/modules/content/"',
    'xmlns:wfw="http://wellformedweb.org/CommentAPI/"',
    'xmlns:dc="http://purl.org/dc/elements/1.1/"',
    'xmlns:wp="http://wordpress.org/export/1.2/"',
)
PUBDATE = re.compile(rb"^\t<pubDate>[^<]*</pubDate>\n", re.MULTILINE)


# --- helpers -------------------------------------------------------------------------------------


def export_bytes(**kwargs) -> tuple[bytes, object]:
    out = io.BytesIO()
    report = export_wxr(out=out, **kwargs)
    return out.getvalue(), report


def records(data: bytes) -> dict:
    found = {"channel": None, "authors": [], "terms": [], "items": []}
    for record in read_wxr(io.BytesIO(data)):
        if isinstance(record, Channel):
            found["channel"] = record
        elif isinstance(record, Author):
            found["authors"].append(record)
        elif isinstance(record, Term):
            found["terms"].append(record)
        elif isinstance(record, Item):
            found["items"].append(record)
    return found


def without_channel_pubdate(data: bytes) -> bytes:
    """The file minus the channel's <pubDate> (the time of the export); items keep theirs."""
    head, sep, rest = data.partition(b"<wp:wxr_version>")
    return PUBDATE.sub(b"", head, count=1) + sep + rest


def counts_as_wordpress_sees_them(data: bytes) -> dict:
    """What the PHP harness prints for one parser, computed with our reader."""
    r = records(data)
    posts, statuses, approved, postmeta = Counter(), Counter(), Counter(), Counter()
    comments = replies = item_terms = commentmeta = 0
    for item in r["items"]:
        posts[item.post_type] += 1
        statuses[f"{item.post_type}/{item.status}"] += 1
        item_terms += len(item.terms)
        postmeta.update(key for key, _ in item.meta)
        for c in item.comments:
            comments += 1
            replies += bool(c.parent_wp_id)
            approved[c.approved] += 1
            commentmeta += len(c.meta)
    return {
        "version": r["channel"].wxr_version,
        "base_url": r["channel"].base_site_url,
        "authors": len(r["authors"]),
        "categories": sum(t.taxonomy == "category" for t in r["terms"]),
        "tags": sum(t.taxonomy == "post_tag" for t in r["terms"]),
        "posts": dict(sorted(posts.items())),
        "statuses": dict(sorted(statuses.items())),
        "comments": comments,
        "replies": replies,
        "approved": dict(sorted(approved.items())),
        "item_terms": item_terms,
        "postmeta": dict(sorted(postmeta.items())),
        "commentmeta": commentmeta,
    }


def run_wordpress_parsers(path: Path) -> dict:
    php = shutil.which("php")
    if php is None:
        message = (
            "php is not installed: WordPress's own WXR parsers cannot be run "
            "(apt-get install php-cli php-xml)"
        )
        if os.environ.get("BROADSHEET_REQUIRE_PHP"):
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(
        [php, str(HARNESS), str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_wordpress_reads(path: Path) -> dict:
    """Each of WordPress's parsers reads what our reader reads; returns the parsers' counts."""
    expected = counts_as_wordpress_sees_them(path.read_bytes())
    seen = run_wordpress_parsers(path)
    for parser in PARSERS:
        got = dict(seen[parser])
        assert "error" not in got, f"{parser}: {got}"
        if parser == "xml":
            # That parser stores "0" as "" (PHP's empty("0")); WordPress then treats it as 0.
            got["approved"] = dict(sorted(((k or "0"), v) for k, v in got["approved"].items()))
        for key in ("posts", "statuses", "approved", "postmeta"):
            got[key] = dict(sorted(got[key].items()))
        assert got == expected, f"{parser} read differently:\n" + "\n".join(
            difflib.unified_diff(
                pprint.pformat(expected).splitlines(),
                pprint.pformat(got).splitlines(),
                "our reader",
                parser,
                lineterm="",
            )
        )
    return seen


# --- a site built directly ------------------------------------------------------------------------


@pytest.fixture
def built_site(db, settings, tmp_path):
    """Every kind of thing the export writes: bylines, nested sections, tags, a featured image,
    articles live / draft / scheduled / private, nested pages, and a discussion with every
    comment status, a pingback, texts that close CDATA and characters XML cannot carry."""
    from PIL import Image as PILImage

    settings.MEDIA_ROOT = str(tmp_path / "media")
    home, _site = publishing.home_for_site()
    now = timezone.now()
    people = [
        Person.objects.create(name="Maxim Chalenko", slug="maxim-chalenko"),
        Person.objects.create(name="News desk", slug="news-desk"),
        Person.objects.create(name="R&D <desk>", slug="r-d-desk"),
    ]
    # Created child first, so pk order is not parent-first.
    ukraine = Section.objects.create(name="Ukraine", slug="ukraine")
    europe = Section.objects.create(name="Europe & around", slug="europe")
    world = Section.objects.create(name="World", slug="world", description="Everywhere.")
    ukraine.parent = europe
    ukraine.save()
    europe.parent = world
    europe.save()
    from taggit.models import Tag

    solidarity = Tag.objects.create(name="solidarity", slug="solidarity")
    alignment = Tag.objects.create(name="alignment", slug="alignment-2")
    Tag.objects.create(name="unused", slug="unused")
    picture = tmp_path / "picture.png"
    PILImage.new("RGB", (40, 30), "red").save(picture)
    image_id = publishing.create_image(path=picture, title="A red picture", alt="Red")

    def article(title, slug, state, *, date, **fields):
        sections = fields.pop("sections", [])
        tags = fields.pop("tags", [])
        authors = fields.pop("authors", [])
        page = ArticlePage(title=title, slug=slug, date=date, owner=None, **fields)
        page.sections = sections
        page.article_authors = [
            ArticleAuthor(person=p, sort_order=i) for i, p in enumerate(authors)
        ]
        if tags:
            page.tags.add(*tags)
        if state is publishing.State.SCHEDULED:
            page.go_live_at = date
        publishing.place_page(parent=home, page=page, state=state, published_at=date)
        return page

    main = article(
        "Greetings & <em>solidarity</em>",
        "greetings",
        publishing.State.LIVE,
        date=datetime(2017, 11, 20, 9, 30, tzinfo=UTC),
        standfirst="Messages from Lugansk; a < b & c.",
        body=(
            f'<p>First ]]> paragraph\x0b with <a linktype="page" id="{home.pk}">a link</a>.</p>'
            f'<embed embedtype="image" id="{image_id}" format="fullwidth" alt="Red"/>'
            "<p>Second paragraph.</p>"
            '<embed embedtype="media" url="https://video.example.org/watch?v=1&amp;t=2"/>'
        ),
        signature="With fraternal greetings,]]>",
        translator="Greg",
        language="en",
        original_language="ru",
        original_url="https://example.org/original",
        featured_image_id=image_id,
        is_sticky=True,
        sections=[ukraine, world],
        tags=[solidarity, alignment],
        authors=[people[0], people[2]],
    )
    draft = article(
        "A draft",
        "a-draft",
        publishing.State.DRAFT,
        date=datetime(2018, 1, 2, 3, 4, 5, tzinfo=UTC),
        body="<p>Not yet.</p>",
        allow_comments=False,
        authors=[people[1]],
    )
    scheduled = article(
        "Embargoed",
        "embargoed",
        publishing.State.SCHEDULED,
        date=(now + timedelta(days=30)).replace(microsecond=0),
        body="<p>Later.</p>",
    )
    private = article(
        "Staff only",
        "staff-only",
        publishing.State.PRIVATE,
        date=datetime(2019, 5, 6, 7, 8, 9, tzinfo=UTC),
        body="<p>Private.</p>",
    )

    def page(title, slug, state, parent, **fields):
        p = StandardPage(title=title, slug=slug, owner=None, **fields)
        return publishing.place_page(
            parent=parent, page=p, state=state, published_at=datetime(2016, 1, 1, tzinfo=UTC)
        )

    about = page("About", "about", publishing.State.LIVE, home, allow_comments=True)
    team = page("Team", "team", publishing.State.LIVE, about, body="<p>Who we are.</p>")
    history = page("History", "history", publishing.State.LIVE, team)
    notes = page("Notes", "notes", publishing.State.DRAFT, home)

    thread = Thread.objects.get(page_id=main.pk)
    at = datetime(2017, 11, 20, 12, 0, tzinfo=UTC)

    def comment(text, *, parent=None, status=Comment.Status.APPROVED, minutes=0, **fields):
        return Comment.objects.create(
            thread=thread,
            parent=parent,
            status=status,
            author_name=fields.pop("name", "Reader"),
            author_email=fields.pop("email", "reader@example.org"),
            text=text,
            created_at=at + timedelta(minutes=minutes),
            **fields,
        )

    top = comment(
        "Top ]]> level\r\nsecond line\x0c.",
        name="Ana & <Bob>",
        author_url="https://example.org/ana",
        ip_address="203.0.113.7",
        user_agent="Mozilla/5.0 (X11)",
    )
    reply = comment("A reply.", parent=top, minutes=1)
    comment("A reply to the reply.", parent=reply, minutes=2)
    comment("Waiting.", status=Comment.Status.PENDING, minutes=3)
    comment("Buy now", status=Comment.Status.SPAM, minutes=4)
    comment("Deleted", status=Comment.Status.TRASH, minutes=5)
    comment(
        "[…] linked here […]",
        kind=Comment.Kind.PINGBACK,
        name="Another blog",
        author_url="https://blog.example.net/post",
        minutes=6,
    )
    about_thread = Thread.objects.get(page_id=about.pk)
    Comment.objects.create(
        thread=about_thread,
        status=Comment.Status.APPROVED,
        author_name="Visitor",
        text="Nice page.",
        created_at=at,
    )
    elsewhere = Thread.objects.create(url="https://static.example.org/elsewhere/", title="-")
    Comment.objects.create(
        thread=elsewhere, status=Comment.Status.APPROVED, author_name="X", text="Hi", created_at=at
    )
    return SimpleNamespace(
        home=home,
        people=people,
        sections=(world, europe, ukraine),
        image_id=image_id,
        main=main,
        draft=draft,
        scheduled=scheduled,
        private=private,
        about=about,
        team=team,
        history=history,
        notes=notes,
        top=top,
        reply=reply,
    )


def test_export_is_core_shaped_xml(built_site):
    data, report = export_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8" ?>\n')
    assert b"<!DOCTYPE" not in data
    text = data.decode("utf-8")
    for declaration in WP_URIS:
        assert declaration in text
    author_lines = [line for line in text.splitlines() if "<wp:author>" in line]
    assert len(author_lines) == 3
    assert all(line.strip().endswith("</wp:author>") for line in author_lines)
    # Items and their comments open and close on lines of their own (the regex parser).
    assert text.count("\t<item>\n") == text.count("\t</item>\n") == 9
    assert report.bytes_written == len(data)


def test_export_reads_back_with_the_right_counts(built_site):
    data, report = export_bytes()
    r = records(data)
    assert r["channel"].wxr_version == "1.2"
    assert r["channel"].base_blog_url == django_settings.BROADSHEET_BASE_URL
    assert {(a.login, a.display_name, a.wp_id) for a in r["authors"]} == {
        (p.slug, p.name, p.pk) for p in built_site.people
    }
    categories = [t for t in r["terms"] if t.taxonomy == "category"]
    assert [(t.slug, t.parent_slug) for t in categories] == [
        ("world", ""),
        ("europe", "world"),
        ("ukraine", "europe"),
    ]
    assert categories[1].name == "Europe & around"
    assert categories[0].description == "Everywhere."
    tags = {t.slug: t.name for t in r["terms"] if t.taxonomy == "post_tag"}
    assert tags == {"solidarity": "solidarity", "alignment-2": "alignment"}
    by_type = Counter((i.post_type, i.status) for i in r["items"])
    assert by_type == {
        ("attachment", "inherit"): 1,
        ("post", "publish"): 1,
        ("post", "draft"): 1,
        ("post", "future"): 1,
        ("post", "private"): 1,
        ("page", "publish"): 3,
        ("page", "draft"): 1,
    }
    assert report.counts["posts.publish"] == 1
    assert report.counts["pages.publish"] == 3
    assert report.counts["attachments"] == 1


def test_article_fields_bylines_terms_and_meta(built_site):
    data, _ = export_bytes()
    items = {i.wp_id: i for i in records(data)["items"]}
    main = items[built_site.main.pk]
    # A WXR title is HTML: the plain-text title travels escaped.
    assert main.title == "Greetings &amp; &lt;em&gt;solidarity&lt;/em&gt;"
    assert main.name == "greetings"
    assert main.creator == "maxim-chalenko"
    assert main.sticky and main.comment_status == "open"
    assert main.date_gmt == datetime(2017, 11, 20, 9, 30, tzinfo=UTC)
    assert main.link == django_settings.BROADSHEET_BASE_URL + "/2017/11/20/greetings/"
    assert html_policy.plain_text(main.excerpt) == "Messages from Lugansk; a < b & c."
    assert sorted(main.terms) == [
        ("category", "ukraine", "Ukraine"),
        ("category", "world", "World"),
        ("post_tag", "alignment-2", "alignment"),
        ("post_tag", "solidarity", "solidarity"),
    ]
    meta = dict(main.meta)
    attachment = next(i for i in items.values() if i.post_type == "attachment")
    assert meta["_thumbnail_id"] == str(attachment.wp_id)
    assert attachment.parent_wp_id == built_site.main.pk
    assert attachment.attachment_url.startswith(django_settings.BROADSHEET_BASE_URL + "/media/")
    assert dict(attachment.meta)["_wp_attachment_image_alt"] == "Red"
    assert meta["_broadsheet_signature"] == "With fraternal greetings,]]>"
    assert meta["_broadsheet_translator"] == "Greg"
    assert meta["_broadsheet_language"] == "en"
    assert meta["_broadsheet_original_language"] == "ru"
    assert meta["_broadsheet_original_url"] == "https://example.org/original"
    assert meta["_broadsheet_authors"] == "maxim-chalenko,r-d-desk"
    # The body: the invalid character gone, embeds and page links expanded to absolute URLs.
    assert "First ]]&gt; paragraph with" in main.content
    assert "embedtype" not in main.content and "linktype" not in main.content
    assert f'href="{django_settings.BROADSHEET_BASE_URL}/"' in main.content
    # An image is its original file (no rendition is made: the export writes nothing).
    original = django_settings.BROADSHEET_BASE_URL + "/media/original_images/picture.png"
    assert f'<img src="{original}" alt="Red" width="40" height="30">' in main.content
    assert (
        not ArticlePage._meta.get_field("featured_image")
        .related_model.objects.get(pk=built_site.image_id)
        .renditions.exists()
    )
    # A media embed is a link, not a request to the provider.
    video = "https://video.example.org/watch?v=1&amp;t=2"
    assert f'<p><a href="{video}" rel="noopener">{video}</a></p>' in main.content


def test_statuses_dates_and_page_parents(built_site):
    data, _ = export_bytes()
    items = {i.wp_id: i for i in records(data)["items"]}
    assert items[built_site.draft.pk].status == "draft"
    assert items[built_site.draft.pk].comment_status == "closed"
    assert items[built_site.draft.pk].creator == "news-desk"
    scheduled = items[built_site.scheduled.pk]
    assert scheduled.status == "future"
    assert scheduled.date_gmt == built_site.scheduled.go_live_at
    assert items[built_site.private.pk].status == "private"
    assert items[built_site.about.pk].parent_wp_id == 0
    assert items[built_site.team.pk].parent_wp_id == built_site.about.pk
    assert items[built_site.history.pk].parent_wp_id == built_site.team.pk
    assert items[built_site.history.pk].link.endswith("/about/team/history/")
    assert items[built_site.notes.pk].status == "draft"
    assert items[built_site.about.pk].comment_status == "open"
    # Finished HTML, in a Custom HTML block: WordPress must not add paragraphs to it.
    assert items[built_site.team.pk].content == (
        "<!-- wp:html -->\n<p>Who we are.</p>\n<!-- /wp:html -->"
    )
    assert items[built_site.history.pk].content == ""


def test_comments_keep_status_kind_thread_and_details(built_site):
    data, report = export_bytes()
    items = {i.wp_id: i for i in records(data)["items"]}
    comments = {c.wp_id: c for c in items[built_site.main.pk].comments}
    assert len(comments) == 7
    assert Counter(c.approved for c in comments.values()) == {"1": 4, "0": 1, "spam": 1, "trash": 1}
    assert Counter(c.type for c in comments.values()) == {"comment": 6, "pingback": 1}
    top = comments[built_site.top.pk]
    assert top.author == "Ana & <Bob>"
    assert top.content == "Top ]]> level\nsecond line."
    assert top.url == "https://example.org/ana"
    assert top.ip == "203.0.113.7"
    assert top.date_gmt == datetime(2017, 11, 20, 12, 0, tzinfo=UTC)
    assert top.user_wp_id == 0
    assert dict(top.meta) == {"_broadsheet_user_agent": "Mozilla/5.0 (X11)"}
    assert comments[built_site.reply.pk].parent_wp_id == built_site.top.pk
    assert sum(bool(c.parent_wp_id) for c in comments.values()) == 2
    assert len(items[built_site.about.pk].comments) == 1
    # \x0b in the body, \x0c in the comment: removed, counted, and where is said.
    assert report.removed_characters == 2
    assert report.note_counts["removed characters"] == 2
    # The thread with no page cannot go in a WordPress file; it is reported.
    assert report.counts["comments.not_exported"] == 1


def test_exporting_twice_gives_the_same_bytes(built_site):
    first, _ = export_bytes()
    second, _ = export_bytes()
    assert first.count(b"<pubDate>") > 1
    assert without_channel_pubdate(first) == without_channel_pubdate(second)


def test_export_to_a_text_stream(built_site):
    data, _ = export_bytes()
    out = io.StringIO()
    export_wxr(out=out)
    assert without_channel_pubdate(out.getvalue().encode()) == without_channel_pubdate(data)


def test_wordpress_parsers_read_the_export_of_a_built_site(built_site, tmp_path):
    path = tmp_path / "export.xml"
    path.write_bytes(export_bytes()[0])
    seen = assert_wordpress_reads(path)
    assert seen["regex"]["authors"] == 3
    assert seen["simplexml"]["approved"] == {"0": 1, "1": 5, "spam": 1, "trash": 1}


def test_command_writes_the_file_whole_or_not_at_all(built_site, tmp_path, monkeypatch):
    target = tmp_path / "site.xml"
    call_command("export_wxr", output=str(target), stderr=io.StringIO())
    assert without_channel_pubdate(target.read_bytes()) == without_channel_pubdate(
        export_bytes()[0]
    )

    from broadsheet.wordpress import export as export_module

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    failing = tmp_path / "failing.xml"
    monkeypatch.setattr(export_module._Export, "_pages", broken)
    with pytest.raises(RuntimeError):
        call_command("export_wxr", output=str(failing), stderr=io.StringIO())
    assert not failing.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["media", "picture.png", "site.xml"]


def test_export_without_a_home_page_fails_and_writes_nothing(db, tmp_path):
    from broadsheet.wordpress.export import ExportFailed

    with pytest.raises(ExportFailed, match="no site with a Broadsheet home page"):
        export_bytes()
    target = tmp_path / "site.xml"
    with pytest.raises(CommandError, match="nothing to export"):
        call_command("export_wxr", output=str(target), stderr=io.StringIO())
    assert list(tmp_path.iterdir()) == []


def test_command_writes_to_standard_output(built_site):
    out, err = io.StringIO(), io.StringIO()
    call_command("export_wxr", stdout=out, stderr=err)
    assert out.getvalue().startswith('<?xml version="1.0" encoding="UTF-8" ?>')
    assert "posts: " in err.getvalue()


# --- B01: the fixtures, imported, exported, deleted and imported again ----------------------------


def slug_path(page, home) -> str:
    return page.url_path[len(home.url_path) :]


def page_state(page, private: set[int]) -> str:
    if page.live:
        return "private" if page.pk in private else "live"
    return "scheduled" if page.scheduled_revision is not None else "draft"


def iso(moment) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def canonical_dump() -> dict[str, list]:
    """The site as a reader and an editor know it, without ids: what a round trip must keep."""
    from taggit.models import Tag

    home, _ = publishing.home_for_site()
    pages, paths = [], {}
    for model in (ArticlePage, StandardPage):
        private = set(model.objects.descendant_of(home).not_public().values_list("pk", flat=True))
        for page in model.objects.descendant_of(home).order_by("path"):
            paths[page.pk] = path = slug_path(page, home)
            row = {
                "type": model.__name__,
                "path": path,
                "title": page.title,
                "state": page_state(page, private),
                "body": html_policy.sanitize_article_html(page.body or ""),
                "standfirst": page.standfirst,
                "allow_comments": page.allow_comments,
            }
            if model is ArticlePage:
                row |= {
                    "date": iso(page.date),
                    "sections": sorted(page.sections.values_list("slug", flat=True)),
                    "tags": sorted(t.slug for t in page.tags.all()),
                    "bylines": [a.person.slug for a in page.article_authors.order_by("sort_order")],
                    "sticky": page.is_sticky,
                    "featured_image": page.featured_image.title if page.featured_image else None,
                    "meta": [
                        page.signature,
                        page.translator,
                        page.language,
                        page.original_language,
                        page.original_url,
                    ],
                }
            else:
                row["date"] = iso(page.first_published_at or page.go_live_at)
            pages.append(row)
    threads = dict(Thread.objects.filter(page_id__in=paths).values_list("pk", "page_id"))
    comments = []
    by_pk = {c.pk: c for c in Comment.objects.filter(thread_id__in=threads)}
    for c in by_pk.values():
        parent = by_pk.get(c.parent_id)
        comments.append(
            {
                "page": paths[threads[c.thread_id]],
                "author": c.author_name,
                "email": c.author_email,
                "url": c.author_url,
                "created_at": iso(c.created_at),
                "status": c.status,
                "kind": c.kind,
                "text": c.text,
                "depth": c.depth,
                "ip": c.ip_address,
                "user_agent": c.user_agent,
                "parent": (parent.author_name, iso(parent.created_at)) if parent else None,
            }
        )
    sort = lambda rows: sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))  # noqa: E731
    return {
        "pages": sort(pages),
        "sections": sort(
            {
                "slug": s.slug,
                "name": s.name,
                "parent": s.parent.slug if s.parent else None,
                "description": s.description,
            }
            for s in Section.objects.select_related("parent")
        ),
        "people": sort({"slug": p.slug, "name": p.name} for p in Person.objects.all()),
        # Only the tags in use: a WordPress export lists those (unused ones are not content).
        "tags": sort(
            {"slug": t.slug, "name": t.name}
            for t in Tag.objects.filter(publishing_articletag_items__isnull=False).distinct()
        ),
        "comments": sort(comments),
    }


def delete_all_content() -> None:
    """Back to an empty site: the home page stays, everything under it and about it goes."""
    from taggit.models import Tag
    from wagtail.contrib.redirects.models import Redirect

    from broadsheet.wordpress.models import WordPressId

    home, _ = publishing.home_for_site()
    for child in home.get_children().specific():
        child.delete()
    Thread.objects.all().delete()
    Section.objects.update(parent=None)
    Section.objects.all().delete()
    Person.objects.all().delete()
    Tag.objects.all().delete()
    WordPressId.objects.all().delete()
    Redirect.objects.all().delete()
    home.refresh_from_db()
    assert home.get_children().count() == 0 and Comment.objects.count() == 0


def dump_diff(a: dict, b: dict) -> tuple[dict[str, tuple[int, int]], str]:
    """Per table: (rows only in the first, rows only in the second); and a readable diff."""
    counts, lines = {}, []
    for table in a:
        left = [json.dumps(r, sort_keys=True, ensure_ascii=False) for r in a[table]]
        right = [json.dumps(r, sort_keys=True, ensure_ascii=False) for r in b[table]]
        only_a = Counter(left) - Counter(right)
        only_b = Counter(right) - Counter(left)
        counts[table] = (sum(only_a.values()), sum(only_b.values()))
        lines += [f"--- {table}: only before"] + sorted(only_a)[:20]
        lines += [f"+++ {table}: only after"] + sorted(only_b)[:20]
    return counts, "\n".join(lines)


def export_delete_import(tmp_path, *, media=False) -> tuple[dict, dict, bytes]:
    """Dump, export, delete everything, import the export, dump: (before, after, file).
    With ``media``, the media folder goes with the file (as wp-content/uploads goes with a
    WordPress export), so images come back as images rather than links to the old site."""
    from broadsheet.wordpress.importer import import_wxr

    before = canonical_dump()
    data, _ = export_bytes()
    path = tmp_path / "round-trip.xml"
    path.write_bytes(data)
    delete_all_content()
    import_wxr(path=path, uploads=django_settings.MEDIA_ROOT if media else None)
    return before, canonical_dump(), data


def expected_after_round_trip(before: dict, data: bytes) -> dict:
    """``before`` with what the export changes by design: bodies as exported (embeds and page
    links expanded, addresses absolute), line ends as ``\n`` and characters XML cannot carry
    removed from comments."""
    bodies = {
        i.link.removeprefix(django_settings.BROADSHEET_BASE_URL): i.content
        for i in records(data)["items"]
    }
    expected = json.loads(json.dumps(before))
    home, _ = publishing.home_for_site()
    for page in expected["pages"]:
        if page["type"] == "ArticlePage":
            article = ArticlePage.objects.descendant_of(home).get(
                url_path=home.url_path + page["path"]
            )
            exported = bodies[article.url]
        else:
            exported = bodies["/" + page["path"]]
        inner = exported.removeprefix("<!-- wp:html -->\n").removesuffix("\n<!-- /wp:html -->")
        page["body"] = html_policy.sanitize_article_html(inner)
    for comment in expected["comments"]:
        text = comment["text"].replace("\r\n", "\n").replace("\r", "\n")
        comment["text"] = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f]", "", text)
    return expected


def masked(dump: dict, fields: tuple[str, ...]) -> dict:
    dump = json.loads(json.dumps(dump))
    for page in dump["pages"]:
        for name in fields:
            page.pop(name, None)
    return dump


def test_round_trip_of_a_built_site(built_site, tmp_path):
    before, after, data = export_delete_import(tmp_path)
    expected = expected_after_round_trip(before, data)
    # Without the media folder a featured image cannot come back (nothing is downloaded);
    # test_round_trip_keeps_featured_images_with_the_media_folder covers it.
    fields = ("featured_image",)
    counts, diff = dump_diff(masked(expected, fields), masked(after, fields))
    assert all(c == (0, 0) for c in counts.values()), f"{counts}\n{diff}"
    statuses = Counter(c["status"] for c in after["comments"])
    assert statuses == {"approved": 5, "pending": 1, "spam": 1, "trash": 1}
    assert {p["state"] for p in after["pages"]} == {"live", "draft", "scheduled", "private"}


def test_round_trip_keeps_bylines_and_titles(built_site, tmp_path):
    before, after, data = export_delete_import(tmp_path)
    main = next(p for p in after["pages"] if p["path"] == "greetings/")
    assert main["bylines"] == ["maxim-chalenko", "r-d-desk"]
    assert main["title"] == "Greetings & <em>solidarity</em>"


def test_round_trip_keeps_featured_images_with_the_media_folder(built_site, tmp_path):
    before, after, data = export_delete_import(tmp_path, media=True)
    main = next(p for p in after["pages"] if p["path"] == "greetings/")
    assert main["featured_image"] == "A red picture"


@pytest.fixture(scope="module")
def round_trip(django_db_setup, django_db_blocker, tmp_path_factory):
    """Seed + theme imported; dump; exported twice; everything deleted; the export imported;
    dump again. All in one transaction, rolled back after the module."""
    from broadsheet.wordpress.importer import import_wxr

    folder = tmp_path_factory.mktemp("round-trip")
    seconds = {}
    with django_db_blocker.unblock(), transaction.atomic():
        started = time.perf_counter()
        import_wxr(path=SEED)
        import_wxr(path=THEME)
        seconds["import fixtures"] = time.perf_counter() - started
        before = canonical_dump()
        started = time.perf_counter()
        first = folder / "first.xml"
        with first.open("wb") as fp:
            report = export_wxr(out=fp)
        seconds["export"] = time.perf_counter() - started
        second = folder / "second.xml"
        with second.open("wb") as fp:
            export_wxr(out=fp)
        started = time.perf_counter()
        delete_all_content()
        seconds["delete"] = time.perf_counter() - started
        emptied = canonical_dump()
        started = time.perf_counter()
        reimport = import_wxr(path=first)
        seconds["import export"] = time.perf_counter() - started
        after = canonical_dump()
        print("\nB01 round trip seconds:", {k: round(v, 2) for k, v in seconds.items()})
        yield SimpleNamespace(
            before=before,
            emptied=emptied,
            after=after,
            first=first,
            second=second,
            report=report,
            reimport=reimport,
        )
        transaction.set_rollback(True)
    # Caches filled inside the rolled-back transaction would name rows that no longer exist.
    from django.contrib.contenttypes.models import ContentType
    from wagtail.models import Site

    ContentType.objects.clear_cache()
    Site.clear_site_root_paths_cache()


def test_round_trip_keeps_everything(round_trip):
    assert round_trip.before["pages"] and round_trip.before["comments"]
    assert not any(round_trip.emptied[t] for t in ("pages", "sections", "people", "comments"))
    counts, diff = dump_diff(round_trip.before, round_trip.after)
    print("B01 rows only before / only after:", counts)
    assert all(c == (0, 0) for c in counts.values()), f"{counts}\n{diff}"
    assert round_trip.before == round_trip.after


def test_round_trip_export_reads_back_with_the_right_counts(round_trip):
    before = round_trip.before
    # Seed (2 posts, 100 comments) + theme (58 posts, 21 pages, 33 comments; 68 categories, one
    # of them the seed's "uncategorized"; 64 tags in use; 2 authors + the seed's admin).
    assert Counter(p["type"] for p in before["pages"]) == {"ArticlePage": 60, "StandardPage": 21}
    assert Counter(p["state"] for p in before["pages"]) == {
        "live": 78,
        "private": 1,
        "scheduled": 1,
        "draft": 1,
    }
    assert len(before["comments"]) == 133
    assert sum(c["parent"] is not None for c in before["comments"]) == 83
    assert (len(before["sections"]), len(before["tags"]), len(before["people"])) == (68, 64, 3)
    r = records(round_trip.first.read_bytes())
    items = Counter(i.post_type for i in r["items"])
    assert items["post"] == sum(p["type"] == "ArticlePage" for p in before["pages"])
    assert items["page"] == sum(p["type"] == "StandardPage" for p in before["pages"])
    assert sum(len(i.comments) for i in r["items"]) == len(before["comments"])
    assert len(r["authors"]) == len(before["people"])
    assert sum(t.taxonomy == "category" for t in r["terms"]) == len(before["sections"])
    assert round_trip.report.removed_characters == 0


def test_round_trip_exporting_twice_gives_the_same_bytes(round_trip):
    assert without_channel_pubdate(round_trip.first.read_bytes()) == without_channel_pubdate(
        round_trip.second.read_bytes()
    )


def test_wordpress_parsers_read_the_export_of_the_fixtures(round_trip):
    seen = assert_wordpress_reads(round_trip.first)
    print(
        "WordPress parsers:",
        {p: {k: seen[p][k] for k in ("authors", "posts", "comments", "replies")} for p in PARSERS},
    )
