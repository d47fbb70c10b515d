"""Write the whole site as a WordPress export (WXR 1.2): ``export_wxr`` is the one entry point;
the ``export-wxr`` command calls it.

The file has the shape WordPress core's ``export_wp()`` writes, because WordPress's importer
has three parsers and the simplest of them reads by regular expression, line by line:

- ``<?xml … ?>`` and no DOCTYPE (the SimpleXML parser refuses any DOCTYPE);
- the core ``http://`` namespace URIs under the literal prefixes ``excerpt content wfw dc wp``
  (the ``xml`` and regex parsers match prefixes, not URIs);
- each ``<wp:author>`` on one line (the regex parser finds authors only so), items and terms
  opened and closed on lines of their own, fields in core's order;
- every text in CDATA, a ``]]>`` inside split as ``]]]]><![CDATA[>`` as core does;
- item terms as ``<category domain="…" nicename="…">``, both attributes, in that order.

A body is written as finished HTML inside one Custom HTML block (``<!-- wp:html -->``), so
that neither WordPress nor our importer adds paragraphs to it as they do to a "classic" post;
Wagtail's embeds are expanded (images as their original files, with absolute addresses), and
the article HTML policy is applied last.

Ids are Broadsheet's: Person pk as ``wp:author_id``, Section and Tag pks as ``wp:term_id``,
page pk as ``wp:post_id``, comment pk as ``wp:comment_id``. Attachments (the featured images)
get ``wp:post_id`` = largest page pk + image pk, because WordPress has one id space for posts,
pages and attachments. So the file is self-consistent, and WordPress's importer and ours both
rebuild parents and threads from it.

Unlike core, spam and trashed comments are included (``comment_approved`` ``spam`` /
``trash``), so that a round trip through our importer keeps them; WordPress's importer keeps
them too, with the same status. A comment's user agent goes in the commentmeta
``_broadsheet_user_agent``, and article fields WordPress has no column for in ``_broadsheet_*``
postmeta, which the importer reads back.

Streaming: pages are read with ``.iterator(chunk_size=500)``, the comments of each page in one
query, and the output is written in 64 KiB pieces, so memory does not grow with the site.
Output is deterministic (everything ordered by pk, or by tree path for pages), so exporting
twice gives the same bytes except the channel's ``pubDate``.
"""

from __future__ import annotations

import io
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape as html_escape
from typing import Any, BinaryIO, TextIO
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from django.conf import settings
from django.db.models import Max, Prefetch
from django.utils import timezone
from taggit.models import Tag
from wagtail.rich_text import expand_db_html
from wagtail.rich_text.rewriters import extract_attrs

from broadsheet.comments.models import Comment, Thread
from broadsheet.core import html as html_policy
from broadsheet.publishing.feeds import absolute_links
from broadsheet.publishing.models import (
    ArticleAuthor,
    ArticlePage,
    ArticleTag,
    HomePage,
    Person,
    Section,
    StandardPage,
)

from .report import Report

__all__ = ["WXR_VERSION", "ExportFailed", "ExportReport", "export_wxr"]

WXR_VERSION = "1.2"
NAMESPACES = (
    ("excerpt", "http://wordpress.org/export/1.2/excerpt/"),
    ("content", "http://purl.org/rss/1.0/modules/content/"),
    ("wfw", "http://wellformedweb.org/CommentAPI/"),
    ("dc", "http://purl.org/dc/elements/1.1/"),
    ("wp", "http://wordpress.org/export/1.2/"),
)
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
ZERO_DATE = "0000-00-00 00:00:00"  # what WordPress writes for "no date"
FLUSH_CHARS = 64 * 1024
COMMENT_APPROVED = {
    Comment.Status.APPROVED: "1",
    Comment.Status.PENDING: "0",
    Comment.Status.SPAM: "spam",
    Comment.Status.TRASH: "trash",
}
# Article fields with no WordPress column; the importer reads these keys back (BROADSHEET_META).
ARTICLE_META = (
    ("_broadsheet_signature", "signature"),
    ("_broadsheet_translator", "translator"),
    ("_broadsheet_language", "language"),
    ("_broadsheet_original_language", "original_language"),
    ("_broadsheet_original_url", "original_url"),
)
# Characters XML 1.0 does not allow (C0 controls except tab/LF/CR, surrogates, U+FFFE/FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_EMBED = re.compile(r"<embed(\b[^>]*)/>")  # Wagtail's own pattern for its database format
# Wagtail image formats → WordPress's alignment classes (which our importer maps back).
_ALIGN = {"left": "alignleft", "right": "alignright"}


