"""The HTML policy: one place that decides what reader-supplied markup may reach any surface.

Comment text is stored as the reader typed it and rendered through `render_comment` on every
surface (article page, moderation queue, feeds, mail, API). Sanitizing is always the *last*
step, so nothing that runs after it can reintroduce markup (the WordPress CVE-2015-3440 class).
"""

from __future__ import annotations

import json
import re
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
