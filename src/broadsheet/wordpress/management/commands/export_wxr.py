"""``broadsheet export-wxr [--output FILE]``: write the site as a WordPress export (WXR 1.2)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from broadsheet.wordpress.export import ExportFailed, export_wxr


class Command(BaseCommand):
    help = (
        "Write the site (articles, pages, people, sections, tags, featured images, comments) "
        "as a WordPress export file that WordPress's importer and import-wxr both read."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--output",
            "-o",
            help="the .xml file to write (default: standard output). Written to a temporary "
            "file in the same folder and renamed when complete, so a failed export never "
            "leaves half a file",
        )
        parser.add_argument(
            "--json-report", action="store_true", help="print the report as JSON on the last line"
        )

    def handle(self, *args, **options) -> None:
        output = options["output"]
        try:
            if output and output != "-":
                report = self._to_file(Path(output))
            else:
                # The XML goes to standard output, so the report goes to standard error.
                stream = getattr(self.stdout, "_out", sys.stdout)
                report = export_wxr(out=getattr(stream, "buffer", stream))
                stream.flush()
        except ExportFailed as exc:
            raise CommandError(str(exc)) from None
        for line in report.summary_lines():
            self.stderr.write(line)
        if options["json_report"]:
            self.stderr.write(json.dumps(report.as_dict(), ensure_ascii=False))

    def _to_file(self, path: Path):
        folder = path.resolve().parent
        if not folder.is_dir():
            raise CommandError(f"{path}: the folder {folder} does not exist")
        try:
            fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
        except OSError as exc:
            raise CommandError(f"{path}: cannot write in {folder} ({exc.strerror})") from None
        try:
            with os.fdopen(fd, "wb") as fp:
                report = export_wxr(out=fp)
                fp.flush()
                os.fsync(fp.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temp_name, 0o666 & ~umask)  # mkstemp made it 0600
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return report
