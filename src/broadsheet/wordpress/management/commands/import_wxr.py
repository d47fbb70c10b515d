"""``broadsheet import-wxr FILE [--uploads DIR] [--dry-run]``: move a WordPress site in."""

from __future__ import annotations

import json
import sys
import time
import zoneinfo

from django.core.management.base import BaseCommand, CommandError

from broadsheet.wordpress.importer import ImportFailed, import_wxr


class ProgressBar:
    """One line on the terminal, redrawn at most ten times a second; silent when the output
    is not a terminal (a log file gets the report only)."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.last = 0.0

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and done != total:
            return
        self.last = now
        label = {"check": "Checking", "import": "Importing", "index": "Indexing"}.get(phase, phase)
        unit = "pages" if phase == "index" else "MB"
        if total:
            share = done / total
            bar = "#" * int(share * 30)
            size = f"{total:,} pages" if phase == "index" else f"{total / 1e6:,.1f} MB"
            self.stream.write(f"\r{label:9} [{bar:<30}] {share:6.1%} of {size}")
        else:
            self.stream.write(f"\r{label:9} {done / 1e6:,.1f} {unit}")
        if done == total:
            self.stream.write("\n")
        self.stream.flush()


class Command(BaseCommand):
    help = "Import a WordPress export (WXR) file: posts, pages, people, terms, comments, URLs."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="the .xml file from WordPress's Tools > Export")
        parser.add_argument(
            "--uploads", help="the old site's wp-content/uploads folder, copied here"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="do everything, then undo it; print the report"
        )
        parser.add_argument(
            "--source-timezone",
            help="time zone of the old site, for drafts that carry no GMT date "
            "(default: TIME_ZONE)",
        )
        parser.add_argument(
            "--site-key", help="treat the file as coming from this site (after a domain change)"
        )
        parser.add_argument(
            "--json-report", action="store_true", help="print the report as JSON on the last line"
        )

    def handle(self, *args, **options) -> None:
        tz = None
        if options["source_timezone"]:
            try:
                tz = zoneinfo.ZoneInfo(options["source_timezone"])
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise CommandError(f"Unknown time zone {options['source_timezone']!r}") from exc
        try:
            report = import_wxr(
                path=options["file"],
                uploads=options["uploads"],
                dry_run=options["dry_run"],
                site_key=options["site_key"],
                source_tz=tz,
                progress=ProgressBar(sys.stderr),
            )
        except ImportFailed as exc:
            raise CommandError(str(exc)) from None
        for line in report.summary_lines():
            self.stdout.write(line)
        if options["json_report"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False))
