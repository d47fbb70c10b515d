"""Streaming reader for WordPress eXtended RSS (WXR 1.0–1.2) files.

The file is fed in 64 KiB chunks to defusedxml's parser with a custom target that builds only
the record being read (the channel's fields, one author, one term or one item with its meta and
comments). No tree is built, every text field is capped, so memory stays bounded whatever the
file's size. DTDs, entities and external references are refused outright: WordPress never
writes them, and they are how XML files attack their readers.

Element names are matched by namespace URI, never by prefix, so a file that binds ``wp:`` to
some other URI is not read as WordPress data.
"""

from __future__ import annotations

import html
import os
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import BinaryIO
from urllib.parse import unquote
from xml.etree.ElementTree import ParseError

from defusedxml.common import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_FIELD_CHARS",
    "Author",
    "Channel",
    "Comment",
    "Item",
    "Term",
    "WXRError",
    "read_wxr",
]

CHUNK_SIZE = 64 * 1024
DEFAULT_MAX_FIELD_CHARS = 16 * 1024 * 1024
DEFAULT_MAX_BYTES = 2 * 1024 * 1024 * 1024
SUPPORTED_VERSION = re.compile(r"1\.[0-2]")

WP_NAMESPACES = frozenset(
    f"{scheme}://wordpress.org/export/{version}/"
    for scheme in ("http", "https")
    for version in ("1.0", "1.1", "1.2")
)
EXCERPT_NAMESPACES = frozenset(uri + "excerpt/" for uri in WP_NAMESPACES)
# WordPress writes these with http://; the https:// spelling is accepted like the wp ones.
CONTENT_NAMESPACES = frozenset(
    f"{s}://purl.org/rss/1.0/modules/content/" for s in ("http", "https")
)
DC_NAMESPACES = frozenset(f"{s}://purl.org/dc/elements/1.1/" for s in ("http", "https"))
WFW_NAMESPACES = frozenset(f"{s}://wellformedweb.org/CommentAPI/" for s in ("http", "https"))

_PREFIX_BY_URI = {
    **dict.fromkeys(WP_NAMESPACES, "wp"),
    **dict.fromkeys(EXCERPT_NAMESPACES, "excerpt"),
    **dict.fromkeys(CONTENT_NAMESPACES, "content"),
    **dict.fromkeys(DC_NAMESPACES, "dc"),
    **dict.fromkeys(WFW_NAMESPACES, "wfw"),
}

ZERO_DATE = "0000-00-00 00:00:00"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

ProgressCallback = Callable[[int, int | None], None]


class WXRError(Exception):
    """The file cannot be read as a WordPress export; the message says why, for a person."""


@dataclass(frozen=True)
class Channel:
    title: str
    link: str
    base_site_url: str
    base_blog_url: str
    language: str
    wxr_version: str


@dataclass(frozen=True)
class Author:
    wp_id: int | None
    login: str
    email: str
    display_name: str
    first_name: str
    last_name: str


@dataclass(frozen=True)
class Term:
    taxonomy: str  # "category", "post_tag" or another taxonomy from wp:term
    wp_id: int | None
    slug: str
    name: str
    parent_slug: str
    description: str


@dataclass(frozen=True)
class Comment:
    wp_id: int
    parent_wp_id: int
    author: str
    email: str
    url: str
    ip: str
    date_gmt: datetime | None
    date_local: datetime | None
    content: str
    approved: str
    type: str
    user_wp_id: int
    meta: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Item:
    wp_id: int
    post_type: str
    status: str
    title: str
    link: str
    guid: str
    creator: str
    content: str
    excerpt: str
    name: str
    parent_wp_id: int
    menu_order: int
    password: str
    sticky: bool
    comment_status: str
    ping_status: str
    date_gmt: datetime | None
    date_local: datetime | None
    modified_gmt: datetime | None
    attachment_url: str
    terms: tuple[tuple[str, str, str], ...]  # (domain, nicename, name)
    meta: tuple[tuple[str, str], ...]
    comments: tuple[Comment, ...]


Record = Channel | Author | Term | Item


