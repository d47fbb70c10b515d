"""The HTML policy: one place that decides what reader-supplied markup may reach any surface.

Comment text is stored as the reader typed it, and beside it the result of `render_comment`
(``Comment.text_html``, made on save) stamped with `COMMENT_POLICY`, a fingerprint of this
policy: every surface (article page, moderation queue, feeds, mail, API) shows that stored HTML
only while its stamp is the current one, and renders the text again otherwise, so a change of
policy applies at once, everywhere. Sanitizing is always the *last* step, so nothing that runs
after it can reintroduce markup (the WordPress CVE-2015-3440 class).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from html import escape, unescape
from typing import Any

import nh3
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.safestring import SafeString, mark_safe

# WordPress's allowed comment tags, plus the paragraphs and line breaks formatting makes.
COMMENT_TAGS = frozenset(
    {"a", "abbr", "b", "blockquote", "cite", "code", "del", "em", "i", "q", "s", "strong"}
    | {"p", "br"}
)
# "*": no attribute on every tag (nh3 would otherwise allow lang and title everywhere).
COMMENT_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "*": set()}
LINK_REL = "nofollow ugc noopener"
SAFE_SCHEMES = ("http://", "https://")

_BLOCK_START = re.compile(r"^\s*<(blockquote|p)[\s>]", re.IGNORECASE)
_PARAGRAPH_SPLIT = re.compile(r"\n[ \t]*\n+")


def safe_url(value: str | None) -> str:
    """An absolute http(s) URL, or "" — never javascript:, data:, relative or protocol-relative."""
    if not value:
        return ""
    value = value.strip()
    lowered = value.lower()
    if not lowered.startswith(SAFE_SCHEMES):
        return ""
    if any(ch in value for ch in "\x00\r\n\t<>\"'` "):
        return ""
    return value


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "a" and attribute == "href":
        return safe_url(value) or None
    return value


def _clean_once(html: str) -> str:
    return nh3.clean(
        html,
        tags=set(COMMENT_TAGS),
        attributes={tag: set(attrs) for tag, attrs in COMMENT_ATTRIBUTES.items()},
        attribute_filter=_filter_attribute,
        link_rel=LINK_REL,
        url_schemes={"http", "https"},
        strip_comments=True,
    )


def sanitize_comment_html(html: str) -> str:
    """Apply the comment policy to a fragment of HTML.

    Two passes: when nh3 drops an element such as ``<object>`` it can leave children that an
    HTML parser re-nests differently (``<p><p></p></p>``); the second pass reaches the fixed
    point, so the output passes the sanitizer again unchanged (catalog X03/X04).
    """
    return _clean_once(_clean_once(html))


def autop(text: str) -> str:
    """Paragraphs from blank lines, <br> from single line breaks (like WordPress's wpautop)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return ""
    blocks = []
    for chunk in _PARAGRAPH_SPLIT.split(text):
        chunk = chunk.strip("\n")
        if not chunk.strip():
            continue
        inner = chunk.replace("\n", "<br>\n")
        blocks.append(inner if _BLOCK_START.match(chunk) else f"<p>{inner}</p>")
    return "\n".join(blocks)


def render_comment(text: str) -> str:
    """Reader's text → safe HTML. Formatting first, sanitizing last."""
    return sanitize_comment_html(autop(text))


# Bump when `render_comment` would give another result for the same text in a way the fingerprint
# below cannot see (a change to `autop`, `_filter_attribute` or the two-pass rule).
COMMENT_POLICY_REVISION = 1


def _policy_fingerprint() -> str:
    material = repr(
        (
            COMMENT_POLICY_REVISION,
            sorted(COMMENT_TAGS),
            sorted((tag, sorted(attrs)) for tag, attrs in COMMENT_ATTRIBUTES.items()),
            LINK_REL,
            SAFE_SCHEMES,
            getattr(nh3, "__version__", ""),  # a sanitizer upgrade may fix what it let through
        )
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


# Stamped on stored comment HTML: HTML stamped otherwise was made by another policy.
COMMENT_POLICY = _policy_fingerprint()


def plain_text(html_or_text: str) -> str:
    """Every tag removed and entities decoded: text as a reader would read it. This is text,
    not HTML: whoever puts it in a page escapes it (templates do)."""
    return unescape(nh3.clean(html_or_text, tags=set(), strip_comments=True))


def excerpt(text: str, length: int = 140) -> SafeString:
    """A short excerpt for listings and mail previews, as escaped HTML.

    Cut on the plain text (never inside a tag or an entity, and by code point so never inside
    a character), then escaped, so it is safe wherever it is placed.
    """
    flat = " ".join(plain_text(text).split())
    if len(flat) > length:
        flat = flat[: length - 1].rstrip() + "…"
    return mark_safe(escape(flat, quote=True))  # noqa: S308 — escaped here


_SCRIPT_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def json_for_html(data: Any) -> SafeString:
    """JSON that cannot close a ``<script>`` element or be sniffed as HTML: ``<``, ``>`` and
    ``&`` escaped as Django's ``json_script`` does, and the JavaScript line terminators
    U+2028/U+2029. For JSON-LD and JSON responses alike."""
    text = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False)
    return mark_safe(text.translate(_SCRIPT_ESCAPES))  # noqa: S308 — escaped here


def link(url: str, label: str) -> str:
    """An <a> to a reader-supplied website, or the escaped label alone when the URL is unsafe."""
    href = safe_url(url)
    if not href:
        return escape(label)
    return f'<a href="{escape(href, quote=True)}" rel="external {LINK_REL}">{escape(label)}</a>'


# --- Article bodies ------------------------------------------------------------------------------
#
# Bodies of articles and pages are written by the site's editors or imported from WordPress, so
# the policy is wider than for comments (headings, tables, figures, media), but it is still an
# allow-list applied on every surface: on import, and again on output after Wagtail's
# ``expand_db_html`` (page, feed, export), so a body that reached the database by any path is held
# to the same rule.

_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# The tags of WordPress's "Markup: HTML Tags and Formatting" post, figures and media, and
# Wagtail's rich-text ``embed`` (its database format for images).
ARTICLE_TAGS = frozenset(
    _HEADINGS
    | {"p", "br", "hr", "a", "abbr", "acronym", "address", "b", "big", "blockquote", "cite"}
    | {"code", "del", "dfn", "em", "i", "ins", "kbd", "q", "s", "samp", "small", "strike"}
    | {"strong", "sub", "sup", "tt", "u", "var", "pre", "ul", "ol", "li", "dl", "dt", "dd"}
    | {"table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"}
    | {"figure", "figcaption", "img", "audio", "video", "source", "span", "div", "embed"}
)
# Elements whose *content* goes too: raw text that would otherwise be shown escaped, or markup
# that only makes sense with the element (nh3 drops script/style content by default).
ARTICLE_DROP_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "noscript", "noembed", "noframes", "template", "object"}
    | {"applet", "textarea", "select", "xmp", "title"}
)
# Blocks that may keep ``style="text-align: …"`` (WordPress's alignment buttons write it).
_ALIGNABLE = _HEADINGS | {"p", "div", "blockquote", "li", "td", "th", "figure", "figcaption"}
_ARTICLE_OWN_ATTRIBUTES: dict[str, frozenset[str]] = {
    # id is a Wagtail page/document id here (digits only, see _filter_article_attribute).
    "a": frozenset({"href", "title", "linktype", "id"}),
    "abbr": frozenset({"title"}),
    "acronym": frozenset({"title"}),
    "img": frozenset({"src", "alt", "width", "height"}),
    "audio": frozenset({"controls", "src", "preload"}),
    "video": frozenset({"controls", "src", "preload"}),
    "source": frozenset({"src", "type"}),
    "th": frozenset({"colspan", "rowspan"}),
    "td": frozenset({"colspan", "rowspan"}),
    "ol": frozenset({"start", "reversed"}),
}
# Every tag but Wagtail's embed may carry the allow-listed classes (filtered in
# _filter_article_attribute); the embed keeps exactly what Wagtail's rewriter reads.
ARTICLE_ATTRIBUTES: dict[str, frozenset[str]] = {
    **{
        tag: _ARTICLE_OWN_ATTRIBUTES.get(tag, frozenset())
        | {"class"}
        | ({"style"} if tag in _ALIGNABLE else set())
        for tag in ARTICLE_TAGS - {"embed"}
    },
    # url: a media embed (a video the editor pasted), expanded by Wagtail's oEmbed finder.
    "embed": frozenset({"embedtype", "id", "format", "alt", "url"}),
    "*": frozenset(),  # nh3 would otherwise allow lang and title everywhere
}
# Layout classes the site's stylesheet knows: WordPress's alignment and gallery classes, and
# the ones Wagtail's image formats put on the <img> that expand_db_html writes.
ARTICLE_CLASSES = frozenset(
    {"alignleft", "alignright", "aligncenter", "alignnone", "alignwide", "alignfull"}
    | {f"has-text-align-{side}" for side in ("left", "center", "right", "justify")}
    | {"gallery", *(f"gallery-columns-{n}" for n in range(1, 10))}
    | {"wp-caption", "wp-caption-text", "richtext-image", "left", "right", "full-width"}
)
_TEXT_ALIGN = re.compile(
    r"\s*text-align\s*:\s*(left|right|center|justify|start|end)\s*(?:!important\s*)?;?\s*",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d{1,10}")
_WORD = re.compile(r"[a-z][a-z0-9_-]{0,49}")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f<>\"`\\]")
_EMBED_TAG = re.compile(r"<embed\b([^>]*?)\s*/?>")
_PRE_START_NEWLINE = re.compile(r"(<pre\b[^>]*>)\n")


