"""The HTML policy: one place that decides what reader-supplied markup may reach any surface.

Comment text is stored as the reader typed it and rendered through `render_comment` on every
surface (article page, moderation queue, feeds, mail, API). Sanitizing is always the *last*
step, so nothing that runs after it can reintroduce markup (the WordPress CVE-2015-3440 class).
"""

from __future__ import annotations

import re
from html import escape

import nh3

COMMENT_TAGS = frozenset(
    {"a", "abbr", "b", "blockquote", "cite", "code", "del", "em", "i", "q", "s", "strong", "p", "br"}
)
COMMENT_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}}
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


def sanitize_comment_html(html: str) -> str:
    """Apply the comment policy to a fragment of HTML."""
    return nh3.clean(
        html,
        tags=set(COMMENT_TAGS),
        attributes={tag: set(attrs) for tag, attrs in COMMENT_ATTRIBUTES.items()},
        attribute_filter=_filter_attribute,
        link_rel=LINK_REL,
        url_schemes={"http", "https"},
        strip_comments=True,
    )


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
    """Every tag removed; entities left as text would read. The caller escapes on output."""
    from html import unescape

    return unescape(nh3.clean(html_or_text, tags=set(), strip_comments=True))


def excerpt(text: str, length: int = 140) -> str:
    """A plain-text excerpt cut at a character boundary (never inside a tag or entity)."""
    flat = " ".join(plain_text(text).split())
    if len(flat) <= length:
        return flat
    return flat[: length - 1].rstrip() + "…"


def link(url: str, label: str) -> str:
    """An <a> to a reader-supplied website, or the escaped label alone when the URL is unsafe."""
    href = safe_url(url)
    if not href:
        return escape(label)
    return f'<a href="{escape(href, quote=True)}" rel="external {LINK_REL}">{escape(label)}</a>'
