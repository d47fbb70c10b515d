"""Accepted comment posts per second through the real server (`broadsheet serve`, granian, 2
workers), driven by wrk from loopback. A measurement, not a test.

For each database (a fresh SQLite file in a temporary var dir, WAL + IMMEDIATE as the settings
configure it; or a PostgreSQL database of its own, created and dropped here) it migrates, loads
the demo publication, sets the default site's discussion settings as WordPress's comment
benchmark had them (``_servers.POST_DISCUSSION``, the same as ``serving.py``'s: no flood
interval, no per-IP / per-email rate limits, comments approved at once: no manual approval, no
"previously approved" rule; no notification mail), fetches one form token and CSRF token the
way the article page's script does (``/comments/session/``), waits out the form's minimum age,
and runs wrk with a Lua script that sends a unique comment (text, name, email,
submission key) with each request. Then it checks the database: every acknowledged comment
(a 303 to it) must be there, and counts "database is locked" in the server's log. "cpu ms" is
the server's CPU time (all its processes) per request: on a machine shared with other work,
the figure that moves least when requests/s do.

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
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _servers as srv  # noqa: E402 — the shared helpers next to this file

LUA = r"""
-- One unique comment per request; statuses counted per wrk thread, summed in done().
local counter = 0
statuses = {}  -- a global: done() reads it from each thread with thread:get()
local threads = {}
local run = os.getenv("BENCH_RUN") or tostring(os.time())

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

local function field(name, value)
  return name .. "=" .. value
end

request = function()
  counter = counter + 1
  local id = run .. "x" .. counter
  local body = table.concat({
    field("csrfmiddlewaretoken", os.getenv("BENCH_CSRF")),
    field("thread", os.getenv("BENCH_THREAD")),
    field("comment_parent", "0"),
    field("author", "Reader+" .. id),
    field("email", "reader" .. id .. "%40example.org"),
    field("url", ""),
    field("comment", "A+unique+comment+number+" .. id .. "+about+the+article%2C+with+some+words."),
    field("submission_key", "k" .. id),
    field("form_token", os.getenv("BENCH_FORM_TOKEN")),
  }, "&")
  return wrk.format("POST", "/comments/post/", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = "csrftoken=" .. os.getenv("BENCH_CSRF_COOKIE"),
    ["User-Agent"] = "wrk comment bench",
  }, body)
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, n in pairs(counts) do
      total[tostring(status)] = (total[tostring(status)] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    table.insert(parts, string.format('"%s": %d', status, n))
  end
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"timeouts": %d, "non_2xx_3xx": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status, table.concat(parts, ", ")
  ))
end
"""


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


def session_tokens(base: str, thread: int) -> tuple[str, str, str]:
    """(form token, CSRF token for the form, CSRF cookie), as comments.js gets them."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/comments/session/?thread={thread}", timeout=10) as response:
        data = json.loads(response.read())
    cookie = next(c.value for c in jar if c.name == "csrftoken")
    return data["form_token"], data["csrf_token"], cookie


def bench_database(name: str, database_url: str, args, lua_path: Path) -> list[dict]:
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
            form_token, csrf, cookie = session_tokens(server.url, info["thread"])
            # The form token must be older than COMMENTS_FORM_MIN_SECONDS; it is not single-use,
            # so one token serves the whole run (as one open page serves a reader's comments).
            time.sleep(float(env.get("COMMENTS_FORM_MIN_SECONDS", 3)) + 0.5)
            for run in range(args.runs):
                before = srv.run_python(COUNT, env, str(info["thread"]))
                locked_before = server.count_in_log("database is locked")
                cpu_before = tree_cpu_seconds(server.process.pid)
                wrk_env = dict(
                    os.environ,
                    BENCH_RUN=f"{os.getpid()}r{run}{name[0]}",
                    BENCH_THREAD=str(info["thread"]),
                    BENCH_FORM_TOKEN=urllib.parse.quote(form_token, safe=""),
                    BENCH_CSRF=urllib.parse.quote(csrf, safe=""),
                    BENCH_CSRF_COOKIE=cookie,
                )
                out = subprocess.run(  # noqa: S603
                    ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}",
                     f"-d{args.duration}s", "--timeout", "30s", "-s", str(lua_path), server.url],
                    env=wrk_env, capture_output=True, text=True,
                )  # fmt: skip
                if out.returncode:
                    raise RuntimeError(f"wrk failed: {out.stdout}{out.stderr}")
                line = next(x for x in out.stdout.splitlines() if x.startswith("BENCH "))
                stats = json.loads(line[len("BENCH ") :])
                time.sleep(0.5)  # let requests wrk gave up on at the end finish
                cpu = tree_cpu_seconds(server.process.pid) - cpu_before
                after = srv.run_python(COUNT, env, str(info["thread"]))
                locked = server.count_in_log("database is locked") - locked_before
                accepted = stats["statuses"].get("303", 0)
                created = after["total"] - before["total"]
                seconds = stats["duration_us"] / 1e6
                results.append(
                    {
                        "db": name,
                        "run": run + 1,
                        "req_s": stats["requests"] / seconds,
                        "accepted_s": accepted / seconds,
                        "p50_ms": stats["p50_us"] / 1000,
                        "p99_ms": stats["p99_us"] / 1000,
                        "max_ms": stats["max_us"] / 1000,
                        "accepted": accepted,
                        "created": created,
                        "approved": after["approved"] - before["approved"],
                        "missing": max(0, accepted - created),
                        "other": {k: v for k, v in stats["statuses"].items() if k != "303"},
                        "socket_errors": stats["connect_errors"]
                        + stats["read_errors"]
                        + stats["write_errors"]
                        + stats["timeouts"],
                        "locked": locked,
                        "cpu_ms": cpu * 1000 / max(stats["requests"], 1),
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

    lua_dir = Path(tempfile.mkdtemp(prefix="broadsheet-bench-lua-"))
    lua_path = lua_dir / "post.lua"
    lua_path.write_text(LUA)
    print(
        f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration}s, "
        f"broadsheet serve --workers {args.workers}, {os.cpu_count()} CPUs\n"
    )
    print(HEADER)
    summary = []
    try:
        if args.database in ("sqlite", "both"):
            path = Path(tempfile.mkdtemp(prefix="broadsheet-bench-db-")) / "bench.sqlite3"
            rows = bench_database("sqlite", f"sqlite:///{path}", args, lua_path)
            summary.append(median_row(rows))
            shutil.rmtree(path.parent, ignore_errors=True)
        if args.database in ("postgres", "both"):
            name = f"broadsheet_bench_{os.getpid()}"
            url = srv.create_postgres(args.postgres_url, name)
            try:
                rows = bench_database("postgres", url, args, lua_path)
                summary.append(median_row(rows))
            finally:
                srv.drop_postgres(args.postgres_url, name)
    finally:
        shutil.rmtree(lua_dir, ignore_errors=True)
    print("\nmedians (accepted, rows, missing and locked summed over the runs)")
    print(HEADER)
    for row in summary:
        print_row(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
