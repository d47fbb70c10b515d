"""WordPress post bodies → Broadsheet rich text.

``convert_body`` turns the ``content:encoded`` of a post or page into HTML ready for a Wagtail
``RichTextField``, in the order of docs/wxr-plan.md §5: newlines, ``<!--more-->``,
``<!--nextpage-->``, Gutenberg block delimiters, the shortcodes WordPress's core registers
(caption, gallery, embed, audio, video), auto-embedded URLs, paragraphs for classic posts,
imported images as Wagtail embeds, and the site's article HTML policy last, so nothing that runs
after it can add markup. Nothing is fetched from the network: an oEmbed URL stays a link.

Pure functions over strings: no Django models, no database, so it can be tested and reused by
the importer, a dry run or a script alike.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from html import escape, unescape
from urllib.parse import unquote, urlsplit

from broadsheet.core.html import (
    ARTICLE_TAGS,
    plain_text,
    safe_article_src,
    safe_url,
    sanitize_article_html,
    wpautop,
)

__all__ = ["Attachment", "AttachmentIndex", "BodyResult", "convert_body"]


# --- attachments ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    """A WordPress attachment as the body converter needs it."""

    wp_id: int
    url: str
    parent_wp_id: int | None
    title: str = ""
    alt: str = ""
    caption: str = ""
    image_id: int | None = None  # Wagtail Image pk when the file was imported from --uploads


# The part of an upload's address that names the file on every host the site was served from:
# self-hosted (…/wp-content/uploads/2013/03/f.jpg, also under sites/N/ for multisite) and
# WordPress.com (x.files.wordpress.com/2013/03/f.jpg, also behind the i0.wp.com CDN).
_UPLOAD_PATH = re.compile(r"(?:/wp-content/uploads/|\.files\.wordpress\.com/)(?P<path>.+)$")
# The sizes WordPress makes of an image: f-300x200.jpg for f.jpg.
_SIZE_SUFFIX = re.compile(r"-\d+x\d+(?=\.[A-Za-z0-9]+$)")
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "jpe", "png", "gif", "webp", "avif", "bmp"})


def _url_key(url: str) -> str:
    """Scheme-, query- and (for uploads) host-insensitive key of a media address."""
    url = unescape(url.strip())
    if url.startswith("//"):
        url = "http:" + url
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    path = unquote(parts.path)
    upload = _UPLOAD_PATH.search(parts.netloc.lower() + path)
    if upload:
        return "uploads:" + upload.group("path")
    return f"{parts.netloc.lower()}{path}"


def _extension(url: str) -> str:
    return urlsplit(url).path.rpartition(".")[2].lower()


class AttachmentIndex:
    """The file's attachments, found by WordPress id, by address or by parent post.

    ``by_url`` accepts the addresses bodies use: another host or scheme for the same upload,
    a ``?w=300`` resize query, or a ``-300x200`` intermediate size. An exact file name wins over
    a size-stripped one, because originals can look like sizes (``image-alignment-1200x4002.jpg``
    is an original in the theme test data, next to ``image-alignment-580x300.jpg``).
    """

    def __init__(self, attachments: Iterable[Attachment] = ()) -> None:
        self._by_id: dict[int, Attachment] = {}
        self._by_key: dict[str, Attachment] = {}
        self._children: dict[int, list[Attachment]] = {}
        for attachment in attachments:
            self.add(attachment)

    def add(self, attachment: Attachment) -> None:
        """Index an attachment; a second one with the same WordPress id is ignored."""
        if attachment.wp_id in self._by_id:
            return
        self._by_id[attachment.wp_id] = attachment
        key = _url_key(attachment.url)
        if key:
            self._by_key.setdefault(key, attachment)
        if attachment.parent_wp_id:
            self._children.setdefault(attachment.parent_wp_id, []).append(attachment)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Attachment]:
        return iter(self._by_id.values())

    def by_id(self, wp_id: int) -> Attachment | None:
        return self._by_id.get(wp_id)

    def by_url(self, url: str) -> Attachment | None:
        key = _url_key(url)
        if not key:
            return None
        found = self._by_key.get(key)
        if found is None:
            original = _SIZE_SUFFIX.sub("", key)
            if original != key:
                # WordPress 5.3+ keeps big originals as f-scaled.jpg and sizes as f-300x200.jpg
                scaled = re.sub(r"(?=\.[A-Za-z0-9]+$)", "-scaled", original, count=1)
                found = self._by_key.get(original) or self._by_key.get(scaled)
        return found

    def children_of(self, parent_wp_id: int) -> list[Attachment]:
        """Attachments of a post, in file order (the order a plain [gallery] shows them)."""
        return list(self._children.get(parent_wp_id, ()))


# --- result --------------------------------------------------------------------------------------


@dataclass
class BodyResult:
    html: str  # sanitised with sanitize_article_html, ready to store in a Wagtail RichTextField
    teaser: str  # plain text before <!--more--> ('' if none)
    notes: list[str]  # human-readable report lines for this item
    unknown_shortcodes: Counter[str]
    dynamic_blocks: Counter[str]  # self-closing Gutenberg blocks dropped (latest-posts, ...)
    external_media: list[str]  # media URLs left pointing at the old site


@dataclass
class _Context:
    """What one conversion learns on the way, for the report."""

    attachments: AttachmentIndex
    item_wp_id: int | None
    notes: list[str] = field(default_factory=list)
    unknown_shortcodes: Counter[str] = field(default_factory=Counter)
    dynamic_blocks: Counter[str] = field(default_factory=Counter)
    embeds: list[str] = field(default_factory=list)
    nextpages: int = 0


# --- masking -------------------------------------------------------------------------------------
#
# Steps that work on text (shortcodes, bare URLs) must not look inside tags or <pre>. Those spans
# are swapped for NUL-delimited tokens first (NUL is removed from the input) and put back after.

# A tag, with quoted attribute values that may hold ">"; or a comment.
_ATTRS_BODY = r"""(?:=\s*"[^"]*"|=\s*'[^']*'|[^>])*+"""
# A tag left open runs to the end of the text, as in a browser (and keeps every scan linear).
_TAG = re.compile(rf"<!--.*?(?:-->|\Z)|</?[a-zA-Z][^\s/>]*{_ATTRS_BODY}(?:>|\Z)", re.DOTALL)
_PRE = re.compile(r"<pre\b.*?(?:</pre\s*>|\Z)", re.DOTALL | re.IGNORECASE)
_PRE_OR_CODE = re.compile(
    r"<(pre|code)\b.*?(?:</\1\s*>|\Z)|<!--.*?(?:-->|\Z)", re.DOTALL | re.IGNORECASE
)
_TAG_LABEL = re.compile(r"</?[a-zA-Z][^\s/>]*")