def _site_path(value: str) -> str:
    """A site-relative path ("/media/…"), or "" — never "//host" or "/\\host" (other hosts)."""
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return ""
    return "" if _CONTROL_OR_SPACE.search(value) else value


def _absolute_url(value: str) -> str:
    # Quotes and spaces are common in old links ("Dante's_Inferno"); encoding them keeps the
    # link and still never puts a quote in the output.
    return safe_url(value.replace("'", "%27").replace(" ", "%20"))


def safe_article_src(value: str | None) -> str:
    """An http(s) URL or a site-relative path for img/audio/video/source, or ""."""
    value = (value or "").strip()
    return _site_path(value) or _absolute_url(value)


def safe_article_href(value: str | None) -> str:
    """A link target allowed in an article body, or "".

    Wider than ``safe_url`` (comments): site-relative paths ("/about/") and "#anchors", which
    editors and Wagtail use, and ``mailto:`` addresses, common in articles. Never
    ``javascript:``, ``data:`` or a protocol-relative "//host".
    """
    value = (value or "").strip()
    if value.startswith("#"):
        return "" if _CONTROL_OR_SPACE.search(value) else value
    if value.lower().startswith("mailto:"):
        return "" if _CONTROL_OR_SPACE.search(value) else value
    return _site_path(value) or _absolute_url(value)


