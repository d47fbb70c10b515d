"""RSS 2.0 and Atom feeds of the site and of each section: a thin layer over
``ArticlePage.objects.published()``. Item description = standfirst; content = body HTML."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.utils.feedgenerator import Atom1Feed, Rss201rev2Feed
from wagtail.models import Site
from wagtail.rich_text import expand_db_html

from broadsheet.core import html as html_policy

from .models import ArticlePage, HomePage, Section
from .page_cache import share_feed

FEED_LENGTH = 20

# href="/…" and src="/…" (not protocol-relative "//…"): site-relative links a feed reader
# would resolve against the wrong host.
_RELATIVE_LINK = re.compile(r'(\s(?:href|src)=")(/(?!/)[^"]*)"')


def absolute_links(html: str, root_url: str) -> str:
    """Make the site-relative links and image sources of ``html`` absolute."""
    if not root_url:
        return html
    root = root_url.rstrip("/")
    return _RELATIVE_LINK.sub(lambda m: f'{m.group(1)}{root}{m.group(2)}"', html)


class RssWithContent(Rss201rev2Feed):
    """RSS 2.0 with the full text in ``content:encoded``."""

    def rss_attributes(self) -> dict[str, str]:
        attrs = super().rss_attributes()
        attrs["xmlns:content"] = "http://purl.org/rss/1.0/modules/content/"
        return attrs

    def add_item_elements(self, handler, item) -> None:
        super().add_item_elements(handler, item)
        if item.get("content"):
            handler.addQuickElement("content:encoded", item["content"])


class AtomWithContent(Atom1Feed):
    """Atom with the full text in ``<content type="html">`` next to the summary."""

    def add_item_elements(self, handler, item) -> None:
        super().add_item_elements(handler, item)
        if item.get("content"):
            handler.addQuickElement("content", item["content"], {"type": "html"})


@dataclass(frozen=True)
class FeedSource:
    site: Site
    home: HomePage
    root_url: str
    self_url: str
    section: Section | None = None


class LatestArticlesFeed(Feed):
    """The newest published articles of the site that serves the request."""

    feed_type = RssWithContent

    def __call__(self, request: HttpRequest, *args, **kwargs):
        share_feed(request)  # the same bytes for every reader: the page cache may keep it
        return super().__call__(request, *args, **kwargs)

    def get_object(self, request: HttpRequest, *args, **kwargs) -> FeedSource:
        site = Site.find_for_request(request)
        home = HomePage.objects.filter(pk=site.root_page_id).first() if site else None
        if site is None or home is None:
            raise Http404("No publication here.")
        section = self.get_section(**kwargs)
        return FeedSource(
            site=site,
            home=home,
            root_url=site.root_url,
            self_url=site.root_url + request.path,
            section=section,
        )

    def get_section(self, **kwargs) -> Section | None:
        return None

    def title(self, obj: FeedSource) -> str:
        return settings.WAGTAIL_SITE_NAME

    def link(self, obj: FeedSource) -> str:
        return obj.home.get_full_url() or obj.root_url + "/"

    def feed_url(self, obj: FeedSource) -> str:
        return obj.self_url

    def description(self, obj: FeedSource) -> str:
        return obj.home.tagline or f"Latest articles from {settings.WAGTAIL_SITE_NAME}"

    subtitle = description  # Atom's name for it

    def items(self, obj: FeedSource):
        articles = ArticlePage.objects.published().child_of(obj.home)
        if obj.section is not None:
            articles = articles.in_section(obj.section)
        return articles.for_listing()[:FEED_LENGTH]

    def item_title(self, item: ArticlePage) -> str:
        return item.title

    def item_description(self, item: ArticlePage) -> str:
        return item.standfirst

    def item_link(self, item: ArticlePage) -> str:
        return item.get_full_url()

    def item_pubdate(self, item: ArticlePage) -> datetime:
        return item.date

    def item_updateddate(self, item: ArticlePage) -> datetime:
        return max(item.date, item.last_published_at or item.date)

    def item_author_name(self, item: ArticlePage) -> str | None:
        return ", ".join(person.name for person in item.authors) or None

    def item_categories(self, item: ArticlePage) -> list[str]:
        return [s.name for s in item.section_list] + [t.name for t in item.tag_list]

    def item_extra_kwargs(self, item: ArticlePage) -> dict[str, str]:
        parts = item.get_url_parts()
        root_url = parts[1] if parts else ""
        body = expand_db_html(html_policy.sanitize_article_html(item.body))  # as article_html
        return {"content": absolute_links(body, root_url or "")}


class LatestArticlesAtomFeed(LatestArticlesFeed):
    feed_type = AtomWithContent


class SectionFeed(LatestArticlesFeed):
    """The newest published articles of one section."""

    def get_section(self, **kwargs) -> Section | None:
        return get_object_or_404(Section, slug=kwargs["slug"])

    def title(self, obj: FeedSource) -> str:
        return f"{settings.WAGTAIL_SITE_NAME} — {obj.section.name}"

    def link(self, obj: FeedSource) -> str:
        home_url = obj.home.get_full_url() or obj.root_url + "/"
        return (
            home_url.rstrip("/")
            + "/"
            + obj.home.reverse_subpage("section", kwargs={"slug": obj.section.slug})
        )

    def description(self, obj: FeedSource) -> str:
        return obj.section.description or f"Latest articles in {obj.section.name}"

    subtitle = description


class SectionAtomFeed(SectionFeed):
    feed_type = AtomWithContent
