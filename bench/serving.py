"""How fast the real servers serve the seed article and take comments, side by side with nginx
serving the same bytes as a static file, and with WordPress's recorded figures (issue 6).

One command; it prints one table and the goals. A measurement, not a test (exit status 0
whatever the numbers; 1 only when something could not be run or checked).

    .venv/bin/python bench/serving.py            # 10 s per row, 3 rounds: about 6-8 minutes
    .venv/bin/python bench/serving.py --quick    # 2 s per row, 1 round: about 2 minutes
    .venv/bin/python bench/serving.py --rounds 1 --duration 5 --no-postgres --keep

The first run on a checkout migrates from scratch (one to two minutes more on a busy machine)
and keeps the migrated empty databases in ``var/bench-cache/`` for the next runs, while the
migrations and installed packages stay the same (``--no-cache``: always migrate).

What runs (all on 127.0.0.1, free ports, stopped on exit, Ctrl+C included):

- SQLite deployment in a temporary var dir: ``migrate``, ``collectstatic``, the seed export
  (``tests/wordpress/fixtures/seed-article-export.xml``: the seed article with 100 threaded
  comments and a second article with none) imported through the WordPress importer, and the
  1,000-comment variant: a copy of the seed article whose discussion is the seed's 100
  comments copied ten times (same texts, same threading, each copy a week later), so both
  pages show the same kind of comments.
- app servers (``broadsheet serve``, granian, ``--workers``):
  *embedded*: the page cache on, answered by the app itself (BROADSHEET_BASE_URL = the app);
  *production*: the page cache on, behind nginx from ``broadsheet nginx-config --standalone``
  (BROADSHEET_BASE_URL = nginx's address; nginx answers cached pages from disk), Redis cache;
  *uncached*: BROADSHEET_PAGE_CACHE_DIR=off;
  *postgres*: a PostgreSQL database of its own (created, then dropped), Redis cache.
- nginx *static*: the exact bytes production nginx served for the seed page, as a file, from
  a minimal standalone nginx with as many workers as the production one: the limit.
- comment POSTs (unique name, email, text and submission key per request, ``bench/lua/``),
  with Settings > Discussion as WordPress's comment benchmark had it: no flood interval, no
  per-IP/e-mail rate limits, no manual approval, no "previously approved" rule, no
  notification mail. Then the rows: each 303 wrk saw must be a stored comment.
- the 1,000-comment page with "Break comments into pages" on: 50 top-level comments per page,
  older at the top, the *first* page shown at the article's own address (which is measured).

wrk runs the same kind of request for a short warm-up, then ``--duration`` seconds; with
``--rounds`` > 1 the rows take turns and each shows its median round. A cached row's
"x nginx" is the median of its per-round ratios to the static row of the same round.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _servers as srv  # noqa: E402 — the shared helpers next to this file

FIXTURE = srv.ROOT / "tests" / "wordpress" / "fixtures" / "seed-article-export.xml"
BIG_COMMENTS = 1000
PER_PAGE = 50
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"  # 13 and 14 belong to the test suite
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432"
ACCEPTED = "303"  # a stored comment: "see other" to it
REMEMBER_SECONDS = 2  # broadsheet.publishing.discussion.REMEMBER_SECONDS (page cache off)

PAGED_DISCUSSION = {"paginate": True, "per_page": PER_PAGE, "default_page": "first", "order": "asc"}

# Recorded on this machine on 2026-11-26 (anchors/wordpress/RESULTS.md: WordPress 6.1.9, PHP
# 8.2 php-fpm with 8 workers, MariaDB 10.11, nginx 1.22; wrk -t2 -c16 -d20s, median of 3).
WORDPRESS = {
    "static": ("nginx static copy of WP's seed page (195,850 B)", 18_841, 0.56, 4.2),
    "classic": ("WP seed page, uncached, classic theme (TT1)", 43.5, 362, 442),
    "block": ("WP seed page, uncached, block theme (TT3)", 7.24, 2024, 3841),
    "post": ("WP comment POST, accepted/s (302)", 116.1, 138, 190),
}

WP_SHORT = {"static": "WP's static", "classic": "WP TT1", "block": "WP TT3", "post": "WP POST"}

SETUP = r"""
import json, sys, time
started = time.perf_counter()
from datetime import timedelta
import django
django.setup()
from django.core.management import call_command
from django.db import transaction
from wagtail.models import Site
from broadsheet.comments.models import Comment, Thread
from broadsheet.publishing.demo import SEED_SLUG
from broadsheet.publishing.discussion import DiscussionSettings
from broadsheet.publishing.models import ArticlePage
from broadsheet.wordpress.importer import import_wxr

