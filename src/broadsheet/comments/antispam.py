"""Anti-automation guards: honeypot, signed form timestamp, rate limits, flood, duplicate.

Each is a guard (``guard(submission) -> Verdict | None``, see guards.py) that refuses: nothing
is stored and the reader gets the form back with their text and the reason. Moderators skip
them all (the policy's ``layers``).

- The counters (rate limits, flood) live in Django's cache, so several app processes share them
  only when the cache is shared (``REDIS_URL``; system check ``broadsheet.W001`` says so). They
  are keyed on the client's real address (``core.net.client_ip``: forwarded headers only from
  ``BROADSHEET_TRUSTED_PROXIES``), not on the stored one, which may be truncated or absent.
- If the cache cannot be reached, the counting guards refuse with 503 (fail closed): a comment
  waits a minute rather than a flood going through unchecked.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db.models import Q
from django.dispatch import receiver

from broadsheet.core import ratelimit

from . import signals
from .guards import REFUSE, Submission, Verdict
from .models import Comment

log = logging.getLogger(__name__)

FORM_SALT = "broadsheet.comments.form"

HONEYPOT_MESSAGE = (
    "Your comment could not be posted as it was sent. Please check it and send it again."
)
STALE_MESSAGE = "Please check your comment and send it again."
TOO_QUICK_MESSAGE = "That was quick: please wait a moment and send it again."
FLOOD_MESSAGE = "You are posting comments too quickly. Slow down."
DUPLICATE_MESSAGE = "Duplicate comment detected; it looks as though you\u2019ve already said that!"
CACHE_DOWN_MESSAGE = (
    "Comments cannot be checked just now. Please try again in a minute; your text is kept below."
)


# --- Limits ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What the counting guards allow; 0 turns a limit off. From the discussion settings."""

    flood_seconds: int
    per_minute_ip: int
    per_hour_ip: int
    per_minute_email: int
    per_minute_account: int
    duplicates: bool = True  # refuse the same text twice on a thread


def limits_for(cfg) -> Limits:
    return Limits(
        flood_seconds=cfg.flood_seconds,
        per_minute_ip=cfg.rate_per_minute_ip,
        per_hour_ip=cfg.rate_per_hour_ip,
        per_minute_email=cfg.rate_per_minute_email,
        per_minute_account=cfg.rate_per_minute_account,
    )


def _refuse(guard: str, message: str, status: int, retry_after: int | None = None) -> Verdict:
    return Verdict(REFUSE, guard, message, status=status, retry_after=retry_after)


def _cache_down(guard: str) -> Verdict:
    log.exception("comments: the cache did not answer; %s refuses the comment", guard)
    return _refuse(guard, CACHE_DOWN_MESSAGE, 503, retry_after=60)


# --- Honeypot ----------------------------------------------------------------------------------


def honeypot(sub: Submission) -> Verdict | None:
    """The ``website2`` field is off-screen and skipped by keyboard and autofill: only a robot
    fills it. The message does not say why, so the robot learns nothing."""
    if sub.honeypot:
        return _refuse("honeypot", HONEYPOT_MESSAGE, 400)
    return None


# --- Signed form timestamp ---------------------------------------------------------------------


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=FORM_SALT)


def sign_form_value(value: str) -> str:
    return _signer().sign(value)


def issue_form_token(thread) -> str:
    """A token for the form of ``thread`` (or of no thread), signed with the time it was given
    out: by the session endpoint (for the cached article page, through comments.js) and by every
    form page (never cached)."""
    return sign_form_value(str(thread.pk) if thread is not None else "")


def form_token_for(thread, submitted: str = "", *, typed: bool = False) -> str:
    """The token a form page sent back to the reader carries: the one they sent, if it is
    still good for this thread (the time they already spent counts, so a "too quick" reader
    is not made to wait all over again), else a new one. ``typed``: the reader has already
    written the comment (the confirmation page of a reader without JavaScript, whose cached
    page had no token), so the new token counts as handed out the minimum time ago. A robot
    gains nothing: it can fetch a token from the session endpoint and wait just as well."""
    try:
        value, issued = read_form_token(submitted or "")
    except (signing.BadSignature, ValueError):
        pass
    else:
        if value == str(thread.pk) and time.time() - issued <= _max_age():
            return submitted
    if not typed:
        return issue_form_token(thread)

    class Earlier(signing.TimestampSigner):
        def timestamp(self) -> str:
            return signing.b62_encode(int(time.time() - _min_seconds()))

    return Earlier(salt=FORM_SALT).sign(str(thread.pk))


def read_form_token(token: str) -> tuple[str, int]:
    """(value, issued at, Unix seconds), or BadSignature."""
    signer = _signer()
    raw = signing.Signer.unsign(signer, token)  # the value and its timestamp, both signed
    value, stamp = raw.rsplit(signer.sep, 1)
    return value, signing.b62_decode(stamp)


def _max_age() -> float:
    value = getattr(settings, "COMMENTS_FORM_MAX_AGE", timedelta(days=2))
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _min_seconds() -> float:
    return float(getattr(settings, "COMMENTS_FORM_MIN_SECONDS", 3))


def form_timestamp(sub: Submission) -> Verdict | None:
    """Sent from a form given out for this thread, at least a few seconds and at most two days
    ago. A comment that is not from the form (``form_token`` None: an import, a future API)
    passes. A missing, tampered, foreign or old token gets the form page again, which carries a
    fresh token: a reader without JavaScript (whose cached page has none) sends once more, as for
    the CSRF confirmation, and both tokens come on the same page."""
    token = sub.form_token
    if token is None:
        return None
    try:
        value, issued = read_form_token(token)
    except (signing.BadSignature, ValueError):
        return _refuse("form_timestamp", STALE_MESSAGE, 400)
    age = time.time() - issued
    if value != str(sub.comment.thread_id or "") or age > _max_age():
        return _refuse("form_timestamp", STALE_MESSAGE, 400)
    if age < _min_seconds():
        return _refuse("form_timestamp", TOO_QUICK_MESSAGE, 400)
    return None