class _Mask:
    """``text`` with every match of ``pattern`` replaced by "\\x00{mark}N:name\\x00" (N: its
    number; name: the tag's, "/p" for an end tag, so later patterns can tell a <p> from an <a>).
    Masks applied one over another need different marks."""

    def __init__(self, text: str, pattern: re.Pattern[str], mark: str = "T") -> None:
        self.spans: list[str] = []
        self._token = re.compile(rf"\x00{mark}(\d+):[^\x00]*\x00")

        def hide(match: re.Match[str]) -> str:
            self.spans.append(match.group(0))
            label = _TAG_LABEL.match(match.group(0))
            name = label.group(0)[1:].lower() if label else ""
            return f"\x00{mark}{len(self.spans) - 1}:{name}\x00"

        self.text = pattern.sub(hide, text)

    def span(self, token: str) -> str:
        match = self._token.fullmatch(token)
        assert match is not None
        return self.spans[int(match.group(1))]

    def restore(self, text: str) -> str:
        return self._token.sub(lambda m: self.spans[int(m.group(1))], text)


# --- steps 1–4: newlines, more, nextpage, blocks -------------------------------------------------

_MORE = re.compile(r"<!--more(?:\s[^>]{0,2000})?-->")
_NEXTPAGE = re.compile(r"<!--nextpage-->")
_BLOCK_NAME = r"[a-z][a-z0-9_-]*(?:/[a-z][a-z0-9_-]*)?"
# Gutenberg escapes "<", ">" and "--" inside the JSON, so "[^<]" cannot run past a delimiter.
_BLOCK_ATTRS = r"\{[^<]*?\}"
_BLOCK_DELIMITER = re.compile(
    rf"<!--\s+(?P<closer>/)?wp:(?P<name>{_BLOCK_NAME})(?:\s+(?P<attrs>{_BLOCK_ATTRS}))?"
    r"\s+(?P<void>/)?-->"
)
_EMBED_BLOCK = re.compile(
    rf"<!--\s+wp:(?P<name>embed|core-embed/[a-z0-9_-]+)(?:\s+(?P<attrs>{_BLOCK_ATTRS}))?\s+-->"
    # embeds hold no inner blocks: the content stops at the next delimiter
    r"(?P<inner>[^<]*+(?:<(?!!--\s+/?wp:)[^<]*+)*+)<!--\s+/wp:(?P=name)\s+-->",
    re.DOTALL,
)
_URL = r"https?://[^\s<>\"\x00]+"
_URL_LINE = re.compile(rf"^[ \t]*(?P<url>{_URL})[ \t]*$", re.MULTILINE)