opts = json.loads(sys.argv[1])
seconds = {"django.setup": time.perf_counter() - started}
if opts["collectstatic"]:
    started = time.perf_counter()
    call_command("collectstatic", interactive=False, verbosity=0)
    seconds["collectstatic"] = time.perf_counter() - started


def describe(page):
    thread = Thread.objects.get(page_id=page.pk)
    visible = thread.comments.visible()
    return {"page": page.pk, "thread": thread.pk, "url": thread.url,
            "comments": visible.count(),
            "top_level": visible.filter(parent__isnull=True).count()}


def make_big(seed, total):
    # A copy of the seed article; its discussion is the seed's comments copied over and
    # over (parents first), each copy a week after the one before.
    slug = seed.slug[:200] + "-" + str(total)
    big = ArticlePage.objects.filter(slug=slug).first()
    if big is None:
        big = seed.copy(to=seed.get_parent(), keep_live=True, copy_revisions=False,
                        update_attrs={"slug": slug, "title": f"{seed.title} ({total:,} comments)"})
        big.save_revision().publish()  # opens its thread, as publishing does
    thread = Thread.objects.get(page_id=big.pk)
    source = list(Comment.objects.visible().filter(thread__page_id=seed.pk)
                  .order_by("depth", "created_at", "pk"))
    made = thread.comments.count()
    copy = 0
    with transaction.atomic():
        while made < total:
            shift = timedelta(days=7 * copy)
            twins = {}
            for c in source:
                if made >= total:
                    break
                parent = twins.get(c.parent_id) if c.parent_id else None
                if c.parent_id and parent is None:
                    continue
                twins[c.pk] = Comment.objects.create(
                    thread=thread, parent=parent, status=Comment.Status.APPROVED,
                    kind=c.kind, author_name=c.author_name, author_email=c.author_email,
                    author_url=c.author_url, text=c.text, user_id=c.user_id,
                    identified_by=c.identified_by, author_avatar_url=c.author_avatar_url,
                    created_at=c.created_at + shift,
                )
                made += 1
            copy += 1
    return big


# (run with BROADSHEET_PAGE_CACHE_DIR=off: nothing to invalidate while loading)
started = time.perf_counter()
import_wxr(path=opts["fixture"])
seconds["import"] = time.perf_counter() - started
seed = ArticlePage.objects.get(slug=SEED_SLUG)
target = ArticlePage.objects.exclude(pk=seed.pk).filter(slug__startswith="a-second").get()
out = {"seed": describe(seed), "post_target": describe(target), "seconds": seconds}
if opts["big"]:
    started = time.perf_counter()
    out["big"] = describe(make_big(seed, opts["big"]))
    seconds["copy"] = time.perf_counter() - started
if opts["discussion"] is not None:
    site = Site.objects.get(is_default_site=True)
    DiscussionSettings.objects.filter(site=site).delete()
    DiscussionSettings.objects.create(site=site, **opts["discussion"])
print(json.dumps(out))
"""

DISCUSSION = r"""
import json, sys
import django
django.setup()
from wagtail.models import Site
from broadsheet.publishing.discussion import DiscussionSettings
site = Site.objects.get(is_default_site=True)
DiscussionSettings.objects.filter(site=site).delete()  # back to the defaults...
values = json.loads(sys.argv[1])
if values:  # ...then what this measure changes, saved as the admin would
    DiscussionSettings.objects.create(site=site, **values)