# --- Rate limits -------------------------------------------------------------------------------


def account_key(comment: Comment) -> str | None:
    if comment.user_id:
        return f"user:{comment.user_id}"
    if comment.identity_provider:
        who = comment.author_url or comment.author_email or comment.author_name
        return f"{comment.identity_provider}:{who.casefold()}" if who else None
    return None


def _wait_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = round(seconds / 60)
    return f"{minutes} minutes"


def rate_limits(sub: Submission) -> Verdict | None:
    """At most N comments a minute and M an hour from one IP bucket (IPv6 by /64), N a minute
    per email address (normalised) and per account. Every attempt that gets this far counts."""
    lim = limits_for(sub.settings)
    comment = sub.comment
    checks = []
    bucket = ratelimit.ip_bucket(sub.ip)
    if bucket:
        checks += [("ip-m", bucket, lim.per_minute_ip, 60), ("ip-h", bucket, lim.per_hour_ip, 3600)]
    email = ratelimit.normalise_email(comment.author_email)
    if email:
        checks.append(("email-m", email, lim.per_minute_email, 60))
    account = account_key(comment)
    if account:
        checks.append(("account-m", account, lim.per_minute_account, 60))
    refused = []
    try:
        for scope, key, limit, period in checks:
            if limit > 0:
                result = ratelimit.hit(f"comment:{scope}", key, limit=limit, period=period)
                if not result.allowed:
                    refused.append(result.retry_after)
    except Exception:
        return _cache_down("rate_limits")
    if refused:
        wait = max(refused)
        return _refuse(
            "rate_limits",
            "You have sent too many comments for now. "
            f"Please wait {_wait_words(wait)} and send it again.",
            429,
            retry_after=wait,
        )
    return None


# --- Flood -------------------------------------------------------------------------------------


def _flood_keys(sub: Submission) -> list[str]:
    keys = []
    bucket = ratelimit.ip_bucket(sub.ip)
    if bucket:
        keys.append(ratelimit.cache_key("comment:flood-ip", bucket))
    email = ratelimit.normalise_email(sub.comment.author_email)
    if email:
        keys.append(ratelimit.cache_key("comment:flood-email", email))
    return keys


def flood(sub: Submission) -> Verdict | None:
    """A second comment within ``flood_seconds`` of the last *stored* one from the same IP
    bucket or email address (WordPress counts stored comments too, of any status). The mark is
    set when a comment is about to be stored (``comment_posting``), so a refused comment does
    not stop the reader from sending a corrected one at once.
    Comments sent at the same instant may both pass: the rate limits, counted atomically, bound
    those."""
    seconds = limits_for(sub.settings).flood_seconds
    if seconds <= 0:
        return None
    keys = _flood_keys(sub)
    sub.comment._antispam_flood_keys = keys  # read by mark_flood once the comment is stored
    try:
        marks = cache.get_many(keys) if keys else {}
    except Exception:
        return _cache_down("flood")
    now = time.time()
    recent = [at for at in marks.values() if isinstance(at, (int, float)) and now - at < seconds]
    if recent:
        # The same text sent twice (a double click, a resend): say so, as WordPress does
        # (its duplicate check comes before its flood check).
        same = duplicate(sub)
        if same is not None:
            return same
        wait = max(1, int(seconds - (now - max(recent)) + 0.999))
        return _refuse("flood", FLOOD_MESSAGE, 429, retry_after=wait)
    return None


@receiver(signals.comment_posting, dispatch_uid="broadsheet.comments.antispam.mark_flood")
def mark_flood(sender, comment, settings, **kwargs):
    """Sent once the comment passed every guard, just before its (short) write transaction: the
    mark is set at once, and the cache's round trip is not made while the transaction holds the
    database (a rare failure to store it only makes that reader wait ``flood_seconds``)."""
    keys = getattr(comment, "_antispam_flood_keys", None)
    seconds = limits_for(settings).flood_seconds
    if not keys or seconds <= 0:
        return
    try:
        cache.set_many(dict.fromkeys(keys, time.time()), timeout=seconds)
    except Exception:
        log.exception("comments: could not record the flood mark")


# --- Duplicate ---------------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text or "").casefold()).strip()


def duplicate(sub: Submission) -> Verdict | None:
    """The same text (ignoring case, Unicode forms and spacing) already on this thread from the
    same commenter (name, email, account or browser), in any status but the trash. As WordPress
    does: another reader writing "Thank you!" under the same article has not said it before."""
    if not limits_for(sub.settings).duplicates:
        return None
    comment = sub.comment
    wanted = normalise_text(comment.text)
    if not wanted or comment.thread_id is None:
        return None
    same_author = Q(author_name=comment.author_name) if comment.author_name else Q()
    if comment.author_email:
        same_author |= Q(author_email__iexact=comment.author_email)
    if comment.user_id:
        same_author |= Q(user_id=comment.user_id)
    if comment.browser_key:
        same_author |= Q(browser_key=comment.browser_key)
    if not same_author:
        return None
    others = (
        Comment.objects.filter(same_author, thread_id=comment.thread_id)
        .exclude(status=Comment.Status.TRASH)
        .values_list("text", flat=True)
    )
    for text in others.iterator(chunk_size=500):
        if normalise_text(text) == wanted:
            return _refuse("duplicate", DUPLICATE_MESSAGE, 409)
    return None


# The system check lives in core.checks; importing it here registers it (see that module).
from broadsheet.core import checks as _checks  # noqa: E402, F401
