"""Moderation policy: which new comments go live at once and which wait for a moderator.

An operator swaps it with the ``COMMENTS_MODERATION_POLICY`` setting (a dotted path to a
subclass), like allauth's adapters; each rule is a method so a subclass can change one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from broadsheet.core.html import render_comment

from .models import Comment

_ANCHOR = re.compile(r"<a\s[^>]*\bhref=[^>]*>.*?</a>", re.IGNORECASE | re.DOTALL)
_BARE_URL = re.compile(r"https?://", re.IGNORECASE)


@dataclass
class Submission:
    """What the policy may look at: the comment before it is saved, and who sent it."""

    comment: Comment
    is_moderator: bool = False
    reasons: list[str] = field(default_factory=list)


class ModerationPolicy:
    """WordPress's shipped defaults, with trust bound to something an impostor lacks.

    - moderators' comments are approved;
    - a comment with more than ``COMMENTS_MAX_LINKS`` links is held;
    - otherwise a comment is approved only if its author already has an approved comment, where
      "its author" is the signed-in account, or (for guests) the same email *from the same
      browser* (the signed commenter cookie). WordPress trusts name + email alone, which lets
      anyone who knows them skip moderation.
    """

    def max_links(self) -> int:
        return settings.COMMENTS_MAX_LINKS

    def count_links(self, comment: Comment) -> int:
        """Links as readers will see them: each link element of the rendered comment, plus
        each address typed out in its text (a spammer's URL need not be clickable)."""
        rendered = render_comment(comment.text)
        anchors = _ANCHOR.findall(rendered)
        return len(anchors) + len(_BARE_URL.findall(_ANCHOR.sub(" ", rendered)))

    def has_prior_approval(self, comment: Comment) -> bool:
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

    def reasons_to_hold(self, submission: Submission) -> list[str]:
        comment = submission.comment
        reasons = []
        links = self.count_links(comment)
        if links > self.max_links():
            reasons.append(f"more than {self.max_links()} links ({links})")
        if not self.has_prior_approval(comment):
            reasons.append("first comment from this commenter")
        return reasons

    def initial_status(self, submission: Submission) -> tuple[str, list[str]]:
        if submission.is_moderator:
            return Comment.Status.APPROVED, []
        reasons = self.reasons_to_hold(submission)
        return (Comment.Status.PENDING if reasons else Comment.Status.APPROVED), reasons


@lru_cache(maxsize=1)
def get_policy() -> ModerationPolicy:
    return import_string(settings.COMMENTS_MODERATION_POLICY)()
