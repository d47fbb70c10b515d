"""Fixed-window counters in Django's cache, shared by every app process when the cache is
(Redis in production, ``REDIS_URL``), and the keys they count by: an IP bucket (IPv4 /32,
IPv6 /64) and a normalised email address.

The window number is part of the key (``rl:{scope}:{digest}:{window}``), as django-ratelimit
does: ``cache.add`` starts a window atomically and ``cache.incr`` counts in it, so two processes
never both see "first". A key left without expiry by Redis's ``EXISTS``/``INCR`` gap belongs to a
window that is never read again.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
import unicodedata
from dataclasses import dataclass

from django.core.cache import cache

IPV4_PREFIX = 32
IPV6_PREFIX = 64  # one customer's network: an attacker gets 2**64 addresses from one ISP line
GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}


@dataclass(frozen=True)
class Limit:
    allowed: bool
    count: int
    retry_after: int  # seconds until the window ends (when refused, when to try again)


def cache_key(scope: str, key: str) -> str:
    """A short, safe cache key for any text (an address, an email)."""
    digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()
    return f"rl:{scope}:{digest}"


def window_key(scope: str, key: str, period: int, now: float | None = None) -> str:
    now = time.time() if now is None else now
    return f"{cache_key(scope, key)}:{int(now // period)}"


def hit(scope: str, key: str, *, limit: int, period: int, now: float | None = None) -> Limit:
    """Count one event for ``key`` in the current window of ``period`` seconds; allowed while
    the count is at most ``limit``. Cache errors are raised (the caller decides)."""
    now = time.time() if now is None else now
    cache_key = window_key(scope, key, period, now)
    if cache.add(cache_key, 1, timeout=period + 5):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add and incr: this is a new window's first event
            cache.add(cache_key, 1, timeout=period + 5)
            count = 1
    retry_after = max(1, math.ceil(period - (now % period)))
    return Limit(count <= limit, count, retry_after)


def ip_bucket(ip: str | None) -> str | None:
    """The network an address is counted in: IPv4 by address, IPv6 by its /64. An IPv4-mapped
    IPv6 address counts as its IPv4 address. None for a missing or malformed address."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def normalise_email(email: str | None) -> str:
    """One key for the variants of an address a person can type to get round a limit: case
    (casefold), Unicode forms and diacritics (NFKC after dropping combining marks), a ``+tag``
    in the local part, and dots for Gmail. Only for counting: two distinct mailboxes may share a
    key, which only makes the limit stricter for them."""
    email = (email or "").strip()
    if "@" not in email:
        return ""
    decomposed = unicodedata.normalize("NFKD", email)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    email = unicodedata.normalize("NFKC", stripped).casefold()
    local, _, domain = email.rpartition("@")
    domain = domain.rstrip(".")
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}" if local and domain else ""
