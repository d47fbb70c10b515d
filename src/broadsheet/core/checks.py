"""System checks of the deployment that Django's own do not cover.

``broadsheet.W001``: the default cache is private to each process (LocMemCache, DummyCache)
while the site is served by several worker processes (``BROADSHEET_WORKERS``, 2 by default for
``broadsheet serve``): the comment rate limits and flood marks are then counted per process, so
a client gets the limit once per worker. Set ``REDIS_URL`` to share them.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Tags, Warning, register

PRIVATE_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


def serving_workers() -> int:
    try:
        return int(os.environ.get("BROADSHEET_WORKERS", 2))
    except ValueError:
        return 2


@register(Tags.caches, deploy=True)
def shared_cache_check(app_configs=None, **kwargs):
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    workers = serving_workers()
    if settings.DEBUG or backend not in PRIVATE_CACHES or workers <= 1:
        return []
    return [
        Warning(
            f"The default cache ({backend.rsplit('.', 1)[-1]}) is not shared between the "
            f"{workers} worker processes that serve the site, so comment rate limits and flood "
            "checks are counted per process (a client gets each limit once per worker).",
            hint="Set REDIS_URL (for example redis://127.0.0.1:6379/0) so every process shares "
            "one count, or serve with BROADSHEET_WORKERS=1.",
            id="broadsheet.W001",
        )
    ]
