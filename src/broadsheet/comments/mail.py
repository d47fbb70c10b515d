"""Building blocks of the discussion's email: links, rendering, the comment as mail-safe HTML.

- Every link in a mail is built by ``absolute_url`` on ``BROADSHEET_BASE_URL``, never on the
  request's Host header (a poisoned Host would otherwise put an attacker's site in the mail).
- ``render(base, context)`` renders ``<base>_subject.txt``, ``<base>.txt`` and ``<base>.html``;
  the subject comes back on one line (no header injection through a name or a title).
- ``comment_html_for_mail`` is the comment through the site's one HTML policy, with no image
  (the policy allows none) and no link: each link becomes its text followed by its address in
  plain text, so comment text cannot make a mail load anything or hide where a link goes.
"""

from __future__ import annotations

import re
from html import escape, unescape

import nh3
from django.conf import settings
from django.template.loader import render_to_string

from broadsheet.core import html as html_policy

_LINK = re.compile(r"<a\b[^>]*?\bhref=\"([^\"]*)\"[^>]*>(.*?)</a>", re.S | re.I)


def absolute_url(path: str) -> str:
    """A link for an email: always on the configured public address, never the request's Host."""
    if path.startswith(("http://", "https://")):
        return path
    return settings.BROADSHEET_BASE_URL + "/" + path.lstrip("/")


def one_line(value) -> str:
    """A value fit for a mail header or a subject: control characters (CR, LF…) become spaces,
    runs of spaces one space."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(value or "")).split())


def render(base: str, context: dict) -> tuple[str, str, str]:
    """(subject, text, html) from ``<base>_subject.txt``, ``<base>.txt`` and ``<base>.html``."""
    context = {
        "site_name": getattr(settings, "WAGTAIL_SITE_NAME", ""),
        "site_url": settings.BROADSHEET_BASE_URL,
        **context,
    }
    subject = one_line(render_to_string(f"{base}_subject.txt", context))[:300]
    text = render_to_string(f"{base}.txt", context)
    html = render_to_string(f"{base}.html", context)
    return subject, text, html


def _link_as_text(match: re.Match) -> str:
    href, inner = match.group(1), match.group(2)
    shown = nh3.clean(inner, tags=set())  # the link's text, as escaped text
    address = escape(unescape(href), quote=False)
    if not address or unescape(shown).strip() == unescape(href).strip():
        return shown or address
    return f"{shown} ({address})"


def comment_html_for_mail(comment) -> str:
    """The comment as HTML for a mail: sanitized by the comment policy (no <img> at all), and
    every link replaced by its text and address as plain text."""
    rendered = html_policy.render_comment(comment.text)
    rendered = _LINK.sub(_link_as_text, rendered)
    # Whatever the pattern missed: the same policy without <a> (its text stays).
    return nh3.clean(
        rendered,
        tags=set(html_policy.COMMENT_TAGS) - {"a"},
        attributes={"abbr": {"title"}, "*": set()},
        strip_comments=True,
    )


def comment_text_for_mail(comment) -> str:
    """The comment as plain text for the text part: links shown as "text (address)"."""
    return html_policy.plain_text(comment_html_for_mail(comment)).strip()
