"""Read side of the discussion: what a page shows under an article.

A constant number of queries whatever the number of comments: one for the thread, one for its
visible comments, and one more only for a browser that holds its own pending comments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import HttpRequest

from . import cookies
from .forms import CommentForm
from .models import Comment, Thread
from .services import sync_thread


@dataclass
class Entry:
    """One comment in reading order, with how the list nests around it."""

    comment: Comment
    has_children: bool = False
    closes: int = 0  # how many nested lists end after this comment
    form_here: bool = False  # the no-JS reply form goes under this comment
    awaiting_moderation: bool = False

    @property
    def close_range(self) -> range:
        return range(self.closes)


@dataclass
class Discussion:
    thread: Thread
    title: str
    is_open: bool
    entries: list[Entry] = field(default_factory=list)
    count: int = 0
    reply_to: Comment | None = None
    form: CommentForm | None = None


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


def _ordered(comments: list[Comment]) -> list[tuple[Comment, int]]:
    """Depth-first reading order: each comment followed by its replies, oldest first."""
    children: dict[int | None, list[Comment]] = {}
    ids = {c.pk for c in comments}
    for comment in comments:
        parent = comment.parent_id if comment.parent_id in ids else None
        children.setdefault(parent, []).append(comment)
    ordered: list[tuple[Comment, int]] = []
    stack = [(c, 1) for c in reversed(children.get(None, []))]
    while stack:
        comment, level = stack.pop()
        ordered.append((comment, level))
        stack.extend((c, level + 1) for c in reversed(children.get(comment.pk, [])))
    return ordered


def discussion_for(
    *,
    thread_url: str,
    page_id: int | None,
    title: str,
    is_open: bool,
    reply_to: str | None = None,
    request: HttpRequest | None = None,
    create: bool = True,
) -> Discussion | None:
    """Everything the article template shows of the discussion, for any reader.

    The result is the same for every anonymous reader, except for a browser holding the signed
    cookie of its own held comments (they are shown to it, marked as awaiting moderation).
    ``create=False`` (previews) never writes: no thread yet means no discussion to show.
    """
    thread = _thread_for(
        thread_url=thread_url, page_id=page_id, title=title, is_open=is_open, create=create
    )
    if thread is None:
        return None
    comments = list(Comment.objects.visible().for_thread(thread))
    visible_count = len(comments)
    pending_ids: set[int] = set()
    if request is not None:
        own = cookies.pending_ids(request)
        browser_key = cookies.browser_key(request)
        if own and browser_key:
            waiting = list(Comment.objects.pending().by_browser(browser_key).filter(pk__in=own))
            # Read by PendingCookieMiddleware: with nothing left waiting, the cookie goes.
            request.comments_pending_left = len(waiting)
            mine = [c for c in waiting if c.thread_id == thread.pk]
            pending_ids = {c.pk for c in mine}
            comments = sorted(comments + mine, key=lambda c: (c.created_at, c.pk))

    ordered = _ordered(comments)
    entries = []
    for index, (comment, level) in enumerate(ordered):
        next_level = ordered[index + 1][1] if index + 1 < len(ordered) else 1
        entries.append(
            Entry(
                comment=comment,
                has_children=next_level > level,
                closes=max(0, level - next_level),
                awaiting_moderation=comment.pk in pending_ids,
            )
        )
        comment.display_depth = level

    discussion = Discussion(
        thread=thread,
        title=title,
        is_open=is_open and thread.is_open,
        entries=entries,
        count=visible_count,
    )
    if reply_to and reply_to.isascii() and reply_to.isdigit() and len(reply_to) < 20:
        target = next(
            (e for e in entries if e.comment.pk == int(reply_to) and not e.awaiting_moderation),
            None,
        )
        if target is not None:
            target.form_here = True
            discussion.reply_to = target.comment
    discussion.form = CommentForm(
        initial={
            "thread": thread.pk,
            "comment_parent": discussion.reply_to.pk if discussion.reply_to else 0,
        }
    )
    return discussion
