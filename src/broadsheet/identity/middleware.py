"""Two things the sign-in pages need that the rest of the site must not have.

1. Handoff. The public CSP has ``form-action 'self'``, and Chromium applies it to the redirect
   that answers a form POST: allauth's "Continue" button (POST, then 302 to the provider) would
   be blocked. A POST under the sign-in paths that answers with a redirect to another origin gets
   a small same-site page instead, which continues with a meta refresh and a link. No inline
   script, so the CSP stays as strict as everywhere else.
2. COOP. Article pages send ``Cross-Origin-Opener-Policy: same-origin-allow-popups``; a popup
   page that sends the same after a visit to a provider has lost its ``window.opener``, and
   the "you are signed in" message could not reach the form. Pages that load in the popup send
   ``unsafe-none``.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

POPUP_PATHS = ("/accounts/", "/comments/identity/")


class ProviderHandoffMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(POPUP_PATHS):
            return response
        if request.method == "POST" and response.status_code in (301, 302, 303, 307, 308):
            target = response.get("Location", "")
            if _is_off_site(request, target):
                response = handoff(request, target)
        response["Cross-Origin-Opener-Policy"] = "unsafe-none"
        add_never_cache_headers(response)
        return response


def _is_off_site(request: HttpRequest, url: str) -> bool:
    parts = urlsplit(url)
    if not parts.scheme and not parts.netloc:
        return False
    own = urlsplit(settings.BROADSHEET_BASE_URL)
    return (parts.scheme, parts.netloc) not in {
        (own.scheme, own.netloc),
        (request.scheme, request.get_host()),
    }


def handoff(request: HttpRequest, url: str) -> HttpResponse:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return HttpResponse("Refused to continue to that address.", status=400)
    response = render(request, "identity/handoff.html", {"url": url, "host": parts.netloc})
    response["Referrer-Policy"] = "no-referrer"
    return response