def _normalise(raw: str) -> str:
    # NUL is the mask delimiter and never valid in HTML; U+FEFF is a stray BOM.
    return raw.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").replace("\ufeff", "")


def _nextpage(text: str, ctx: _Context) -> str:
    text, ctx.nextpages = _NEXTPAGE.subn("<hr>", text)
    return text


def _blocks(text: str, ctx: _Context) -> str:
    """Block delimiters out, their content kept; embed blocks reduced to their URL."""

    def embed_block(match: re.Match[str]) -> str:
        inner = match.group("inner")
        if _URL_LINE.search(inner):  # the usual form: the autoembed step links it
            return inner
        url = _json_attrs(match.group("attrs")).get("url")
        return inner + (_link_paragraph(url, ctx) if isinstance(url, str) else "")

    def delimiter(match: re.Match[str]) -> str:
        if match.group("void"):  # dynamic: WordPress renders it at view time, nothing is stored
            ctx.dynamic_blocks[match.group("name")] += 1
        return ""

    return _BLOCK_DELIMITER.sub(delimiter, _EMBED_BLOCK.sub(embed_block, text))


def _json_attrs(raw: str | None) -> dict[str, object]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --- step 5: shortcodes --------------------------------------------------------------------------
#
# WordPress's syntax: [name attrs], [name attrs /], [name attrs]content[/name]; a name is followed
# by neither a word character nor "-"; "[[name]]" is the escaped, literal "[name]". Only the names
# below are parsed; any other [word …] stays text and is counted.

KNOWN_SHORTCODES = ("caption", "wp_caption", "gallery", "embed", "audio", "video")


# The opening tag only; an enclosing tag's content is found with str.find (below), which keeps
# the scan linear where a regex would rescan the rest of the text for every unclosed tag.
_SHORTCODE_OPEN = re.compile(
    r"\[(?P<escape_open>\[?)"
    rf"(?P<name>{'|'.join(KNOWN_SHORTCODES)})(?![\w-])"
    # attributes: no bracket, and "/" only when it does not close the tag
    r"(?P<attrs>[^\[\]/]*+(?:/(?!\])[^\[\]/]*+)*+)"
    r"(?P<self_closing>/)?\]"
)
_SHORTCODE_ATTR = re.compile(
    r"""(?P<key>[\w-]+)\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s'"]+))(?:\s|$)"""
    r"""|"(?P<pdq>[^"]*)"(?:\s|$)|'(?P<psq>[^']*)'(?:\s|$)|(?P<positional>\S+)(?:\s|$)"""
)
_UNKNOWN_SHORTCODE = re.compile(r"(?<![\[\w])\[(?P<name>[a-zA-Z][\w-]*)(?:[\s/][^\[\]]*)?\]")


def parse_shortcode_attrs(text: str) -> dict[str, str]:
    """Named attributes (lower-cased keys) and positional ones under "0", "1", …"""
    text = text.replace("\xa0", " ").replace("\u200b", " ")
    attrs: dict[str, str] = {}
    position = 0
    for match in _SHORTCODE_ATTR.finditer(text):
        if match.group("key"):
            value = next(v for v in match.group("dq", "sq", "bare") if v is not None)
            attrs[match.group("key").lower()] = value
        else:
            value = next(v for v in match.group("pdq", "psq", "positional") if v is not None)
            attrs[str(position)] = value
            position += 1
    return attrs