class ExportFailed(Exception):
    """Nothing could be exported; the message says why, for a person."""


@dataclass(kw_only=True)
class ExportReport(Report):
    """What an export wrote: counts per kind and status, characters removed, and why anything
    was left out."""

    bytes_written: int = 0

    @property
    def removed_characters(self) -> int:
        """Characters XML 1.0 cannot carry, removed from the texts (see ``notes``)."""
        return self.counts["removed_characters"]

    def heading(self) -> str:
        return f"Exported {self.bytes_written:,} bytes"

    def extra(self) -> dict[str, Any]:
        return {"bytes_written": self.bytes_written}


def export_wxr(*, out: BinaryIO | TextIO, site=None) -> ExportReport:
    """Write the site's pages, people, sections, tags, featured images and comments to
    ``out`` as a WXR 1.2 file; see the module docstring for the shape and the rules.

    ``out`` is a binary stream (UTF-8 bytes are written), or a text stream (an
    ``io.TextIOBase``, such as ``io.StringIO``) that takes ``str``. ``site`` is a Wagtail
    ``Site``; the default site when None. Read-only: nothing in the database changes (no
    image renditions are made either: images are exported as their original files).
    Raises ``ExportFailed`` when there is no site with a Broadsheet home page.
    """
    report = ExportReport()
    started = time.perf_counter()
    home, site = _home_and_site(site)
    writer = _Writer(out, report)
    _Export(writer=writer, report=report, home=home, site=site).run()
    writer.flush()
    report.bytes_written = writer.bytes_written
    report.seconds["export"] = time.perf_counter() - started
    return report


def _home_and_site(site: Any) -> tuple[HomePage, Any]:
    """The site's home page, found, never created (an export writes nothing)."""
    from wagtail.models import Site

    site = site or Site.objects.filter(is_default_site=True).first()
    home = HomePage.objects.filter(pk=site.root_page_id).first() if site else None
    if home is None:
        raise ExportFailed(
            "no site with a Broadsheet home page: there is nothing to export "
            "(run `broadsheet demo` or import a WordPress export first)"
        )
    return home, site


class _Writer:
    """Buffered output with the two text encodings the file uses: CDATA and escaped text.

    Every text goes through ``clean``: characters XML 1.0 cannot carry are removed and
    counted, and line ends become ``\\n`` (what every XML parser makes of them anyway)."""

    def __init__(self, out: BinaryIO | TextIO, report: ExportReport) -> None:
        self.out = out
        self.text_mode = isinstance(out, io.TextIOBase)
        self.report = report
        self.parts: list[str] = []
        self.size = 0
        self.bytes_written = 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= FLUSH_CHARS:
            self.flush()

    def flush(self) -> None:
        if not self.parts:
            return
        text = "".join(self.parts)
        self.parts, self.size = [], 0
        data = text.encode("utf-8")
        self.bytes_written += len(data)
        self.out.write(text if self.text_mode else data)

    def clean(self, value: Any, where: str) -> str:
        text = "" if value is None else str(value)
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        text, removed = _NOT_XML.subn("", text)
        if removed:
            self.report.count("removed_characters", removed)
            self.report.note("removed characters", f"{where}: {removed}")
        return text

    def cdata(self, value: Any, where: str) -> str:
        text = self.clean(value, where)
        return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"

    def escaped(self, value: Any, where: str) -> str:
        return xml_escape(self.clean(value, where))

    def attr(self, value: Any, where: str) -> str:
        return quoteattr(self.clean(value, where).replace("\n", " "))


