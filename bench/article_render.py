"""Render time of the seed article page, uncached: with 100 comments on one page, and with
1,000 comments broken into pages of 50 top-level comments (WordPress's default), first page.

Runs against a fresh SQLite file (or DATABASE_URL if set) in a temporary directory, through
Django's full request stack (middleware, Wagtail routing, templates), no HTTP server, with the
shared page cache off. Prints a small table: wall-clock and CPU time per render (CPU time is
steadier on a busy machine), and SQL queries per page. A measurement, not a test.

    .venv/bin/python bench/article_render.py [--comments 100] [--paged-comments 1000] [--runs 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--comments", type=int, default=100)
    parser.add_argument("--paged-comments", type=int, default=1000)
    parser.add_argument("--per-page", type=int, default=50)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="broadsheet-bench-")
    os.environ.setdefault("BROADSHEET_VAR_DIR", workdir)
    os.environ.setdefault("BROADSHEET_PLAIN_STATIC", "1")
    os.environ.setdefault("BROADSHEET_PAGE_CACHE_DIR", "off")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broadsheet.config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from wagtail.models import Site

    from broadsheet.comments.conf import FIRST
    from broadsheet.comments.models import Comment, Thread
    from broadsheet.publishing.demo import load_demo
    from broadsheet.publishing.discussion import DiscussionSettings

    call_command("migrate", verbosity=0)
    load_demo(base_url=settings.BROADSHEET_BASE_URL)

    def fill(thread: Thread, wanted: int, *, recent: bool = False) -> int:
        """Approved comments up to ``wanted``: a third top-level, the rest replies (with
        ``recent``, to one of the last seven comments, as conversations go; else as the first
        version of this benchmark made them, to compare with its numbers)."""
        existing = list(thread.comments.visible())
        parents = existing[:]
        start = timezone.now()
        with transaction.atomic():
            for n in range(max(0, wanted - len(existing))):
                parent = None
                if parents and n % 3:
                    parent = (
                        parents[-1 - n % min(7, len(parents))]
                        if recent
                        else parents[n % len(parents)]
                    )
                if parent is not None and parent.depth >= settings.COMMENTS_MAX_DEPTH:
                    parent = None
                parents.append(
                    Comment.objects.create(
                        thread=thread,
                        parent=parent,
                        status=Comment.Status.APPROVED,
                        author_name=f"Reader {n}",
                        author_email=f"reader{n}@example.org",
                        text=f"Comment number {n}.\n\nA second paragraph, <em>a little</em> "
                        "markup.",
                        created_at=start + timedelta(seconds=n),
                    )
                )
        return thread.comments.visible().count()

    def measure(url: str) -> dict:
        client = Client(HTTP_HOST="127.0.0.1")
        assert client.get(url).status_code == 200
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        queries = len(captured)  # read now: the next request resets the connection's log
        wall, cpu = [], []
        for _ in range(args.runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            cpu.append((time.process_time() - start_cpu) * 1000)
            wall.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        wall.sort()
        return {
            "median": statistics.median(wall),
            "p90": wall[max(0, int(len(wall) * 0.9) - 1)],
            "cpu": statistics.median(cpu),
            "queries": queries,
            "bytes": len(response.content),
        }

    threads = sorted(Thread.objects.all(), key=lambda t: -t.comments.count())
    seed, other = threads[0], threads[1]
    rows = []
    total = fill(seed, args.comments)
    rows.append(("one page", total, measure(seed.url)))

    total = fill(other, args.paged_comments, recent=True)
    DiscussionSettings.objects.update_or_create(
        site=Site.objects.get(is_default_site=True),
        defaults={"paginate": True, "per_page": args.per_page, "default_page": FIRST},
    )
    rows.append((f"pages of {args.per_page}, first", total, measure(other.url)))

    print(f"article page, uncached, {connection.vendor}, {args.runs} runs each")
    print(
        f"{'comments':>24} {'median ms':>10} {'p90 ms':>8} {'cpu ms':>8} {'queries':>8} "
        f"{'bytes':>8}"
    )
    for label, count, row in rows:
        print(
            f"{label:>18} {count:5d} {row['median']:10.1f} {row['p90']:8.1f} {row['cpu']:8.1f} "
            f"{row['queries']:8d} {row['bytes']:8d}"
        )
    ratio = rows[1][2]["cpu"] / rows[0][2]["cpu"]
    print(f"first page of {rows[1][1]} comments / page of {rows[0][1]}: {ratio:.2f}× the CPU time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
