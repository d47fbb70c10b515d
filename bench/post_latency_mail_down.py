"""Comment POST latency while the mail server is down, and while it is up.

A fresh SQLite file; 3 moderators, so every guest comment (held: a guest's first comment)
queues 3 notifications. A real `broadsheet worker` process runs beside this one on the same
database, sending to loopback: first to a tarpit (accepts, never answers: the worst outage,
the worker waits EMAIL_TIMEOUT on each try), then to a stopped server (connection refused),
then to aiosmtpd. Each phase posts N comments through Django's full request stack (test
client, no HTTP server) and prints p50 / p95 / max. A measurement, not a test.

    .venv/bin/python bench/post_latency_mail_down.py [--posts 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def discussion_settings(thread):
    """No rate limits or flood interval here: this measures the mail path, not those."""
    from broadsheet.comments.conf import DiscussionSettings

    return DiscussionSettings(
        flood_seconds=0,
        rate_per_minute_ip=0,
        rate_per_hour_ip=0,
        rate_per_minute_email=0,
        rate_per_minute_account=0,
    )


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=100)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="broadsheet-bench-")
    os.environ["BROADSHEET_VAR_DIR"] = workdir
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broadsheet.config.settings")
    os.environ.setdefault("BROADSHEET_PLAIN_STATIC", "1")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from broadsheet.comments import antispam
    from broadsheet.comments.models import OutboxMessage
    from broadsheet.comments.services import sync_thread
    from tests.mailbox import Mailbox, Tarpit

    settings.COMMENTS_SETTINGS_RESOLVER = f"{__name__}.discussion_settings"
    settings.COMMENTS_FORM_MIN_SECONDS = 0
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    call_command("migrate", verbosity=0)
    permission = Permission.objects.get(codename="moderate_comment")
    for n in range(3):
        user = get_user_model().objects.create_user(f"mod{n}", f"mod{n}@example.org", "x" * 12)
        user.user_permissions.add(permission)
    thread = sync_thread(url="/articles/bench/", title="Bench")
    client = Client()
    counter = iter(range(10**6))

    def post_phase(name, port):
        env = dict(os.environ, EMAIL_URL=f"smtp://127.0.0.1:{port}?timeout=10")
        worker = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "broadsheet.cli", "worker", "--no-startup-delay",
             "--interval", "0.1", "-v", "0"],
            env=env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(2)  # let it start and pick up earlier rows
        timings = []
        for _ in range(args.posts):
            n = next(counter)
            data = {
                "thread": thread.pk, "comment_parent": 0, "author": f"Reader {n}",
                "email": f"r{n}@example.org", "url": "", "comment": f"Comment number {n}.",
                "form_token": antispam.sign_form_value(str(thread.pk)),
            }  # fmt: skip
            began = time.perf_counter()
            response = client.post(reverse("comments:post"), data)
            timings.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 303, response.status_code
        worker.terminate()
        worker.wait(timeout=30)
        counts = {
            s: OutboxMessage.objects.filter(status=s).count()
            for s in ("pending", "sending", "sent", "failed")
        }
        print(
            f"{name:<28} p50 {statistics.median(timings):6.1f} ms   "
            f"p95 {percentile(timings, 0.95):6.1f} ms   max {max(timings):6.1f} ms   "
            f"outbox {counts}",
            flush=True,
        )

    print(f"{args.posts} comment POSTs per phase, 3 notifications each, worker running\n")
    mailbox = Mailbox().start()
    port = mailbox.port
    mailbox.stop()
    with Tarpit(port):
        post_phase("mail server hangs (tarpit)", port)
    post_phase("mail server stopped", port)
    mailbox.start()
    try:
        post_phase("mail server up", port)
        deadline = time.monotonic() + 120
        env = dict(os.environ, EMAIL_URL=f"smtp://127.0.0.1:{port}")
        OutboxMessage.objects.filter(status="pending").update(next_attempt_at=django_now())
        drain = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "broadsheet.cli", "worker", "--no-startup-delay",
             "--interval", "0.1", "-v", "0", "--sweep-interval", "0.5"],
            env=env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        while time.monotonic() < deadline and OutboxMessage.objects.exclude(status="sent").exists():
            time.sleep(0.2)
        drain.terminate()
        drain.wait(timeout=30)
        total = OutboxMessage.objects.count()
        sent = OutboxMessage.objects.filter(status="sent").count()
        ids = [m["Message-ID"] for m in mailbox.messages]
        print(
            f"\nafter the outage: {sent}/{total} sent, {len(ids)} received, "
            f"{len(set(ids))} distinct Message-IDs"
        )
    finally:
        mailbox.stop()
    return 0


def django_now():
    from django.utils import timezone

    return timezone.now()


if __name__ == "__main__":
    raise SystemExit(main())
