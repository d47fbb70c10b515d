"""How long `broadsheet worker` takes to drain queued notifications to an SMTP server.

Queues N messages through ``outbox.queue_mail`` (one transaction, as a burst of comments
would), then starts one real `broadsheet worker` process and times it until aiosmtpd on
loopback has received all N and every outbox row is "sent". Fresh SQLite file in a temporary
directory. Prints numbers; it is a measurement, not a test.

    .venv/bin/python bench/outbox_drain.py [--messages 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="broadsheet-bench-")
    os.environ["BROADSHEET_VAR_DIR"] = workdir
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broadsheet.config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from broadsheet.comments.models import OutboxMessage
    from broadsheet.comments.outbox import queue_mail
    from tests.mailbox import Mailbox

    call_command("migrate", verbosity=0)
    text = "A new comment is waiting for your approval.\n" * 20
    html = "<p>A new comment is waiting for your approval.</p>" * 20
    began = time.perf_counter()
    with transaction.atomic():
        for n in range(args.messages):
            queue_mail(
                kind="bench",
                to=f"moderator{n % 5}@example.org",
                subject=f"[Broadsheet] Please moderate: comment {n}",
                text=text,
                html=html,
                dedupe_key=f"bench:{n}",
            )
    queued = time.perf_counter() - began

    with Mailbox() as mailbox:
        env = dict(os.environ, EMAIL_URL=f"smtp://127.0.0.1:{mailbox.port}")
        began = time.perf_counter()
        worker = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "broadsheet.cli", "worker", "--no-startup-delay",
             "--interval", "0.1", "-v", "0"],
            env=env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            first = None
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                if first is None and mailbox.messages:
                    first = time.perf_counter() - began
                if len(mailbox.messages) >= args.messages:
                    break
                time.sleep(0.05)
            received = time.perf_counter() - began
            while (
                time.monotonic() < deadline
                and OutboxMessage.objects.exclude(status="sent").exists()
            ):
                time.sleep(0.05)
            all_sent = time.perf_counter() - began
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        ids = [m["Message-ID"] for m in mailbox.messages]

    print(f"messages queued:                {args.messages}  ({queued:.2f} s in one transaction)")
    print(f"worker start → first received:  {first or 0:.2f} s (includes process start-up)")
    print(f"worker start → all received:    {received:.2f} s")
    print(f"worker start → all rows 'sent': {all_sent:.2f} s")
    print(f"throughput:                     {len(ids) / received:.0f} messages/s")
    print(f"received / distinct Message-ID: {len(ids)} / {len(set(ids))}")
    return 0 if len(set(ids)) == args.messages else 1


if __name__ == "__main__":
    raise SystemExit(main())
