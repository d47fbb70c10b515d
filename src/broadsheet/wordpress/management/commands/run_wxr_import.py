"""``broadsheet run_wxr_import ID``: run an import uploaded in the admin (started by the admin in
the background; see ``broadsheet.wordpress.jobs``). For the command line, use ``import-wxr``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from broadsheet.wordpress import jobs
from broadsheet.wordpress.models import WordPressImport


class Command(BaseCommand):
    help = "Run a queued WordPress import uploaded in the admin, and record its report."

    def add_arguments(self, parser) -> None:
        parser.add_argument("id", type=int, help="the WordPressImport row to run")

    def handle(self, *args, **options) -> None:
        try:
            job = jobs.run(options["id"])
        except WordPressImport.DoesNotExist:
            raise CommandError(f"There is no import {options['id']}") from None
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        if job.status == WordPressImport.Status.FAILED:
            raise CommandError(job.error)
        self.stdout.write(f"Import {job.pk} {job.get_status_display().lower()}")