def _shortcodes(text: str, ctx: _Context) -> str:
    counting = _Mask(text, _PRE_OR_CODE, mark="P")
    counting = _Mask(counting.text, _TAG)
    for match in _UNKNOWN_SHORTCODE.finditer(counting.text):
        if match.group("name") not in KNOWN_SHORTCODES:
            ctx.unknown_shortcodes[match.group("name")] += 1
    return _expand_shortcodes(text, ctx)


def _expand_shortcodes(text: str, ctx: _Context) -> str:
    masked = _Mask(text, _TAG)
    text = masked.text
    out: list[str] = []
    position = 0
    next_closing: dict[str, int] = {}  # name → where its next [/name] is (-1: none left)
    for match in _SHORTCODE_OPEN.finditer(text):
        if match.start() < position:  # inside the content of an enclosing shortcode
            continue
        name, end, content = match.group("name"), match.end(), None
        closing = f"[/{name}]"
        if not match.group("self_closing"):
            # WordPress: the first [/name] after the tag closes it. Searched again only when
            # passed, so unclosed tags do not each rescan the rest of the text.
            found = next_closing.get(name)
            if found is None or -1 < found < end:
                found = next_closing[name] = text.find(closing, end)
            if found != -1:
                content, end = text[end:found], found + len(closing)
        escape_close = text.startswith("]", end)
        out.append(text[position : match.start()])
        if match.group("escape_open") and escape_close:  # [[name]]: the literal [name]
            out.append(text[match.start() + 1 : end])
        else:
            attrs = parse_shortcode_attrs(masked.restore(match.group("attrs")))
            html = _HANDLERS[name](attrs, None if content is None else masked.restore(content), ctx)
            out.append(match.group("escape_open") + html + ("]" if escape_close else ""))
        position = end + escape_close
    out.append(text[position:])
    return masked.restore("".join(out))


_CAPTION_IMAGE = re.compile(
    rf"\s*(?P<image>(?:<a\b{_ATTRS_BODY}>\s*)?<img\b{_ATTRS_BODY}>(?:\s*</a\s*>)?)(?P<rest>.*)",
    re.DOTALL | re.IGNORECASE,
)
_ALIGNMENTS = frozenset({"alignnone", "alignleft", "alignright", "aligncenter"})


def _caption(attrs: dict[str, str], content: str | None, ctx: _Context) -> str:
    """[caption align=… caption="legacy text"]<a><img></a> text[/caption] → <figure>."""
    content = _expand_shortcodes(content or "", ctx)
    if "caption" in attrs:  # the legacy form: the whole content is the image
        image, text = content.strip(), attrs["caption"].strip()
    else:
        match = _CAPTION_IMAGE.fullmatch(content)
        image, text = (match["image"], match["rest"].strip()) if match else ("", content.strip())
    if not image and not text:
        ctx.notes.append("[caption] with neither an image nor a caption: removed")
        return ""
    align = attrs.get("align", "alignnone").lower()
    align = align if align in _ALIGNMENTS else f"align{align}"
    align = align if align in _ALIGNMENTS else "alignnone"
    figcaption = f"<figcaption>{text}</figcaption>" if text else ""
    return f'<figure class="{align}">{image}{figcaption}</figure>'


def _gallery(attrs: dict[str, str], content: str | None, ctx: _Context) -> str:
    """[gallery ids=… columns=N] (or the post's attached images) → a list of images."""
    index = ctx.attachments
    listed = attrs.get("ids") or attrs.get("include") or ""
    if listed:
        ids = [int(n) for n in re.findall(r"\d+", listed)]
        found = [a for n in ids if (a := index.by_id(n)) is not None]
        missing = [str(n) for n in ids if index.by_id(n) is None]
        if missing:
            ctx.notes.append(
                f"[gallery]: attachments {', '.join(missing)} not in the file, left out"
            )
    else:
        parent = int(attrs["id"]) if attrs.get("id", "").isdigit() else ctx.item_wp_id
        found = index.children_of(parent) if parent else []
    excluded = {int(n) for n in re.findall(r"\d+", attrs.get("exclude", ""))}
    found = [a for a in found if a.wp_id not in excluded]
    not_images = [a for a in found if _extension(a.url) not in IMAGE_EXTENSIONS]
    if not_images:
        names = ", ".join(str(a.wp_id) for a in not_images)
        ctx.notes.append(f"[gallery]: attachments {names} are not images, left out")
    images = [a for a in found if a not in not_images]
    if attrs.get("orderby", "").lower() == "rand":
        ctx.notes.append('[gallery orderby="rand"]: shown in a fixed order')
    if not images:
        ctx.notes.append("[gallery] with no images in the file: removed")
        return ""
    try:
        columns = min(max(int(attrs.get("columns", "3")), 1), 9)
    except ValueError:
        columns = 3
    items = "".join(f"<li>{_gallery_item(a)}</li>" for a in images)
    return f'<figure class="gallery gallery-columns-{columns}"><ul>{items}</ul></figure>'


