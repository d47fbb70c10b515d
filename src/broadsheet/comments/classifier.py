"""The local spam classifier: multinomial naive Bayes that learns from this site's own moderation
decisions (a comment marked spam teaches "spam", an approved one teaches "ham"), so nothing about
a commenter leaves the server.

- ``features(text, name, url)`` turns a comment into tokens: lower-cased words, adjacent-word
  pairs, and flags for links;
- ``log_odds(features, counts)`` is the pure scoring function (the cross-validation in
  ``bench/classifier_cv.py`` runs it on counts kept in memory); ``score(features)`` runs it on the
  counts stored in ``SpamToken`` / ``SpamStats`` with two queries;
- ``learn(comment, label)`` / ``unlearn(comment)`` keep ``Comment.learned_as``, so a moderator
  who changes their mind (approve, then spam) moves the comment's counts instead of counting it
  twice;
- ``classifier_guard`` holds a comment the counts say is likely spam. It never marks spam and
  never deletes: a person decides, and that decision teaches the classifier in turn.

Which moderation decisions teach what (``comment_moderated``):

=====================  =============================================================
new status             what the classifier does
=====================  =============================================================
approved               learns "ham" (moves the counts if it had learnt "spam")
spam                   learns "spam" (moves the counts if it had learnt "ham")
pending (unapprove)    forgets what it learnt: the moderator withdrew their decision
trash                  keeps what it learnt: moving a comment to the trash tidies the
                       queue (old spam is often trashed in bulk) and says nothing about
                       whether it was spam; a comment trashed straight from the queue
                       teaches nothing
=====================  =============================================================

Deleting a comment for ever keeps its counts too: the decision about it stood.
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.dispatch import receiver

from . import signals
from .guards import HOLD, Submission, Verdict
from .models import Comment, SpamStats, SpamToken

SPAM, HAM = "spam", "ham"
ALPHA = 1.0  # Laplace smoothing
MAX_TOKEN = 64  # SpamToken.token's length
URL_FLAG = "__url__"  # the text carries an address
SITE_FLAG = "__site__"  # the commenter gave a website

_TAG = re.compile(r"<[^>]+>")
_WORD = re.compile(r"[^\W_]+")
_URL = re.compile(r"https?://|www\.|\.com\b|\.ly\b|watch\?v=", re.IGNORECASE)
GUARD = "local classifier"  # the name moderators see in front of the reason
_STATS_PK = 1
_CHUNK = 500  # tokens per UPDATE … WHERE token IN (…), well under SQLite's variable limit


# --- Features --------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, list[str]]:
    plain = html.unescape(_TAG.sub(" ", text or ""))
    return plain, [w.lower() for w in _WORD.findall(plain)]


def features(text: str, name: str = "", url: str = "") -> list[str]:
    """The tokens of a comment, with repeats (the model counts them): its words, each pair of
    adjacent words ("check_out"), ``__url__`` when the text carries an address, the words of
    the commenter's name prefixed ``name:``, and ``__site__`` when they gave a website. HTML is
    unescaped and tags are dropped first, so ``<a href=…>`` and ``&amp;`` are not words."""
    plain, words = _words(text)
    tokens = words + [f"{a}_{b}" for a, b in zip(words, words[1:], strict=False)]
    if _URL.search(plain) or _URL.search(text or ""):
        tokens.append(URL_FLAG)
    tokens += [f"name:{w}" for w in _words(name)[1]]
    if (url or "").strip():
        tokens.append(SITE_FLAG)
    return [t[:MAX_TOKEN] for t in tokens]


def comment_features(comment: Comment) -> list[str]:
    """What the guard and learning use: the text and whether a website was given, not the
    commenter's name. On the YouTube corpus names change little (F1 0.955 with them, 0.953
    without) but raise the false-positive rate (0.050 against 0.046), and they would put
    commenters' names into the stored counts, which erasing a person's data does not reach."""
    return features(comment.text, url=comment.author_url)


# --- Scoring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """What the model knows as a whole: comments learnt of each kind, tokens counted in each,
    and how many distinct tokens it has seen (the vocabulary, for smoothing)."""

    spam_docs: int = 0
    ham_docs: int = 0
    spam_tokens: int = 0
    ham_tokens: int = 0
    vocabulary: int = 0


def log_odds(
    tokens: Iterable[str], counts: Mapping[str, tuple[int, int]] | MemoryModel, totals: Totals
) -> float:
    """ln(P(spam | tokens) / P(ham | tokens)) under multinomial naive Bayes with Laplace
    smoothing. ``counts`` maps a token to (times seen in spam, times seen in ham); tokens never
    seen in either are no evidence and are skipped. Above 0: more likely spam than not;
    2.0 is about 88 %, 3.5 about 97 %."""
    score = math.log((totals.spam_docs + 1) / (totals.ham_docs + 1))
    vocabulary = max(totals.vocabulary, 1)
    spam_denominator = totals.spam_tokens + ALPHA * vocabulary
    ham_denominator = totals.ham_tokens + ALPHA * vocabulary
    for token in tokens:
        spam, ham = counts.get(token, (0, 0))
        if not spam and not ham:
            continue
        score += math.log((spam + ALPHA) / spam_denominator) - math.log(
            (ham + ALPHA) / ham_denominator
        )
    return score


def probability(score: float) -> float:
    """The log-odds as a probability of spam (0–1)."""
    if score >= 0:
        return 1.0 / (1.0 + math.exp(-score))
    e = math.exp(score)
    return e / (1.0 + e)


class MemoryModel:
    """The same counts kept in memory (the cross-validation bench, tests). It is its own
    ``counts`` mapping for ``log_odds``: ``model.get(token, default)``."""

    def __init__(self) -> None:
        self.spam: Counter[str] = Counter()
        self.ham: Counter[str] = Counter()
        self.docs = {SPAM: 0, HAM: 0}
        self.tokens = {SPAM: 0, HAM: 0}

    def learn(self, tokens: list[str], label: str) -> None:
        (self.spam if label == SPAM else self.ham).update(tokens)
        self.docs[label] += 1
        self.tokens[label] += len(tokens)

    def get(self, token: str, default=(0, 0)) -> tuple[int, int]:
        spam, ham = self.spam.get(token, 0), self.ham.get(token, 0)
        return (spam, ham) if spam or ham else default

    def totals(self) -> Totals:
        return Totals(
            spam_docs=self.docs[SPAM],
            ham_docs=self.docs[HAM],
            spam_tokens=self.tokens[SPAM],
            ham_tokens=self.tokens[HAM],
            vocabulary=len(self.spam.keys() | self.ham.keys()),
        )


def stored_totals() -> Totals:
    """One query: the stats row (which keeps the vocabulary's size as learning changes it)."""
    row = (
        SpamStats.objects.filter(pk=_STATS_PK)
        .values("spam_docs", "ham_docs", "spam_tokens", "ham_tokens", "vocabulary")
        .first()
    )
    if row is None:
        return Totals()
    return Totals(**row)


def stored_counts(tokens: Iterable[str]) -> dict[str, tuple[int, int]]:
    """One query (one per 500 distinct tokens for a very long comment)."""
    distinct = sorted(set(tokens))
    counts: dict[str, tuple[int, int]] = {}
    for i in range(0, len(distinct), _CHUNK):
        rows = SpamToken.objects.filter(token__in=distinct[i : i + _CHUNK])
        counts.update({t: (s, h) for t, s, h in rows.values_list("token", "spam", "ham")})
    return counts


def score(tokens: list[str], totals: Totals | None = None) -> float:
    """The log-odds of spam for these tokens, from the stored counts."""
    totals = totals if totals is not None else stored_totals()
    return log_odds(tokens, stored_counts(tokens), totals)


# --- Learning --------------------------------------------------------------------------------


def _apply(tokens: list[str], label: str, sign: int) -> None:
    """Add (sign +1) or take away (sign -1) one comment's tokens in the counts of ``label``.
    Counts never go below zero (should a learnt comment be changed without ``relearning``).

    The stats row is written first: its row lock (held to the end of the transaction) makes
    learning one at a time, so two moderators deciding at once both count, token rows are never
    locked in two orders by two transactions (a deadlock on PostgreSQL: a bulk approve against
    a spam decision), and the token counts read here to keep the vocabulary's size cannot move
    under it. Token rows are then taken in sorted order all the same."""
    field = label
    docs_field, tokens_field = f"{label}_docs", f"{label}_tokens"
    stats = SpamStats.objects.filter(pk=_STATS_PK)
    change = {
        docs_field: Greatest(F(docs_field) + sign, Value(0)),
        tokens_field: Greatest(F(tokens_field) + sign * len(tokens), Value(0)),
    }
    if not stats.update(**change):
        SpamStats.objects.get_or_create(pk=_STATS_PK)
        stats.update(**change)
    counts = Counter(tokens)
    distinct = sorted(counts)
    before: dict[str, tuple[int, int]] = {}
    for i in range(0, len(distinct), _CHUNK):
        rows = SpamToken.objects.filter(token__in=distinct[i : i + _CHUNK]).order_by("token")
        before.update({t: (sp, h) for t, sp, h in rows.values_list("token", "spam", "ham")})
    if sign > 0:
        SpamToken.objects.bulk_create(
            [SpamToken(token=t) for t in distinct if t not in before],
            ignore_conflicts=True,
            batch_size=_CHUNK,
        )
    # The vocabulary: tokens whose spam + ham moves from nothing, or to nothing.
    vocabulary = 0
    for token in distinct:
        spam, ham = before.get(token, (0, 0))
        was = spam + ham
        if field == SPAM:
            spam = max(spam + sign * counts[token], 0)
        else:
            ham = max(ham + sign * counts[token], 0)
        vocabulary += (spam + ham > 0) - (was > 0)
    by_count: dict[int, list[str]] = defaultdict(list)
    for token in distinct:
        by_count[counts[token]].append(token)
    for n, group in sorted(by_count.items()):
        for i in range(0, len(group), _CHUNK):
            SpamToken.objects.filter(token__in=group[i : i + _CHUNK]).update(
                **{field: Greatest(F(field) + sign * n, Value(0))}
            )
    if vocabulary:
        stats.update(vocabulary=Greatest(F("vocabulary") + vocabulary, Value(0)))


def learn(comment: Comment, label: str) -> None:
    """Teach the classifier that ``comment`` is ``label`` ("spam" or "ham"). If it had learnt the
    other label from this comment, those counts are taken back first; the same label twice
    changes nothing."""
    if label not in (SPAM, HAM):
        raise ValueError(f"Unknown label: {label!r}")
    if comment.learned_as == label:
        return
    tokens = comment_features(comment)
    with transaction.atomic():
        if comment.learned_as in (SPAM, HAM):
            _apply(tokens, comment.learned_as, -1)
        _apply(tokens, label, +1)
        Comment.objects.filter(pk=comment.pk).update(learned_as=label)
    comment.learned_as = label


def unlearn(comment: Comment) -> None:
    """Take back whatever the classifier learnt from ``comment``."""
    if comment.learned_as not in (SPAM, HAM):
        return
    with transaction.atomic():
        _apply(comment_features(comment), comment.learned_as, -1)
        Comment.objects.filter(pk=comment.pk).update(learned_as="")
    comment.learned_as = ""


@contextmanager
def relearning(comment: Comment) -> Iterator[None]:
    """Wrap a change to a learnt comment's text or website (a moderator's edit): what was
    learnt from the old words is taken back, and the same label is learnt from the new ones,
    so the counts always match the comments they came from."""
    label = comment.learned_as
    if label in (SPAM, HAM):
        unlearn(comment)
    yield
    if label in (SPAM, HAM):
        learn(comment, label)


@receiver(signals.comment_moderated, dispatch_uid="classifier.learn_from_moderation")
def learn_from_moderation(sender, *, comment, old_status, new_status, moderator, **kwargs):
    if kwargs.get("via") == "akismet":
        return  # the site's own decisions teach it, not Akismet's
    if new_status == Comment.Status.APPROVED:
        learn(comment, HAM)
    elif new_status == Comment.Status.SPAM:
        learn(comment, SPAM)
    elif new_status == Comment.Status.PENDING:
        unlearn(comment)
    # TRASH: keep what was learnt (see the module docstring).


# --- The guard -------------------------------------------------------------------------------


def percent_likely(score: float) -> int:
    """Whole percent, never shown as 100 (the model is never certain)."""
    return min(99, math.floor(probability(score) * 100))


def classifier_guard(sub: Submission) -> Verdict | None:
    """Hold a comment the local counts say is likely spam: log-odds above the site's
    ``classifier_threshold``. Silent until moderators have made at least
    ``classifier_min_decisions`` decisions of each kind, since a model that has seen ten
    comments only guesses. Stores the score on the comment for moderators (``spam_score``)."""
    if sub.bound_for_trash:
        return None
    cfg = sub.settings
    totals = stored_totals()
    needed = cfg.classifier_min_decisions
    if totals.spam_docs < needed or totals.ham_docs < needed or not totals.vocabulary:
        return None
    value = score(comment_features(sub.comment), totals)
    sub.comment.spam_score = value
    if value > cfg.classifier_threshold:
        # Shown to moderators as "local classifier: 97 % likely spam".
        return Verdict(HOLD, GUARD, f"{percent_likely(value)} % likely spam")
    return None