def _filter_article_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "href":
        return safe_article_href(value) or None
    if attribute == "src":
        return safe_article_src(value) or None
    if attribute == "url":  # embed: an absolute http(s) address only
        return safe_url(value) or None
    if attribute == "class":
        # Filtered here rather than with nh3's allowed_classes, which leaves class="" behind.
        kept = [name for name in value.split() if name in ARTICLE_CLASSES]
        return " ".join(dict.fromkeys(kept)) or None
    if attribute == "style":
        # Only a text-align keyword; every other property (position, background: url(…), …)
        # goes, and so does a style that keeps nothing.
        for declaration in value.split(";"):
            match = _TEXT_ALIGN.fullmatch(declaration + ";")
            if match:
                return f"text-align: {match.group(1).lower()}"
        return None
    if attribute == "id":  # a, embed: Wagtail ids, never a name that could clobber the page's DOM
        return value if _NUMBER.fullmatch(value) else None
    if attribute in {"linktype", "embedtype", "format"}:
        return value if _WORD.fullmatch(value) else None
    if attribute in {"width", "height", "colspan", "rowspan", "start"}:
        return value if _NUMBER.fullmatch(value.strip()) else None
    if attribute == "preload":
        return value if value in {"none", "metadata", "auto"} else None
    return value


_CLEANER_OPTIONS = dict(
    clean_content_tags=set(ARTICLE_DROP_WITH_CONTENT),
    attribute_filter=_filter_article_attribute,
    link_rel="noopener",
    url_schemes={"http", "https", "mailto"},
    filter_style_properties={"text-align"},
    strip_comments=True,
)
_ARTICLE_CLEANER = nh3.Cleaner(
    tags=set(ARTICLE_TAGS),
    attributes={tag: set(attrs) for tag, attrs in ARTICLE_ATTRIBUTES.items()},
    **_CLEANER_OPTIONS,
)
# The same policy without Wagtail's references, for HTML from outside (an imported body).
_OUTSIDE_CLEANER = nh3.Cleaner(
    tags=set(ARTICLE_TAGS - {"embed"}),
    attributes={
        tag: set(attrs - {"linktype", "id"} if tag == "a" else attrs)
        for tag, attrs in ARTICLE_ATTRIBUTES.items()
        if tag != "embed"
    },
    **_CLEANER_OPTIONS,
)