def _gallery_item(attachment: Attachment) -> str:
    img = f'<img src="{escape(attachment.url)}" alt="{escape(attachment.alt)}">'
    if not attachment.caption.strip():
        return img
    # Gutenberg's own gallery markup: a figure per image when it has a caption.
    return f"<figure>{img}<figcaption>{attachment.caption.strip()}</figcaption></figure>"


def _embed(attrs: dict[str, str], content: str | None, ctx: _Context) -> str:
    """[embed]URL[/embed] → a plain link (no oEmbed request is made)."""
    url = unescape((content or "").strip())
    if not url:
        ctx.notes.append("[embed] without a URL: removed")
        return ""
    return _link_paragraph(url, ctx)


def _link_paragraph(url: str, ctx: _Context) -> str:
    href = safe_url(unescape(url))
    if not href:
        ctx.notes.append(f"embed of an address that is not http(s) dropped: {url[:200]}")
        return ""
    ctx.embeds.append(href)
    return f'<p><a href="{escape(href)}">{escape(href)}</a></p>'


_AUDIO_SOURCES = ("src", "mp3", "m4a", "ogg", "oga", "flac", "wav", "wma")
_VIDEO_SOURCES = ("src", "mp4", "m4v", "webm", "ogv", "wmv", "flv")
_VIDEO_TYPES = {"mp4": "video/mp4", "m4v": "video/mp4", "webm": "video/webm", "ogv": "video/ogg"}


def _media(kind: str, keys: tuple[str, ...]) -> Callable[..., str]:
    def handler(attrs: dict[str, str], content: str | None, ctx: _Context) -> str:
        """[audio src=…|mp3=…|URL], [video src=…|mp4=…|webm=…] → <audio>/<video> + a link."""
        candidates = [attrs.get(key, "") for key in keys] + [attrs.get("0", "")]
        urls = list(dict.fromkeys(u for c in candidates if (u := safe_article_src(unescape(c)))))
        if not urls:
            ctx.notes.append(f"[{kind}] without a usable file address: removed")
            return ""
        name = urlsplit(urls[0]).path.rpartition("/")[2] or urls[0]
        fallback = f'<a href="{escape(urls[0])}">{escape(unquote(name))}</a>'
        if len(urls) == 1:
            return (
                f'<{kind} controls preload="metadata" src="{escape(urls[0])}">{fallback}</{kind}>'
            )
        sources = "".join(
            f'<source src="{escape(u)}"'
            + (f' type="{_VIDEO_TYPES[ext]}"' if (ext := _extension(u)) in _VIDEO_TYPES else "")
            + ">"
            for u in urls
        )
        return f'<{kind} controls preload="metadata">{sources}{fallback}</{kind}>'

    return handler


_HANDLERS: dict[str, Callable[[dict[str, str], str | None, _Context], str]] = {
    "caption": _caption,
    "wp_caption": _caption,
    "gallery": _gallery,
    "embed": _embed,
    "audio": _media("audio", _AUDIO_SOURCES),
    "video": _media("video", _VIDEO_SOURCES),
}


# --- autoembed -----------------------------------------------------------------------------------

_HTML_ATTR = re.compile(
    r"""(?P<name>[^\s"'>/=]+)(?:\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s"'=<>`]+)))?"""
)


