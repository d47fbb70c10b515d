"""The durable outbox: mail is written as a row in the transaction that causes it, and sent by
the worker (`broadsheet worker`), never in a web request.

- ``queue_mail`` writes the row; when the transaction commits, a ``deliver(pk)`` task is queued
  on the ``outbox`` backend (django-tasks-db). A rolled-back comment queues no mail.
- ``deliver`` claims the row with one conditional UPDATE (pending and due → sending, reserved
  for ``COMMENTS_OUTBOX_LEASE_SECONDS``), so two workers never send it at the same time, and
  sends it with the ``Message-ID`` fixed when it was queued.
- A transient failure (server down, 4xx, time-out) puts it back to pending with exponential
  backoff (30 s · 2^(n-1), at most an hour, ±10 %) and queues a deferred task; a permanent one
  (5xx, a bad header, 20 attempts) marks it failed with the error, for a moderator to retry.
- django-tasks has no retries and forgets a task whose worker was killed, so the outbox row is
  the truth: ``sweep()`` (run by the worker every ``COMMENTS_OUTBOX_SWEEP_SECONDS``) queues due
  rows that have no task waiting, and takes back rows left "sending" past their lease. Delivery
  is at least once; a re-sent message keeps its Message-ID, so mail clients show it once.
"""

from __future__ import annotations

import logging
import random
import smtplib
from collections.abc import Iterable
from datetime import timedelta
from email.utils import make_msgid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django_tasks import task

from .models import OutboxMessage

logger = logging.getLogger(__name__)

Status = OutboxMessage.Status
MAX_BACKOFF = 3600
DELIVER_PATH = f"{__name__}.deliver"


def one_line(value: str) -> str:
    """A header value on one line: CR, LF and other control characters become spaces."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(value)).split())


def queue_mail(
    *,
    kind: str,
    to: str,
    subject: str,
    text: str,
    html: str = "",
    headers: dict | None = None,
    dedupe_key: str,
) -> OutboxMessage | None:
    """Queue one message in the current transaction. The same ``dedupe_key`` twice queues it
    once (None the second time). Delivery starts when the transaction commits."""
    domain = urlsplit(settings.BROADSHEET_BASE_URL).hostname or "localhost"
    try:
        with transaction.atomic():
            message = OutboxMessage.objects.create(
                kind=kind,
                to=one_line(to),
                subject=one_line(subject)[:300],
                text=text,
                html=html,
                headers={one_line(k): one_line(v) for k, v in (headers or {}).items()},
                message_id=make_msgid(domain=domain),
                dedupe_key=dedupe_key,
            )
    except IntegrityError:
        return None
    pk = message.pk
    transaction.on_commit(lambda: enqueue(pk))
    return message


def enqueue(pk: int, *, run_after=None) -> None:
    """Ask the worker to deliver a message (now, or not before ``run_after``). Never raises: a
    lost wake-up is found again by the sweeper."""
    try:
        if run_after is None:
            deliver.enqueue(pk)
        else:
            deliver.using(run_after=run_after).enqueue(pk)
    except Exception:
        logger.exception("Could not queue delivery of outbox message %s; the sweeper will", pk)


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failure: 30 s, 1 min, 2 min… at most an hour,
    ±10 % so messages that failed together do not retry together."""
    base = float(getattr(settings, "COMMENTS_OUTBOX_RETRY_SECONDS", 30))
    seconds = min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF)
    return timedelta(seconds=seconds * random.uniform(0.9, 1.1))


class PermanentFailure(Exception):
    pass


def _classify(error: BaseException) -> bool:
    """True when trying again later may succeed."""
    if isinstance(
        error,
        smtplib.SMTPAuthenticationError
        | smtplib.SMTPConnectError
        | smtplib.SMTPHeloError
        | smtplib.SMTPSenderRefused,
    ):
        # The server refuses us, not this message (a wrong password, a relay not allowed yet):
        # every message would fail alike, so keep them for when the settings are mended.
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        # Greylisting answers 4xx to RCPT; a refused address answers 5xx.
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return not 500 <= error.smtp_code < 600
    if isinstance(error, BadHeaderError | PermanentFailure):
        return False
    return isinstance(error, OSError)  # refused, reset, timed out, disconnected…


def build_message(message: OutboxMessage, connection=None) -> EmailMultiAlternatives:
    headers = dict(message.headers or {})
    headers["Message-ID"] = message.message_id
    email = EmailMultiAlternatives(
        subject=one_line(message.subject),
        body=message.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.to],
        headers=headers,
        connection=connection,
    )
    if message.html:
        email.attach_alternative(message.html, "text/html")
    return email