print(json.dumps({"ok": True}))
"""


# --- rows --------------------------------------------------------------------------------------
@dataclass
class Row:
    key: str
    label: str
    url: str = ""
    kind: str = "get"  # get | post
    results: list[srv.WrkResult] = field(default_factory=list)
    # POST rows, summed over the rounds
    accepted: int = 0
    stored: int = 0
    approved: int = 0
    missing: int = 0
    locked: int = 0
    tracebacks: int = 0
    other_statuses: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def result(self) -> srv.WrkResult | None:
        return srv.median_result(self.results) if self.results else None

    @property
    def rate(self) -> float | None:
        r = self.result
        if r is None:
            return None
        if self.kind == "post":
            return srv.median(x.rate_of(ACCEPTED) for x in self.results)
        return r.rps

    @property
    def errors(self) -> int:
        if self.kind == "post":
            return sum(x.others(ACCEPTED) for x in self.results)
        return sum(x.errors for x in self.results)


@dataclass
class Options:
    duration: float
    warmup: float
    connections: int
    threads: int
    rounds: int
    cpus: str


def measure(row: Row, opts: Options, *, warm: bool, env: dict | None = None, scripts=()) -> None:
    def wrk(seconds: float) -> srv.WrkResult:
        return srv.run_wrk(
            row.url,
            duration=seconds,
            connections=opts.connections,
            threads=opts.threads,
            scripts=scripts,
            env=env,
            cpus=opts.cpus,
        )

    if warm and opts.warmup:
        wrk(opts.warmup)
        settle(row)
    result = wrk(opts.duration)
    row.results.append(result)
    settle(row)
    rate = result.rate_of(ACCEPTED) if row.kind == "post" else result.rps
    errors = result.others(ACCEPTED) if row.kind == "post" else result.errors
    print(
        f"  {row.label:<52} {rate:>9,.0f}/s  p50 {result.p50_ms:7.2f}  p99 {result.p99_ms:7.2f}"
        f"  errors {errors}",
        flush=True,
    )


def settle(row: Row) -> None:
    """Wait out what wrk left running (it stops waiting, the server does not), so the next run
    starts on an idle server: one more request of the same kind queues behind that backlog."""
    if row.kind == "get":
        try:
            srv.http_request(row.url, timeout=120)
        except OSError:
            pass
    else:
        time.sleep(1.0)


# --- checks before measuring -------------------------------------------------------------------
def expect(response: srv.Response, what: str, *, cache: str | None = None, server: str = ""):
    if response.status != 200:
        raise RuntimeError(f"{what}: HTTP {response.status}, expected 200")
    got = response.headers.get("x-page-cache")
    if cache is not None and got != cache:
        raise RuntimeError(f"{what}: X-Page-Cache {got!r}, expected {cache!r}")
    if server and server not in response.headers.get("server", ""):
        raise RuntimeError(f"{what}: Server {response.headers.get('server')!r}, not {server}")
    return response


def warm_cached(url: str, what: str, *, server: str = "") -> bytes:
    """The first request stores the page, the next ones are hits; returns the page's bytes."""
    seen = []
    for _ in range(5):
        response = srv.http_request(url)
        cache = response.headers.get("x-page-cache")
        seen.append(f"{response.status} {cache}")
        if response.status == 200 and cache == "hit":
            return expect(response, what, cache="hit", server=server).body
    raise RuntimeError(
        f"{what}: no cache hit after {len(seen)} requests (HTTP, X-Page-Cache: {seen});"
        " is BROADSHEET_BASE_URL the address requested?"
    )


def comments_on(body: bytes) -> int:
    return len(re.findall(rb'<li[^>]+id="comment-\d+"', body))


# --- POST --------------------------------------------------------------------------------------
def count_marked(database_url: str, thread: int, marker: str) -> tuple[int, int]:
    """(comments, approved ones) in ``thread`` whose text carries this run's ``marker``."""
    sql = (
        "SELECT count(*), count(*) FILTER (WHERE status = 'approved') FROM comments_comment"
        " WHERE thread_id = {p} AND text LIKE {p}"
    )
    like = f"%{marker}t%"
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url[len("sqlite:///") :], timeout=30)
        try:
            return conn.execute(sql.format(p="?"), (thread, like)).fetchone()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute(sql.format(p="%s"), (thread, like)).fetchone()