def _local(moment: datetime | None) -> str:
    if moment is None:
        return ZERO_DATE
    return timezone.localtime(moment, timezone.get_default_timezone()).strftime(DATE_FORMAT)


def _gmt(moment: datetime | None) -> str:
    if moment is None:
        return ZERO_DATE
    return moment.astimezone(UTC).strftime(DATE_FORMAT)


def _rfc822(moment: datetime | None) -> str:
    return format_datetime((moment or datetime(1970, 1, 1, tzinfo=UTC)).astimezone(UTC))


def _html_text(text: str) -> str:
    """Plain text as WordPress stores a title or a name: HTML, so ``&`` and ``<`` escaped.
    Every WXR reader (ours included) unescapes these fields."""
    return html_escape(text or "", quote=False)


def _post_name(slug: str) -> str:
    """The slug as WordPress stores ``post_name``: non-ASCII percent-encoded, lowercase hex."""
    return _PERCENT.sub(lambda m: m.group(0).lower(), quote(slug or "", safe=""))


@dataclass
class _Source:
    """One page as exported: the page row for its tree place and comments, and ``content``,
    the object its fields are read from (the live row, or the latest revision of a page that
    is not live)."""

    page: Any
    content: Any
    status: str
    date: datetime | None


class _Export:
    def __init__(self, *, writer: _Writer, report: ExportReport, home: Any, site: Any) -> None:
        self.w = writer
        self.report = report
        self.home = home
        self.site = site
        self.base_url = settings.BROADSHEET_BASE_URL.rstrip("/")
        self.now = timezone.now()
        self.threads: dict[int, int] = dict(
            Thread.objects.filter(page_id__isnull=False).values_list("page_id", "pk")
        )
        self.image_model = ArticlePage._meta.get_field("featured_image").related_model

    def run(self) -> None:
        started = time.perf_counter()
        self._head()
        self._authors()
        self._categories()
        self._tags()
        self.report.seconds["terms"] = time.perf_counter() - started
        started = time.perf_counter()
        self._attachments()
        self._articles()
        self._pages()
        self.w.write("\t</channel>\n</rss>\n")
        self.report.seconds["items"] = time.perf_counter() - started
        written = sum(n for key, n in self.report.counts.items() if key.startswith("comments."))
        left_out = Comment.objects.count() - written
        if left_out:
            self.report.count("comments.not_exported", left_out)
            self.report.note(
                "not exported",
                f"{left_out} comments on threads with no page of this site "
                "(a WordPress comment belongs to a post)",
            )

    # Channel ------------------------------------------------------------------------------------

    def _head(self) -> None:
        w = self.w
        w.write('<?xml version="1.0" encoding="UTF-8" ?>\n')
        w.write("<!-- This is a WordPress eXtended RSS file generated by Broadsheet. -->\n")
        w.write('<!-- generator="Broadsheet" -->\n')
        w.write('<rss version="2.0"\n')
        for prefix, uri in NAMESPACES:
            w.write(f'\txmlns:{prefix}="{uri}"\n')
        w.write(">\n\n<channel>\n")
        title = self.site.site_name or settings.WAGTAIL_SITE_NAME
        language = settings.LANGUAGE_CODE
        base = xml_escape(self.base_url)
        w.write(f"\t<title>{w.cdata(title, 'site title')}</title>\n")
        w.write(f"\t<link>{base}</link>\n")
        tagline = getattr(self.home, "tagline", "")
        w.write(f"\t<description>{w.cdata(tagline, 'site tagline')}</description>\n")
        w.write(f"\t<pubDate>{_rfc822(self.now)}</pubDate>\n")
        w.write(f"\t<language>{xml_escape(language)}</language>\n")
        w.write(f"\t<wp:wxr_version>{WXR_VERSION}</wp:wxr_version>\n")
        w.write(f"\t<wp:base_site_url>{base}</wp:base_site_url>\n")
        w.write(f"\t<wp:base_blog_url>{base}</wp:base_blog_url>\n\n")

    def _authors(self) -> None:
        w = self.w
        for person in Person.objects.order_by("pk").iterator(chunk_size=500):
            where = f"person {person.pk}"
            # One line, whatever the name holds: the regex parser reads authors line by line.
            name = " ".join(_html_text(person.name).splitlines())
            w.write(
                "\t<wp:author>"
                f"<wp:author_id>{person.pk}</wp:author_id>"
                f"<wp:author_login>{w.cdata(person.slug, where)}</wp:author_login>"
                "<wp:author_email><![CDATA[]]></wp:author_email>"
                f"<wp:author_display_name>{w.cdata(name, where)}</wp:author_display_name>"
                "<wp:author_first_name><![CDATA[]]></wp:author_first_name>"
                "<wp:author_last_name><![CDATA[]]></wp:author_last_name>"
                "</wp:author>\n"
            )
            self.report.count("authors")
        w.write("\n")

    def _categories(self) -> None:
        """Sections parent-first (WordPress finds a parent by its slug, so it must exist)."""
        w = self.w
        sections = {s.pk: s for s in Section.objects.order_by("pk")}
        children: dict[int | None, list[Section]] = defaultdict(list)
        for s in sections.values():
            parent = s.parent_id if s.parent_id in sections else None
            children[parent].append(s)
        ordered: list[Section] = []
        seen: set[int] = set()
        stack = list(reversed(children[None]))
        while stack:
            s = stack.pop()
            if s.pk in seen:
                continue
            seen.add(s.pk)
            ordered.append(s)
            stack.extend(reversed(children[s.pk]))
        for s in sections.values():  # a loop of parents: no root reaches it
            if s.pk not in seen:
                self.report.note("categories", f"section {s.slug}: its parents form a loop")
                ordered.append(s)
        for s in ordered:
            where = f"section {s.slug}"
            parent = sections[s.parent_id].slug if s.parent_id in sections else ""
            w.write("\t<wp:category>\n")
            w.write(f"\t\t<wp:term_id>{s.pk}</wp:term_id>\n")
            w.write(f"\t\t<wp:category_nicename>{w.cdata(s.slug, where)}</wp:category_nicename>\n")
            w.write(f"\t\t<wp:category_parent>{w.cdata(parent, where)}</wp:category_parent>\n")
            w.write(f"\t\t<wp:cat_name>{w.cdata(_html_text(s.name), where)}</wp:cat_name>\n")
            if s.description:
                w.write(
                    "\t\t<wp:category_description>"
                    f"{w.cdata(s.description, where)}</wp:category_description>\n"
                )
            w.write("\t</wp:category>\n")
            self.report.count("categories")

    def _tags(self) -> None:
        w = self.w
        used = ArticleTag.objects.filter(content_object__path__startswith=self.home.path)
        tags = Tag.objects.filter(pk__in=used.values("tag_id")).order_by("pk")
        for tag in tags.iterator(chunk_size=500):
            where = f"tag {tag.slug}"
            w.write("\t<wp:tag>\n")
            w.write(f"\t\t<wp:term_id>{tag.pk}</wp:term_id>\n")
            w.write(f"\t\t<wp:tag_slug>{w.cdata(tag.slug, where)}</wp:tag_slug>\n")
            w.write(f"\t\t<wp:tag_name>{w.cdata(_html_text(tag.name), where)}</wp:tag_name>\n")
            w.write("\t</wp:tag>\n")
            self.report.count("tags")
        w.write("\n")

    # Items ---------------------------------------------------------------------------------------

    def _attachments(self) -> None:
        """The featured images, as attachment items; an article points at its own with the
        postmeta ``_thumbnail_id``."""
        articles = ArticlePage.objects.descendant_of(self.home)
        # Posts, pages and attachments share WordPress's id space: attachments go after the
        # largest page id.
        self.attachment_offset = max(
            ArticlePage.objects.aggregate(top=Max("pk"))["top"] or 0,
            StandardPage.objects.aggregate(top=Max("pk"))["top"] or 0,
        )
        first_use: dict[int, int] = {}  # image → the first article that features it
        for image_id, page_id in (
            articles.filter(featured_image__isnull=False)
            .order_by("featured_image_id", "pk")
            .values_list("featured_image_id", "pk")
        ):
            first_use.setdefault(image_id, page_id)
        images = self.image_model.objects.filter(pk__in=list(first_use)).order_by("pk")
        for image in images.iterator(chunk_size=500):
            self._attachment(image, first_use[image.pk])

    def attachment_id(self, image_id: int) -> int:
        return self.attachment_offset + image_id

    def _attachment(self, image: Any, parent_id: int) -> None:
        w = self.w
        wp_id = self.attachment_id(image.pk)
        where = f"image {image.pk}"
        url = self._file_url(image)
        link = f"{self.base_url}/?attachment_id={wp_id}"
        created = image.created_at
        w.write("\t<item>\n")
        w.write(f"\t\t<title>{w.cdata(_html_text(image.title), where)}</title>\n")
        w.write(f"\t\t<link>{xml_escape(link)}</link>\n")
        w.write(f"\t\t<pubDate>{_rfc822(created)}</pubDate>\n")
        w.write("\t\t<dc:creator><![CDATA[]]></dc:creator>\n")
        w.write(f'\t\t<guid isPermaLink="false">{w.escaped(url, where)}</guid>\n')
        w.write("\t\t<description></description>\n")
        w.write("\t\t<content:encoded><![CDATA[]]></content:encoded>\n")
        w.write("\t\t<excerpt:encoded><![CDATA[]]></excerpt:encoded>\n")
        self._post_fields(
            wp_id=wp_id,
            date=created,
            modified=created,
            comment_status="closed",
            post_name=_post_name(f"image-{image.pk}"),
            status="inherit",
            parent=parent_id,
            post_type="attachment",
            sticky=False,
        )
        w.write(f"\t\t<wp:attachment_url>{w.cdata(url, where)}</wp:attachment_url>\n")
        if image.description:
            self._meta("_wp_attachment_image_alt", image.description, where)
        w.write("\t</item>\n")
        self.report.count("attachments")

    def _articles(self) -> None:
        queryset = (
            ArticlePage.objects.descendant_of(self.home)
            .order_by("pk")
            .prefetch_related(
                Prefetch(
                    "article_authors",
                    queryset=ArticleAuthor.objects.select_related("person").order_by(
                        "sort_order", "pk"
                    ),
                ),
                "sections",
                Prefetch("tagged_items", queryset=ArticleTag.objects.select_related("tag")),
            )
        )
        private = self._private_ids(ArticlePage)
        for page in queryset.iterator(chunk_size=500):
            source = self._source(page, private)
            self._article(source)

    def _pages(self) -> None:
        queryset = StandardPage.objects.descendant_of(self.home).order_by("path")
        private = self._private_ids(StandardPage)
        standard_paths: dict[str, int] = {}
        step = StandardPage.steplen
        for page in queryset.iterator(chunk_size=500):
            standard_paths[page.path] = page.pk
            parent = standard_paths.get(page.path[:-step], 0)
            self._page(self._source(page, private), parent)

    def _private_ids(self, model: Any) -> set[int]:
        """Pages under a view restriction (their own or an ancestor's)."""
        return set(model.objects.descendant_of(self.home).not_public().values_list("pk", flat=True))

    def _source(self, page: Any, private: set[int]) -> _Source:
        """The WordPress status of a page and where its fields come from.

        live → ``publish``, or ``private`` when a view restriction covers it; not live with an
        approved schedule → ``future``, dated when it goes live (never earlier, so a file
        imported later cannot publish it before its time) and read from the scheduled
        revision; anything else → ``draft``, read from its latest revision (the row holds the
        last published text, or the first draft)."""
        if page.live:
            status = "private" if page.pk in private else "publish"
            return _Source(page=page, content=page, status=status, date=None)
        scheduled = page.scheduled_revision
        if scheduled is not None:
            return _Source(
                page=page,
                content=scheduled.as_object(),  # what will go live, not a later draft
                status="future",
                date=scheduled.approved_go_live_at or page.go_live_at,
            )
        content = page.get_latest_revision_as_object()
        return _Source(page=page, content=content, status="draft", date=None)

    def _article(self, source: _Source) -> None:
        w = self.w
        page, obj = source.page, source.content
        where = f"post {page.pk}"
        date = obj.date
        if source.status == "future" and source.date and (date is None or source.date > date):
            date = source.date
        authors = [credit.person for credit in obj.article_authors.all()]
        sections = sorted(obj.sections.all(), key=lambda s: s.pk)
        tags = sorted((item.tag for item in obj.tagged_items.all()), key=lambda t: t.pk)
        self._item_head(
            obj,
            where=where,
            date=date,
            creator=authors[0].slug if authors else "",
            body=obj.body,
            excerpt=obj.standfirst,
        )
        self._post_fields(
            wp_id=page.pk,
            date=date,
            modified=page.last_published_at or page.latest_revision_created_at or date,
            comment_status="open" if obj.allow_comments else "closed",
            post_name=_post_name(obj.slug),
            status=source.status,
            parent=0,
            post_type="post",
            sticky=obj.is_sticky,
        )
        for section in sections:
            self._term("category", section.slug, section.name, where)
        for tag in tags:
            self._term("post_tag", tag.slug, tag.name, where)
        if obj.featured_image_id:
            self._meta("_thumbnail_id", str(self.attachment_id(obj.featured_image_id)), where)
        for key, attr in ARTICLE_META:
            value = getattr(obj, attr, "")
            if value:
                self._meta(key, value, where)
        if len(authors) > 1:
            # WordPress has one author per post; the others are kept here for a reader that
            # knows the key, and reported.
            self._meta("_broadsheet_authors", ",".join(p.slug for p in authors), where)
            self.report.count("bylines.not_in_dc_creator", len(authors) - 1)
            self.report.note(
                "bylines", f"{where}: {len(authors)} bylines; dc:creator holds the first only"
            )
        if page.expire_at is not None:
            self.report.note("not exported", f"{where}: its expiry time (WordPress has none)")
        self._comments(page, where)
        w.write("\t</item>\n")
        self.report.count(f"posts.{source.status}")

    def _page(self, source: _Source, parent: int) -> None:
        page, obj = source.page, source.content
        where = f"page {page.pk}"
        date = source.date or page.first_published_at or page.latest_revision_created_at
        self._item_head(
            obj, where=where, date=date, creator="", body=obj.body, excerpt=obj.standfirst
        )
        self._post_fields(
            wp_id=page.pk,
            date=date,
            modified=page.last_published_at or page.latest_revision_created_at or date,
            comment_status="open" if obj.allow_comments else "closed",
            post_name=_post_name(obj.slug),
            status=source.status,
            parent=parent,
            post_type="page",
            sticky=False,
        )
        self._comments(page, where)
        self.w.write("\t</item>\n")
        self.report.count(f"pages.{source.status}")

    def _item_head(
        self, obj: Any, *, where: str, date: datetime | None, creator: str, body: str, excerpt: str
    ) -> None:
        w = self.w
        link = obj.get_full_url() or f"{self.base_url}/?p={obj.pk}"
        w.write("\t<item>\n")
        w.write(f"\t\t<title>{w.cdata(_html_text(obj.title), where)}</title>\n")
        w.write(f"\t\t<link>{w.escaped(link, where)}</link>\n")
        w.write(f"\t\t<pubDate>{_rfc822(date)}</pubDate>\n")
        w.write(f"\t\t<dc:creator>{w.cdata(creator, where)}</dc:creator>\n")
        guid = f"{self.base_url}/?p={obj.pk}"
        w.write(f'\t\t<guid isPermaLink="false">{xml_escape(guid)}</guid>\n')
        w.write("\t\t<description></description>\n")
        w.write(
            f"\t\t<content:encoded>{w.cdata(self._body(body, where), where)}</content:encoded>\n"
        )
        w.write(f"\t\t<excerpt:encoded>{w.cdata(_html_text(excerpt), where)}</excerpt:encoded>\n")

    def _body(self, stored: str, where: str) -> str:
        """The body as WordPress should store it: Wagtail's embeds and page links expanded to
        real ``<img>`` and ``<a>``, addresses absolute, the article HTML policy applied, then
        wrapped in one Custom HTML block.

        The block is what tells WordPress (and our importer) that this is finished HTML: a
        post without blocks is "classic", and WordPress runs ``wpautop`` over it when it is
        shown, adding ``<p>`` and ``<br>`` wherever a newline is. ``[`` is written as
        ``&#91;`` for the same reason: text that looks like a shortcode stays text.

        An image is its original file, with WordPress's alignment class (WordPress makes its
        own sizes; a rendition would be a smaller copy, and making one writes to the database).
        A media embed (a video, a post elsewhere) becomes a link alone in its paragraph, as the
        importer turns WordPress's ``[embed]`` into: expanding it would ask the provider for
        its HTML over the network, and WordPress embeds a link by itself anyway."""
        if not stored:
            return ""
        own = _EMBED.sub(lambda m: self._embed(m, where), stored)
        expanded = absolute_links(expand_db_html(own), self.base_url)
        html = html_policy.sanitize_article_html(expanded).replace("[", "&#91;")
        return f"<!-- wp:html -->\n{html}\n<!-- /wp:html -->" if html.strip() else ""

    def _embed(self, match: re.Match[str], where: str) -> str:
        attrs = extract_attrs(match.group(1))
        kind = attrs.get("embedtype")
        if kind == "media":
            url = html_escape(attrs.get("url", ""), quote=True)
            return f'<p><a href="{url}">{url}</a></p>' if url else ""
        if kind != "image":
            return match.group(0)
        image = self.image_model.objects.filter(pk=attrs.get("id") or 0).first()
        url = self._file_url(image) if image is not None else ""
        if not url:
            self.report.note("images", f"{where}: image {attrs.get('id')!r} is missing: left out")
            return ""
        align = _ALIGN.get(attrs.get("format", ""), "")
        return (
            f'<img src="{html_escape(url)}" alt="{html_escape(attrs.get("alt", ""))}"'
            f' width="{image.width}" height="{image.height}"'
            + (f' class="{align}"' if align else "")
            + ">"
        )

    def _file_url(self, image: Any) -> str:
        try:
            url = image.file.url
        except ValueError:  # no file
            return ""
        return self.base_url + url if url.startswith("/") else url

    def _post_fields(
        self,
        *,
        wp_id: int,
        date: datetime | None,
        modified: datetime | None,
        comment_status: str,
        post_name: str,
        status: str,
        parent: int,
        post_type: str,
        sticky: bool,
    ) -> None:
        w = self.w
        w.write(f"\t\t<wp:post_id>{wp_id}</wp:post_id>\n")
        w.write(f"\t\t<wp:post_date><![CDATA[{_local(date)}]]></wp:post_date>\n")
        w.write(f"\t\t<wp:post_date_gmt><![CDATA[{_gmt(date)}]]></wp:post_date_gmt>\n")
        w.write(f"\t\t<wp:post_modified><![CDATA[{_local(modified)}]]></wp:post_modified>\n")
        w.write(f"\t\t<wp:post_modified_gmt><![CDATA[{_gmt(modified)}]]></wp:post_modified_gmt>\n")
        w.write(f"\t\t<wp:comment_status><![CDATA[{comment_status}]]></wp:comment_status>\n")
        w.write("\t\t<wp:ping_status><![CDATA[closed]]></wp:ping_status>\n")
        w.write(f"\t\t<wp:post_name>{w.cdata(post_name, f'{post_type} {wp_id}')}</wp:post_name>\n")
        w.write(f"\t\t<wp:status><![CDATA[{status}]]></wp:status>\n")
        w.write(f"\t\t<wp:post_parent>{parent}</wp:post_parent>\n")
        w.write("\t\t<wp:menu_order>0</wp:menu_order>\n")
        w.write(f"\t\t<wp:post_type><![CDATA[{post_type}]]></wp:post_type>\n")
        w.write("\t\t<wp:post_password><![CDATA[]]></wp:post_password>\n")
        w.write(f"\t\t<wp:is_sticky>{int(bool(sticky))}</wp:is_sticky>\n")

    def _term(self, domain: str, slug: str, name: str, where: str) -> None:
        w = self.w
        w.write(
            f"\t\t<category domain={w.attr(domain, where)} nicename={w.attr(slug, where)}>"
            f"{w.cdata(_html_text(name), where)}</category>\n"
        )

    def _meta(self, key: str, value: str, where: str) -> None:
        w = self.w
        w.write("\t\t<wp:postmeta>\n")
        w.write(f"\t\t<wp:meta_key>{w.cdata(key, where)}</wp:meta_key>\n")
        w.write(f"\t\t<wp:meta_value>{w.cdata(value, where)}</wp:meta_value>\n")
        w.write("\t\t</wp:postmeta>\n")

    # Comments ------------------------------------------------------------------------------------

    def _comments(self, page: Any, where: str) -> None:
        thread_id = self.threads.get(page.pk)
        if thread_id is None:
            return
        rows = Comment.objects.filter(thread_id=thread_id).order_by("pk")
        for c in rows.iterator(chunk_size=2000):
            self._comment(c, f"{where} comment {c.pk}")

    def _comment(self, c: Comment, where: str) -> None:
        w = self.w
        approved = COMMENT_APPROVED.get(c.status)
        if approved is None:
            approved = "0"
            self.report.note("comments", f"{where}: status {c.status!r} exported as held")
        ip = c.ip_address or ""
        w.write("\t\t<wp:comment>\n")
        w.write(f"\t\t\t<wp:comment_id>{c.pk}</wp:comment_id>\n")
        w.write(
            "\t\t\t<wp:comment_author>"
            f"{w.cdata(_html_text(c.author_name), where)}</wp:comment_author>\n"
        )
        w.write(
            "\t\t\t<wp:comment_author_email>"
            f"{w.cdata(c.author_email, where)}</wp:comment_author_email>\n"
        )
        w.write(
            f"\t\t\t<wp:comment_author_url>{w.cdata(c.author_url, where)}</wp:comment_author_url>\n"
        )
        w.write(f"\t\t\t<wp:comment_author_IP>{w.cdata(ip, where)}</wp:comment_author_IP>\n")
        w.write(f"\t\t\t<wp:comment_date><![CDATA[{_local(c.created_at)}]]></wp:comment_date>\n")
        w.write(
            f"\t\t\t<wp:comment_date_gmt><![CDATA[{_gmt(c.created_at)}]]></wp:comment_date_gmt>\n"
        )
        w.write(f"\t\t\t<wp:comment_content>{w.cdata(c.text, where)}</wp:comment_content>\n")
        w.write(f"\t\t\t<wp:comment_approved><![CDATA[{approved}]]></wp:comment_approved>\n")
        w.write(f"\t\t\t<wp:comment_type>{w.cdata(c.kind, where)}</wp:comment_type>\n")
        w.write(f"\t\t\t<wp:comment_parent>{c.parent_id or 0}</wp:comment_parent>\n")
        w.write("\t\t\t<wp:comment_user_id>0</wp:comment_user_id>\n")
        if c.user_agent:
            w.write("\t\t\t<wp:commentmeta>\n")
            w.write("\t\t\t\t<wp:meta_key><![CDATA[_broadsheet_user_agent]]></wp:meta_key>\n")
            w.write(f"\t\t\t\t<wp:meta_value>{w.cdata(c.user_agent, where)}</wp:meta_value>\n")
            w.write("\t\t\t</wp:commentmeta>\n")
        w.write("\t\t</wp:comment>\n")
        self.report.count(f"comments.{c.status}")
