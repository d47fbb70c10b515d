"""Time `broadsheet import-wxr` on a generated WordPress export, and check what it imported.

Generates a file with bench/wxr_generate.py in a temporary directory, then runs, each as its
own process, `broadsheet migrate --noinput` and `broadsheet import-wxr FILE --json-report` on
a fresh SQLite file. With DATABASE_URL set to a PostgreSQL server on loopback, it uses a
throwaway database `broadsheet_bench_wxr` there instead (created, then dropped). Prints the
wall time and peak RSS of the import, its own per-phase times, and the rows in the database
against the generator's tally. It is a measurement, not a test; it exits 1 if the import
fails or a count differs.

--reader-only times broadsheet.wordpress.wxr.read_wxr alone over the file, in this process,
and checks the records it yields against the tally.

    .venv/bin/python bench/wxr_import.py [--posts 10000] [--comments 100000] [--keep]
    .venv/bin/python bench/wxr_import.py --reader-only [--file OUT.xml]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = "broadsheet_bench_wxr"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TIME_BIN = Path("/usr/bin/time")  # GNU time: -v reports the child's own peak RSS


def _generator():
    spec = importlib.util.spec_from_file_location("wxr_generate", ROOT / "bench/wxr_generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mb(kilobytes: int) -> float:
    return kilobytes / 1024  # ru_maxrss and GNU time both count KiB on Linux


# -- reader only --------------------------------------------------------------------------------


def reader_counts(path: Path, tally: dict) -> tuple[dict, float, float, float]:
    """Read the whole file with read_wxr; return (counts, seconds, RSS MB before, peak MB)."""
    sys.path.insert(0, str(ROOT / "src"))
    from broadsheet.wordpress.wxr import Author, Channel, Item, Term, read_wxr

    offset = timedelta(hours=int(tally["utc_offset"][:3]))

    c: Counter = Counter()
    depths: Counter = Counter()
    unique_terms: set[tuple[str, str]] = set()
    before = _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    start = time.perf_counter()
    # The draft has no GMT date: the reader must fall back to post_date in the site's zone.
    for record in read_wxr(path, source_tz=ZoneInfo(tally["source_timezone"])):
        if isinstance(record, Channel):
            c["channels"] += 1
        elif isinstance(record, Author):
            c["authors"] += 1
        elif isinstance(record, Term):
            c["term_records"] += 1
            unique_terms.add((record.taxonomy, record.slug))
        elif isinstance(record, Item):
            c[f"{record.post_type}:{record.status}"] += 1
            c["password_protected"] += bool(record.password)
            c["sticky"] += record.sticky
            c["items_gmt_ok"] += _gmt_ok(record, offset)
            if record.post_type == "page":
                c["pages_with_parent"] += record.parent_wp_id != 0
            depth_of: dict[int, int] = {}  # per item, so bounded by its comments
            for comment in record.comments:
                c["comments"] += 1
                c[f"approved:{comment.approved}"] += 1
                c[f"type:{comment.type}"] += 1
                c["replies"] += comment.parent_wp_id != 0
                c["with_user_id"] += comment.user_wp_id != 0
                depth = depth_of.get(comment.parent_wp_id, 0) + 1
                depth_of[comment.wp_id] = depth
                depths[depth] += 1
                c["comments_gmt_ok"] += _gmt_ok(comment, offset)
    seconds = time.perf_counter() - start
    peak = _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    c["categories"] = sum(1 for tax, _ in unique_terms if tax == "category")
    c["tags"] = sum(1 for tax, _ in unique_terms if tax == "post_tag")
    c["depths"] = dict(sorted(depths.items()))
    return dict(c), seconds, before, peak


def _gmt_ok(record, offset: timedelta) -> bool:
    """GMT date = local date − the site's UTC offset."""
    if record.date_gmt is None or record.date_local is None:
        return False
    return record.date_gmt.replace(tzinfo=None) == record.date_local - offset


