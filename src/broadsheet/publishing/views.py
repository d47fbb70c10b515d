"""Public views that are not pages: search and the sitemap. Thin: parse, query, render."""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from wagtail.contrib.sitemaps.sitemap_generator import Sitemap as WagtailSitemap
from wagtail.contrib.sitemaps.views import sitemap as wagtail_sitemap
from wagtail.models import Page

from .models import ArticlePage, HomePage, chrome_context, home_for_request, paginate

MAX_QUERY_LENGTH = 200


def search(request: HttpRequest) -> HttpResponse:
    """/search/?q=…: published articles of this site matching the query, best match first."""
    home = home_for_request(request)
    if home is None:
        raise Http404("No publication here.")
    query = " ".join(request.GET.get("q", "").split())[:MAX_QUERY_LENGTH]
    if query:
        results = (
            ArticlePage.objects.published().child_of(home).for_listing().order_by().search(query)
        )
    else:
        results = ArticlePage.objects.none()
    page_obj = paginate(results, request)
    context = {
        **chrome_context(request, home=home),
        "page": home,
        "query": query,
        "articles": page_obj.object_list,
        "page_obj": page_obj,
    }
    return TemplateResponse(request, "publishing/search.html", context)


class PublicationSitemap(WagtailSitemap):
    """The home page and every published article, at their dated addresses."""

    def items(self):
        site = self.get_wagtail_site()
        articles = ArticlePage.objects.published().in_site(site)
        home = HomePage.objects.live().public().filter(pk=site.root_page_id)
        return (
            Page.objects.filter(Q(pk__in=home.values("pk")) | Q(pk__in=articles.values("pk")))
            .order_by("path")
            .specific()
        )


def sitemap(request: HttpRequest) -> HttpResponse:
    return wagtail_sitemap(request, sitemaps={"publication": PublicationSitemap})
