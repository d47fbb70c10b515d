"""Read side of the discussion: what a page shows under an article.

A constant number of queries whatever the number of comments: one for the thread, two for its
site's discussion settings, one for its visible comments (three when the comments are broken
into pages: the counts, the page's top-level comments, and their replies fetched by
``Comment.root``), and one more only for a browser that holds its own pending comments.

Comment pages follow WordPress: pages count top-level comments (every comment when threading is
off), each with all its replies; page 1 holds the oldest; the default page (first or last) is
served at the article's own address and every other page at ``<article>comment-page-N/``.

"Top-level" means shown at the top level: a visible reply whose parent is not visible (held,
spam or in the trash) is shown as a top-level comment, with its own replies under it, with or
without pages (``display roots``), so every comment counted in "N responses" is on a page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from html import escape  # Django's escape() without its lazy-string check: same output
from typing import NamedTuple

from django.conf import settings as django_settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateformat import DateFormat
from django.utils.safestring import SafeString

from . import cookies
from .conf import DESC, LAST, DiscussionSettings, settings_for
from .forms import CommentForm
from .models import Comment, Thread
from .services import sync_thread

PAGE_PREFIX = "comment-page-"


@dataclass
class Entry:
    """One comment in reading order, with how the list nests around it."""

    comment: Comment
    has_children: bool = False
    closes: int = 0  # how many nested lists end after this comment
    form_here: bool = False  # the no-JS reply form goes under this comment
    awaiting_moderation: bool = False
    can_reply: bool = False  # open, published, and not at the deepest level

    @property
    def close_range(self) -> range:
        return range(self.closes)


@dataclass(frozen=True)
class CommentPages:
    """Which page of comments is shown, and the addresses of its neighbours."""

    number: int
    count: int
    default: int  # the page served at the article's own address
    base_url: str  # the article's own address

    def url(self, number: int) -> str:
        return comment_page_path(self.base_url, number, self.default)

    @property
    def older_url(self) -> str | None:
        return self.url(self.number - 1) if self.number > 1 else None

    @property
    def newer_url(self) -> str | None:
        return self.url(self.number + 1) if self.number < self.count else None

    @property
    def is_default(self) -> bool:
        return self.number == self.default


class CommentList(NamedTuple):
    """The comment list's items as HTML, cut where the no-JS reply form goes (if it does)."""

    before_form: SafeString
    after_form: SafeString


@dataclass
class Discussion:
    thread: Thread
    title: str
    is_open: bool
    entries: list[Entry] = field(default_factory=list)
    count: int = 0
    reply_to: Comment | None = None
    form: CommentForm | None = None
    settings: DiscussionSettings = field(default_factory=DiscussionSettings)
    pages: CommentPages | None = None  # None: comments are not broken into pages
    out_of_range: bool = False  # the page asked for does not exist

    @property
    def threaded(self) -> bool:
        return self.settings.threaded

    @property
    def max_depth(self) -> int:
        return self.settings.effective_depth

    @cached_property
    def list_html(self) -> CommentList:
        """The items of ``<ol class="comment-list">``, made once, in Python: a template
        include per comment cost more than all the rest of the page."""
        parts: list[str] = []
        cut = None
        date_text = _DateText()
        for entry in self.entries:
            comment = entry.comment
            pending = " comment-pending" if entry.awaiting_moderation else ""
            parts.append(
                f'<li id="comment-{comment.pk}" class="comment depth-{comment.display_depth}'
                f'{pending}">\n'
            )
            parts.append(
                comment_markup(
                    comment,
                    awaiting=entry.awaiting_moderation,
                    can_reply=entry.can_reply,
                    date_text=date_text,
                )
            )
            if entry.form_here and self.is_open:
                cut = len(parts)
            parts.append('\n<ol class="children">\n' if entry.has_children else "\n</li>\n")
            parts.append("</ol></li>\n" * entry.closes)
        if cut is None:
            cut = len(parts)
        # Safe: comment_markup escapes what readers wrote; the rest is tags and numbers.
        return CommentList(SafeString("".join(parts[:cut])), SafeString("".join(parts[cut:])))