@task(backend="outbox", queue_name="mail")
def deliver(pk: int) -> str:
    """Send one outbox message, if it is still waiting and due. Returns what happened."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.COMMENTS_OUTBOX_LEASE_SECONDS)
    claimed = OutboxMessage.objects.filter(
        pk=pk, status=Status.PENDING, next_attempt_at__lte=now
    ).update(status=Status.SENDING, locked_until=lease)
    if not claimed:
        return "not due"
    message = OutboxMessage.objects.get(pk=pk)
    mine = OutboxMessage.objects.filter(pk=pk, status=Status.SENDING, locked_until=lease)
    try:
        connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
        build_message(message, connection).send()
    except Exception as error:
        attempts = message.attempts + 1
        detail = f"{type(error).__name__}: {error}"[:2000]
        if _classify(error) and attempts < settings.COMMENTS_OUTBOX_MAX_ATTEMPTS:
            retry_at = timezone.now() + backoff(attempts)
            mine.update(
                status=Status.PENDING,
                attempts=attempts,
                next_attempt_at=retry_at,
                locked_until=None,
                last_error=detail,
            )
            enqueue(pk, run_after=retry_at)
            logger.info("Outbox message %s: attempt %s failed (%s); retrying", pk, attempts, detail)
            return "retry"
        mine.update(status=Status.FAILED, attempts=attempts, locked_until=None, last_error=detail)
        logger.warning("Outbox message %s failed for good: %s", pk, detail)
        return "failed"
    mine.update(
        status=Status.SENT,
        attempts=F("attempts") + 1,
        sent_at=timezone.now(),
        locked_until=None,
        last_error="",
    )
    return "sent"


def _waiting_task_ids() -> set[int]:
    """Outbox messages that already have a delivery task waiting in the queue."""
    from django_tasks_db.models import DBTaskResult

    waiting = set()
    rows = DBTaskResult.objects.filter(
        status="READY", task_path=DELIVER_PATH, backend_name="outbox"
    ).values_list("args_kwargs", flat=True)
    for args_kwargs in rows.iterator():
        args = (args_kwargs or {}).get("args") or []
        if args and isinstance(args[0], int):
            waiting.add(args[0])
    return waiting


def sweep(*, limit: int = 1000) -> dict[str, int]:
    """Take back messages whose worker died while sending them, and queue every due message
    that has no delivery task waiting (a lost wake-up, a crash between commit and queueing)."""
    now = timezone.now()
    stuck = OutboxMessage.objects.filter(status=Status.SENDING, locked_until__lt=now)
    max_attempts = settings.COMMENTS_OUTBOX_MAX_ATTEMPTS
    note = "The worker stopped while sending this message; it was sent again."
    given_up = stuck.filter(attempts__gte=max_attempts - 1).update(
        status=Status.FAILED, attempts=F("attempts") + 1, locked_until=None, last_error=note
    )
    reclaimed = stuck.update(
        status=Status.PENDING,
        attempts=F("attempts") + 1,
        next_attempt_at=now,
        locked_until=None,
        last_error=note,
    )
    due = list(
        OutboxMessage.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    queued = 0
    if due:
        waiting = _waiting_task_ids()
        for pk in due:
            if pk not in waiting:
                enqueue(pk)
                queued += 1
    if reclaimed or queued or given_up:
        logger.info(
            "Outbox sweep: %s taken back, %s queued, %s given up", reclaimed, queued, given_up
        )
    return {"reclaimed": reclaimed, "queued": queued, "failed": given_up}


def deliver_due(*, limit: int = 1000) -> dict[str, int]:
    """Send every due message now, in this process (tests, a shell); the worker does the same
    one task at a time. Returns how many ended each way."""
    outcomes: dict[str, int] = {}
    due = OutboxMessage.objects.filter(status=Status.PENDING, next_attempt_at__lte=timezone.now())
    for pk in list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit]):
        outcome = deliver.call(pk)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def retry_failed(ids: Iterable[int]) -> int:
    """Send failed messages again (the admin's "Retry" button): back to pending, attempts reset,
    due now. Returns how many were failed and will be retried."""
    ids = [int(pk) for pk in ids]
    with transaction.atomic():
        retried = list(
            OutboxMessage.objects.select_for_update()
            .filter(pk__in=ids, status=Status.FAILED)
            .values_list("pk", flat=True)
        )
        OutboxMessage.objects.filter(pk__in=retried).update(
            status=Status.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            locked_until=None,
            last_error="",
        )
        for pk in retried:
            transaction.on_commit(lambda pk=pk: enqueue(pk))
    return len(retried)