def reader_checks(tally: dict, got: dict) -> list[tuple[str, object, object]]:
    posts, zone = tally["posts_by_status"], tally["utc_offset"]
    return [
        ("authors", tally["authors"], got.get("authors", 0)),
        ("categories (distinct slugs)", tally["categories"], got.get("categories", 0)),
        ("tags (distinct slugs)", tally["tags"], got.get("tags", 0)),
        (
            "term records (incl. core's wp:term copies)",
            tally["categories"] + tally["tags"] + tally["wp_terms"],
            got.get("term_records", 0),
        ),
        *((f"post:{s}", n, got.get(f"post:{s}", 0)) for s, n in posts.items()),
        ("page:publish", tally["pages"], got.get("page:publish", 0)),
        ("pages with a parent", tally["pages_with_parent"], got.get("pages_with_parent", 0)),
        ("password protected", tally["password_protected"], got.get("password_protected", 0)),
        ("sticky", tally["sticky"], got.get("sticky", 0)),
        (f"items with GMT = local − ({zone})", tally["items"], got.get("items_gmt_ok", 0)),
        ("comments", tally["comments"], got.get("comments", 0)),
        *(
            (f"comment_approved {s}", n, got.get(f"approved:{s}", 0))
            for s, n in tally["comments_by_status"].items()
        ),
        *(
            (f"comment_type {t or '(empty)'}", n, got.get(f"type:{t}", 0))
            for t, n in tally["comments_by_type"].items()
        ),
        ("replies", tally["replies"], got.get("replies", 0)),
        (f"comments with GMT = local − ({zone})", tally["comments"], got.get("comments_gmt_ok", 0)),
        ("comments with a user id", tally["comments_by_site_author"], got.get("with_user_id", 0)),
        (
            "depth histogram",
            {int(k): v for k, v in tally["comment_depths"].items()},
            got.get("depths"),
        ),
    ]  # fmt: skip


def run_reader_only(args: argparse.Namespace, workdir: Path) -> int:
    if args.file:
        path, tally = args.file, json.loads(Path(f"{args.file}.json").read_text())
    else:
        # Generated in a child process so this process's peak RSS is the reader's own.
        path = workdir / "bench.xml"
        subprocess.run(
            [sys.executable, str(ROOT / "bench/wxr_generate.py"), str(path),
             "--posts", str(args.posts), "--comments", str(args.comments),
             "--seed", str(args.seed)],
            check=True, stdout=subprocess.DEVNULL, timeout=args.timeout,
        )  # fmt: skip
        tally = json.loads(Path(f"{path}.json").read_text())
    got, seconds, before, peak = reader_counts(path, tally)
    size = path.stat().st_size
    print(f"read_wxr over {path} ({size / 1e6:.1f} MB), in this process")
    print(
        f"{'MB':>8} {'items':>7} {'comments':>9} {'seconds':>8} {'MB/s':>6} "
        f"{'RSS before':>11} {'peak RSS':>9}"
    )
    print(
        f"{size / 1e6:8.1f} {tally['items']:7d} {got.get('comments', 0):9d} {seconds:8.2f} "
        f"{size / 1e6 / seconds:6.1f} {before:9.1f}MB {peak:7.1f}MB"
    )
    return _print_checks(reader_checks(tally, got))


# -- import -------------------------------------------------------------------------------------


