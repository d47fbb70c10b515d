"""The durable outbox: mail is written as a row in the transaction that causes it, and sent by
the worker (being completed: delivery, retries, the sweeper)."""

from __future__ import annotations

from email.utils import make_msgid
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction

from .models import OutboxMessage


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
                to=to,
                subject=subject,
                text=text,
                html=html,
                headers=headers or {},
                message_id=make_msgid(domain=domain),
                dedupe_key=dedupe_key,
            )
    except IntegrityError:
        return None
    return message
