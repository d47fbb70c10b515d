"""Accepted comment posts per second through the real server (`broadsheet serve`, granian, 2
workers), driven by wrk from loopback. A measurement, not a test.

For each database (a fresh SQLite file in a temporary var dir, WAL + IMMEDIATE as the settings
configure it; or a PostgreSQL database of its own, created and dropped here) it migrates, loads
the demo publication, sets the default site's discussion settings as WordPress's comment
benchmark had them (``_servers.POST_DISCUSSION``, the same as ``serving.py``'s: no flood
interval, no per-IP / per-email rate limits, comments approved at once: no manual approval, no
"previously approved" rule; no notification mail), fetches one form token and CSRF token the
way the article page's script does (``/comments/session/``), waits out the form's minimum age,
and runs wrk with ``lua/comment_post.lua`` (serving.py's POST rows use it too): a unique comment
(text, name, email, submission key) with each request. Then it checks the database: every
acknowledged comment (a 303 to it) must be there, and counts "database is locked" in the
server's log. "cpu ms" is the server's CPU time (all its processes) per request: on a machine
shared with other work, the figure that moves least when requests/s do.

    .venv/bin/python bench/comment_post.py                        # SQLite, 3 runs of 10 s
    .venv/bin/python bench/comment_post.py --database postgres
    .venv/bin/python bench/comment_post.py --database both --runs 5 --duration 10

PostgreSQL: ``--postgres-url postgres://postgres@127.0.0.1:5432`` (trust auth on loopback);
the database ``broadsheet_bench_<pid>`` is created and dropped. The server is started, and
stopped on the way out (Ctrl+C included), by ``_servers.Processes``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _servers as srv  # noqa: E402 — the shared helpers next to this file

SETUP = r"""
import json, sys
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
from wagtail.models import Site
from broadsheet.comments.models import Thread
from broadsheet.publishing.demo import load_demo, SEED_SLUG
from broadsheet.publishing.discussion import DiscussionSettings
from broadsheet.publishing.models import ArticlePage

call_command("migrate", verbosity=0)
load_demo(base_url=settings.BROADSHEET_BASE_URL)
site = Site.objects.get(is_default_site=True)
DiscussionSettings.objects.update_or_create(site=site, defaults=json.loads(sys.argv[1]))
seed = ArticlePage.objects.get(slug=SEED_SLUG)
thread = Thread.objects.get(page_id=seed.pk)
print(json.dumps({"thread": thread.pk, "url": thread.url}))
"""

COUNT = r"""
import json, sys
import django
django.setup()
from broadsheet.comments.models import Comment
thread = int(sys.argv[1])
rows = Comment.objects.filter(thread_id=thread)
print(json.dumps({"total": rows.count(), "approved": rows.visible().count(),
                  "keys": rows.filter(submission_key__isnull=False).count()}))
