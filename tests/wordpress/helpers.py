"""What the import tests look up: the Broadsheet object made from a WordPress id, and the row
counts of everything an import may write."""

from __future__ import annotations

from broadsheet.comments.models import Comment, Thread
from broadsheet.publishing.models import ArticlePage, Person, Section, StandardPage
from broadsheet.wordpress.models import WordPressId


def page_for(wp_id: int, kind: str = "post", site_key: str = "wpthemetestdata.wordpress.com"):
    row = WordPressId.objects.get(site_key=site_key, kind=kind, wp_key=str(wp_id))
    model = ArticlePage if kind == "post" else StandardPage
    return model.objects.get(pk=row.object_id)


def comment_for(wp_id: int, site_key: str) -> Comment:
    row = WordPressId.objects.get(site_key=site_key, kind="comment", wp_key=str(wp_id))
    return Comment.objects.get(pk=row.object_id)


def counts_of_everything() -> dict[str, int]:
    from taggit.models import Tag
    from wagtail.contrib.redirects.models import Redirect
    from wagtail.models import Page, Revision

    return {
        "pages": Page.objects.count(),
        "revisions": Revision.objects.count(),
        "comments": Comment.objects.count(),
        "threads": Thread.objects.count(),
        "sections": Section.objects.count(),
        "people": Person.objects.count(),
        "tags": Tag.objects.count(),
        "redirects": Redirect.objects.count(),
        "ids": WordPressId.objects.count(),
    }
