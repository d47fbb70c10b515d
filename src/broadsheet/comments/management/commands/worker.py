"""``broadsheet worker``: sends the outbox (and runs the other background tasks of the
``outbox`` backend: queues ``mail`` and ``akismet``).

It is django-tasks-db's ``db_worker`` (same options, its Worker class) with two different
defaults, backend ``outbox`` and queues ``mail,akismet``, plus the outbox sweeper in a thread:
every ``--sweep-interval`` seconds it queues due messages that lost their task and takes back
messages whose worker was killed while sending them (see comments/outbox.py).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands import db_worker

from broadsheet.comments import akismet, outbox, subscriptions
from broadsheet.core import pagecache

logger = logging.getLogger("broadsheet.worker")


class Sweeper(threading.Thread):
    def __init__(self, interval: float):
        super().__init__(name="outbox-sweeper", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.is_set():
                close_old_connections()
                try:
                    outbox.sweep()
                    subscriptions.sweep_fan_outs()  # fan-outs whose worker was killed
                    pagecache.sweep_expired()  # shared pages that change with time alone
                    akismet.requeue_lost_checks()  # held for a check that was never queued
                except Exception:  # a locked database, a lost connection: next time
                    logger.exception("Outbox sweep failed; trying again in %s s", self.interval)
                self.stopped.wait(self.interval)
        finally:
            connection.close()


def _watch_parent() -> None:
    """Send ourselves SIGTERM (a graceful stop) once the parent process is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class Command(db_worker.Command):
    help = "Send the outbox's mail and run the other background tasks (Ctrl+C stops)."

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--sweep-interval",
            type=db_worker.valid_interval,
            default=None,
            help="Seconds between outbox sweeps (default: COMMENTS_OUTBOX_SWEEP_SECONDS)",
        )
        parser.add_argument(
            "--exit-with-parent",
            action="store_true",
            help="Stop when the process that started this one ends (the demo uses it)",
        )
        parser.set_defaults(queue_name="mail,akismet", backend_name="outbox", reload=False)

    def handle(
        self, *args, sweep_interval: float | None = None, exit_with_parent=False, **options
    ) -> None:
        if exit_with_parent:
            _watch_parent()
        interval = (
            settings.COMMENTS_OUTBOX_SWEEP_SECONDS if sweep_interval is None else sweep_interval
        )
        reloader_parent = os.environ.get(DJANGO_AUTORELOAD_ENV) != "true"
        in_reloader_parent = options.get("reload") and reloader_parent
        sweeper = None
        if options.get("batch"):
            outbox.sweep()  # once, then drain what is queued
            subscriptions.sweep_fan_outs()
        elif not in_reloader_parent:
            sweeper = Sweeper(interval)
            sweeper.start()
        try:
            super().handle(*args, **options)
        finally:
            if sweeper is not None:
                sweeper.stopped.set()
