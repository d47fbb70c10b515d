"""Median render time of the seed article page with 100 comments, uncached.

Runs against a fresh SQLite file (or DATABASE_URL if set) in a temporary directory, through
Django's full request stack (middleware, Wagtail routing, templates), no HTTP server. Prints a
small table; it is a measurement, not a test.

    .venv/bin/python bench/article_render.py [--comments 100] [--runs 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--comments", type=int, default=100)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="broadsheet-bench-")
    os.environ.setdefault("BROADSHEET_VAR_DIR", workdir)
    os.environ.setdefault("BROADSHEET_PLAIN_STATIC", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broadsheet.config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from broadsheet.comments.models import Comment, Thread
    from broadsheet.publishing.demo import load_demo

    call_command("migrate", verbosity=0)
    load_demo(base_url=settings.BROADSHEET_BASE_URL)
    thread = max(Thread.objects.all(), key=lambda t: t.comments.count())
    existing = list(thread.comments.visible())
    missing = args.comments - len(existing)
    parents = existing[:]
    for n in range(max(0, missing)):
        parent = parents[n % len(parents)] if parents and n % 3 else None
        if parent is not None and parent.depth >= settings.COMMENTS_MAX_DEPTH:
            parent = None
        parents.append(
            Comment.objects.create(
                thread=thread,
                parent=parent,
                status=Comment.Status.APPROVED,
                author_name=f"Reader {n}",
                author_email=f"reader{n}@example.org",
                text=f"Comment number {n}.\n\nA second paragraph, <em>a little</em> markup.",
                created_at=timezone.now(),
            )
        )
    total = thread.comments.visible().count()
    client = Client(HTTP_HOST="127.0.0.1")
    url = thread.url
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    query_count = len(captured)  # read now: the next request resets the connection's log
    timings = []
    for _ in range(args.runs):
        start = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    timings.sort()
    print(f"article page, uncached, {total} comments, {connection.vendor}, {args.runs} runs")
    print(f"{'median ms':>10} {'p90 ms':>8} {'min ms':>8} {'queries':>8} {'bytes':>8}")
    print(
        f"{statistics.median(timings):10.1f} {timings[int(len(timings) * 0.9) - 1]:8.1f} "
        f"{timings[0]:8.1f} {query_count:8d} {len(response.content):8d}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
