"""Import a WordPress export (WXR) into Broadsheet: ``import_wxr`` is the one entry point; the
``import-wxr`` command and the admin's upload both call it.

Two passes over the file, streamed by ``wxr.read_wxr``:

1. a survey with no database access: the whole file is parsed and checked (a truncated or
   hostile file fails here, before anything is written), and the small things every item
   needs are kept: authors, terms, attachments, page parents, item counts for the progress;
2. the import itself, inside one transaction: all or nothing, so a failure leaves the site
   as it was. ``dry_run`` runs the same pass and rolls it back, for a real report.

Idempotent: each WordPress object is remembered in ``WordPressId`` under (site, kind, id), so a
second run of the same file changes nothing, and a later file from the same site adds only
what is new (new posts, new comments on old posts). Memory stays bounded: only ids and the
current item's comments are held, never the file.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models, transaction
from django.test.utils import override_settings
from django.utils import timezone
from django.utils.text import slugify
from taggit.models import Tag

from broadsheet.comments import services as comment_services
from broadsheet.comments.models import EMAIL_MAX, NAME_MAX, TEXT_MAX, URL_MAX, Comment, Thread
from broadsheet.core import html as html_policy
from broadsheet.core import pagecache
from broadsheet.publishing import services as publishing
from broadsheet.publishing.models import (
    ArticleAuthor,
    ArticlePage,
    Person,
    Section,
    StandardPage,
    language_code_validator,
)

from . import content, wxr
from .models import WordPressId
from .report import Report

Progress = Callable[[str, int, int | None], None]

TITLE_MAX = 255
TEASER_MAX = 600  # a <!--more--> teaser longer than this is not a standfirst
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".webp"}
BROADSHEET_META = {
    "_broadsheet_signature": "signature",
    "_broadsheet_translator": "translator",
    "_broadsheet_language": "language",
    "_broadsheet_original_language": "original_language",
    "_broadsheet_original_url": "original_url",
}
COMMENT_STATUS = {
    "1": Comment.Status.APPROVED,
    "approve": Comment.Status.APPROVED,
    "0": Comment.Status.PENDING,
    "hold": Comment.Status.PENDING,
    "spam": Comment.Status.SPAM,
    "trash": Comment.Status.TRASH,
    "post-trashed": Comment.Status.TRASH,
}
COMMENT_KIND = {
    "": Comment.Kind.COMMENT,
    "comment": Comment.Kind.COMMENT,
    "pingback": Comment.Kind.PINGBACK,
    "trackback": Comment.Kind.TRACKBACK,
}


class ImportFailed(Exception):
    """The import stopped and nothing was written; the message says why, for a person."""


@dataclass(kw_only=True)
class ImportReport(Report):
    """What an import did: counts per kind and status, and why anything was skipped."""

    file: str
    dry_run: bool = False
    site_key: str = ""

    def heading(self) -> str:
        return f"{'Dry run of ' if self.dry_run else 'Imported '}{self.file}"

    def extra(self) -> dict[str, Any]:
        return {"file": self.file, "dry_run": self.dry_run, "site_key": self.site_key}


@dataclass
class _Survey:
    channel: wxr.Channel | None = None
    authors: list[wxr.Author] = field(default_factory=list)
    terms: list[wxr.Term] = field(default_factory=list)
    attachments: list[wxr.Item] = field(default_factory=list)
    items: Counter = field(default_factory=Counter)


def import_wxr(
    *,
    path: str | Path,
    uploads: str | Path | None = None,
    dry_run: bool = False,
    site_key: str | None = None,
    source_tz: tzinfo | None = None,
    progress: Progress | None = None,
    max_bytes: int | None = None,
) -> ImportReport:
    """Import one WXR file into the default site; see the module docstring for the rules.

    Raises ``ImportFailed`` (nothing written) for a file that is not a readable WordPress
    export, and lets any other error roll the whole run back.
    """
    path = Path(path)
    uploads_dir = Path(uploads).resolve() if uploads else None
    if uploads_dir is not None and not uploads_dir.is_dir():
        raise ImportFailed(f"{uploads}: not a folder (give the copied wp-content/uploads)")
    source_tz = source_tz or timezone.get_default_timezone()
    report = ImportReport(file=path.name, dry_run=dry_run)
    read_options: dict[str, Any] = {"source_tz": source_tz}
    if max_bytes is not None:
        read_options["max_bytes"] = max_bytes
    started = time.perf_counter()
    try:
        survey = _survey(path, read_options, progress)
    except wxr.WXRError as exc:
        raise ImportFailed(_failure(exc, path)) from None
    report.seconds["survey"] = time.perf_counter() - started
    report.site_key = site_key or _site_key(survey.channel)
    for post_type, n in sorted(survey.items.items()):
        report.count(f"file.{post_type}", n)

    started = time.perf_counter()
    run: _Run | None = None
    try:
        with pagecache.one_clear_at_the_end(), transaction.atomic():
            with _deferred_indexing() as touched:
                run = _Run(report=report, survey=survey, uploads=uploads_dir, touched=touched)
                run.prepare()
                reader = wxr.read_wxr(path, progress=_phase(progress, "import"), **read_options)
                for record in reader:
                    if isinstance(record, wxr.Item):
                        run.item(record)
                run.finish()
            report.seconds["import"] = time.perf_counter() - started
            started = time.perf_counter()
            _reindex(touched, progress=_phase(progress, "index"))
            report.seconds["indexing"] = time.perf_counter() - started
            if dry_run:
                transaction.set_rollback(True)
    except wxr.WXRError as exc:  # the file changed between the passes
        _remove_files(run)
        raise ImportFailed(_failure(exc, path)) from None
    except BaseException:
        _remove_files(run)  # the rows are rolled back; their image files go too
        raise
    return report


def _remove_files(run: _Run | None) -> None:
    from wagtail.images import get_image_model

    storage = get_image_model()._meta.get_field("file").storage
    for name in run.stored_files if run is not None else ():
        storage.delete(name)


def _failure(exc: wxr.WXRError, path: Path) -> str:
    # The file's name, not where the server keeps it (an admin upload is a numbered temp file).
    return f"{str(exc).replace(str(path), path.name)}; nothing was imported"


def _phase(progress: Progress | None, name: str):
    if progress is None:
        return None
    return lambda done, total: progress(name, done, total)


def _survey(path: Path, read_options: dict[str, Any], progress: Progress | None) -> _Survey:
    survey = _Survey()
    for record in wxr.read_wxr(path, progress=_phase(progress, "check"), **read_options):
        if isinstance(record, wxr.Channel):
            survey.channel = record
        elif isinstance(record, wxr.Author):
            survey.authors.append(record)
        elif isinstance(record, wxr.Term):
            survey.terms.append(record)
        elif isinstance(record, wxr.Item):
            survey.items[record.post_type] += 1
            if record.post_type == "attachment":
                # Keep only what galleries, captions and featured images need, not the body.
                survey.attachments.append(
                    wxr.Item(
                        **{
                            **record.__dict__,
                            "content": "",
                            "comments": (),
                            "meta": tuple(
                                (k, v) for k, v in record.meta if k == "_wp_attachment_image_alt"
                            ),
                        }
                    )
                )
    if survey.channel is None:
        raise wxr.WXRError(f"{path.name}: not a WordPress export (no channel)")
    return survey


def _site_key(channel: wxr.Channel | None) -> str:
    """Which WordPress site the file comes from: host and path of its address, lowercased."""
    url = (channel.base_blog_url or channel.link) if channel else ""
    parts = urlsplit(url)
    return (parts.netloc + parts.path.rstrip("/")).lower()[:200] or "wordpress"


@contextmanager
def _deferred_indexing():
    """Wagtail re-indexes a page (search and references) on every save, three times for each
    imported page; do it once per page at the end instead (halves the import time)."""
    from django.db.models.signals import post_save
    from modelsearch import index
    from modelsearch.signal_handlers import post_save_signal_handler
    from wagtail.signal_handlers import disable_reference_index_auto_update

    backends = {
        name: {**conf, "AUTO_UPDATE": False}
        for name, conf in getattr(settings, "WAGTAILSEARCH_BACKENDS", {}).items()
    }
    touched: list[tuple[type[models.Model], int]] = []
    disconnected = [
        model
        for model in index.get_indexed_models()
        if post_save.disconnect(post_save_signal_handler, sender=model)
    ]
    try:
        with (
            override_settings(WAGTAILSEARCH_BACKENDS=backends),
            disable_reference_index_auto_update(),
        ):
            yield touched
    finally:
        for model in disconnected:
            post_save.connect(post_save_signal_handler, sender=model)


def _reindex(touched: list[tuple[type[models.Model], int]], *, progress=None) -> None:
    """Search and reference index entries for the pages made, read back in chunks (only
    their ids were kept, so memory does not grow with the site)."""
    from modelsearch import index
    from wagtail.models import ReferenceIndex

    done = 0
    for start in range(0, len(touched), 200):
        chunk = touched[start : start + 200]
        by_model: dict[type[models.Model], list[int]] = defaultdict(list)
        for model, pk in chunk:
            by_model[model].append(pk)
        for model, pks in by_model.items():
            for obj in model.objects.filter(pk__in=pks):
                index.insert_or_update_object(obj)
                ReferenceIndex.create_or_update_for_object(obj)
        done += len(chunk)
        if progress is not None:
            progress(done, len(touched))


class _Run:
    """The state of one import pass: id maps (small ints) and the site being filled."""

    def __init__(
        self,
        *,
        report: ImportReport,
        survey: _Survey,
        uploads: Path | None,
        touched: list[tuple[type[models.Model], int]],
    ) -> None:
        self.report = report
        self.survey = survey
        self.uploads = uploads
        self.touched = touched
        self.site_key = report.site_key
        self.channel = survey.channel
        base = urlsplit(self.channel.base_blog_url or self.channel.link)
        self.base_path = base.path.rstrip("/")
        self.language = _language(self.channel.language)
        self.now = timezone.now()
        self.people: dict[str, Person] = {}  # login → person
        self.author_ids: dict[int, wxr.Author] = {}
        self.sections: dict[str, Section] = {}
        self.tags: dict[str, Tag] = {}
        self.attachments = content.AttachmentIndex()
        self.pages: dict[int, int] = {}  # wp id of a post or page → Broadsheet page id
        self.orphans: list[tuple[int, int]] = []  # (page id, missing parent's wp id)
        # (model, page id, post type, wp id, old link, old slugs), redirected in finish()
        self.old_addresses: list[tuple] = []
        self.users: dict[int, Any] = {}
        self.seen_items: set[tuple[str, int]] = set()
        self.seen_comments: set[int] = set()  # ints: bounded by the file's comment count
        self.stored_files: list[str] = []  # image files written, removed if the run fails
        self.home_slugs: set[str] = set()

    # Set-up: people, sections, tags, images -------------------------------------------------

    def prepare(self) -> None:
        self.home, self.site = publishing.home_for_site()
        self.home_slugs = set(self.home.get_children().values_list("slug", flat=True))
        known = WordPressId.objects.for_site(self.site_key)
        self.known = {
            kind: known.id_map(self.site_key, kind) for kind in ("post", "page", "attachment")
        }
        self.pages.update({int(k): v for k, v in self.known["post"].items()})
        self.pages.update({int(k): v for k, v in self.known["page"].items()})
        for author in self.survey.authors:
            self._person(author.login, author)
        self._terms()
        self._attachments()
        self._static_redirects()

    def _remember(self, kind: str, key: Any, obj: models.Model, **data: Any) -> None:
        WordPressId.objects.create(
            site_key=self.site_key,
            kind=kind,
            wp_key=str(key),
            content_type=ContentType.objects.get_for_model(type(obj)),
            object_id=obj.pk,
            data=data,
        )

    def _lookup(self, kind: str, key: Any, model: type[models.Model]) -> models.Model | None:
        row = WordPressId.objects.filter(site_key=self.site_key, kind=kind, wp_key=str(key)).first()
        if row is None:
            return None
        return model.objects.filter(pk=row.object_id).first() or False

    def _person(self, login: str, author: wxr.Author | None = None) -> Person | None:
        if not login:
            return None
        if login in self.people:
            return self.people[login]
        if author is not None and author.wp_id is not None:
            self.author_ids[author.wp_id] = author
        found = self._lookup("author", login, Person)
        if found is False:
            self.report.note("skipped", f"author {login}: deleted here since the last import")
            self.people[login] = None
            return None
        if found is None:
            slug = slugify(login, allow_unicode=True)[:100] or "author"
            found = Person.objects.filter(slug=slug).first()
            if found is not None:
                self.report.count("people.matched")
                self.report.note("matched", f"author {login} is the existing person “{found}”")
            else:
                name = (author.display_name if author else "") or login
                found = Person.objects.create(name=name[:200], slug=slug)
                self.report.count("people.created")
            self._remember(
                "author",
                login,
                found,
                login=login,
                email=author.email if author else "",
                wp_id=author.wp_id if author else None,
            )
        else:
            self.report.count("people.already_imported")
        self.people[login] = found
        return found

    def _terms(self) -> None:
        parents: list[tuple[Section, str]] = []
        for term in self.survey.terms:
            if term.taxonomy == "category":
                section = self._section(term.slug, term.name, term.description, term.wp_id)
                if section is not None and term.parent_slug:
                    parents.append((section, term.parent_slug))
            elif term.taxonomy == "post_tag":
                # WordPress 6 writes each term twice (wp:tag and wp:term): note it once.
                fresh = slugify(term.slug, allow_unicode=True) not in self.tags
                tag = self._tag(term.slug, term.name)
                if tag is not None and term.description and fresh:
                    self.report.note(
                        "not kept", f"tag {term.slug}: its description (tags have none here)"
                    )
            else:
                self.report.count(f"terms.skipped_{term.taxonomy or 'unknown'}")
        for section, parent_slug in parents:
            parent = self.sections.get(parent_slug)
            if parent is None:
                self.report.note("orphans", f"category {section.slug}: parent {parent_slug} absent")
            elif section.parent_id is None and parent.pk != section.pk:
                section.parent = parent
                section.save(update_fields=["parent"])
        for section in self.sections.values():
            if section is not None:
                self._section_redirects(section)

    def _section(
        self, slug: str, name: str, description: str = "", wp_id: int | None = None
    ) -> Section | None:
        slug = slugify(slug, allow_unicode=True) or slugify(name, allow_unicode=True)
        if slug in self.sections:
            return self.sections[slug]
        if not slug or len(slug) > 100:
            self.report.note("skipped", f"category {slug[:60]}…: slug over 100 characters")
            self.sections[slug] = None
            return None
        section = Section.objects.filter(slug=slug).first()
        if section is None:
            if len(name) > 100:
                self.report.note("shortened", f"category {slug}: name over 100 characters")
            section = Section.objects.create(
                slug=slug,
                name=(name or slug)[:100],
                description=description,
                show_in_navigation=False,
            )
            self.report.count("sections.created")
            self._remember("category", slug, section, wp_id=wp_id)
        else:
            self.report.count("sections.existing")
        self.sections[slug] = section
        return section

    def _tag(self, slug: str, name: str) -> Tag | None:
        slug = slugify(slug, allow_unicode=True) or slugify(name, allow_unicode=True)
        if slug in self.tags:
            return self.tags[slug]
        name = (name or slug).strip()
        if not slug or len(slug) > 100 or len(name) > 100:
            self.report.note("skipped", f"tag {slug[:60]}: name or slug over 100 characters")
            self.tags[slug] = None
            return None
        tag = Tag.objects.filter(slug=slug).first()
        if tag is None:
            if Tag.objects.filter(name=name).exists():
                name = f"{name} ({slug})"[:100]
            # Created with its own slug: taggit would re-slugify the name (alignment-2 must
            # stay alignment-2, so that /tag/alignment-2/ still answers).
            tag = Tag.objects.create(name=name, slug=slug)
            self.report.count("tags.created")
        else:
            self.report.count("tags.existing")
        self.tags[slug] = tag
        return tag

    def _attachments(self) -> None:
        for item in self.survey.attachments:
            image_id = None
            known = self.known["attachment"].get(str(item.wp_id))
            if known is not None:
                image_id = known
            elif self.uploads is not None:
                image_id = self._image(item)
            alt = dict(item.meta).get("_wp_attachment_image_alt", "")
            self.attachments.add(
                content.Attachment(
                    wp_id=item.wp_id,
                    url=item.attachment_url or item.guid,
                    parent_wp_id=item.parent_wp_id or None,
                    title=item.title,
                    alt=alt,
                    caption=item.excerpt,
                    image_id=image_id,
                )
            )
            if image_id is None and self.uploads is None:
                self.report.count("attachments.kept_at_old_address")
                self.report.note("media left on the old site", item.attachment_url or item.guid)

    def _image(self, item: wxr.Item) -> int | None:
        url = item.attachment_url or item.guid
        relative = _uploads_path(url)
        where = (self.uploads / relative).resolve() if relative else None
        if Path(urlsplit(url).path).suffix.lower() not in IMAGE_EXTENSIONS:
            self.report.count("attachments.not_an_image")
            self.report.note("media left on the old site", f"{url} (not an image)")
            return None
        if where is None or not where.is_relative_to(self.uploads) or not where.is_file():
            self.report.count("attachments.file_missing")
            self.report.note("media left on the old site", f"{url} (not in the uploads folder)")
            return None
        alt = dict(item.meta).get("_wp_attachment_image_alt", "")
        if self.report.dry_run:  # nothing is written in a dry run, not even a file
            self.report.count("attachments.images_created")
            return None
        try:
            image_id = publishing.create_image(path=where, title=item.title, alt=alt)
        except (OSError, ValidationError) as exc:
            self.report.note("media left on the old site", f"{url} (unreadable image: {exc})")
            return None
        from wagtail.images import get_image_model

        image = get_image_model().objects.get(pk=image_id)
        self.stored_files.append(image.file.name)
        self._remember("attachment", item.wp_id, image, url=url)
        self.report.count("attachments.images_created")
        return image_id

    # Old addresses ----------------------------------------------------------------------------

    def _old_path(self, link: str) -> str:
        path = urlsplit(link).path if link else ""
        if self.base_path and path.startswith(self.base_path + "/"):
            path = path[len(self.base_path) :]
        while "//" in path:
            path = path.replace("//", "/")
        return path

    def _redirect(self, old_path: str, to: Any, route: str | None = None) -> None:
        if old_path and publishing.add_redirect(
            site=self.site, old_path=old_path, to=to, route=route
        ):
            self.report.count("redirects.created")

    def _static_redirects(self) -> None:
        for old in ("/feed/rss2/", "/feed/rss/", "/feed/rdf/", "/comments/feed/", "/?feed=rss2"):
            self._redirect(old, "/feed/")
        self._redirect("/feed/atom/", "/feed/atom/")  # served already: no row
        self._redirect("/?feed=atom", "/feed/atom/")
        for login, person in self.people.items():
            if person is None:
                continue
            route = self.home.reverse_subpage("author", args=[person.slug])
            if slugify(login, allow_unicode=True) != person.slug:
                self._redirect(f"/author/{slugify(login, allow_unicode=True)}/", self.home, route)
            author = next((a for a in self.survey.authors if a.login == login), None)
            if author is not None and author.wp_id is not None:
                self._redirect(f"/?author={author.wp_id}", self.home, route)

    def _section_redirects(self, section: Section) -> None:
        route = self.home.reverse_subpage("section", args=[section.slug])
        chain, seen, node = [], set(), section
        while node is not None and node.pk not in seen and len(chain) < 20:
            seen.add(node.pk)
            chain.append(node.slug)
            node = node.parent
        self._redirect("/category/" + "/".join(reversed(chain)) + "/", self.home, route)
        self._redirect(f"/category/{section.slug}/", self.home, route)
        self._redirect(f"/category/{section.slug}/feed/", f"/section/{section.slug}/feed/")
        term = next(
            (t for t in self.survey.terms if t.taxonomy == "category" and t.slug == section.slug),
            None,
        )
        if term is not None and term.wp_id:
            self._redirect(f"/?cat={term.wp_id}", self.home, route)

    # Items --------------------------------------------------------------------------------------

    def item(self, item: wxr.Item) -> None:
        if item.post_type not in ("post", "page"):
            self.report.count(f"skipped.{item.post_type}")
            if item.comments:
                self.report.note(
                    "skipped",
                    f"{len(item.comments)} comments on {item.post_type} {item.wp_id} "
                    f"(only posts and pages take comments)",
                )
            return
        kind = item.post_type
        if (kind, item.wp_id) in self.seen_items:
            self.report.note("skipped", f"{kind} {item.wp_id}: appears twice in the file")
            return
        self.seen_items.add((kind, item.wp_id))
        page_id = self.known[kind].get(str(item.wp_id))
        if page_id is not None:
            page = (
                (ArticlePage if kind == "post" else StandardPage).objects.filter(pk=page_id).first()
            )
            if page is None:
                self.report.count(f"{kind}s.deleted_here")
                self.report.note(
                    "skipped", f"{kind} {item.wp_id}: deleted here since the last import"
                )
                return
            self.report.count(f"{kind}s.already_imported")
            # A post scheduled at the last import may be live now: its old addresses too.
            self._remember_old_addresses(page, item)
        else:
            page = self._create_page(item)
            if page is None:
                return
        self._comments(item, page, new_page=page_id is None)

    def _state(self, item: wxr.Item) -> publishing.State | None:
        status = item.status
        label = f"{item.post_type} {item.wp_id} “{item.title[:60]}”"
        if item.password:
            # Wagtail would keep the password in clear text; staff-only is the safe reading.
            self.report.note("private", f"{label}: password-protected, imported as private")
            return publishing.State.PRIVATE
        if status == "publish":
            return publishing.State.LIVE
        if status == "private":
            self.report.note("private", f"{label}: private")
            return publishing.State.PRIVATE
        if status == "future":
            if item.date_gmt and item.date_gmt > self.now:
                return publishing.State.SCHEDULED
            self.report.note("published", f"{label}: scheduled for a past date, published now")
            return publishing.State.LIVE
        if status in ("draft", "pending"):
            if status == "pending":
                self.report.note("drafts", f"{label}: was pending review, imported as a draft")
            return publishing.State.DRAFT
        self.report.count(f"skipped.{item.post_type}_{status or 'no_status'}")
        return None

    def _create_page(self, item: wxr.Item) -> ArticlePage | StandardPage | None:
        kind = item.post_type
        label = f"{kind} {item.wp_id}"
        state = self._state(item)
        if state is None:
            return None
        title = " ".join(html_policy.plain_text(item.title).split())
        if title != " ".join(item.title.split()):
            self.report.note("titles", f"{label}: markup removed from the title “{title}”")
        if not title:
            title = "(no title)"
            self.report.note("titles", f"{label}: no title, imported as “(no title)”")
        if len(title) > TITLE_MAX:
            self.report.count(f"{kind}s.refused")
            self.report.note("refused", f"{label}: title over {TITLE_MAX} characters")
            return None
        body = content.convert_body(
            item.content, attachments=self.attachments, item_wp_id=item.wp_id
        )
        for text in body.notes:
            self.report.note("content", f"{label}: {text}")
        for name, n in body.unknown_shortcodes.items():
            self.report.count("content.unknown_shortcodes", n)
            self.report.note("unknown shortcodes", f"{label}: [{name}] kept as text")
        for url in body.external_media:
            self.report.note("media left on the old site", f"{label}: {url}")
        standfirst = " ".join(html_policy.plain_text(item.excerpt).split())
        if not standfirst and body.teaser and len(body.teaser) <= TEASER_MAX:
            standfirst = body.teaser
        date = item.date_gmt
        if date is None:
            date = self.now
            self.report.note("dates", f"{label}: no valid date, dated at import time")
        meta = dict(item.meta)
        fields: dict[str, Any] = dict(
            title=title,
            standfirst=standfirst,
            body=body.html,
            allow_comments=item.comment_status == "open",
            owner=None,
        )
        if state is publishing.State.SCHEDULED:
            fields["go_live_at"] = date
        thumbnail = meta.get("_thumbnail_id", "")
        if kind == "post" and thumbnail.isdigit():
            attachment = self.attachments.by_id(int(thumbnail))
            if attachment is not None and attachment.image_id:
                fields["featured_image_id"] = attachment.image_id
                self.report.count("attachments.featured_images")
        if kind == "post":
            page = ArticlePage(**fields, date=date, is_sticky=item.sticky, language=self.language)
            for key, attr in BROADSHEET_META.items():
                if meta.get(key):
                    self._set_checked(page, attr, meta[key], label)
            # Our own export lists every byline; WordPress has one author per post.
            logins = [x for x in meta.get("_broadsheet_authors", "").split(",") if x]
            people = [p for p in map(self._person, logins or [item.creator]) if p is not None]
            page.article_authors = [
                ArticleAuthor(person=person, sort_order=n)
                for n, person in enumerate(dict.fromkeys(people))
            ]
            page.sections = [
                s
                for s in (
                    self._section(slug, name) for d, slug, name in item.terms if d == "category"
                )
                if s is not None
            ]
            tags = [
                t
                for t in (self._tag(slug, name) for d, slug, name in item.terms if d == "post_tag")
                if t is not None
            ]
            if tags:
                page.tags.add(*tags)
            parent = self.home
        else:
            page = StandardPage(**fields)
            parent = self.home
            if item.parent_wp_id:
                parent_id = self.pages.get(item.parent_wp_id)
                found = StandardPage.objects.filter(pk=parent_id).first() if parent_id else None
                if found is not None:
                    parent = found
        slug = slugify(item.name, allow_unicode=True) or slugify(title, allow_unicode=True)
        slug = (slug or f"{kind}-{item.wp_id}")[:200]
        if parent is self.home:
            page.slug = publishing.unique_child_slug(parent, slug, siblings=self.home_slugs)
            self.home_slugs.add(page.slug)
        else:
            page.slug = publishing.unique_child_slug(parent, slug)
        if item.name and page.slug != item.name:
            self.report.note("slugs", f"{label}: address name {item.name!r} became {page.slug!r}")
        try:
            with transaction.atomic():  # a page Wagtail refuses is reported, not fatal
                publishing.place_page(
                    parent=parent,
                    page=page,
                    state=state,
                    published_at=date,
                    updated_at=item.modified_gmt or date,
                )
        except ValidationError as exc:
            self.report.count(f"{kind}s.refused")
            self.report.note("refused", f"{label}: {'; '.join(exc.messages)}")
            if parent is self.home:
                self.home_slugs.discard(page.slug)
            return None
        self.touched.append((type(page), page.pk))
        self.pages[item.wp_id] = page.pk
        if kind == "page" and item.parent_wp_id and parent is self.home:
            self.orphans.append((page.pk, item.parent_wp_id))
        self._remember(kind, item.wp_id, page, link=item.link, guid=item.guid)
        self.report.count(f"{kind}s.{state.value}")
        self._remember_old_addresses(page, item)
        return page

    def _remember_old_addresses(self, page: Any, item: wxr.Item) -> None:
        # Added once every page is in its final place (see finish).
        old_slugs = tuple(v for k, v in item.meta if k == "_wp_old_slug" and v)
        self.old_addresses.append(
            (type(page), page.pk, item.post_type, item.wp_id, item.link, old_slugs)
        )

    def _set_checked(self, page: Any, attr: str, value: str, label: str) -> None:
        """A field from our own export's postmeta, kept only if it passes the field's rules."""
        field = page._meta.get_field(attr)
        try:
            setattr(page, attr, field.clean(value.strip(), page))
        except ValidationError as exc:
            self.report.note("not kept", f"{label}: {attr} {value[:60]!r}: {exc.messages[0]}")

    def _page_redirects(
        self, page: Any, post_type: str, wp_id: int, link: str, old_slugs: tuple[str, ...]
    ) -> None:
        """Old addresses of a page readers may see. None for drafts, scheduled and private
        pages: a redirect would tell anyone their address (and so their title) early."""
        if not page.live or page.get_view_restrictions().exists():
            self.report.count("redirects.not_for_unpublished")
            return
        old = self._old_path(link)
        if old and old != "/" and "?" not in link:
            self._redirect(old, page)
            self._redirect(old.rstrip("/") + "/feed/", page)
        key = "p" if post_type == "post" else "page_id"
        self._redirect(f"/?{key}={wp_id}", page)
        if key == "page_id":
            self._redirect(f"/?p={wp_id}", page)
        if post_type == "post" and old and old.count("/") >= 5:
            head = old.rstrip("/").rsplit("/", 1)[0]
            for old_slug in old_slugs:
                self._redirect(f"{head}/{old_slug}/", page)

    # Comments -----------------------------------------------------------------------------------

    def _id_map(self, kind: str, wp_ids: Iterable[int]) -> dict[str, int]:
        """wp key → object id for these WordPress ids, read in chunks (SQLite caps the
        number of parameters in one query)."""
        keys = sorted({str(i) for i in wp_ids if i})
        found: dict[str, int] = {}
        for start in range(0, len(keys), 500):
            found.update(
                WordPressId.objects.filter(
                    site_key=self.site_key, kind=kind, wp_key__in=keys[start : start + 500]
                ).values_list("wp_key", "object_id")
            )
        return found

    def _comments(self, item: wxr.Item, page: Any, *, new_page: bool) -> None:
        if not item.comments:
            return
        label = f"{item.post_type} {item.wp_id}"
        # A page made by this run has no comments from before: no need to look.
        known = {} if new_page else self._id_map("comment", (c.wp_id for c in item.comments))
        fresh: dict[int, wxr.Comment] = {}
        for c in item.comments:
            if str(c.wp_id) in known:
                self.report.count("comments.already_imported")
            elif c.wp_id in fresh or c.wp_id in self.seen_comments:
                self.report.note("skipped", f"{label}: comment {c.wp_id} appears twice")
            elif (problem := _comment_problem(c)) is not None:
                self.report.count("comments.refused")
                self.report.note("refused", f"{label}: comment {c.wp_id}: {problem}")
            else:
                fresh[c.wp_id] = c
        self.seen_comments.update(fresh)
        if not fresh:
            return
        thread = Thread.objects.filter(page_id=page.pk).first()
        if thread is None:
            publishing.sync_thread(page)
            thread = Thread.objects.get(page_id=page.pk)
        # Parents among comments imported before (a second file adding replies).
        old_parent_ids = {
            int(k): v
            for k, v in self._id_map(
                "comment",
                (c.parent_wp_id for c in fresh.values() if c.parent_wp_id not in fresh),
            ).items()
        }
        old_depths = dict(
            Comment.objects.filter(pk__in=old_parent_ids.values(), thread=thread).values_list(
                "pk", "depth"
            )
        )
        parent_of = self._parents(fresh, old_parent_ids, old_depths, label)
        depth: dict[int, int] = {}

        def depth_of(wp_id: int) -> int:
            chain = []
            node = wp_id
            while node not in depth:
                parent = parent_of[node]
                if parent is None:
                    depth[node] = 1
                    break
                if isinstance(parent, tuple):  # an earlier import's comment
                    depth[node] = old_depths[parent[1]] + 1
                    break
                chain.append(node)
                node = parent
            for n in reversed(chain):
                depth[n] = depth[parent_of[n]] + 1
            return depth[wp_id]

        for wp_id in fresh:
            depth_of(wp_id)
        made: dict[int, int] = {}
        records: list[WordPressId] = []
        ct = ContentType.objects.get_for_model(Comment)
        for level in sorted(set(depth.values())):
            batch = []
            ids = sorted(w for w, d in depth.items() if d == level)
            for wp_id in ids:
                c = fresh[wp_id]
                parent = parent_of[wp_id]
                if parent is None:
                    parent_pk = None
                elif isinstance(parent, tuple):
                    parent_pk = parent[1]
                else:
                    parent_pk = made[parent]
                batch.append(self._comment(c, thread, parent_pk, level, label))
            Comment.objects.bulk_create(batch, batch_size=500)
            for wp_id, obj in zip(ids, batch, strict=True):
                made[wp_id] = obj.pk
                records.append(
                    WordPressId(
                        site_key=self.site_key,
                        kind="comment",
                        wp_key=str(wp_id),
                        content_type=ct,
                        object_id=obj.pk,
                    )
                )
        WordPressId.objects.bulk_create(records, batch_size=500)
        comment_services.recompute_tree([thread.pk])  # roots: bulk_create skips save()

    def _parents(
        self,
        fresh: dict[int, wxr.Comment],
        old_parent_ids: dict[int, int],
        old_depths: dict[int, int],
        label: str,
    ) -> dict[int, int | tuple[str, int] | None]:
        """Each new comment's parent: another new comment's wp id, ``("old", pk)`` for one
        imported before, or None (top level). A missing parent or a loop makes a comment
        top-level, and is reported."""
        parent_of: dict[int, int | tuple[str, int] | None] = {}
        for wp_id, c in fresh.items():
            p = c.parent_wp_id
            if not p:
                parent_of[wp_id] = None
            elif p in fresh and p != wp_id:
                parent_of[wp_id] = p
            elif p in old_parent_ids and old_parent_ids[p] in old_depths:
                parent_of[wp_id] = ("old", old_parent_ids[p])
            else:
                parent_of[wp_id] = None
                self.report.count("comments.parent_missing")
                self.report.note(
                    "threads",
                    f"{label}: comment {wp_id}'s parent {p} "
                    + ("is itself" if p == wp_id else "is not in the file")
                    + ": made top level",
                )
        # Break loops (A → B → A): the lowest id in the loop becomes top-level.
        state: dict[int, int] = {}  # 1 = on the current path, 2 = done
        for start in fresh:
            path = []
            node: Any = start
            while isinstance(node, int) and state.get(node) is None:
                state[node] = 1
                path.append(node)
                node = parent_of[node]
            if isinstance(node, int) and state.get(node) == 1:
                loop = path[path.index(node) :]
                cut = min(loop)
                parent_of[cut] = None
                self.report.count("comments.loops_broken")
                self.report.note(
                    "threads",
                    f"{label}: comments {', '.join(map(str, loop))} were each other's parents; "
                    f"{cut} is now top level",
                )
            for n in path:
                state[n] = 2
        return parent_of

    def _comment(
        self, c: wxr.Comment, thread: Thread, parent_pk: int | None, depth: int, label: str
    ) -> Comment:
        status = COMMENT_STATUS.get(c.approved)
        if status is None:
            status = Comment.Status.PENDING
            self.report.note("held", f"{label}: comment {c.wp_id} status {c.approved!r}: held")
        kind = COMMENT_KIND.get(c.type)
        if kind is None:
            kind = Comment.Kind.COMMENT
            self.report.note("comment types", f"{label}: comment {c.wp_id} type {c.type!r}")
        email = c.email.strip()
        if email:
            try:
                validate_email(email)
            except ValidationError:
                self.report.note("cleaned", f"{label}: comment {c.wp_id}: invalid email dropped")
                email = ""
        url = html_policy.safe_url(c.url)
        if c.url.strip() and not url:
            self.report.note(
                "cleaned", f"{label}: comment {c.wp_id}: unsafe website {c.url[:80]!r} dropped"
            )
        user = self._user(c.user_wp_id, label) if c.user_wp_id else None
        meta = dict(c.meta)
        self.report.count(f"comments.{status}")
        self.report.count(f"comment_types.{kind}")
        return Comment(
            thread=thread,
            parent_id=parent_pk,
            depth=depth,
            status=status,
            kind=kind,
            author_name=c.author.strip() or "Anonymous",
            author_email=email,
            author_url=url,
            text=c.content,
            user=user,
            identified_by="account" if user else "guest",
            created_at=c.date_gmt or self.now,
            ip_address=comment_services.stored_ip(c.ip),
            user_agent=meta.get("_broadsheet_user_agent", "")[:500],
            moderation_reasons=[
                {"guard": "import", "verdict": "hold", "detail": "imported from WordPress"}
            ]
            if status != Comment.Status.APPROVED
            else [],
        )

    def _user(self, wp_user_id: int, label: str):
        """The site account of a commenter who was signed in to WordPress: the one an earlier
        import of this site made, else a new one with no usable password (claimed by a
        password reset to that address).

        Rule: never an existing account found by its email. A file can claim any address, so
        that would let whoever imports it post as anyone here, editors included; the comment
        stays a guest's comment and the report says so."""
        if wp_user_id in self.users:
            return self.users[wp_user_id]
        author = self.author_ids.get(wp_user_id)
        user = None
        if author is None:
            self.report.note(
                "threads", f"{label}: signed-in commenter {wp_user_id} is not among the authors"
            )
        else:
            user_model = get_user_model()
            found = self._lookup("user", wp_user_id, user_model)
            user = found or None
            if found is None and author.email:
                if user_model.objects.filter(email__iexact=author.email).exists():
                    self.report.note(
                        "accounts",
                        f"{author.login}: an account here already uses that email address; "
                        "their comments are imported as a guest's, not linked to it",
                    )
                else:
                    username = author.login[:150]
                    if user_model.objects.filter(username=username).exists():
                        username = f"{username[:140]}-wp{wp_user_id}"
                    user = user_model(username=username, email=author.email)
                    user.set_unusable_password()
                    user.save()
                    self.report.count("accounts.created")
                    self._remember("user", wp_user_id, user)
        self.users[wp_user_id] = user
        return user

    # After the items ------------------------------------------------------------------------

    def finish(self) -> None:
        for page_id, parent_wp_id in self.orphans:
            parent_id = self.pages.get(parent_wp_id)
            page = StandardPage.objects.get(pk=page_id)
            parent = StandardPage.objects.filter(pk=parent_id).first() if parent_id else None
            if parent is None:
                self.report.note("orphans", f"page {page.title!r}: parent {parent_wp_id} absent")
                continue
            slug = publishing.unique_child_slug(parent, page.slug)
            page.move(parent, pos="last-child")
            page = StandardPage.objects.get(pk=page_id)
            if slug != page.slug:
                page.slug = slug
                page.save(update_fields=["slug"], clean=False)
            publishing.record_revision(page)  # the saved version follows the page's new place
            publishing.sync_thread(page)
        for model, page_id, post_type, wp_id, link, old_slugs in self.old_addresses:
            page = model.objects.get(pk=page_id)
            self._page_redirects(page, post_type, wp_id, link, old_slugs)
        for attachment in self.survey.attachments:
            target = self.pages.get(attachment.parent_wp_id)
            old = self._old_path(attachment.link)
            if target is not None and old and "?" not in attachment.link:
                page = (
                    ArticlePage.objects.filter(pk=target).first()
                    or StandardPage.objects.filter(pk=target).first()
                )
                if page is not None and page.live and not page.get_view_restrictions().exists():
                    self._redirect(old, page)
                    self._redirect(f"/?attachment_id={attachment.wp_id}", page)