def _database(workdir: Path) -> tuple[str, str | None, str]:
    """(child DATABASE_URL, maintenance URL to drop it with or None, description)."""
    given = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(given)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        note = " (DATABASE_URL is not PostgreSQL: ignored)" if given else ""
        path = workdir / "bench.sqlite3"
        return f"sqlite:///{path}", None, f"SQLite {path}{note}"
    if parts.hostname not in LOOPBACK:
        raise SystemExit(
            f"refusing DATABASE_URL on {parts.hostname!r}: the bench uses loopback only"
        )
    import psycopg

    if parts.path.strip("/") == BENCH_DB:  # cannot drop the database we are connected to
        given = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(given, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    url = urlunsplit(parts._replace(path=f"/{BENCH_DB}"))
    return url, given, f"PostgreSQL {parts.hostname}:{parts.port or 5432}/{BENCH_DB}"


def _drop(maintenance_url: str) -> None:
    import psycopg

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def _run(cmd: list[str], *, env: dict, log: Path, timeout: float) -> tuple[int, float, str, str]:
    """Run one child; (exit code, wall seconds, stdout, stderr). Output also kept in log.*."""
    start = time.perf_counter()
    # Own session, so a timeout kills the whole group (GNU time and the command under it).
    child = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        out, err = child.communicate()
        err += f"\ntimed out after {timeout:.0f}s: killed"
    seconds = time.perf_counter() - start
    code = child.returncode
    log.with_suffix(".stdout").write_text(out)
    log.with_suffix(".stderr").write_text(err)
    return code, seconds, out, err


def _json_report(stdout: str) -> dict | None:
    """The importer prints its JSON report on the last line; take the last line that parses."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def _db_counts(url: str) -> dict[str, object]:
    queries = {
        "articlepages": "SELECT COUNT(*) FROM publishing_articlepage",
        "articlepages_live": (
            "SELECT COUNT(*) FROM publishing_articlepage a "
            "JOIN wagtailcore_page p ON p.id = a.page_ptr_id WHERE p.live"
        ),
        "standardpages": "SELECT COUNT(*) FROM publishing_standardpage",
        "comments_by_status": "SELECT status, COUNT(*) FROM comments_comment GROUP BY status",
        "comments_by_kind": "SELECT kind, COUNT(*) FROM comments_comment GROUP BY kind",
        "replies": "SELECT COUNT(*) FROM comments_comment WHERE parent_id IS NOT NULL",
        "comments_with_user": "SELECT COUNT(*) FROM comments_comment WHERE user_id IS NOT NULL",
        "threads": "SELECT COUNT(*) FROM comments_thread",
        "sections": "SELECT COUNT(*) FROM publishing_section",
        "tags": "SELECT COUNT(*) FROM taggit_tag",
        "redirects": "SELECT COUNT(*) FROM wagtailredirects_redirect",
        "wordpress_ids": "SELECT kind, COUNT(*) FROM wordpress_wordpressid GROUP BY kind",
    }
    counts: dict[str, object] = {}
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True)
        errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    else:
        import psycopg

        conn = psycopg.connect(url, autocommit=True)
        errors = (psycopg.Error,)
    try:
        for key, sql in queries.items():
            try:
                rows = conn.execute(sql).fetchall()
            except errors as exc:  # a table or column the importer's branch does not have yet
                counts[key] = f"n/a ({str(exc).splitlines()[0][:60]})"
                continue
            counts[key] = dict(sorted(rows)) if "GROUP BY" in sql else rows[0][0]
    finally:
        conn.close()
    return counts


def _print_checks(checks: list[tuple[str, object, object]]) -> int:
    width = max(len(label) for label, _, _ in checks)
    print(f"\n{'count':<{width}} {'expected':>12} {'got':>12}")
    bad = 0
    for label, expected, got in checks:
        ok = expected == got
        bad += not ok
        if isinstance(expected, dict):
            print(f"{label:<{width}} {'OK' if ok else 'DIFF'}  expected {expected}  got {got}")
        else:
            print(f"{label:<{width}} {expected!s:>12} {got!s:>12}  {'OK' if ok else 'DIFF'}")
    print(f"{len(checks) - bad} of {len(checks)} counts match")
    return 1 if bad else 0


def run_import(args: argparse.Namespace, workdir: Path) -> int:
    url, maintenance, described = _database(workdir)  # first: it may refuse the URL
    try:
        if args.file:
            path, tally = args.file.resolve(), json.loads(Path(f"{args.file}.json").read_text())
        else:
            path = workdir / "bench.xml"
            tally = _generator().generate(
                path, posts=args.posts, comments=args.comments, seed=args.seed
            )
            print(f"generated {path}: {tally['bytes'] / 1e6:.1f} MB in {tally['seconds']:.1f}s")
        broadsheet = Path(sys.executable).parent / "broadsheet"
        if not broadsheet.exists():
            broadsheet = ROOT / ".venv/bin/broadsheet"
        env = dict(os.environ, DATABASE_URL=url, BROADSHEET_VAR_DIR=str(workdir / "var"))
        print(f"database: {described}")
        code, migrate_s, _, err = _run(
            [str(broadsheet), "migrate", "--noinput"],
            env=env, log=workdir / "migrate", timeout=args.timeout,
        )  # fmt: skip
        if code:
            print(f"migrate failed ({code}):\n{err[-3000:]}")
            return 1
        after_migrate = _mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        cmd = [
            str(broadsheet), "import-wxr", str(path), "--json-report",
            "--source-timezone", tally["source_timezone"],
        ]  # fmt: skip
        if TIME_BIN.exists():
            cmd = [str(TIME_BIN), "-v", *cmd]
        code, import_s, out, err = _run(cmd, env=env, log=workdir / "import", timeout=args.timeout)
        children_peak = _mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
        if match:
            import_rss, rss_how = _mb(int(match[1])), "GNU time -v"
        else:
            # RUSAGE_CHILDREN is the maximum over every child so far; migrate ran first, so
            # this is the import's own peak only if it is above migrate's.
            import_rss, rss_how = (
                children_peak,
                f"RUSAGE_CHILDREN (migrate: {after_migrate:.0f} MB)",
            )
        report = _json_report(out)
        if code:
            tail = "\n".join(line for line in err.splitlines() if "\t" not in line)[-3000:]
            print(f"import-wxr failed ({code}) after {import_s:.1f}s:\n{tail}")
        print(
            f"\nimport-wxr, {described.split()[0]}, migrate {migrate_s:.1f}s (separate process)\n"
            f"{'file MB':>8} {'posts':>6} {'pages':>6} {'comments':>9} {'wall s':>8} "
            f"{'peak RSS MB':>12} {'comments/s':>11}\n"
            f"{tally['bytes'] / 1e6:8.1f} {tally['posts']:6d} {tally['pages']:6d} "
            f"{tally['comments']:9d} {import_s:8.1f} {import_rss:12.1f} "
            f"{tally['comments'] / import_s:11.0f}\n"
            f"(peak RSS from {rss_how}; max over all children {children_peak:.0f} MB)"
        )
        if report is None:
            print("\nno JSON report on the importer's stdout; its last lines:")
            print("\n".join(out.strip().splitlines()[-15:]))
        else:
            seconds = report.get("seconds") or {}
            if seconds:
                print("importer phases: " + ", ".join(f"{k} {v}s" for k, v in seconds.items()))
            counts = report.get("counts") or {}
            if counts:
                print("importer counts: " + json.dumps(counts, ensure_ascii=False))
            notes = report.get("note_counts") or {}
            if notes:
                print("importer notes:  " + json.dumps(notes, ensure_ascii=False))
            rest = {
                k: v
                for k, v in report.items()
                if k not in ("seconds", "counts", "notes", "note_counts")
            }
            print("report, other keys: " + json.dumps(rest, ensure_ascii=False)[:500])
        db = _db_counts(url)
        expected = tally["broadsheet"]
        checks = [
            ("articlepages", expected["articlepages"], db["articlepages"]),
            # publish posts go live; the future and draft posts do not.
            ("articlepages live", tally["posts_by_status"]["publish"], db["articlepages_live"]),
            ("standardpages", expected["standardpages"], db["standardpages"]),
            ("comments by status", expected["comments_by_status"], db["comments_by_status"]),
            ("comments by kind", expected["comments_by_kind"], db["comments_by_kind"]),
            ("replies", expected["replies"], db["replies"]),
            ("sections", tally["categories"], db["sections"]),
        ]
        print(
            "other rows: "
            + ", ".join(
                f"{k} {db[k]}"
                for k in ("threads", "tags", "comments_with_user", "redirects", "wordpress_ids")
            )
        )
        return _print_checks(checks) or (1 if code else 0)
    finally:
        if args.keep:
            print(f"\nkept {workdir}" + (f" and database {BENCH_DB}" if maintenance else ""))
        elif maintenance:
            _drop(maintenance)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--comments", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--file", type=Path, help="use this generated file (and FILE.json)")
    parser.add_argument("--keep", action="store_true", help="keep the directory and database")
    parser.add_argument("--reader-only", action="store_true", help="time read_wxr alone")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds per child")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="broadsheet-bench-wxr-"))
    try:
        if args.reader_only:
            return run_reader_only(args, workdir)
        return run_import(args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
