"""Discussion settings per site, kept in the Wagtail admin (Settings > Discussion), in
WordPress's words.

The comments engine never imports this module: it asks ``comments.conf.settings_for(thread)``,
which calls ``settings_for_thread`` here through ``COMMENTS_SETTINGS_RESOLVER`` and gets the
frozen ``comments.conf.DiscussionSettings`` dataclass. Every field of that dataclass is a field
here, with the same name and default; a site nobody has configured reads the defaults without
writing a row (Wagtail's ``for_site`` would create one on a first read, even from the worker).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from wagtail.admin.panels import FieldPanel, FieldRowPanel, MultiFieldPanel
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting
from wagtail.models import Page, Site

from broadsheet.comments import conf
from broadsheet.core import pagecache

DEFAULTS = conf.DiscussionSettings()

WORDS_HELP = (
    "When a comment contains any of these words in its content, author name, URL, email, "
    "IP address, or browser's user agent string, {what}. One word or IP address per line. "
    "It will match inside words, so “press” will match “WordPress”."
)


@register_setting(icon="comment")
class DiscussionSettings(BaseSiteSetting):
    """What WordPress's Settings > Discussion holds, per site. Read through
    ``settings_for_thread``; the rules themselves are in ``comments/guards.py``."""

    # Default article settings
    comments_open_by_default = models.BooleanField(
        "Allow people to submit comments on new articles",
        default=DEFAULTS.comments_open_by_default,
        help_text="Individual articles may override this (Settings tab of the article).",
    )
    # Other comment settings
    require_name_email = models.BooleanField(
        "Comment author must fill out name and email", default=DEFAULTS.require_name_email
    )
    registration_required = models.BooleanField(
        "Users must be registered and logged in to comment",
        default=DEFAULTS.registration_required,
    )
    close_after_days = models.PositiveIntegerField(
        "Automatically close comments on articles older than … days",
        default=DEFAULTS.close_after_days,
        validators=[MaxValueValidator(36_500)],
        help_text="0 keeps comments open however old the article is.",
    )
    threaded = models.BooleanField("Enable threaded (nested) comments", default=DEFAULTS.threaded)
    thread_depth = models.PositiveSmallIntegerField(
        "levels deep",
        default=conf._max_depth,
        validators=[MinValueValidator(2), MaxValueValidator(10)],
        help_text="From 2 to 10.",
    )
    paginate = models.BooleanField("Break comments into pages", default=DEFAULTS.paginate)
    per_page = models.PositiveIntegerField(
        "top level comments per page",
        default=DEFAULTS.per_page,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
    )
    default_page = models.CharField(
        "page displayed by default",
        max_length=5,
        choices=[(conf.LAST, "last"), (conf.FIRST, "first")],
        default=DEFAULTS.default_page,
        help_text="The page the article's own address shows.",
    )
    order = models.CharField(
        "Comments should be displayed with the … comments at the top of each page",
        max_length=4,
        choices=[(conf.ASC, "older"), (conf.DESC, "newer")],
        default=DEFAULTS.order,
    )
    # Email me whenever
    notify_on_post = models.BooleanField("Anyone posts a comment", default=DEFAULTS.notify_on_post)
    notify_on_hold = models.BooleanField(
        "A comment is held for moderation", default=DEFAULTS.notify_on_hold
    )
    notify_author = models.BooleanField(
        "Email the article's authors whenever anyone posts a comment",
        default=DEFAULTS.notify_author,
        help_text="Authors whose byline is linked to an account with an email address.",
    )
    # Before a comment appears
    manual_approval = models.BooleanField(
        "Comment must be manually approved", default=DEFAULTS.manual_approval
    )
    previously_approved = models.BooleanField(
        "Comment author must have a previously approved comment",
        default=DEFAULTS.previously_approved,
    )
    # Comment Moderation
    max_links = models.PositiveIntegerField(
        "Hold a comment in the queue if it contains more than … links",
        default=conf._max_links,
        validators=[MaxValueValidator(1000)],
        help_text="A common characteristic of comment spam is a large number of hyperlinks.",
    )
    moderation_words = models.TextField(
        "Comment moderation",
        blank=True,
        default=DEFAULTS.moderation_words,
        help_text=WORDS_HELP.format(what="it will be held in the moderation queue"),
    )
    disallowed_words = models.TextField(
        "Disallowed comment keys",
        blank=True,
        default=DEFAULTS.disallowed_words,
        help_text=WORDS_HELP.format(what="it will be put in the Trash"),
    )
    # Ours: own edits, flood and rate limits, the local classifier
    edit_window_minutes = models.PositiveIntegerField(
        "Commenters may edit or delete their own comment for … minutes",
        default=DEFAULTS.edit_window_minutes,
        validators=[MaxValueValidator(10_080)],
        help_text="0: never.",
    )
    flood_seconds = models.PositiveIntegerField(
        "Refuse a second comment from the same address or email within … seconds",
        default=DEFAULTS.flood_seconds,
        validators=[MaxValueValidator(3600)],
        help_text="0: no flood check.",
    )
    rate_per_minute_ip = models.PositiveIntegerField(
        "Comments per minute from one IP address (IPv6: per /64)",
        default=DEFAULTS.rate_per_minute_ip,
        validators=[MinValueValidator(1)],
    )
    rate_per_hour_ip = models.PositiveIntegerField(
        "Comments per hour from one IP address",
        default=DEFAULTS.rate_per_hour_ip,
        validators=[MinValueValidator(1)],
    )
    rate_per_minute_email = models.PositiveIntegerField(
        "Comments per minute from one email address",
        default=DEFAULTS.rate_per_minute_email,
        validators=[MinValueValidator(1)],
    )
    rate_per_minute_account = models.PositiveIntegerField(
        "Comments per minute from one account",
        default=DEFAULTS.rate_per_minute_account,
        validators=[MinValueValidator(1)],
    )
    classifier_threshold = models.FloatField(
        "Hold a comment when the local spam filter's score is above",
        default=DEFAULTS.classifier_threshold,
        validators=[MinValueValidator(-50), MaxValueValidator(50)],
        help_text="Log-odds of spam: 0 is even odds; higher holds fewer comments.",
    )
    classifier_min_decisions = models.PositiveIntegerField(
        "The local spam filter starts after … moderation decisions of each kind",
        default=DEFAULTS.classifier_min_decisions,
        validators=[MinValueValidator(1)],
        help_text="Spam and approved comments it has learned from.",
    )

    panels = [
        MultiFieldPanel(
            [FieldPanel("comments_open_by_default")], heading="Default article settings"
        ),
        MultiFieldPanel(
            [
                FieldPanel("require_name_email"),
                FieldPanel("registration_required"),
                FieldPanel("close_after_days"),
                FieldRowPanel([FieldPanel("threaded"), FieldPanel("thread_depth")]),
                FieldRowPanel(
                    [
                        FieldPanel("paginate"),
                        FieldPanel("per_page"),
                        FieldPanel("default_page"),
                    ]
                ),
                FieldPanel("order"),
            ],
            heading="Other comment settings",
        ),
        MultiFieldPanel(
            [
                FieldPanel("notify_on_post"),
                FieldPanel("notify_on_hold"),
                FieldPanel("notify_author"),
            ],
            heading="Email me whenever",
        ),
        MultiFieldPanel(
            [FieldPanel("manual_approval"), FieldPanel("previously_approved")],
            heading="Before a comment appears",
        ),
        MultiFieldPanel(
            [FieldPanel("max_links"), FieldPanel("moderation_words")],
            heading="Comment Moderation",
        ),
        MultiFieldPanel([FieldPanel("disallowed_words")], heading="Disallowed Comment Keys"),
        MultiFieldPanel(
            [
                FieldPanel("edit_window_minutes"),
                FieldPanel("flood_seconds"),
                FieldRowPanel([FieldPanel("rate_per_minute_ip"), FieldPanel("rate_per_hour_ip")]),
                FieldRowPanel(
                    [FieldPanel("rate_per_minute_email"), FieldPanel("rate_per_minute_account")]
                ),
                FieldRowPanel(
                    [FieldPanel("classifier_threshold"), FieldPanel("classifier_min_decisions")]
                ),
            ],
            heading="Spam defence",
        ),
    ]

    class Meta:
        verbose_name = "Discussion"
        verbose_name_plural = "Discussion"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        conf.settings_changed()  # threads loaded before remembered the old settings

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        conf.settings_changed()
        return result

    def as_conf(self) -> conf.DiscussionSettings:
        return conf.DiscussionSettings(
            **{name: getattr(self, name) for name in conf.DiscussionSettings.field_names()}
        )


# Settings and the page → site map, remembered by each process: every comment post, page
# render and personal-parts request reads them. A memo is good while this process has saved no
# settings and, with the page cache on, while the page cache has not been cleared since it was
# read: every change that could alter them (settings, sites, a page moved) clears the page
# cache after it is committed, which every process sees (other machines through Redis). With
# the page cache off, a memo lasts REMEMBER_SECONDS: another process may apply a changed
# setting that much later (no shared page can hold the old one).
REMEMBER_SECONDS = 2
_remembered: dict[tuple, tuple[int, int, Any]] = {}


def _remember(key: tuple, load):
    known = _remembered.get(key)
    if known is not None and known[1] == conf.generation():
        cleared = pagecache.last_cleared()
        age = time.time_ns() - known[0]
        if cleared is None:
            fresh = age < REMEMBER_SECONDS * 1_000_000_000
        else:  # and at most a minute, should a change ever fail to reach this machine
            fresh = known[0] > cleared and age < 60 * 1_000_000_000
        if fresh:
            return known[2]
    began = time.time_ns()  # before the read: a change committed meanwhile is seen next time
    value = load()
    if len(_remembered) > 10_000:
        _remembered.clear()
    _remembered[key] = (began, conf.generation(), value)
    return value


def forget() -> None:
    """Drop what this process remembered (tests roll the database back under it)."""
    _remembered.clear()


def site_id_for_page(page_id: int | None) -> int | None:
    """The site a page belongs to (the deepest site root above it), else the default site."""
    return _remember(("site-of", page_id), lambda: _site_id_for_page(page_id))


def _site_id_for_page(page_id: int | None) -> int | None:
    # One query for the page's path; the sites' root paths come from Wagtail's cache.
    url_path = (
        Page.objects.filter(pk=page_id).values_list("url_path", flat=True).first()
        if page_id
        else None
    )
    roots = Site.get_site_root_paths()
    if url_path:
        matches = [root for root in roots if url_path.startswith(root.root_path)]
        if matches:
            return max(matches, key=lambda root: len(root.root_path)).site_id
    default = Site.objects.filter(is_default_site=True).values_list("pk", flat=True).first()
    return default


def settings_for_site(site_id: int | None) -> conf.DiscussionSettings:
    """A site's settings; the defaults when it has none saved yet (nothing is written)."""
    return _remember(("settings", site_id), lambda: _settings_for_site(site_id))


