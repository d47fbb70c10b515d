"""The WSGI application: Django behind the page cache (core/pagecache.py)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broadsheet.config.settings")
django.setup(set_prefix=False)

from broadsheet.core.pagecache import PageCacheHandler  # noqa: E402 — needs Django set up

application = PageCacheHandler()
