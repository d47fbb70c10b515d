"""The discussion settings a thread is governed by (WordPress's Settings > Discussion).

The comments app reads them without knowing where they are kept: ``settings_for(thread)`` asks
the ``COMMENTS_SETTINGS_RESOLVER`` (a dotted path to ``thread -> DiscussionSettings``; the
publishing app keeps them per site in the Wagtail admin). Without a resolver, the defaults below
apply, taken from Django settings where an operator set one, so a static site works too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

from django.conf import settings
from django.utils.module_loading import import_string

FIRST, LAST = "first", "last"
ASC, DESC = "asc", "desc"


def _max_links() -> int:
    return getattr(settings, "COMMENTS_MAX_LINKS", 2)


def _max_depth() -> int:
    return getattr(settings, "COMMENTS_MAX_DEPTH", 5)


@dataclass(frozen=True)
class DiscussionSettings:
    # Posting
    comments_open_by_default: bool = True
    require_name_email: bool = True
    registration_required: bool = False
    close_after_days: int = 0  # 0: never
    # Threading and pages
    threaded: bool = True
    thread_depth: int = field(default_factory=_max_depth)  # 2–10
    paginate: bool = False
    per_page: int = 50  # top-level comments per page
    default_page: str = LAST  # which page the article's own address shows: FIRST or LAST
    order: str = ASC  # top-level comments, older first (ASC) or newer first (DESC)
    # Moderation
    max_links: int = field(default_factory=_max_links)  # hold when *more than* this many
    moderation_words: str = ""  # one per line: hold
    disallowed_words: str = ""  # one per line: to the trash
    manual_approval: bool = False
    previously_approved: bool = True
    # Email
    notify_on_post: bool = False  # moderators, on every new comment
    notify_on_hold: bool = True  # moderators, when a comment is held
    notify_author: bool = True  # the article's author (a Person linked to an account)
    # Ours
    edit_window_minutes: int = 15
    flood_seconds: int = 15
    rate_per_minute_ip: int = 5
    rate_per_hour_ip: int = 30
    rate_per_minute_email: int = 5
    rate_per_minute_account: int = 5
    classifier_threshold: float = 2.0  # hold when the log-odds of spam are above this
    classifier_min_decisions: int = 50  # of each kind, before the classifier says anything

    @property
    def effective_depth(self) -> int:
        """How deep replies nest: 1 when threading is off (every reply is top-level)."""
        return min(max(self.thread_depth, 2), 10) if self.threaded else 1

    @property
    def moderation_word_list(self) -> list[str]:
        return word_list(self.moderation_words)

    @property
    def disallowed_word_list(self) -> list[str]:
        return word_list(self.disallowed_words)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def word_list(text: str) -> list[str]:
    """One word or phrase per line, as WordPress keeps them; blank lines and spaces ignored."""
    return [line.strip() for line in re.split(r"[\r\n]+", text or "") if line.strip()]


_MEMO = "_discussion_settings"
_generation = 0  # moves on whenever this process saves settings (``settings_changed``)


def settings_changed() -> None:
    """Called when settings are saved: what threads remembered no longer holds."""
    global _generation
    _generation += 1


def generation() -> int:
    """How many times this process has saved settings."""
    return _generation


def settings_for(thread) -> DiscussionSettings:
    """The settings governing ``thread``, asked of the resolver once per thread object: one
    request reads them several times (the guards, the form, the mail), and a thread is loaded
    afresh for each request, so a setting changed in the admin applies from the next one (and
    within this process at once: saving settings calls ``settings_changed``)."""
    if thread is None:
        return DiscussionSettings()
    path = getattr(settings, "COMMENTS_SETTINGS_RESOLVER", "")
    key = (_generation, path, getattr(thread, "page_id", None))
    known = getattr(thread, _MEMO, None)
    if known is not None and known[0] == key:
        return known[1]
    resolved = import_string(path)(thread) if path else None
    resolved = resolved if resolved is not None else DiscussionSettings()
    try:
        setattr(thread, _MEMO, (key, resolved))
    except AttributeError:  # an object that takes no attributes: asked each time
        pass
    return resolved