def _self_close_embeds(html: str) -> str:
    # Wagtail finds embeds in stored rich text with r"<embed(\b[^>]*)/>"; nh3 writes void
    # elements without the slash. nh3 escapes ">" inside attribute values, so [^>] is exact.
    # An embed without an embedtype means nothing to Wagtail: it goes.
    return _EMBED_TAG.sub(
        lambda m: f"<embed{m.group(1)}/>" if _usable_embed(m.group(1)) else "", html
    )


# Wagtail's default image formats; an embed naming another would fail when expanded.
IMAGE_FORMATS = frozenset({"fullwidth", "left", "right"})
_ATTRIBUTE = re.compile(r'\s([a-z]+)="([^"]*)"')


def _usable_embed(attributes: str) -> bool:
    """Only what Wagtail can expand: an image by id in a known format, or media by URL."""
    attrs = dict(_ATTRIBUTE.findall(attributes))
    if attrs.get("embedtype") == "image":
        return bool(attrs.get("id")) and attrs.get("format", "fullwidth") in IMAGE_FORMATS
    if attrs.get("embedtype") == "media":
        return bool(attrs.get("url"))
    return False


def _clean_article_once(html: str, cleaner: nh3.Cleaner = _ARTICLE_CLEANER) -> str:
    html = cleaner.clean(html)
    # A parser drops the newline right after <pre>, and nh3 does not write it back as HTML's
    # serializer does, so each pass would eat one: put it back.
    html = _PRE_START_NEWLINE.sub("\\1\n\n", html)
    return _self_close_embeds(html)


def sanitize_article_html(html: str, *, wagtail_references: bool = True) -> str:
    """Apply the article policy to a body (stored or about to be shown).

    Accepts Wagtail's database format (``<embed embedtype="image" …/>``, ``<a linktype="page"
    id="…">``) and what ``expand_db_html`` makes of it (``<img class="richtext-image left" …>``,
    site-relative links), so the same function runs on input and on output. With
    ``wagtail_references=False`` (HTML from outside, such as an imported body) those references
    are removed too. Two passes reach the fixed point, as for comments.
    """
    cleaner = _ARTICLE_CLEANER if wagtail_references else _OUTSIDE_CLEANER
    return _clean_article_once(_clean_article_once(html, cleaner), cleaner)


# --- wpautop -------------------------------------------------------------------------------------
#
# WordPress stores classic (pre-block) posts without paragraph markup and adds it when a page is
# viewed. The importer adds it once, on import. The text is split into tokens (tags, comments,
# text), block elements are grouped into a shallow tree, and paragraphs are made only where
# running text sits at the level of a block container: never around a block, never inside
# <pre>.

