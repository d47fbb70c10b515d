"""Security headers Django 5.2 does not set by itself: Content-Security-Policy.

Public pages get a strict policy with no inline script (a nonce would be replayed by a page
cache), and may not be framed. The Wagtail admin runs inline scripts of its own, so it gets a
looser script policy, and may frame itself (live preview).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers

PUBLIC_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https://www.gravatar.com https://secure.gravatar.com",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
ADMIN_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob: https:",
        "frame-src 'self' https:",
        "form-action 'self'",
        "frame-ancestors 'self'",
        "base-uri 'self'",
        "object-src 'none'",
    ]
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith("/admin/"):
            response.setdefault("Content-Security-Policy", ADMIN_CSP)
            # The page editor's live preview frames admin URLs from the admin itself.
            response["X-Frame-Options"] = "SAMEORIGIN"
        else:
            response.setdefault("Content-Security-Policy", PUBLIC_CSP)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


class PrivateWhenPersonalMiddleware:
    """A response to a request that carries a personalising cookie (a session, or the
    commenter's own held comments) is marked private, so no shared cache ever stores it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.cookies = (settings.SESSION_COOKIE_NAME, *settings.BROADSHEET_PERSONAL_COOKIES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if any(name in request.COOKIES for name in self.cookies):
            patch_cache_control(response, private=True)
            patch_vary_headers(response, ["Cookie"])
        return response