class _DateText:
    """What ``|date:'c'``, ``|date:"F j, Y"`` and ``|date:"g:i a"`` show in a template, in the
    current time zone and language; the day and the time of day are formatted once each for
    a whole list (Django's date formatting is slow, and comments share days)."""

    def __init__(self) -> None:
        self._zone = timezone.get_current_timezone() if django_settings.USE_TZ else None
        self._days: dict[tuple[int, int, int], str] = {}
        self._times: dict[tuple[int, int], str] = {}

    def __call__(self, value: datetime) -> tuple[str, str, str]:
        if self._zone is not None and value.utcoffset() is not None:
            value = value.astimezone(self._zone)
        day_key = (value.year, value.month, value.day)
        day = self._days.get(day_key)
        if day is None:
            day = self._days[day_key] = escape(DateFormat(value).format("F j, Y"))
        time_key = (value.hour, value.minute)
        time = self._times.get(time_key)
        if time is None:
            time = self._times[time_key] = escape(DateFormat(value).format("g:i a"))
        return value.isoformat(), day, time


def comment_markup(
    comment: Comment,
    *,
    awaiting: bool = False,
    can_reply: bool = False,
    date_text: _DateText | None = None,
) -> SafeString:
    """One comment as the article page shows it (``<article class="comment-body">``): who, when,
    the stored sanitized HTML, and a reply link when ``can_reply``. Every value from a reader is
    escaped here; ``comment.html`` and ``comment.author_link`` come from the HTML policy."""
    pk = comment.pk
    anchor = f"comment-{pk}"
    author = escape(comment.author_name)
    iso, day, time = (date_text or _DateText())(comment.created_at)
    if comment.is_ping:
        who = (
            f'<b class="comment-author fn"><span class="ping-kind">'
            f"{escape(comment.get_kind_display())}:</span> {comment.author_link}</b>"
        )
    else:
        avatar = comment.avatar
        if avatar.url:
            picture = (
                f'<img class="avatar" src="{escape(avatar.url)}" alt="" width="48" height="48" '
                f'loading="lazy" referrerpolicy="no-referrer">'
            )
        else:
            picture = (
                f'<span class="avatar avatar-initial avatar-hue-{int(avatar.hue)}" '
                f'aria-hidden="true">{escape(avatar.initial)}</span>'
            )
        who = f'{picture}\n    <b class="comment-author fn">{comment.author_link}</b>'
    parts = [
        f'<article class="comment-body{" comment-ping" if comment.is_ping else ""}" '
        f'id="div-{anchor}" data-comment-id="{pk}" data-author="{author}">\n'
        f'  <footer class="comment-meta">\n    {who}\n'
        f'    <a class="comment-permalink" href="#{anchor}"><time datetime="{iso}">{day} at '
        f"{time}</time></a>\n  </footer>\n",
    ]
    if awaiting:
        parts.append(
            '  <p class="comment-awaiting-moderation">Your comment is awaiting moderation.</p>\n'
        )
    parts.append(f'  <div class="comment-content">{comment.html}</div>\n')
    if can_reply and not awaiting and not comment.is_ping:
        parts.append(
            f'  <div class="comment-actions reply">\n'
            f'    <a rel="nofollow" class="comment-reply-link" href="?replytocom={pk}#respond" '
            f'data-comment-id="{pk}" data-author="{author}" aria-label="Reply to {author}">'
            f"Reply</a>\n  </div>\n"
        )
    parts.append("</article>")
    return SafeString("".join(parts))  # every reader-supplied value is escaped above


def comment_page_path(base_url: str, number: int, default: int) -> str:
    """``base_url`` for the default page, ``<base_url>comment-page-N/`` for the others."""
    if number == default:
        return base_url
    return f"{base_url}{PAGE_PREFIX}{number}/"


def parse_comment_page(component: str) -> int | None:
    """``comment-page-N`` (N ≥ 1, ASCII digits, no leading zero) → N; anything else → None."""
    if not component.startswith(PAGE_PREFIX):
        return None
    digits = component[len(PAGE_PREFIX) :]
    if digits.isascii() and digits.isdigit() and digits[0] != "0" and len(digits) < 10:
        return int(digits)
    return None


def comments_open(thread: Thread, settings: DiscussionSettings) -> bool:
    """Whether the form is offered: the same rule as ``guards.comments_closed``, which refuses
    a comment sent anyway (the thread is closed, or older than the site's N days)."""
    if not thread.is_open:
        return False
    if settings.close_after_days and thread.published_at:
        age = timezone.now() - thread.published_at
        return age <= timedelta(days=settings.close_after_days)
    return True


def _thread_for(
    *, thread_url: str, page_id: int | None, title: str, is_open: bool, create: bool
) -> Thread | None:
    """The thread, looked up only: publishing keeps threads in step when articles are
    published, so rendering (a preview above all) never writes. A page published before its
    thread existed gets one on its first public view."""
    lookup = {"page_id": page_id} if page_id is not None else {"url": thread_url}
    thread = Thread.objects.filter(**lookup).first()
    if thread is None and create:
        thread = sync_thread(url=thread_url, page_id=page_id, title=title, is_open=is_open)
    return thread