def read_wxr(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    source_tz: tzinfo = UTC,
    progress: ProgressCallback | None = None,
) -> Iterator[Record]:
    """Yield the Channel, then Authors, Terms and Items in file order.

    ``source`` is a path or a binary file object. ``source_tz`` interprets local dates when a
    record has no GMT date (WordPress writes ``0000-00-00 00:00:00`` for drafts). A file over
    ``max_bytes`` is refused before parsing; any text field over ``max_field_chars`` stops the
    read. Every failure is a ``WXRError``. Records already yielded are not taken back, so a
    caller that must be all-or-nothing runs inside a transaction.
    """
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        try:
            fp: BinaryIO = open(source, "rb")  # noqa: SIM115 - closed in finally
        except OSError as exc:
            raise WXRError(f"{name}: cannot open the file ({exc.strerror})") from None
        owned = True
    else:
        fp = source
        name = str(getattr(source, "name", "") or "<upload>")
        owned = False
    try:
        total = _size_of(fp)
        if total is not None and total > max_bytes:
            raise WXRError(
                f"{name}: the file is {total:,} bytes, over the limit of {max_bytes:,} bytes; "
                "it was not read"
            )
        target = _Target(name=name, max_field_chars=max_field_chars, source_tz=source_tz)
        parser = DefusedXMLParser(
            target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        done = 0
        while chunk := fp.read(CHUNK_SIZE):
            done += len(chunk)
            if done > max_bytes:
                raise WXRError(
                    f"{name}: the file is over the limit of {max_bytes:,} bytes; reading stopped"
                )
            _call(parser, name, parser.feed, chunk)
            if progress is not None:
                progress(done, total)
            yield from target.drain()
        _call(parser, name, parser.close)
        yield from target.drain()
        target.check_complete()
    finally:
        if owned:
            fp.close()


def _size_of(fp: BinaryIO) -> int | None:
    try:
        return os.fstat(fp.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        pass
    try:
        if fp.seekable():
            here = fp.tell()
            end = fp.seek(0, os.SEEK_END)
            fp.seek(here)
            return end - here
    except (AttributeError, OSError, ValueError):
        pass
    return None


def _call(parser: DefusedXMLParser, name: str, method: Callable, *args) -> None:
    """Run one parser step, turning every parser failure into a WXRError."""
    try:
        method(*args)
    except ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        reason = str(exc).split(":", 1)[0]
        raise WXRError(
            f"{name}: not well-formed XML at line {line}, column {column}: {reason}"
        ) from None
    except DTDForbidden:
        raise WXRError(
            f"{name}: refused at {_where(parser)}: the file declares a DTD (<!DOCTYPE …>). "
            "WordPress exports never do, and DTDs are how entity attacks are carried"
        ) from None
    except EntitiesForbidden as exc:
        raise WXRError(
            f"{name}: refused at {_where(parser)}: the file declares the entity "
            f"'{exc.name}'. WordPress exports never do"
        ) from None
    except ExternalReferenceForbidden as exc:
        raise WXRError(
            f"{name}: refused at {_where(parser)}: the file refers to an outside resource "
            f"({exc.sysid or exc.pubid}); nothing is fetched"
        ) from None


def _where(parser: DefusedXMLParser) -> str:
    expat = getattr(parser, "parser", None)
    if expat is None:
        return "an unknown position"
    return f"line {expat.CurrentLineNumber}, column {expat.CurrentColumnNumber}"


def _canonical(tag: str) -> str | None:
    """``{uri}local`` → ``prefix:local`` for the namespaces we read; None for any other."""
    if not tag.startswith("{"):
        return tag
    uri, _, local = tag[1:].partition("}")
    prefix = _PREFIX_BY_URI.get(uri)
    return f"{prefix}:{local}" if prefix else None


_RECORDS = {"wp:author", "wp:category", "wp:tag", "wp:term", "item"}
_CHANNEL_FIELDS = {
    "title",
    "link",
    "language",
    "wp:wxr_version",
    "wp:base_site_url",
    "wp:base_blog_url",
}


class _Target:
    """Parser target: keeps the stack of open elements and the one record being built.

    Depths: 1 rss, 2 channel, 3 record or channel field, 4 record field (or item category,
    wp:postmeta, wp:comment), 5 field of those, 6 field of wp:commentmeta.
    """

    def __init__(self, *, name: str, max_field_chars: int, source_tz: tzinfo) -> None:
        self.name = name
        self.max_field_chars = max_field_chars
        self.source_tz = source_tz
        self.stack: list[str | None] = []
        self.ready: list[Record] = []
        self.seen_channel = False
        self.channel_fields: dict[str, str] = {}
        self.channel_done = False
        self.record: str | None = None
        self.fields: dict[str, str] = {}
        self.terms: list[tuple[str, str, str]] = []
        self.meta: list[tuple[str, str]] = []
        self.comments: list[Comment] = []
        self.sub: str | None = None  # "postmeta", "comment" or "category" inside an item
        self.sub_fields: dict[str, str] = {}
        self.sub_attrs: dict[str, str] = {}
        self.comment_meta: list[tuple[str, str]] = []
        self.in_commentmeta = False
        self.cm_fields: dict[str, str] = {}
        # Text capture: the dict and key the current field's text goes to, and its depth.
        self.capture: tuple[dict[str, str], str, int] | None = None
        self.buf: list[str] = []
        self.buf_len = 0

    # -- parser target interface --

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        name = _canonical(tag)
        self.stack.append(name)
        depth = len(self.stack)
        parent = self.stack[-2] if depth > 1 else None
        if depth == 1:
            if name != "rss":
                raise WXRError(
                    f"{self.name}: not a WordPress export (the document is <{tag}>, not <rss>)"
                )
        elif depth == 2:
            if name == "channel":
                self.seen_channel = True
        elif depth >= 4:
            if self.record is not None:
                self._start_in_record(name, attrib, depth)
        elif parent == "channel":
            if name in _RECORDS:
                self._emit_channel()
                self._begin_record(name)
            elif name in _CHANNEL_FIELDS and not self.channel_done:
                self._capture(self.channel_fields, name, depth)

    def _start_in_record(self, name: str | None, attrib: dict[str, str], depth: int) -> None:
        if name is None:
            return
        if depth == 4:
            if self.record == "item" and name == "category":
                self.sub = "category"
                self.sub_attrs = {k: attrib.get(k, "") for k in ("domain", "nicename")}
                for value in self.sub_attrs.values():
                    self._check_length(len(value))
                self.sub_fields = {}
                self._capture(self.sub_fields, "name", depth)
            elif self.record == "item" and name in ("wp:postmeta", "wp:comment"):
                self.sub = name[3:]
                self.sub_fields = {}
                self.comment_meta = []
            else:
                self._capture(self.fields, name, depth)
        elif depth == 5 and self.sub in ("postmeta", "comment"):
            if self.sub == "comment" and name == "wp:commentmeta":
                self.in_commentmeta = True
                self.cm_fields = {}
            else:
                self._capture(self.sub_fields, name, depth)
        elif depth == 6 and self.in_commentmeta:
            self._capture(self.cm_fields, name, depth)

    def data(self, text: str) -> None:
        if self.capture is not None and self.capture[2] == len(self.stack):
            self._check_length(self.buf_len + len(text))
            self.buf.append(text)
            self.buf_len += len(text)

    def end(self, tag: str) -> None:
        depth = len(self.stack)
        name = self.stack.pop()
        if self.capture is not None and self.capture[2] == depth:
            target, key, _ = self.capture
            target.setdefault(key, "".join(self.buf))
            self.capture = None
            self.buf = []
            self.buf_len = 0
        if self.record is None:
            if depth == 2 and name == "channel":
                self._emit_channel()
            return
        if depth == 3:
            self._finish_record()
        elif depth == 4 and self.sub is not None:
            if self.sub == "category":
                self.terms.append(
                    (
                        self.sub_attrs["domain"].strip(),
                        _slug(self.sub_attrs["nicename"]),
                        _unescape(self.sub_fields.get("name", "")),
                    )
                )
            elif self.sub == "postmeta":
                self.meta.append(
                    (
                        self.sub_fields.get("wp:meta_key", "").strip(),
                        self.sub_fields.get("wp:meta_value", ""),
                    )
                )
            elif self.sub == "comment":
                self.comments.append(self._comment())
            self.sub = None
        elif depth == 5 and self.in_commentmeta and name == "wp:commentmeta":
            self.comment_meta.append(
                (
                    self.cm_fields.get("wp:meta_key", "").strip(),
                    self.cm_fields.get("wp:meta_value", ""),
                )
            )
            self.in_commentmeta = False

    def close(self) -> None:
        return None

    # -- reader side --

    def drain(self) -> Iterator[Record]:
        ready, self.ready = self.ready, []
        yield from ready

    def check_complete(self) -> None:
        if not self.seen_channel:
            raise WXRError(f"{self.name}: not a WordPress export (no <channel> in the <rss>)")
        self._emit_channel()

    # -- helpers --

    def _check_length(self, length: int) -> None:
        if length > self.max_field_chars:
            raise WXRError(
                f"{self.name}: a field in <{self._path()}> is longer than "
                f"{self.max_field_chars:,} characters; the file was not read further"
            )

    def _path(self) -> str:
        return "/".join(n or "?" for n in self.stack)

    def _capture(self, target: dict[str, str], key: str, depth: int) -> None:
        self.capture = (target, key, depth)
        self.buf = []
        self.buf_len = 0

    def _emit_channel(self) -> None:
        if self.channel_done:
            return
        version = self.channel_fields.get("wp:wxr_version", "").strip()
        if not version:
            raise WXRError(f"{self.name}: not a WordPress export (no wp:wxr_version)")
        if not SUPPORTED_VERSION.fullmatch(version):
            raise WXRError(
                f"{self.name}: WXR version {version[:20]!r} is not supported "
                "(this reader knows 1.0, 1.1 and 1.2)"
            )
        f = self.channel_fields
        self.ready.append(
            Channel(
                title=_unescape(f.get("title", "")),
                link=f.get("link", "").strip(),
                base_site_url=f.get("wp:base_site_url", "").strip(),
                base_blog_url=f.get("wp:base_blog_url", "").strip(),
                language=f.get("language", "").strip(),
                wxr_version=version,
            )
        )
        self.channel_done = True

    def _begin_record(self, name: str) -> None:
        self.record = name
        self.fields = {}
        self.terms = []
        self.meta = []
        self.comments = []
        self.sub = None

    def _finish_record(self) -> None:
        kind, f = self.record, self.fields
        self.record = None
        if kind == "wp:author":
            self.ready.append(
                Author(
                    wp_id=_int(f.get("wp:author_id"), None),
                    login=_s(f, "wp:author_login"),
                    email=_s(f, "wp:author_email"),
                    display_name=_unescape(f.get("wp:author_display_name", "")),
                    first_name=_unescape(f.get("wp:author_first_name", "")),
                    last_name=_unescape(f.get("wp:author_last_name", "")),
                )
            )
        elif kind == "wp:category":
            self.ready.append(
                Term(
                    taxonomy="category",
                    wp_id=_int(f.get("wp:term_id"), None),
                    slug=_slug(_s(f, "wp:category_nicename")),
                    name=_unescape(f.get("wp:cat_name", "")),
                    parent_slug=_slug(_s(f, "wp:category_parent")),
                    description=_s(f, "wp:category_description"),
                )
            )
        elif kind == "wp:tag":
            self.ready.append(
                Term(
                    taxonomy="post_tag",
                    wp_id=_int(f.get("wp:term_id"), None),
                    slug=_slug(_s(f, "wp:tag_slug")),
                    name=_unescape(f.get("wp:tag_name", "")),
                    parent_slug="",
                    description=_s(f, "wp:tag_description"),
                )
            )
        elif kind == "wp:term":
            self.ready.append(
                Term(
                    taxonomy=_s(f, "wp:term_taxonomy"),
                    wp_id=_int(f.get("wp:term_id"), None),
                    slug=_slug(_s(f, "wp:term_slug")),
                    name=_unescape(f.get("wp:term_name", "")),
                    parent_slug=_slug(_s(f, "wp:term_parent")),
                    description=_s(f, "wp:term_description"),
                )
            )
        elif kind == "item":
            self.ready.append(self._item(f))

    def _item(self, f: dict[str, str]) -> Item:
        date_local = _parse_date(f.get("wp:post_date"))
        modified_local = _parse_date(f.get("wp:post_modified"))
        return Item(
            wp_id=_int(f.get("wp:post_id"), 0),
            post_type=_s(f, "wp:post_type"),
            status=_s(f, "wp:status"),
            # A WordPress title is HTML (“Title <em>With</em> markup”, “&laquo;”): kept as it
            # is, so that whoever makes text of it decodes entities exactly once.
            title=f.get("title", ""),
            link=_s(f, "link"),
            guid=_s(f, "guid"),
            creator=sanitize_user(f.get("dc:creator", "")),
            content=f.get("content:encoded", ""),
            excerpt=f.get("excerpt:encoded", ""),
            name=unquote(_s(f, "wp:post_name")),
            parent_wp_id=_int(f.get("wp:post_parent"), 0),
            menu_order=_int(f.get("wp:menu_order"), 0),
            password=f.get("wp:post_password", ""),
            sticky=_s(f, "wp:is_sticky") == "1",
            comment_status=_s(f, "wp:comment_status"),
            ping_status=_s(f, "wp:ping_status"),
            date_gmt=self._gmt(f.get("wp:post_date_gmt"), date_local),
            date_local=date_local,
            modified_gmt=self._gmt(f.get("wp:post_modified_gmt"), modified_local),
            attachment_url=_s(f, "wp:attachment_url"),
            terms=tuple(self.terms),
            meta=tuple(self.meta),
            comments=tuple(self.comments),
        )

    def _comment(self) -> Comment:
        f = self.sub_fields
        date_local = _parse_date(f.get("wp:comment_date"))
        return Comment(
            wp_id=_int(f.get("wp:comment_id"), 0),
            parent_wp_id=_int(f.get("wp:comment_parent"), 0),
            author=_unescape(f.get("wp:comment_author", "")),
            email=_s(f, "wp:comment_author_email"),
            url=_s(f, "wp:comment_author_url"),
            ip=_s(f, "wp:comment_author_IP"),
            date_gmt=self._gmt(f.get("wp:comment_date_gmt"), date_local),
            date_local=date_local,
            content=f.get("wp:comment_content", ""),
            approved=_s(f, "wp:comment_approved"),
            type=_s(f, "wp:comment_type"),
            user_wp_id=_int(f.get("wp:comment_user_id"), 0),
            meta=tuple(self.comment_meta),
        )

    def _gmt(self, gmt_text: str | None, local: datetime | None) -> datetime | None:
        """GMT date if the file has one, else the local date read in ``source_tz``."""
        gmt = _parse_date(gmt_text)
        if gmt is not None:
            return gmt.replace(tzinfo=UTC)
        if local is not None:
            return local.replace(tzinfo=self.source_tz).astimezone(UTC)
        return None


def _s(fields: dict[str, str], key: str) -> str:
    return fields.get(key, "").strip()


def _slug(text: str) -> str:
    # WordPress stores non-Latin slugs percent-encoded (%d0%bd…); the address is the decoded form.
    return unquote(text.strip())


def _unescape(text: str) -> str:
    return html.unescape(text).strip()


def _int(text: str | None, default: int | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return default


def _parse_date(text: str | None) -> datetime | None:
    """``YYYY-MM-DD HH:MM:SS`` as a naive datetime; None when empty, zero or invalid."""
    text = (text or "").strip()
    if not text or text == ZERO_DATE:
        return None
    try:
        return datetime.strptime(text, DATE_FORMAT)
    except ValueError:
        return None


_TAG = re.compile(r"<[^>]*>")
_OCTET = re.compile(r"%[a-fA-F0-9]{2}")
_ENTITY = re.compile(r"&.+?;")
_NOT_STRICT = re.compile(r"[^a-z0-9 _.\-@]", re.IGNORECASE)


def sanitize_user(text: str) -> str:
    """The equivalent of WordPress's ``sanitize_user($login, true)`` for ``dc:creator``.

    WordPress.com exports carry malformed creators such as ``>themereviewteam``; this is how
    WordPress itself turns them back into a login.
    """
    text = _TAG.sub("", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = _OCTET.sub("", text)
    text = _ENTITY.sub("", text)
    text = _NOT_STRICT.sub("", text)
    return re.sub(r"\s+", " ", text).strip()