def measure_posts(
    row: Row, opts: Options, app: srv.Server, *, database_url: str, thread: int, min_age: float
) -> None:
    started = time.monotonic()
    tokens = srv.session_tokens(app.url, thread)
    # The form token must be older than COMMENTS_FORM_MIN_SECONDS, as for a person who reads
    # first; it is not single-use, so one serves the whole run (one open page, many comments).
    time.sleep(max(0.0, min_age + 0.3 - (time.monotonic() - started)))
    scripts = ("comment_post.lua", "statuses.lua")
    if opts.warmup:
        srv.run_wrk(
            row.url,
            duration=opts.warmup,
            connections=opts.connections,
            threads=opts.threads,
            scripts=scripts,
            cpus=opts.cpus,
            env={**tokens, "BENCH_RUN": "warm" + secrets.token_hex(4)},
        )
        settle(row)
    for _ in range(opts.rounds):
        marker = "r" + secrets.token_hex(5)
        locked_before = app.count_in_log("database is locked")
        tracebacks_before = app.count_in_log("Traceback")
        measure(row, opts, warm=False, scripts=scripts, env={**tokens, "BENCH_RUN": marker})
        result = row.results[-1]
        stored, approved = count_marked(database_url, thread, marker)
        accepted = result.statuses.get(ACCEPTED, 0)
        row.accepted += accepted
        row.stored += stored
        row.approved += approved
        row.missing += max(0, accepted - stored)
        row.locked += app.count_in_log("database is locked") - locked_before
        row.tracebacks += app.count_in_log("Traceback") - tracebacks_before
        for status, n in result.statuses.items():
            if status != ACCEPTED:
                row.other_statuses[status] = row.other_statuses.get(status, 0) + n


# --- output ------------------------------------------------------------------------------------
def fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "inf"
    return f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or not b:
        return "-"
    value = a / b
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def to_static(rows: dict[str, Row], key: str) -> float | None:
    """A row's rate over nginx's static-file rate: the median of each round's ratio. The cached
    rows run right after the static row in every round, so a round the machine was busier for
    counts against both, not against one."""
    static, row = rows.get("static"), rows.get(key)
    if static is None or row is None or not row.results or row.kind != "get":
        return None
    pairs = [r.rps / s.rps for r, s in zip(row.results, static.results, strict=False) if s.rps]
    return srv.median(pairs) if pairs else None


def print_table(rows: dict[str, Row]) -> None:
    wp_for = {
        "static": "static",
        "production": "classic",
        "embedded": "classic",
        "uncached": "classic",
        "post_sqlite": "post",
        "post_postgres": "post",
    }
    head = (
        f"{'':<54}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'x nginx':>9}{'x WP':>8}  vs (recorded)"
    )
    print(head)
    print("-" * len(head))
    for key, row in rows.items():
        r = row.result
        wp = wp_for.get(key)
        wp_rate = WORDPRESS[wp][1] if wp else None
        print(
            f"{row.label:<54}{fmt(row.rate):>10}{fmt(r and r.p50_ms, 2):>9}"
            f"{fmt(r and r.p99_ms, 1):>9}{row.errors if r else '-':>8}"
            f"{ratio(to_static(rows, key), 1) if row.kind == 'get' else '':>9}"
            f"{ratio(row.rate, wp_rate):>8}  {WP_SHORT[wp] + f' {wp_rate:,g}' if wp else ''}"
        )
    print("recorded 2026-11-26 on this machine (anchors/wordpress/RESULTS.md), NOT measured now:")
    for label, rate, p50, p99 in WORDPRESS.values():
        print(f"  {label:<52}{rate:>10,.1f}{p50:>9.2f}{p99:>9.1f}{0:>8}")


def print_posts(rows: dict[str, Row]) -> None:
    for key in ("post_sqlite", "post_postgres"):
        row = rows.get(key)
        if row is None or not row.results:
            continue
        sent = sum(r.requests for r in row.results)
        print(
            f"{row.label}: {sent:,} answered, {row.accepted:,} accepted (303), {row.stored:,}"
            f" rows stored ({row.approved:,} approved), {row.missing} acknowledged but missing,"
            f" {row.locked} 'database is locked', {row.tracebacks} tracebacks in the log,"
            f" other statuses {row.other_statuses or '{}'}"
        )


