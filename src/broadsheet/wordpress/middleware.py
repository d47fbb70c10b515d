"""Old WordPress query addresses (``/?p=123``, ``/?page_id=2``, ``/?cat=5``…) keep working.

Wagtail's redirects answer only 404s, and ``/?p=123`` is the front page (200), so these are
looked up before the page is served. The rows are ordinary Wagtail redirects, stored under
the single-parameter path (``/?p=123``), which editors can see and change under Redirects.
Other parameters (``utm_source``…) do not prevent the match. Two need no rows: ``/?m=201711``
(a date archive) and ``/?s=words`` (a search).

A WordPress comment page with plain permalinks, ``<article>?cpage=2``, moves to its path form,
``<article>comment-page-2/`` (the address the article serves it at, the same for every reader).
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from wagtail.contrib.redirects.middleware import get_redirect
from wagtail.contrib.redirects.models import Redirect

LEGACY_KEYS = ("p", "page_id", "attachment_id", "cat", "tag", "author", "feed")
DATE_ARCHIVE = re.compile(r"(\d{4})(\d{2})?(\d{2})?")


class LegacyQueryRedirectMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "cpage" in request.GET and request.method in ("GET", "HEAD"):
            moved = _comment_page_redirect(request)
            if moved is not None:
                return moved
        if request.path == "/" and request.GET and request.method in ("GET", "HEAD"):
            for key in LEGACY_KEYS:
                value = request.GET.get(key)
                if value and len(value) < 200:
                    found = get_redirect(request, Redirect.normalise_path(f"/?{key}={value}"))
                    if found is not None and found.link and _readers_may_see(found):
                        return redirect(found.link, permanent=found.is_permanent)
            if match := DATE_ARCHIVE.fullmatch(request.GET.get("m", "")):
                return redirect(
                    "/" + "/".join(p for p in match.groups() if p) + "/", permanent=True
                )
            if "s" in request.GET:
                query = request.GET["s"][:200]
                return redirect("/search/?" + urlencode({"q": query}), permanent=True)
        return self.get_response(request)


def _readers_may_see(found: Redirect) -> bool:
    """Never lead a reader to a draft, scheduled or private page: the redirect alone would
    tell them its address, and so its title."""
    page = found.redirect_page
    if page is None:
        return True
    return page.live and not page.get_view_restrictions().exists()


CPAGE = re.compile(r"[1-9][0-9]{0,8}")


def _comment_page_redirect(request: HttpRequest) -> HttpResponse | None:
    """``/2017/11/20/slug/?cpage=2`` → ``/2017/11/20/slug/comment-page-2/`` (other parameters
    kept). Only for an address ending in ``/`` that is not a comment page already."""
    number = request.GET.get("cpage", "")
    path = request.path
    if not CPAGE.fullmatch(number) or path == "/" or not path.endswith("/"):
        return None
    if path[1:2] in ("/", "\\") or not url_has_allowed_host_and_scheme(path, allowed_hosts=None):
        # ``//evil.example/`` would leave as ``Location: //evil.example/comment-page-2/``, an
        # address on another site (browsers read a backslash or a tab there the same way); such a
        # path is never one of ours.
        return None
    if path.rstrip("/").rpartition("/")[2].startswith("comment-page-"):
        return None
    query = request.GET.copy()
    del query["cpage"]
    target = f"{path}comment-page-{number}/"
    if query:
        target += "?" + query.urlencode()
    return HttpResponsePermanentRedirect(target)
