from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from . import cookies


class PendingCookieMiddleware:
    """Drops the cookie naming this browser's held comments once none of them is waiting any
    more (approved, spammed or deleted), so its pages are the shared anonymous ones again."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, "comments_pending_left", None) == 0:
            response.delete_cookie(cookies.PENDING, samesite="Lax")
        return response
