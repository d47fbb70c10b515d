"""Machine-readable descriptions of articles (schema.org JSON-LD for search engines)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.safestring import SafeString

from broadsheet.core.html import json_for_html

if TYPE_CHECKING:
    from .models import ArticlePage, HomePage

# The same escapes as Django's json_script: in JSON they are equivalent, and without "<" the
# text can never contain "</script>" or "<!--", so it cannot leave the element it sits in.


def script_json(data: Any) -> SafeString:
    """JSON safe to place inside ``<script type="application/ld+json">``.

    Rule: editor-supplied text (a headline with ``</script>`` in it) stays data; it cannot
    close the element or open a new one.
    """
    return json_for_html(data)


def _routed_url(home: HomePage | None, home_url: str | None, name: str, slug: str) -> str | None:
    if home is None or not home_url:
        return None
    return home_url.rstrip("/") + "/" + home.reverse_subpage(name, kwargs={"slug": slug})


def news_article(
    article: ArticlePage, *, request: HttpRequest | None = None, home: HomePage | None = None
) -> dict[str, Any]:
    """A schema.org NewsArticle describing ``article`` (uses only data already loaded)."""
    url = article.get_full_url(request)
    home_url = home.get_full_url(request) if home is not None else None
    authors = []
    for person in article.authors:
        author: dict[str, Any] = {"@type": "Person", "name": person.name}
        if profile := _routed_url(home, home_url, "author", person.slug):
            author["url"] = profile
        authors.append(author)
    publisher: dict[str, Any] = {"@type": "Organization", "name": settings.WAGTAIL_SITE_NAME}
    if home_url:
        publisher["url"] = home_url
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "description": article.standfirst,
        "inLanguage": article.language,
        "datePublished": article.date,
        "dateModified": article.last_published_at or article.date,
        "author": authors,
        "publisher": publisher,
        "isAccessibleForFree": True,
    }
    if url:
        data["url"] = url
        data["mainEntityOfPage"] = {"@type": "WebPage", "@id": url}
    if sections := article.section_list:
        data["articleSection"] = [section.name for section in sections]
    if tags := article.tag_list:
        data["keywords"] = [tag.name for tag in tags]
    if article.translator:
        data["translator"] = {"@type": "Person", "name": article.translator}
    original = article.published_original
    original_url = original.get_full_url(request) if original else article.original_url
    if original_url or article.original_language:
        work: dict[str, Any] = {"@type": "CreativeWork"}
        if original_url:
            work["url"] = original_url
        if article.original_language:
            work["inLanguage"] = article.original_language
        data["translationOfWork"] = work
    return data