def goals(rows: dict[str, Row]) -> list[tuple[str, str, str, bool | None]]:
    """(goal, measured, target, met) for each of issue 6's goals; met is None when not run."""

    def ran(key: str) -> bool:
        return key in rows and bool(rows[key].results)

    def rate(key: str) -> float | None:
        return rows[key].rate if ran(key) else None

    def p99(key: str) -> float | None:
        return rows[key].result.p99_ms if ran(key) else None

    def per(a: float | None, b: float | None) -> float | None:
        if a is None or b is None:
            return None
        return a / b if b else float("inf")

    def goal(name: str, value: float | None, op: str, target: float, digits: int = 0):
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        return (name, fmt(value, digits), f"{op} {target:g}", met)

    out = [
        goal("cached production / nginx static", to_static(rows, "production"), ">=", 0.9, 2),
        goal("cached embedded / nginx static", to_static(rows, "embedded"), ">=", 0.5, 2),
        goal("uncached, 100 comments: req/s", rate("uncached"), ">=", 430),
        goal("uncached, 100 comments: p99 ms", p99("uncached"), "<=", 100, 1),
        # Cost of a page = 1 / its rate under the same load.
        goal("1,000 comments, first page: cost / 100-comment page",
             per(rate("uncached"), rate("big")), "<=", 2, 2),
    ]  # fmt: skip
    for key, name in (("post_sqlite", "SQLite"), ("post_postgres", "PostgreSQL")):
        row = rows.get(key)
        out += [
            goal(f"comment POST, {name}: accepted/s", rate(key), ">=", 580),
            goal(f"comment POST, {name}: p99 ms", p99(key), "<=", 50, 1),
            goal(f"comment POST, {name}: 'database is locked'",
                 row.locked if ran(key) else None, "<=", 0),
            goal(f"comment POST, {name}: acknowledged but missing",
                 row.missing if ran(key) else None, "<=", 0),
        ]  # fmt: skip
    return out


def print_goals(rows: dict[str, Row]) -> None:
    print(f"{'goal':<56}{'measured':>10}{'target':>10}  result")
    for goal, measured, target, met in goals(rows):
        verdict = "not run" if met is None else ("PASS" if met else "MISS")
        print(f"{goal:<56}{measured:>10}{target:>10}  {verdict}")
    print("\nagainst WordPress (recorded figures, wrk -t2 -c16):")
    for key, wp, what in (
        ("uncached", "classic", "uncached seed page vs WP classic theme"),
        ("uncached", "block", "uncached seed page vs WP block theme"),
        ("production", "classic", "cached page (production) vs WP uncached classic"),
        ("post_sqlite", "post", "comment POST on SQLite vs WP"),
        ("post_postgres", "post", "comment POST on PostgreSQL vs WP"),
    ):
        if key in rows and rows[key].results:
            print(f"  {what:<54}{ratio(rows[key].rate, WORDPRESS[wp][1]):>8} x")