def _html_attrs(text: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for match in _HTML_ATTR.finditer(text):
        value = next((v for v in match.group("dq", "sq", "bare") if v is not None), "")
        attrs.setdefault(match.group("name").lower(), unescape(value))
    return attrs


# On text whose tags are masked: an iframe, a URL alone in a <p>, a URL alone on its line.
_AUTOEMBED = re.compile(
    r"(?P<iframe>\x00T\d+:iframe\x00).*?(?:\x00T\d+:/iframe\x00|\Z)"
    rf"|\x00T\d+:p\x00\s*(?P<in_paragraph>{_URL})\s*\x00T\d+:/p\x00"
    rf"|^[ \t]*(?P<on_line>{_URL})[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def _autoembed(text: str, ctx: _Context) -> str:
    """A URL alone on its line (or alone in a <p>), and an <iframe>, become a link: WordPress
    would have asked the provider for a player; we keep the address and fetch nothing."""
    pre = _Mask(text, _PRE, mark="P")
    tags = _Mask(pre.text, _TAG)

    def replace(match: re.Match[str]) -> str:
        if match.group("iframe"):
            return _iframe_link(tags.span(match.group("iframe")), ctx)
        return _link_paragraph(match.group("in_paragraph") or match.group("on_line"), ctx)

    return pre.restore(tags.restore(_AUTOEMBED.sub(replace, tags.text)))


def _iframe_link(start_tag: str, ctx: _Context) -> str:
    src = _html_attrs(start_tag[len("<iframe") :].rstrip(">")).get("src", "")
    if src.startswith("//"):
        src = "https:" + src
    if not safe_url(src):
        ctx.notes.append("<iframe> without an http(s) address: removed")
        return ""
    return _link_paragraph(src, ctx)


# --- step 7: images ------------------------------------------------------------------------------

_TAG_SPLIT = re.compile(f"({_TAG.pattern})", re.DOTALL)
_IMG_START = re.compile(r"<img[\s/>]", re.IGNORECASE)
_A_START = re.compile(r"<a[\s>]", re.IGNORECASE)
_A_END = re.compile(r"</a\s*>", re.IGNORECASE)
_LONE_EMBED = re.compile(r"<p>\s*(<embed\b[^>]*/>)\s*</p>")
_FORMATS = {"alignleft": "left", "alignright": "right"}


def _images(html: str, ctx: _Context) -> str:
    """<img> of an imported attachment → Wagtail's <embed embedtype="image" …/>.

    A link around it to the same file (WordPress's "link to media file") goes too: it would
    point at the old site. Images that were not imported keep their address."""
    parts = _TAG_SPLIT.split(html)  # text at even indexes, tags at odd ones
    for i in range(1, len(parts), 2):
        if not _IMG_START.match(parts[i]):
            continue
        attrs = _html_attrs(parts[i][4:].rstrip(">"))
        attachment = ctx.attachments.by_url(attrs.get("src", ""))
        if attachment is None or attachment.image_id is None:
            continue
        classes = attrs.get("class", "").split()
        image_format = next((_FORMATS[c] for c in classes if c in _FORMATS), "fullwidth")
        alt = attrs.get("alt", "").strip() or attachment.alt
        parts[i] = (
            f'<embed embedtype="image" id="{attachment.image_id}" format="{image_format}"'
            f' alt="{escape(alt)}"/>'
        )
        before, after = i - 2, i + 2
        if (
            after < len(parts)
            and not parts[i - 1].strip()
            and not parts[i + 1].strip()
            and _A_START.match(parts[before])
            and _A_END.match(parts[after])
        ):
            href = _html_attrs(parts[before][2:].rstrip(">")).get("href", "")
            target = ctx.attachments.by_url(href) if href else None
            if target is not None and target.image_id == attachment.image_id:
                parts[before] = parts[after] = ""
    return _LONE_EMBED.sub(r"\1", "".join(parts))


# --- report helpers ------------------------------------------------------------------------------

_MEDIA_SRC = re.compile(r'<(?:img|audio|video|source)\b[^>]*?\ssrc="([^"]*)"')
_LINK_HREF = re.compile(r'<a\b[^>]*?\shref="([^"]*)"')
_BLANK_LINES = re.compile(r"\n\s*\n")
_STYLE_URL = re.compile(r"""style\s*=\s*(?:"[^"]*url\(|'[^']*url\()""", re.IGNORECASE)


def _dropped_elements(html: str) -> Counter[str]:
    """Elements the article policy will remove, for the report (iframes, forms, …)."""
    names: Counter[str] = Counter()
    for tag in _TAG.finditer(html):
        label = _TAG_LABEL.match(tag.group(0))
        name = label.group(0)[1:].lower() if label else "/"
        if not name.startswith("/") and name not in ARTICLE_TAGS:
            names[name] += 1  # "o:p" from Word, "iframe", "form", …
    return names


def _external_media(html: str, attachments: AttachmentIndex) -> list[str]:
    """Media the body still loads or links from the old site, in order, once each."""
    urls = [unescape(u) for u in _MEDIA_SRC.findall(html)]
    for href in (unescape(h) for h in _LINK_HREF.findall(html)):
        if attachments.by_url(href) is not None or _UPLOAD_PATH.search(href):
            urls.append(href)
    return list(dict.fromkeys(urls))


def _tidy(html: str) -> str:
    """Blank lines left by removed delimiters collapsed (never inside <pre> or a tag)."""
    pre = _Mask(html, _PRE, mark="P")
    tags = _Mask(pre.text, _TAG)
    return pre.restore(tags.restore(_BLANK_LINES.sub("\n\n", tags.text))).strip()


def _counted(counter: Counter[str]) -> str:
    return ", ".join(name if n == 1 else f"{name} ×{n}" for name, n in counter.most_common())


# --- the pipeline --------------------------------------------------------------------------------


def _markup(text: str, ctx: _Context, *, blocks: bool) -> str:
    """Steps 3–6: everything up to, not including, images and sanitising."""
    text = _nextpage(text, ctx)
    if blocks:
        text = _blocks(text, ctx)
    text = _shortcodes(text, ctx)
    text = _autoembed(text, ctx)
    if not blocks:  # WordPress adds paragraphs to classic posts when it shows them
        text = wpautop(text)
    return text


def convert_body(
    raw: str, *, attachments: AttachmentIndex, item_wp_id: int | None = None
) -> BodyResult:
    """A WordPress ``content:encoded`` → sanitised rich-text HTML plus what the report needs.

    ``item_wp_id`` is the post's WordPress id: a ``[gallery]`` without ids shows the images
    attached to it. Unknown shortcodes, external media and dynamic blocks are returned as data
    (not in ``notes``) so the importer can count them.
    """
    text = _normalise(raw)
    blocks = "<!-- wp:" in text
    ctx = _Context(attachments=attachments, item_wp_id=item_wp_id)
    notes: list[str] = []

    teaser = ""
    more = _MORE.search(text)
    if more:
        # The teaser is what WordPress showed on listings: the converted text before the marker.
        scratch = _Context(attachments=attachments, item_wp_id=item_wp_id)
        before = sanitize_article_html(_markup(text[: more.start()], scratch, blocks=blocks))
        teaser = " ".join(plain_text(before).split())
        notes.append(
            f"<!--more--> removed; the {len(teaser)} characters before it are the teaser"
            if teaser
            else "<!--more--> removed (no text before it)"
        )
    text = _MORE.sub("", text)

    html = _markup(text, ctx, blocks=blocks)
    dropped = _dropped_elements(html)
    # Wagtail's own references (<embed embedtype=… id=…/>, <a linktype=…>) never come from a
    # WordPress body: a file holding them would point at this site's pages, images or oEmbed
    # finders. They go first; then only the image step writes embeds, for files it imported.
    html = sanitize_article_html(html, wagtail_references=False)
    html = _tidy(_images(html, ctx))
    html = sanitize_article_html(html)

    if ctx.nextpages:
        notes.append(
            f"<!--nextpage--> ×{ctx.nextpages} replaced by <hr> "
            f"(WordPress showed it as {ctx.nextpages + 1} pages)"
        )
    if ctx.dynamic_blocks:
        notes.append(
            "dynamic blocks dropped (WordPress built them when the page was viewed): "
            + _counted(ctx.dynamic_blocks)
        )
    notes.extend(dict.fromkeys(ctx.notes))  # a note repeated by ten galleries is shown once
    if ctx.embeds:
        notes.append("embeds kept as plain links (nothing fetched): " + ", ".join(ctx.embeds))
    if dropped:
        notes.append("removed by the site's HTML policy: " + _counted(dropped))
    if styled := len(_STYLE_URL.findall(text)):
        notes.append(f"background images in style attributes dropped: {styled}")
    return BodyResult(
        html=html,
        teaser=teaser,
        notes=notes,
        unknown_shortcodes=ctx.unknown_shortcodes,
        dynamic_blocks=ctx.dynamic_blocks,
        external_media=_external_media(html, attachments),
    )