"""


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and its descendants still running
    (the granian workers): what a post costs, whatever else the machine is doing."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def bench_database(name: str, database_url: str, args) -> list[dict]:
    var_dir = Path(tempfile.mkdtemp(prefix=f"broadsheet-bench-{name}-"))
    env = srv.django_env(var_dir, database_url=database_url, BROADSHEET_PLAIN_STATIC="1")
    if args.threads:
        env["BROADSHEET_THREADS"] = str(args.threads)
    info = srv.run_python(SETUP, env, json.dumps(srv.POST_DISCUSSION))
    log_path = var_dir / "server.log"
    results = []
    try:
        with srv.Processes() as procs:
            server = procs.start_app(name, env, log=log_path, workers=args.workers)
            srv.wait_for(server)
            tokens = srv.session_tokens(server.url, info["thread"])
            # The form token must be older than COMMENTS_FORM_MIN_SECONDS; it is not single-use,
            # so one token serves the whole run (as one open page serves a reader's comments).
            time.sleep(float(env.get("COMMENTS_FORM_MIN_SECONDS", 3)) + 0.5)
            for run in range(args.runs):
                before = srv.run_python(COUNT, env, str(info["thread"]))
                locked_before = server.count_in_log("database is locked")
                cpu_before = tree_cpu_seconds(server.process.pid)
                stats = srv.run_wrk(
                    server.url,
                    duration=args.duration,
                    connections=args.connections,
                    threads=args.wrk_threads,
                    scripts=("comment_post.lua", "statuses.lua"),
                    env={**tokens, "BENCH_RUN": f"{os.getpid()}r{run}{name[0]}"},
                    timeout=30,
                )
                time.sleep(0.5)  # let requests wrk gave up on at the end finish
                cpu = tree_cpu_seconds(server.process.pid) - cpu_before
                after = srv.run_python(COUNT, env, str(info["thread"]))
                locked = server.count_in_log("database is locked") - locked_before
                accepted = stats.statuses.get("303", 0)
                created = after["total"] - before["total"]
                results.append(
                    {
                        "db": name,
                        "run": run + 1,
                        "req_s": stats.rps,
                        "accepted_s": stats.rate_of("303"),
                        "p50_ms": stats.p50_ms,
                        "p99_ms": stats.p99_ms,
                        "max_ms": stats.max_ms,
                        "accepted": accepted,
                        "created": created,
                        "approved": after["approved"] - before["approved"],
                        "missing": max(0, accepted - created),
                        "other": {k: v for k, v in stats.statuses.items() if k != "303"},
                        "socket_errors": stats.socket_errors,
                        "locked": locked,
                        "cpu_ms": cpu * 1000 / max(stats.requests, 1),
                    }
                )
                print_row(results[-1])
    finally:
        if args.keep:
            print(f"  kept {var_dir} (server log: {log_path})")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    return results


HEADER = (
    f"{'db':<9}{'run':>4}{'req/s':>9}{'accepted/s':>11}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
    f"{'accepted':>9}{'rows':>7}{'missing':>8}{'locked':>7}{'cpu ms':>8}  other"
)


def print_row(r: dict) -> None:
    other = dict(r["other"])
    if r["socket_errors"]:
        other["socket errors"] = r["socket_errors"]
    print(
        f"{r['db']:<9}{r['run']!s:>4}{r['req_s']:>9.0f}{r['accepted_s']:>11.0f}"
        f"{r['p50_ms']:>8.1f}{r['p99_ms']:>8.1f}{r['max_ms']:>8.0f}{r['accepted']:>9}"
        f"{r['created']:>7}{r['missing']:>8}{r['locked']:>7}{r['cpu_ms']:>8.1f}  {other or '-'}",
        flush=True,
    )


def median_row(rows: list[dict]) -> dict:
    return {
        "db": rows[0]["db"],
        "run": "med",
        **{
            k: statistics.median(r[k] for r in rows)
            for k in ("req_s", "accepted_s", "p50_ms", "p99_ms", "max_ms", "cpu_ms")
        },
        **{k: sum(r[k] for r in rows) for k in ("accepted", "created", "missing", "locked")},
        "other": {},
        "socket_errors": sum(r["socket_errors"] for r in rows),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="granian worker processes")
    parser.add_argument("--threads", type=int, default=0, help="BROADSHEET_THREADS (0: default)")
    parser.add_argument("--keep", action="store_true", help="keep the var dir and server log")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2

    print(
        f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration}s, "
        f"broadsheet serve --workers {args.workers}, {os.cpu_count()} CPUs\n"
    )
    print(HEADER)
    summary = []
    if args.database in ("sqlite", "both"):
        path = Path(tempfile.mkdtemp(prefix="broadsheet-bench-db-")) / "bench.sqlite3"
        rows = bench_database("sqlite", f"sqlite:///{path}", args)
        summary.append(median_row(rows))
        shutil.rmtree(path.parent, ignore_errors=True)
    if args.database in ("postgres", "both"):
        name = f"broadsheet_bench_{os.getpid()}"
        url = srv.create_postgres(args.postgres_url, name)
        try:
            rows = bench_database("postgres", url, args)
            summary.append(median_row(rows))
        finally:
            srv.drop_postgres(args.postgres_url, name)
    print("\nmedians (accepted, rows, missing and locked summed over the runs)")
    print(HEADER)
    for row in summary:
        print_row(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