# --- the run -----------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per row, 1 s warm-up, 1 round")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (10; --quick 2)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per row (2; --quick 1)")
    parser.add_argument("--rounds", type=int, help="runs per row, median shown (3; --quick 1)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--wrk-threads", type=int, default=2, help="2, as WordPress's recorded runs (wrk -t2 -c16)"
    )
    parser.add_argument(
        "--pin-wrk",
        default="",
        metavar="CPUS",
        help="run wrk under taskset -c CPUS (default: not pinned)",
    )
    parser.add_argument("--workers", type=int, default=2, help="granian workers per app server")
    parser.add_argument("--nginx-workers", type=int, default=2)
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES,
        help=f"PostgreSQL server (trust auth on loopback): {DEFAULT_POSTGRES}",
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL row")
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS,
        help=f"for the production and PostgreSQL servers, flushed first "
        f"({DEFAULT_REDIS}); 'off' for none",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="migrate from scratch; by default a migrated empty database is kept in "
        "var/bench-cache/ and reused while migrations and packages are unchanged",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary dir (logs)")
    args = parser.parse_args()
    opts = Options(
        duration=args.duration or (2 if args.quick else 10),
        warmup=args.warmup if args.warmup is not None else (1 if args.quick else 2),
        connections=args.connections,
        threads=args.wrk_threads,
        rounds=args.rounds or (1 if args.quick else 3),
        cpus=args.pin_wrk,
    )
    for tool in (srv.WRK, srv.NGINX):
        if not Path(tool).exists():
            print(f"{tool} is missing (apt-get install -y wrk nginx-light)", file=sys.stderr)
            return 2
    redis_url = "" if args.redis_url == "off" else args.redis_url

    work = Path(tempfile.mkdtemp(prefix="broadsheet-bench-serving-"))
    pg_name = f"broadsheet_bench_serving_{os.getpid()}"
    started = time.monotonic()
    keep = args.keep
    try:
        with srv.Processes() as procs:
            run(args, opts, procs, work, redis_url, pg_name)
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        keep = True  # the servers' logs are in there
        return 1
    finally:
        if not args.no_postgres:
            try:
                srv.drop_postgres(args.postgres_url, pg_name)
            except Exception as exc:  # noqa: BLE001 — report, go on cleaning up
                print(f"could not drop database {pg_name}: {exc}", file=sys.stderr)
        if keep:
            print(f"kept {work} (logs/ has the servers' output)", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n(whole run: {time.monotonic() - started:.0f} s)")
    return 0


def run(args, opts: Options, procs: srv.Processes, work: Path, redis_url: str, pg_name: str):
    versions = srv.versions()
    print(
        f"Broadsheet serving benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPUs (nproc), load average {os.getloadavg()[0]:.1f} at start"
    )
    print("  " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(
        f"  wrk -t{opts.threads} -c{opts.connections} -d{opts.duration:g}s --timeout 10s, "
        f"{opts.warmup:g} s warm-up per row, {opts.rounds} round(s) (median shown); "
        + (f"wrk pinned to CPU {opts.cpus} (taskset)" if opts.cpus else "wrk not pinned")
        + ", on the same CPUs as the servers"
    )
    print(
        f"  app: broadsheet serve (granian WSGI) --workers {args.workers}, "
        f"{os.environ.get('BROADSHEET_THREADS', '2')} blocking threads each; "
        f"nginx worker_processes {args.nginx_workers}; Redis: {redis_url or 'off'}\n",
        flush=True,
    )

    # --- content: SQLite and PostgreSQL set up side by side -----------------------------------
    sqlite_var = work / "sqlite"
    sqlite_url = f"sqlite:///{sqlite_var / 'broadsheet.sqlite3'}"
    setup_env = srv.django_env(sqlite_var, database_url=sqlite_url)
    jobs = {
        "sqlite": (
            setup_env,
            sqlite_url,
            {
                "fixture": str(FIXTURE),
                "collectstatic": True,
                "big": BIG_COMMENTS,
                "discussion": None,
            },
        )
    }
    pg_var = work / "postgres"
    if not args.no_postgres:
        pg_url = srv.create_postgres(args.postgres_url, pg_name)
        pg_env = srv.django_env(pg_var, database_url=pg_url, STATIC_ROOT=str(sqlite_var / "static"))
        jobs["postgres"] = (
            pg_env,
            pg_url,
            {
                "fixture": str(FIXTURE),
                "collectstatic": False,
                "big": 0,
                "discussion": srv.POST_DISCUSSION,
            },
        )
    print(
        "setting up: migrate, collectstatic, import the seed export, 1,000-comment copy…",
        flush=True,
    )
    t0 = time.monotonic()

    def set_up(env: dict, database_url: str, options: dict) -> dict:
        env = {**env, "BROADSHEET_PAGE_CACHE_DIR": "off"}  # nothing to invalidate yet
        started = time.monotonic()
        how = srv.migrate(env, database_url, cache=not args.no_cache)
        migrated = time.monotonic() - started
        result = srv.run_python(SETUP, env, json.dumps(options))
        result["seconds"] = {f"migrate ({how})": migrated, **result["seconds"]}
        return result

    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {k: pool.submit(set_up, *job) for k, job in jobs.items()}
        content = {k: f.result() for k, f in futures.items()}
    seed, big, target = (content["sqlite"][k] for k in ("seed", "big", "post_target"))
    print(
        f"  done in {time.monotonic() - t0:.0f} s: seed {seed['url']} "
        f"({seed['comments']} comments, {seed['top_level']} top-level); "
        f"copy with {big['comments']:,} ({big['top_level']} top-level); "
        f"comments posted to {target['url']}",
        flush=True,
    )
    for name, result in content.items():
        print(f"  {name}: " + ", ".join(f"{k} {v:.0f} s" for k, v in result["seconds"].items()))
    if redis_url:
        srv.flush_redis(redis_url)

    # --- servers: all started at once, idle until their rows --------------------------------
    logs = work / "logs"
    nginx_port, static_port = srv.free_port(), srv.free_port()
    embedded_port = srv.free_port()
    uncached_port = srv.free_port()
    cache_dirs = {name: sqlite_var / f"pagecache-{name}" for name in ("embedded", "production")}
    env_embedded = srv.django_env(
        sqlite_var,
        database_url=sqlite_url,
        base_url=srv.base_url(embedded_port),
        BROADSHEET_PAGE_CACHE_DIR=str(cache_dirs["embedded"]),
    )
    env_production = srv.django_env(
        sqlite_var,
        database_url=sqlite_url,
        base_url=srv.base_url(nginx_port),
        redis_url=redis_url,
        BROADSHEET_PAGE_CACHE_DIR=str(cache_dirs["production"]),
    )
    env_uncached = srv.django_env(
        sqlite_var,
        database_url=sqlite_url,
        base_url=srv.base_url(uncached_port),
        BROADSHEET_PAGE_CACHE_DIR="off",
    )
    min_age = float(os.environ.get("COMMENTS_FORM_MIN_SECONDS", 3))
    print("starting servers…", flush=True)
    t0 = time.monotonic()
    app_envs = {  # name: (environment, port; 0 for any)
        "embedded": (env_embedded, embedded_port),
        "production": (env_production, 0),
        "uncached": (env_uncached, uncached_port),
    }
    if not args.no_postgres:
        pg_port = srv.free_port()
        env_pg = {**pg_env, "BROADSHEET_BASE_URL": srv.base_url(pg_port)}
        if redis_url:
            env_pg["REDIS_URL"] = redis_url
        app_envs["postgres"] = (env_pg, pg_port)
    apps = {
        name: procs.start_app(name, env, port=port, log=logs / f"{name}.log", workers=args.workers)
        for name, (env, port) in app_envs.items()
    }
    embedded, production, uncached = apps["embedded"], apps["production"], apps["uncached"]
    pg_app = apps.get("postgres")
    conf = srv.app_nginx_conf(
        env_production,
        directory=work / "nginx-production",
        listen_port=nginx_port,
        upstreams=[production.port],
        workers=args.nginx_workers,
    )
    for app in apps.values():
        srv.wait_for(app)
    front = procs.start_nginx("nginx-production", conf, port=nginx_port)
    srv.wait_for(front, "/static/")  # 403/404: nginx is up
    print(f"  up in {time.monotonic() - t0:.0f} s", flush=True)

    # --- warm the caches, check what each row will get -------------------------------------
    page = warm_cached(front.url + seed["url"], "production (nginx)", server="nginx")
    embedded_page = warm_cached(embedded.url + seed["url"], "embedded")
    static_root = work / "static-root"
    static_root.mkdir()
    (static_root / "seed.html").write_bytes(page)
    static_conf = srv.static_nginx_conf(
        directory=work / "nginx-static",
        root=static_root,
        listen_port=static_port,
        workers=args.nginx_workers,
    )
    static = procs.start_nginx("nginx-static", static_conf, port=static_port)
    srv.wait_for(static, "/seed.html")
    same = srv.http_request(static.url + "/seed.html")
    if same.body != page:
        raise RuntimeError("the static nginx does not serve the cached page's bytes")
    plain = expect(srv.http_request(uncached.url + seed["url"]), "uncached", cache=None)
    if "x-page-cache" in plain.headers or comments_on(plain.body) != seed["comments"]:
        raise RuntimeError(
            f"uncached page: X-Page-Cache {plain.headers.get('x-page-cache')!r}, "
            f"{comments_on(plain.body)} comments shown of {seed['comments']}"
        )
    session_url = f"{embedded.url}/comments/session/?thread={seed['thread']}"
    personal = srv.http_request(session_url)
    if personal.status != 200 or "form_token" not in json.loads(personal.body):
        raise RuntimeError(f"/comments/session/: HTTP {personal.status}")
    print(
        f"  seed page: {len(page):,} bytes via nginx (production), {len(embedded_page):,} "
        f"embedded, {len(plain.body):,} uncached; {comments_on(page)} comments shown\n",
        flush=True,
    )

    rows: dict[str, Row] = {
        "static": Row(
            "static", "nginx static file, same bytes (the limit)", static.url + "/seed.html"
        ),
        "production": Row(
            "production", "article page, cached, production (nginx)", front.url + seed["url"]
        ),
        "embedded": Row(
            "embedded", "article page, cached, embedded (app only)", embedded.url + seed["url"]
        ),
        "uncached": Row(
            "uncached",
            f"article page, uncached, {seed['comments']} comments",
            uncached.url + seed["url"],
        ),
        "big": Row("big", "", uncached.url + big["url"]),
        "session": Row("session", "personal parts, /comments/session/ (anonymous)", session_url),
        "post_sqlite": Row(
            "post_sqlite",
            "comment POST, SQLite (accepted/s)",
            embedded.url + "/comments/post/",
            kind="post",
        ),
    }
    if pg_app is not None:
        rows["post_postgres"] = Row(
            "post_postgres",
            "comment POST, PostgreSQL (accepted/s)",
            pg_app.url + "/comments/post/",
            kind="post",
        )

    # --- GET rows, taking turns ----------------------------------------------------------------
    print("measuring…", flush=True)
    turns = [rows[k] for k in ("static", "production", "embedded", "session", "uncached")]
    for n in range(opts.rounds):
        for row in turns:
            measure(row, opts, warm=n == 0)
    # The cached pages must still have been cache hits: a page stored again means a miss.
    expect(
        srv.http_request(front.url + seed["url"]), "production after", cache="hit", server="nginx"
    )
    expect(srv.http_request(embedded.url + seed["url"]), "embedded after", cache="hit")

    # --- the 1,000-comment page, comments in pages ---------------------------------------------
    srv.run_python(DISCUSSION, env_uncached, json.dumps(PAGED_DISCUSSION))
    # With the page cache off, another process applies changed settings up to
    # REMEMBER_SECONDS later: wait until the server shows pages.
    deadline = time.monotonic() + 15
    while True:
        first = expect(srv.http_request(uncached.url + big["url"]), "1,000-comment page")
        shown = comments_on(first.body)
        if shown < big["comments"]:
            # The other process of the server may still hold the old settings for as long.
            time.sleep(REMEMBER_SECONDS + 0.5)
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the uncached server never broke the comments into pages")
        time.sleep(0.5)
    pages = -(-big["top_level"] // PER_PAGE)
    rows["big"].label = f"article page, uncached, {big['comments']:,} comments, page 1/{pages}"
    rows["big"].note = f"{shown} comments on the page, {len(first.body):,} bytes"
    print(
        f"  (comments in pages of {PER_PAGE} top-level, first page by default: {shown} comments "
        f"of {big['comments']:,} on the article's own address, {len(first.body):,} bytes)"
    )
    for n in range(opts.rounds):
        measure(rows["big"], opts, warm=n == 0)

    # --- comment POSTs: SQLite, then PostgreSQL ------------------------------------------------
    srv.run_python(DISCUSSION, env_embedded, json.dumps(srv.POST_DISCUSSION))
    posts = [("post_sqlite", embedded, sqlite_url, target["thread"])]
    if pg_app is not None:
        pg_thread = content["postgres"]["post_target"]["thread"]
        posts.append(("post_postgres", pg_app, pg_url, pg_thread))
    for key, app, database_url, thread in posts:
        measure_posts(
            rows[key], opts, app, database_url=database_url, thread=thread, min_age=min_age
        )
        if app is embedded:  # the PostgreSQL row gets the machine to itself
            for server in reversed(list(procs.servers)):
                if server is not pg_app:
                    procs.stop(server)
    procs.stop_all()

    print()
    print_table(rows)
    print()
    print_posts(rows)
    if rows["big"].note:
        print(f"{rows['big'].label}: {rows['big'].note}")
    print()
    print_goals(rows)


if __name__ == "__main__":
    raise SystemExit(main())
