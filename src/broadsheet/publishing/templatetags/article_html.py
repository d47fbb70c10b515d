"""``{{ page.body|article_html }}``: a rich-text body as readers get it.

The stored body, by whatever path it reached the database (the editor, the WordPress
importer, a script), is held on output to the site's article policy
(``core.html.sanitize_article_html``); then Wagtail expands its own references in it (page
links, image renditions, the oEmbed HTML of a video an editor embedded), which are made by
Wagtail, not by the writer, and which the policy would otherwise strip (iframes).
"""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe
from wagtail.rich_text import expand_db_html

from broadsheet.core import html as html_policy

register = template.Library()


@register.filter
def article_html(value: str | None) -> SafeString:
    if not value:
        return mark_safe("")
    return mark_safe(expand_db_html(html_policy.sanitize_article_html(str(value))))  # noqa: S308
