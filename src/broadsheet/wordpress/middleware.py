"""Old WordPress query addresses (``/?p=123``, ``/?page_id=2``, ``/?cat=5``…) keep working.

Wagtail's redirects answer only 404s, and ``/?p=123`` is the front page (200), so these are
looked up before the page is served. The rows are ordinary Wagtail redirects, stored under
the single-parameter path (``/?p=123``), which editors can see and change under Redirects.
Other parameters (``utm_source``…) do not prevent the match. Two need no rows: ``/?m=201711``
(a date archive) and ``/?s=words`` (a search).
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from wagtail.contrib.redirects.middleware import get_redirect
from wagtail.contrib.redirects.models import Redirect

LEGACY_KEYS = ("p", "page_id", "attachment_id", "cat", "tag", "author", "feed")
DATE_ARCHIVE = re.compile(r"(\d{4})(\d{2})?(\d{2})?")


class LegacyQueryRedirectMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
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