_TOKEN = re.compile(
    r"(?P<comment><!--.*?(?:-->|\Z))"
    # A quote only opens an attribute value after "=", as in HTML's tokenizer ("don't" is text).
    # A tag left open runs to the end of the text, as in a browser (and keeps this linear).
    r"|(?P<tag></?(?P<name>[a-zA-Z][^\s/>]*)(?:=\s*\"[^\"]*\"|=\s*'[^']*'|[^>])*+(?:>|\Z))",
    re.DOTALL,
)
_BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")
# Containers whose text runs are always paragraphs (WordPress puts <p> in a blockquote).
_FLOW = frozenset({"blockquote"})
# Containers that hold a line of text: newlines become <br>, never paragraphs.
_PHRASING = _HEADINGS | {"p", "dt", "caption", "summary", "legend", "figcaption"}
# Containers that get paragraphs only when their text has a blank line in it.
_LOOSE = frozenset(
    {"div", "li", "dd", "td", "th", "figure", "address", "ul", "ol", "dl", "table", "thead"}
    | {"tbody", "tfoot", "tr", "colgroup", "section", "article", "aside", "header", "footer"}
    | {"nav", "main", "details", "fieldset", "form", "hgroup", "menu"}
)
# Blocks whose content is kept byte for byte.
_OPAQUE = frozenset(
    {"pre", "script", "style", "textarea", "audio", "video", "object", "iframe", "svg", "math"}
    | {"select", "noscript", "template", "canvas", "map"}
)
_VOID_BLOCKS = frozenset({"hr", "embed", "col", "source", "track", "area"})
_CONTAINERS = _FLOW | _PHRASING | _LOOSE
# A new block ends an open <p>; a new <li> ends the previous one, and so on (as browsers do).
_CLOSED_BY = {
    "li": frozenset({"p", "li"}),
    "dt": frozenset({"p", "dt", "dd"}),
    "dd": frozenset({"p", "dt", "dd"}),
    "tr": frozenset({"p", "tr", "td", "th"}),
    "td": frozenset({"p", "td", "th"}),
    "th": frozenset({"p", "td", "th"}),
}
_MAX_DEPTH = 100  # deeper nesting is left as it is (and keeps the recursion bounded)


@dataclass
class _Token:
    kind: str  # "text", "comment", "start" or "end"
    raw: str
    name: str = ""


@dataclass
class _Block:
    name: str
    start: str
    children: list[_Token | _Block] = field(default_factory=list)
    end: str = ""
    raw: str | None = None  # the untouched content of an opaque block


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() > position:
            tokens.append(_Token("text", text[position : match.start()]))
        if match.group("comment"):
            tokens.append(_Token("comment", match.group(0)))
        else:
            raw = match.group(0)
            kind = "end" if raw.startswith("</") else "start"
            tokens.append(_Token(kind, raw, match.group("name").lower()))
        position = match.end()
    if position < len(text):
        tokens.append(_Token("text", text[position:]))
    return tokens


def _block_tree(tokens: list[_Token]) -> _Block:
    root = _Block("", "")
    stack = [root]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        name = token.name
        if token.kind == "start" and name in _OPAQUE:
            depth, j = 1, i
            while j < len(tokens):  # the matching end tag, counting nested same-name tags
                if tokens[j].name == name:
                    depth += 1 if tokens[j].kind == "start" else -1
                    if depth == 0:
                        break
                j += 1
            raw = "".join(t.raw for t in tokens[i:j])
            end = tokens[j].raw if j < len(tokens) else f"</{name}>"
            stack[-1].children.append(_Block(name, token.raw, end=end, raw=raw))
            i = j + 1
        elif token.kind == "start" and (name in _VOID_BLOCKS or name in _CONTAINERS):
            closes = _CLOSED_BY.get(name, frozenset({"p"}))
            while stack[-1].name in closes:
                _close(stack)
            if name in _VOID_BLOCKS:
                stack[-1].children.append(_Block(name, token.raw, raw=""))
            elif len(stack) > _MAX_DEPTH:
                stack[-1].children.append(token)
            else:
                block = _Block(name, token.raw)
                stack[-1].children.append(block)
                stack.append(block)
        elif token.kind == "end" and any(block.name == name for block in stack[1:]):
            while stack[-1].name != name:
                _close(stack)
            stack.pop().end = token.raw
        else:
            stack[-1].children.append(token)  # text, inline tags, stray end tags
    while len(stack) > 1:  # unclosed at the end
        _close(stack)
    return root


def _close(stack: list[_Block]) -> None:
    """End the innermost open block where a browser would end it implicitly."""
    block = stack.pop()
    block.end = f"</{block.name}>"


def _has_text(run: list[_Token]) -> bool:
    return any(
        t.kind == "start" or t.kind == "end" or t.raw.strip() for t in run if t.kind != "comment"
    )


