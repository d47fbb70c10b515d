"""The layers of spam and abuse defence. Each guard looks at one submission and returns a
``Verdict`` (what to do, and why) or None; the policy (moderation.py) runs them in order.

- ``REFUSE``: nothing is stored; the reader gets their text back with the message and the
  HTTP status (400, 403, 409, 429);
- ``TRASH``, ``SPAM``, ``HOLD``: the comment is stored with that status, never shown to readers,
  and the reason is kept for the moderators.

A guard is a plain function ``guard(submission) -> Verdict | None``; the settings it reads are on
``submission.settings``. This module holds the rules that need nothing but the comment and the
settings; rate limits, the honeypot and the form timestamp are in antispam.py, Akismet in
akismet.py and the local classifier in classifier.py.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from broadsheet.core.html import render_comment

from .conf import DiscussionSettings
from .models import Block, Comment

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

REFUSE, TRASH, SPAM, HOLD = "refuse", "trash", "spam", "hold"
# The strongest verdict decides the status; every reason is kept.
STRENGTH = {HOLD: 1, SPAM: 2, TRASH: 3}
STATUS_FOR = {
    HOLD: Comment.Status.PENDING,
    SPAM: Comment.Status.SPAM,
    TRASH: Comment.Status.TRASH,
}


@dataclass(frozen=True)
class Verdict:
    action: str
    guard: str
    detail: str
    status: int = 400  # for REFUSE: the HTTP status the reader gets
    field: str | None = None  # for REFUSE: the form field the message belongs next to
    retry_after: int | None = None  # for REFUSE 429: seconds

    def as_reason(self) -> dict:
        return {"guard": self.guard, "verdict": self.action, "detail": self.detail}


@dataclass
class Submission:
    """What the guards may look at: the comment before it is saved, who sent it, and how."""

    comment: Comment
    settings: DiscussionSettings = field(default_factory=DiscussionSettings)
    is_moderator: bool = False
    ip: str | None = None  # the client's full address, whatever is stored
    honeypot: str = ""
    form_token: str | None = None  # None: not from the form (an import, the API)
    referrer: str = ""
    permalink: str = ""
    has_identity: bool = False  # signed in (account or provider)
    allow_closed: bool = False  # a moderator's reply from the queue (WordPress allows it)
    verdicts: list[Verdict] = field(default_factory=list)  # what earlier guards said

    @property
    def bound_for_trash(self) -> bool:
        return any(v.action in (TRASH, SPAM) for v in self.verdicts)


Guard = "Callable[[Submission], Verdict | None]"


# --- Who may comment at all (everyone, moderators too) ----------------------------------------


def comments_closed(sub: Submission) -> Verdict | None:
    if sub.allow_closed:
        return None
    thread, cfg = sub.comment.thread, sub.settings
    if not thread.is_open:
        return Verdict(REFUSE, "closed", "Comments are closed on this article.", status=403)
    if cfg.close_after_days and thread.published_at:
        if timezone.now() - thread.published_at > timedelta(days=cfg.close_after_days):
            return Verdict(
                REFUSE,
                "closed",
                f"Comments are closed on articles older than {cfg.close_after_days} days.",
                status=403,
            )
    return None


def registration_required(sub: Submission) -> Verdict | None:
    if sub.settings.registration_required and not sub.has_identity:
        return Verdict(
            REFUSE,
            "registration",
            "You must be logged in to comment. Use one of the icons above to log in; "
            "your comment stays in the form.",
            status=403,
        )
    return None


def name_email_required(sub: Submission) -> Verdict | None:
    comment = sub.comment
    if sub.settings.require_name_email and not sub.has_identity:
        if not comment.author_name.strip():
            return Verdict(REFUSE, "name_email", "Please enter your name.", field="author")
        if not comment.author_email.strip():
            return Verdict(REFUSE, "name_email", "Please enter your email address.", field="email")
    return None


BLOCKS_CACHE_KEY = "comments:blocks"
# How long a process may go on using the blocks it read, should it not hear of a change: with
# a shared cache (REDIS_URL) a change reaches every process at once (the key is deleted); with
# the per-process memory cache, other processes see it within this many seconds.
BLOCKS_CACHE_SECONDS = 10


def block_rules() -> list[tuple[str, str]]:
    """The blocks, as (kind, value), from the cache when they are there: every comment is
    checked against them, and they change only when a moderator blocks or unblocks someone."""
    try:
        rules = cache.get(BLOCKS_CACHE_KEY)
    except Exception:
        rules = None
    if rules is None:
        rules = list(Block.objects.values_list("kind", "value"))
        try:
            cache.set(BLOCKS_CACHE_KEY, rules, BLOCKS_CACHE_SECONDS)
        except Exception:  # only slower without it
            log.warning("comments: could not cache the blocks", exc_info=True)
    return rules


def forget_block_rules(**kwargs) -> None:
    """A block was made or lifted: forget the cached list now, and again when the transaction
    commits (a post checked in between may have cached the old list)."""

    def forget() -> None:
        try:
            cache.delete(BLOCKS_CACHE_KEY)
        except Exception:  # the cached list then lasts its few seconds
            log.exception("comments: could not forget the cached blocks")

    forget()
    transaction.on_commit(forget)


post_save.connect(forget_block_rules, sender=Block, dispatch_uid="comments.blocks.saved")
post_delete.connect(forget_block_rules, sender=Block, dispatch_uid="comments.blocks.deleted")


def blocked(sub: Submission) -> Verdict | None:
    """A commenter moderators blocked (by email, account, or IP address or range)."""
    comment = sub.comment
    rules = block_rules()
    if not rules:
        return None
    email = comment.author_email.strip().casefold()
    try:
        ip = ipaddress.ip_address(sub.ip) if sub.ip else None
    except ValueError:
        ip = None
    for kind, value in rules:
        if kind == Block.Kind.EMAIL and email and email == value:
            return Verdict(TRASH, "blocked", f"blocked email address {value}")
        if kind == Block.Kind.USER and comment.user_id and str(comment.user_id) == value:
            return Verdict(TRASH, "blocked", "blocked account")
        if kind == Block.Kind.IP and ip is not None:
            network = ipaddress.ip_network(value, strict=False)
            if ip.version == network.version and ip in network:
                return Verdict(TRASH, "blocked", f"blocked address range {value}")
    return None


# --- What the comment says (moderators are exempt) -------------------------------------------

_ANCHOR = re.compile(r"<a\s[^>]*\bhref=[^>]*>.*?</a>", re.IGNORECASE | re.DOTALL)
_BARE_URL = re.compile(r"https?://", re.IGNORECASE)


def count_links(comment: Comment) -> int:
    """Links as readers will see them: each link element of the rendered comment, plus each
    address typed out in its text (a spammer's URL need not be clickable)."""
    rendered = render_comment(comment.text)
    anchors = _ANCHOR.findall(rendered)
    return len(anchors) + len(_BARE_URL.findall(_ANCHOR.sub(" ", rendered)))


def too_many_links(sub: Submission) -> Verdict | None:
    limit = sub.settings.max_links
    links = count_links(sub.comment)
    if links > limit:
        return Verdict(HOLD, "links", f"more than {limit} links ({links})")
    return None


def _fields_for_words(sub: Submission) -> dict[str, str]:
    c = sub.comment
    return {
        "text": c.text,
        "name": c.author_name,
        "email": c.author_email,
        "website": c.author_url,
        "IP": sub.ip or "",
        "user agent": c.user_agent,
    }


def _word_hit(words: list[str], sub: Submission) -> tuple[str, str] | None:
    """The first listed word found in any field, case-insensitively (WordPress's ``#word#iu``)."""
    if not words:
        return None
    values = {name: value.casefold() for name, value in _fields_for_words(sub).items()}
    for word in words:
        needle = word.casefold()
        for name, value in values.items():
            if needle in value:
                return word, name
    return None


def disallowed_words(sub: Submission) -> Verdict | None:
    hit = _word_hit(sub.settings.disallowed_word_list, sub)
    if hit:
        return Verdict(TRASH, "disallowed_words", f"disallowed word “{hit[0]}” in the {hit[1]}")
    return None


def moderation_words(sub: Submission) -> Verdict | None:
    hit = _word_hit(sub.settings.moderation_word_list, sub)
    if hit:
        return Verdict(HOLD, "moderation_words", f"moderation word “{hit[0]}” in the {hit[1]}")
    return None


def manual_approval(sub: Submission) -> Verdict | None:
    if sub.settings.manual_approval:
        return Verdict(HOLD, "manual_approval", "every comment must be approved by hand")
    return None


def has_prior_approval(comment: Comment) -> bool:
    """An approved comment by the same author, where "the same author" is the signed-in
    account, or (for guests) the same email *from the same browser* (the signed commenter
    cookie). WordPress trusts name + email alone, which lets anyone who knows them skip
    moderation."""
    approved = Comment.objects.visible()
    if comment.user_id:
        return approved.filter(user_id=comment.user_id).exists()
    if not comment.browser_key:
        return False
    return (
        approved.by_browser(comment.browser_key)
        .filter(author_email__iexact=comment.author_email)
        .exists()
    )


def prior_approval(sub: Submission) -> Verdict | None:
    if sub.settings.previously_approved and not has_prior_approval(sub.comment):
        return Verdict(HOLD, "prior_approval", "first comment from this commenter")
    return None