def _comment_problem(c: wxr.Comment) -> str | None:
    """Why a comment cannot be stored as it is, or None. Nothing is ever cut to fit."""
    if len(c.author) > NAME_MAX:
        return f"name over {NAME_MAX} characters"
    if len(c.email) > EMAIL_MAX:
        return f"email over {EMAIL_MAX} characters"
    if len(c.url) > URL_MAX:
        return f"website over {URL_MAX} characters"
    if len(c.content) > TEXT_MAX:
        return f"text over {TEXT_MAX} characters"
    if "\x00" in c.content or "\x00" in c.author:
        return "contains a NUL character"
    return None


def _uploads_path(url: str) -> str | None:
    """Where an attachment's file sits in the copied media folder: ``Y/m/file.jpg`` for
    WordPress (self-hosted or WordPress.com), ``original_images/file.jpg`` for a Broadsheet
    export (whose media folder is its MEDIA_ROOT); None for anything else."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if "/wp-content/uploads/" in path:
        return path.split("/wp-content/uploads/", 1)[1]
    if parts.netloc.endswith(".files.wordpress.com"):
        return path.lstrip("/")
    if "/original_images/" in path:
        return "original_images/" + path.rsplit("/original_images/", 1)[1]
    return None


def _language(code: str) -> str:
    code = (code or "").strip().lower()
    try:
        language_code_validator(code)
    except ValidationError:
        return settings.LANGUAGE_CODE.split("-")[0]
    return code
