"""Addresses served outside the page tree: feeds, search and the sitemap.

Articles, archives, sections, tags and authors are routed by ``HomePage`` (see models.py).
"""

from django.urls import path, re_path

from . import feeds, views

app_name = "publishing"

urlpatterns = [
    path("feed/", feeds.LatestArticlesFeed(), name="feed"),
    path("feed/atom/", feeds.LatestArticlesAtomFeed(), name="feed_atom"),
    re_path(r"^section/(?P<slug>[-\w]+)/feed/$", feeds.SectionFeed(), name="section_feed"),
    re_path(
        r"^section/(?P<slug>[-\w]+)/feed/atom/$", feeds.SectionAtomFeed(), name="section_feed_atom"
    ),
    path("search/", views.search, name="search"),
    path("sitemap.xml", views.sitemap, name="sitemap"),
]