def _settings_for_site(site_id: int | None) -> conf.DiscussionSettings:
    row = DiscussionSettings.objects.filter(site_id=site_id).first() if site_id else None
    return row.as_conf() if row is not None else conf.DiscussionSettings()


def settings_for_thread(thread) -> conf.DiscussionSettings:
    """``COMMENTS_SETTINGS_RESOLVER``: the settings of the site the thread's page is on (the
    default site for a thread without a page). Two small queries, no request needed (the
    worker calls it too)."""
    return settings_for_site(site_id_for_page(getattr(thread, "page_id", None)))


def author_emails_for_thread(thread) -> list[str]:
    """``COMMENTS_THREAD_AUTHORS``: the addresses of the article's byline people who are
    linked to an active account, in byline order, without repeats. One query."""
    from .models import ArticleAuthor

    page_id = getattr(thread, "page_id", None)
    if not page_id:
        return []
    emails = (
        ArticleAuthor.objects.filter(
            page_id=page_id, person__user__isnull=False, person__user__is_active=True
        )
        .exclude(person__user__email="")
        .order_by("sort_order", "pk")
        .values_list("person__user__email", flat=True)
    )
    seen: dict[str, str] = {}
    for email in emails:
        seen.setdefault(email.casefold(), email)
    return list(seen.values())