def _line_breaks(run: list[_Token]) -> str:
    """A run of inline content with its inner newlines as <br> (none after an existing <br>)."""
    out: list[str] = []
    after_br = False
    for token in run:
        if token.kind != "text":
            out.append(token.raw)
            if token.kind != "comment":
                after_br = token.kind == "start" and token.name == "br"
            continue
        lines = token.raw.split("\n")
        for n, line in enumerate(lines):
            if n:
                out.append("\n" if after_br else "<br>\n")
                after_br = True
            out.append(line)
            if line.strip():
                after_br = False
    return "".join(out)


def _trimmed(run: list[_Token]) -> tuple[str, list[_Token], str]:
    """Split a run into its leading whitespace, its content and its trailing whitespace."""
    run = list(run)
    lead = trail = ""
    while run and run[0].kind == "text" and not run[0].raw.strip():
        lead += run.pop(0).raw
    while run and run[-1].kind == "text" and not run[-1].raw.strip():
        trail = run.pop().raw + trail
    if run and run[0].kind == "text":
        stripped = run[0].raw.lstrip()
        lead += run[0].raw[: len(run[0].raw) - len(stripped)]
        run[0] = _Token("text", stripped)
    if run and run[-1].kind == "text":
        stripped = run[-1].raw.rstrip()
        trail = run[-1].raw[len(stripped) :] + trail
        run[-1] = _Token("text", stripped)
    return lead, run, trail


def _paragraphs(run: list[_Token]) -> list[str]:
    """Running text at block level: one <p> per blank-line-separated chunk."""
    chunks: list[list[_Token]] = [[]]
    for token in run:
        if token.kind != "text":
            chunks[-1].append(token)
            continue
        pieces = _BLANK_LINE.split(token.raw)
        chunks[-1].append(_Token("text", pieces[0]))
        for piece in pieces[1:]:
            chunks.append([_Token("text", piece)])
    out = []
    for chunk in chunks:
        _, content, _ = _trimmed(chunk)
        if _has_text(content):
            out.append(f"<p>{_line_breaks(content)}</p>")
        elif content:  # comments only: kept, never wrapped
            out.append("".join(t.raw for t in content))
    return out


def _runs(children: list[_Token | _Block]) -> list[list[_Token] | _Block]:
    grouped: list[list[_Token] | _Block] = []
    for child in children:
        if isinstance(child, _Block):
            grouped.append(child)
        elif grouped and isinstance(grouped[-1], list):
            grouped[-1].append(child)
        else:
            grouped.append([child])
    return grouped


def _render(children: list[_Token | _Block], *, flow: bool) -> str:
    parts: list[str] = []
    for item in _runs(children):
        if isinstance(item, _Block):
            parts.append(_render_block(item))
        elif flow:
            parts.extend(_paragraphs(item))
        elif _has_text(item):
            lead, content, trail = _trimmed(item)
            parts.append(lead + _line_breaks(content) + trail)
        else:
            parts.append("".join(t.raw for t in item))
    return "\n".join(parts) if flow else "".join(parts)


def _render_block(block: _Block) -> str:
    if block.raw is not None:  # void or opaque
        return block.start + block.raw + block.end
    if block.name in _FLOW:
        flow = True
    elif block.name in _PHRASING:
        flow = False
    else:  # loose: paragraphs only if the author left a blank line inside running text
        flow = any(
            isinstance(item, list)
            and _has_text(item)
            and _BLANK_LINE.search(_text_of(_trimmed(item)[1]))
            for item in _runs(block.children)
        )
    return block.start + _render(block.children, flow=flow) + block.end


def _text_of(run: list[_Token]) -> str:
    return "".join(t.raw for t in run if t.kind == "text")


def wpautop(text: str) -> str:
    """Paragraphs for a classic WordPress body: blank lines end a paragraph, single newlines
    become <br>. Block elements (headings, lists, tables, figures, blockquote, pre, media…) are
    never wrapped in <p>; a blockquote's text gets its own paragraphs; <pre> is left as it is.
    The result still has to be sanitized."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return ""
    return _render(_block_tree(_tokens(text)).children, flow=True)
