"""Moderation policy: which guards a new comment passes, and what their verdicts add up to.

An operator swaps it with the ``COMMENTS_MODERATION_POLICY`` setting (a dotted path to a
subclass), like allauth's adapters: change the guard lists, or override ``evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from . import guards as g
from .guards import Submission, Verdict
from .models import Comment

__all__ = ["Decision", "ModerationPolicy", "Submission", "Verdict", "get_policy"]


@dataclass
class Decision:
    status: str
    reasons: list[dict] = field(default_factory=list)
    refusal: Verdict | None = None  # set when the comment must not be stored at all


class ModerationPolicy:
    # Rules for everyone, moderators too.
    everyone = [
        "broadsheet.comments.guards.comments_closed",
        "broadsheet.comments.guards.registration_required",
        "broadsheet.comments.guards.name_email_required",
    ]
    # Spam and abuse defence, cheapest first; moderators skip these. The outside service and
    # the classifier come last, and are not asked about a comment already bound for the trash.
    layers = [
        "broadsheet.comments.guards.blocked",
        "broadsheet.comments.antispam.honeypot",
        "broadsheet.comments.antispam.form_timestamp",
        "broadsheet.comments.antispam.rate_limits",
        "broadsheet.comments.antispam.flood",
        "broadsheet.comments.antispam.duplicate",
        "broadsheet.comments.guards.disallowed_words",
        "broadsheet.comments.guards.too_many_links",
        "broadsheet.comments.guards.moderation_words",
        "broadsheet.comments.guards.manual_approval",
        "broadsheet.comments.guards.prior_approval",
        "broadsheet.comments.akismet.akismet_guard",
        "broadsheet.comments.classifier.classifier_guard",
    ]

    def guards(self, submission: Submission) -> list:
        paths = self.everyone if submission.is_moderator else [*self.everyone, *self.layers]
        return [import_string(path) for path in paths]

    def evaluate(self, submission: Submission) -> Decision:
        verdicts: list[Verdict] = []
        for guard in self.guards(submission):
            verdict = guard(submission)
            if verdict is None:
                continue
            if verdict.action == g.REFUSE:
                return Decision(Comment.Status.PENDING, [verdict.as_reason()], refusal=verdict)
            verdicts.append(verdict)
            submission.verdicts = verdicts
        if not verdicts:
            return Decision(Comment.Status.APPROVED)
        strongest = max(verdicts, key=lambda v: g.STRENGTH[v.action])
        return Decision(g.STATUS_FOR[strongest.action], [v.as_reason() for v in verdicts])


@lru_cache(maxsize=1)
def get_policy() -> ModerationPolicy:
    return import_string(settings.COMMENTS_MODERATION_POLICY)()