def _ordered(
    comments: list[Comment], *, max_depth: int = 10, newest_first: bool = False
) -> list[tuple[Comment, int]]:
    """Depth-first reading order: each comment followed by its replies, oldest first; the top
    level newest first when asked. Replies nest at most ``max_depth`` levels: deeper ones are
    shown at the deepest level (and with ``max_depth`` 1, as a flat list)."""
    children: dict[int | None, list[Comment]] = {}
    ids = {c.pk for c in comments}
    for comment in comments:
        parent = comment.parent_id if comment.parent_id in ids and max_depth > 1 else None
        children.setdefault(parent, []).append(comment)
    top = children.get(None, [])
    if newest_first:
        top = top[::-1]
    ordered: list[tuple[Comment, int]] = []
    stack = [(c, 1) for c in reversed(top)]
    while stack:
        comment, level = stack.pop()
        ordered.append((comment, level))
        child_level = min(level + 1, max_depth)
        stack.extend((c, child_level) for c in reversed(children.get(comment.pk, [])))
    return ordered


def _page_count(top_level: int, per_page: int) -> int:
    return max(1, -(-top_level // per_page))


def _default_page(cfg: DiscussionSettings, count: int) -> int:
    return count if cfg.default_page == LAST else 1


def _display_roots(visible: QuerySet[Comment]) -> Q:
    """The comments shown at the top level when threaded: top-level ones, and replies whose
    parent is not visible (``_ordered`` shows those at the top level too)."""
    return Q(parent__isnull=True) | ~Exists(visible.filter(pk=OuterRef("parent_id")))


def _display_root_of(comment: Comment, shown: dict[int, Comment]) -> Comment:
    """The comment at the top of ``comment``'s visible chain of parents (``shown``: the visible
    comments of its thread, by pk, at least those of its tree)."""
    seen = 0
    while comment.parent_id in shown and seen < 1000:  # bounded, though a tree has no cycles
        comment = shown[comment.parent_id]
        seen += 1
    return comment


def _page_of(
    cfg: DiscussionSettings, thread: Thread, page: int | None, base_url: str
) -> tuple[list[Comment], int, CommentPages, bool]:
    """The comments of one page: (comments, visible count, pages, out of range)."""
    visible = Comment.objects.visible().for_thread(thread)
    threaded = cfg.effective_depth > 1
    top_filter = _display_roots(visible) if threaded else Q()
    counts = visible.aggregate(total=Count("pk"), top=Count("pk", filter=top_filter))
    count = _page_count(counts["top"], cfg.per_page)
    default = _default_page(cfg, count)
    number = default if page is None else page
    pages = CommentPages(number=number, count=count, default=default, base_url=base_url)
    if number > count:
        return [], counts["total"], pages, True
    start = (number - 1) * cfg.per_page
    top = list(
        visible.filter(top_filter).order_by("created_at", "pk")[start : start + cfg.per_page]
    )
    if threaded and top:
        # Every visible comment of the trees the page's display roots are in, in one query;
        # kept when its display root is on this page (a tree whose top-level comment is hidden
        # may have display roots on several pages).
        tree = visible.filter(root__in={c.root_id or c.pk for c in top})
        shown = {c.pk: c for c in tree}
        shown.update((c.pk, c) for c in top)
        on_page = {c.pk for c in top}
        top = sorted(
            (c for c in shown.values() if _display_root_of(c, shown).pk in on_page),
            key=lambda c: (c.created_at, c.pk),
        )
    return top, counts["total"], pages, False


def discussion_for(
    *,
    thread_url: str,
    page_id: int | None,
    title: str,
    is_open: bool,
    reply_to: str | None = None,
    request: HttpRequest | None = None,
    create: bool = True,
    page: int | None = None,
) -> Discussion | None:
    """Everything the article template shows of the discussion, for any reader.

    The result is the same for every anonymous reader, except for a browser holding the signed
    cookie of its own held comments (they are shown to it, marked as awaiting moderation).
    ``create=False`` (previews) never writes: no thread yet means no discussion to show.
    ``page`` is the comment page asked for by its address (None: the default page); when the
    comments are not broken into pages, only page 1 exists. A page that does not exist gives a
    discussion with ``out_of_range`` set (the caller answers 404).
    """
    thread = _thread_for(
        thread_url=thread_url, page_id=page_id, title=title, is_open=is_open, create=create
    )
    if thread is None:
        return None
    cfg = settings_for(thread)
    pages = None
    if cfg.paginate:
        comments, visible_count, pages, out_of_range = _page_of(cfg, thread, page, thread_url)
        page_ids = {c.pk for c in comments}
    else:
        comments = list(Comment.objects.visible().for_thread(thread))
        visible_count = len(comments)
        out_of_range = page is not None and page != 1
        page_ids = None
    discussion = Discussion(
        thread=thread,
        title=title,
        is_open=is_open and comments_open(thread, cfg),
        count=visible_count,
        settings=cfg,
        pages=pages,
        out_of_range=out_of_range,
    )
    if out_of_range:
        return discussion

    pending_ids: set[int] = set()
    if request is not None:
        own = cookies.pending_ids(request)
        browser_key = cookies.browser_key(request)
        if own and browser_key:
            waiting = list(Comment.objects.pending().by_browser(browser_key).filter(pk__in=own))
            # Read by PendingCookieMiddleware: with nothing left waiting, the cookie goes.
            request.comments_pending_left = len(waiting)
            mine = [
                c for c in waiting if c.thread_id == thread.pk and _on_page(c, pages, page_ids, cfg)
            ]
            pending_ids = {c.pk for c in mine}
            comments = sorted(comments + mine, key=lambda c: (c.created_at, c.pk))

    max_depth = cfg.effective_depth
    ordered = _ordered(comments, max_depth=max_depth, newest_first=cfg.order == DESC)
    entries = []
    for index, (comment, level) in enumerate(ordered):
        next_level = ordered[index + 1][1] if index + 1 < len(ordered) else 1
        awaiting = comment.pk in pending_ids
        entries.append(
            Entry(
                comment=comment,
                has_children=next_level > level,
                closes=max(0, level - next_level),
                awaiting_moderation=awaiting,
                can_reply=discussion.is_open and not awaiting and level < max_depth,
            )
        )
        comment.display_depth = level
    discussion.entries = entries

    if reply_to and reply_to.isascii() and reply_to.isdigit() and len(reply_to) < 20:
        target = next((e for e in entries if e.comment.pk == int(reply_to) and e.can_reply), None)
        if target is not None:
            target.form_here = True
            discussion.reply_to = target.comment
    discussion.form = CommentForm(
        require_identity=cfg.require_name_email,
        initial={
            "thread": thread.pk,
            "comment_parent": discussion.reply_to.pk if discussion.reply_to else 0,
        },
    )
    return discussion


def _on_page(
    comment: Comment,
    pages: CommentPages | None,
    page_ids: set[int] | None,
    cfg: DiscussionSettings,
) -> bool:
    """Whether a browser's own held comment belongs on the page shown: a reply on the page
    of the comment it answers, a new comment on the last page (where it will appear once
    approved). ``page_ids`` grows with the ones placed, for a reply to one's own reply."""
    if pages is None:
        return True
    if cfg.effective_depth > 1 and comment.parent_id:
        here = comment.parent_id in (page_ids or set())
    else:
        here = pages.number == pages.count
    if here and page_ids is not None:
        page_ids.add(comment.pk)
    return here


def comment_url(comment: Comment, cfg: DiscussionSettings | None = None) -> str:
    """The address of the page that shows ``comment`` (the page of the comment shown at the
    top level above it), with its anchor: WordPress's ``get_page_of_comment``. Two queries at
    most (its tree, the counts). A comment readers cannot see (a browser's own held comment)
    is where ``_on_page`` shows it to that browser: under a visible parent, on that parent's
    page; otherwise on the last page."""
    thread = comment.thread
    cfg = cfg or settings_for(thread)
    base = thread.url
    if not cfg.paginate:
        return f"{base}#{comment.anchor}"
    visible = Comment.objects.visible().for_thread(thread)
    threaded = cfg.effective_depth > 1
    top_filter = _display_roots(visible) if threaded else Q()
    anchor_comment = comment
    if threaded and comment.parent_id:
        tree = visible.filter(root_id=comment.root_id or comment.parent_id).only(
            "pk", "parent_id", "created_at"
        )
        anchor_comment = _display_root_of(comment, {c.pk: c for c in tree})
    counts = visible.aggregate(
        top=Count("pk", filter=top_filter),
        before=Count(
            "pk",
            filter=top_filter
            & (
                Q(created_at__lt=anchor_comment.created_at)
                | Q(created_at=anchor_comment.created_at, pk__lt=anchor_comment.pk)
            ),
        ),
    )
    count = _page_count(counts["top"], cfg.per_page)
    if anchor_comment.pk == comment.pk and comment.status != Comment.Status.APPROVED:
        number = count
    else:
        number = min(counts["before"] // cfg.per_page + 1, count)
    return f"{comment_page_path(base, number, _default_page(cfg, count))}#{comment.anchor}"
