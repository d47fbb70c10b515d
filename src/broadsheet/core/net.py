"""Who sent a request: the client address (reading forwarded headers only from trusted
proxies), and whether the request came from this site."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware


@lru_cache(maxsize=1)
def _trusted() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(
        ipaddress.ip_network(net, strict=False)
        for net in getattr(settings, "BROADSHEET_TRUSTED_PROXIES", [])
    )


def _is_trusted(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in _trusted())


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, unless it is a trusted proxy: then the right-most X-Forwarded-For entry that
    is not itself a trusted proxy. A forged header from a client is never believed."""
    remote = request.META.get("REMOTE_ADDR") or None
    if remote is None or not _is_trusted(remote):
        return remote
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed([p for p in forwarded if p]):
        if not _is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote
    return remote


def csrf_passes(request: HttpRequest) -> bool:
    """Django's own CSRF check, for views that answer a failed check with something more
    useful than a 403 page (the reader's text back, or a confirm page)."""
    checker = CsrfViewMiddleware(lambda r: HttpResponse())
    return checker.process_view(request, None, (), {}) is None


def is_cross_site(request: HttpRequest) -> bool:
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return True
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin == "null"
    own = f"{request.scheme}://{request.get_host()}"
    return origin != own and origin not in settings.CSRF_TRUSTED_ORIGINS
