"""Signed moderation links in notification mail: approve, spam, trash.

Rules (catalog F03):
- A link is signed with ``django.core.signing`` and one salt per action, so an approve link
  cannot be turned into a trash link. It names the comment, the action, the moderator it was
  sent to and the comment's moderation state when it was signed; it expires after
  ``COMMENTS_MODERATION_LINK_MAX_AGE`` (7 days).
- Opening it (GET) never acts: mail scanners and link previews open links. It shows what would
  happen and a button. A moderator who is not signed in is sent to sign in first, and back.
- Only the button's POST acts (CSRF-protected), for the signed-in moderator the link was sent
  to, who still holds ``comments.moderate_comment``, and only while the comment is still in the
  state it was in when the mail was written: a link works once.
- Anything else (altered, expired, for another action, already acted on) gets a clear page
  with a 4xx status, and nothing changes.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import services
from .mail import absolute_url
from .models import Comment, CommentEvent

ACTIONS = {
    "approve": ("Approve", "Approve this comment", "The comment was approved."),
    "spam": ("Spam", "Mark this comment as spam", "The comment was marked as spam."),
    "trash": ("Trash", "Move this comment to the trash", "The comment was moved to the trash."),
}
STATUS_CHANGES = [
    CommentEvent.Action.APPROVED,
    CommentEvent.Action.UNAPPROVED,
    CommentEvent.Action.SPAM,
    CommentEvent.Action.TRASH,
]
TEMPLATE = "comments/moderation_links/page.html"


def salt(action: str) -> str:
    return f"broadsheet.moderation.{action}"


def max_age() -> int:
    return int(getattr(settings, "COMMENTS_MODERATION_LINK_MAX_AGE", 7 * 24 * 3600))


def state_of(comment: Comment) -> list:
    """The comment's moderation state: its status and its last status change. A link acts only
    while this is unchanged, so it works once and never after another decision."""
    last = (
        CommentEvent.objects.filter(comment=comment, action__in=STATUS_CHANGES)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    return [comment.status, last or 0]


def make_token(comment: Comment, action: str, moderator) -> str:
    if action not in ACTIONS:
        raise ValueError(action)
    payload = {"c": comment.pk, "a": action, "m": moderator.pk, "s": state_of(comment)}
    return signing.dumps(payload, salt=salt(action), compress=True)


def link(comment: Comment, action: str, moderator) -> str:
    """The absolute address of a signed moderation link, for a mail."""
    token = make_token(comment, action, moderator)
    return absolute_url(reverse("comments:moderation_link", args=[action, token]))


def links_for(comment: Comment, moderator) -> dict[str, str]:
    return {action: link(comment, action, moderator) for action in ACTIONS}


class LinkProblem(Exception):
    def __init__(self, status: int, title: str, message: str):
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def read_token(action: str, token: str) -> dict:
    if action not in ACTIONS:
        raise LinkProblem(404, "Unknown action", "This moderation link does not exist.")
    try:
        payload = signing.loads(token, salt=salt(action), max_age=max_age())
    except signing.SignatureExpired:
        raise LinkProblem(
            410,
            "This link has expired",
            "Moderation links in email work for 7 days. Moderate the comment from the "
            "comments queue in the admin instead.",
        ) from None
    except (signing.BadSignature, ValueError):
        raise LinkProblem(
            400,
            "This link is not valid",
            "The link was changed or cut short. Open it again from the email, or moderate the "
            "comment from the comments queue in the admin.",
        ) from None
    if not isinstance(payload, dict) or payload.get("a") != action:
        raise LinkProblem(400, "This link is not valid", "The link does not match its action.")
    return payload


def check(request, action: str, token: str) -> Comment:
    """The comment a link may act on now, for the signed-in user; LinkProblem otherwise."""
    payload = read_token(action, token)
    user = request.user
    if payload.get("m") != user.pk or not user.has_perm("comments.moderate_comment"):
        raise LinkProblem(
            403,
            "You cannot use this link",
            "This link was sent to another moderator, or your account may no longer moderate "
            "comments.",
        )
    comment = Comment.objects.select_related("thread").filter(pk=payload.get("c")).first()
    if comment is None:
        raise LinkProblem(404, "Comment not found", "The comment has been deleted.")
    if payload.get("s") != state_of(comment):
        raise LinkProblem(
            409,
            "This comment was already moderated",
            f"It is now “{comment.get_status_display()}”. Nothing was changed. Open the "
            "comments queue in the admin to change it again.",
        )
    return comment


@never_cache
@require_http_methods(["GET", "POST"])
def moderation_link(request, action: str, token: str):
    context = {"action": action, "labels": ACTIONS.get(action)}
    try:
        read_token(action, token)  # an altered link says so before asking anyone to sign in
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        comment = check(request, action, token)
    except LinkProblem as problem:
        context["problem"] = problem
        return render(request, TEMPLATE, context, status=problem.status)
    context["comment"] = comment
    if request.method == "POST":
        services.moderate(
            comment_ids=[comment.pk], action=action, moderator=request.user, via="email link"
        )
        comment.refresh_from_db()
        context["done"] = True
    return render(request, TEMPLATE, context)


urlpatterns = [
    path("<str:action>/<str:token>/", moderation_link, name="moderation_link"),
]
