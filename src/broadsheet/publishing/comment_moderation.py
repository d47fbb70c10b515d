"""The moderation queue in the Wagtail admin. The rules are the comments app's services; this
module only lists, filters and hands moderators' decisions to them."""

from __future__ import annotations

import ipaddress
import json
import os
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from broadsheet.comments import forms as comment_forms
from broadsheet.comments import privacy, services
from broadsheet.comments.models import (
    DB_INT_MAX,
    Block,
    Comment,
    CommentEvent,
    OutboxMessage,
    Thread,
)

STATUS_TABS = [
    ("pending", "Pending"),
    ("approved", "Approved"),
    ("spam", "Spam"),
    ("trash", "Trash"),
    ("all", "All"),
]
BULK_ACTIONS = [
    ("approve", "Approve"),
    ("unapprove", "Unapprove"),
    ("spam", "Mark as spam"),
    ("trash", "Move to trash"),
    ("delete", "Delete for ever"),
]


def _require_moderator(request: HttpRequest) -> None:
    if not request.user.has_perm("comments.moderate_comment"):
        raise PermissionDenied


def filter_by_ip(comments, value: str):
    """An exact address, a range in CIDR form (192.0.2.0/24, 2001:db8::/64), or the start of
    an address as typed ("192.0.2.")."""
    value = value.strip()
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return comments.filter(ip_address__startswith=value)
    if network.num_addresses == 1:
        return comments.filter(ip_address=str(network.network_address))
    first, last = str(network.network_address), str(network.broadcast_address)
    common = os.path.commonprefix([first, last]) if network.version == 4 else ""
    candidates = comments.filter(ip_address__isnull=False)
    if common:
        candidates = candidates.filter(ip_address__startswith=common)
    elif network.version == 6:
        candidates = candidates.filter(ip_address__contains=":")
    matching = [
        pk for pk, ip in candidates.values_list("pk", "ip_address") if _in_network(ip, network)
    ]
    return comments.filter(pk__in=matching)


def _in_network(ip: str, network) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return address.version == network.version and address in network


STATUS_ACTIONS = ("approve", "unapprove", "spam", "trash", "deleted")


def annotate_status_notes(comments) -> None:
    """Who put each listed comment where it is: a guard when it was posted (its reasons), or a
    moderator / its author later. One query for the page."""
    comments = list(comments)
    last = {}
    events = CommentEvent.objects.filter(
        comment__in=comments, action__in=STATUS_ACTIONS
    ).select_related("actor")
    for event in events.order_by("at", "id"):
        last[event.comment_id] = event
    for comment in comments:
        event = last.get(comment.pk)
        comment.status_event = event
        if event is None or event.action == CommentEvent.Action.DELETED:
            comment.status_by = ""  # "Deleted by its author" says who
        elif event.actor is not None:
            comment.status_by = event.actor.get_full_name() or event.actor.get_username()
        else:
            comment.status_by = {"author": "its author"}.get(event.actor_kind, "the site")


FILTERS = ("thread", "author", "email", "ip", "q")


def queue(request: HttpRequest) -> HttpResponse:
    _require_moderator(request)
    status = request.GET.get("status", "pending")
    if status not in dict(STATUS_TABS):
        status = "pending"
    comments = Comment.objects.select_related("thread", "parent", "user").order_by(
        "-created_at", "-id"
    )
    filtered = comments
    thread_id = request.GET.get("thread", "")
    if thread_id.isascii() and thread_id.isdigit() and len(thread_id) < 19:
        filtered = filtered.filter(thread_id=int(thread_id))
    author = request.GET.get("author", "").strip()
    if author:
        filtered = filtered.filter(author_name__icontains=author)
    email = request.GET.get("email", "").strip()
    if email:
        filtered = filtered.filter(author_email__iexact=email)
    ip = request.GET.get("ip", "").strip()
    if ip:
        filtered = filter_by_ip(filtered, ip)
    query = request.GET.get("q", "").strip()
    if query:
        filtered = filtered.search(query)
    listed = filtered if status == "all" else filtered.filter(status=status)
    page = Paginator(listed, 50).get_page(request.GET.get("p"))
    annotate_status_notes(page.object_list)
    counts = Comment.objects.status_counts()
    counts["all"] = sum(counts.values())
    params = {
        key: request.GET.get(key, "").strip() for key in FILTERS if request.GET.get(key, "").strip()
    }
    return render(
        request,
        "publishing/admin/comment_queue.html",
        {
            "page_obj": page,
            "status": status,
            "tabs": [(key, label, counts[key]) for key, label in STATUS_TABS],
            "threads": Thread.objects.filter(comments__isnull=False).distinct().order_by("title"),
            "thread_id": thread_id,
            "query": query,
            "author": author,
            "email": email,
            "ip": ip,
            "filters": urlencode(params),
            "filtered": bool(params),
            "bulk_actions": BULK_ACTIONS,
            "back": request.get_full_path(),
        },
    )


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("comment_moderation:queue")


@require_POST
def bulk(request: HttpRequest) -> HttpResponse:
    _require_moderator(request)
    action = request.POST.get("action", "")
    ids = [pk for pk in request.POST.getlist("ids") if pk.isascii() and pk.isdigit()]
    quick_action, _, quick_id = request.POST.get("quick", "").partition(":")
    if quick_action:  # a row's own button: that action, that comment only
        action, ids = quick_action, [quick_id] if quick_id.isascii() and quick_id.isdigit() else []
    if action not in dict(BULK_ACTIONS):
        messages.error(request, "Choose what to do with the selected comments.")
    elif not ids:
        messages.error(request, "Select at least one comment.")
    else:
        count = services.moderate(comment_ids=ids, action=action, moderator=request.user)
        label = dict(BULK_ACTIONS)[action].lower()
        messages.success(request, f"{count} comment{'s' if count != 1 else ''}: {label} done.")
    return redirect(_back(request))


class ModeratorEditForm(forms.Form):
    """The same field rules as the readers' form (one set of limits and URL rules)."""

    author_name = forms.CharField(label="Name")
    author_url = forms.CharField(label="Website", required=False)
    text = forms.CharField(label="Comment", widget=forms.Textarea(attrs={"rows": 10}), strip=False)

    def clean_author_name(self) -> str:
        return comment_forms.clean_name(self.cleaned_data["author_name"])

    def clean_author_url(self) -> str:
        return comment_forms.clean_website(self.cleaned_data["author_url"])

    def clean_text(self) -> str:
        return comment_forms.clean_text(self.cleaned_data["text"])


def edit(request: HttpRequest, pk: int) -> HttpResponse:
    _require_moderator(request)
    comment = get_object_or_404(Comment.objects.select_related("thread"), pk=min(pk, DB_INT_MAX))
    if request.method == "POST":
        form = ModeratorEditForm(request.POST)
        if form.is_valid():
            services.edit_comment(comment=comment, moderator=request.user, **form.cleaned_data)
            messages.success(request, "Comment saved.")
            return redirect(_back(request))
    else:
        form = ModeratorEditForm(
            initial={
                "author_name": comment.author_name,
                "author_url": comment.author_url,
                "text": comment.text,
            }
        )
    return render(
        request,
        "publishing/admin/comment_edit.html",
        {
            "comment": comment,
            "form": form,
            "next": request.POST.get("next") or request.GET.get("next", ""),
            "history": history_rows(comment),
        },
    )


FIELD_LABELS = {
    "text": "Text",
    "author_name": "Name",
    "author_url": "Website",
    "status": "Status",
    "via": "Via",
    "reply": "Reply",
    "erased": "Erased",
}


def history_rows(comment: Comment) -> list[dict]:
    """The comment's history for moderators: who, when, what changed (before → after)."""
    rows = []
    events = CommentEvent.objects.filter(comment=comment).select_related("actor")
    for event in events.order_by("at", "id"):
        if event.actor is not None:
            who = event.actor.get_full_name() or event.actor.get_username()
        else:
            who = {"author": "Its author", "system": "The site"}.get(
                event.actor_kind, event.actor_kind
            )
        changes = []
        before, after = event.before or {}, event.after or {}
        for key in [*before, *(k for k in after if k not in before)]:
            changes.append(
                {
                    "field": FIELD_LABELS.get(key, key),
                    "before": _shown(before.get(key)),
                    "after": _shown(after.get(key)),
                    "has_before": key in before,
                }
            )
        rows.append(
            {
                "at": event.at,
                "who": who,
                "actor_kind": event.actor_kind,
                "action": event.get_action_display(),
                "changes": changes,
                "reasons": [
                    f"{r.get('guard', '')}: {r.get('detail', '')}" if isinstance(r, dict) else r
                    for r in event.reasons or []
                ],
            }
        )
    return rows


def _shown(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


# --- Reply as the publication -----------------------------------------------------------------


class ReplyForm(forms.Form):
    text = forms.CharField(label="Reply", widget=forms.Textarea(attrs={"rows": 8}), strip=False)

    def clean_text(self) -> str:
        return comment_forms.clean_text(self.cleaned_data["text"])


def reply(request: HttpRequest, pk: int) -> HttpResponse:
    _require_moderator(request)
    parent = get_object_or_404(Comment.objects.select_related("thread"), pk=min(pk, DB_INT_MAX))
    form = ReplyForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            # Asked before replying: the service approves a held comment and reloads it.
            was_pending = parent.status == Comment.Status.PENDING
            try:
                services.reply_as_publication(
                    parent=parent,
                    moderator=request.user,
                    text=form.cleaned_data["text"],
                    allow_closed=True,  # WordPress lets moderators answer on closed articles
                )
            except services.CommentRejected as rejection:
                form.add_error("text", rejection.message)
                status = rejection.status
            else:
                messages.success(
                    request,
                    f"Reply posted as {services.publication_name()}"
                    + (" and the comment approved." if was_pending else "."),
                )
                return redirect(_back(request))
        else:
            status = 400
    return render(
        request,
        "publishing/admin/comment_reply.html",
        {
            "comment": parent,
            "form": form,
            "publication": services.publication_name(),
            "next": request.POST.get("next") or request.GET.get("next", ""),
        },
        status=status,
    )


# --- Blocked commenters -----------------------------------------------------------------------


def suggested_range(ip: str | None) -> str:
    """The range a moderator most likely wants: the /24 of an IPv4 address, the /64 of IPv6."""
    if not ip:
        return ""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def blocks(request: HttpRequest) -> HttpResponse:
    """The list of blocks, and the form to add one (prefilled from a queue row's "Block")."""
    _require_moderator(request)
    comment = None
    comment_id = request.GET.get("comment", "") or request.POST.get("comment", "")
    if comment_id.isascii() and comment_id.isdigit() and len(comment_id) < 19:
        comment = Comment.objects.filter(pk=int(comment_id)).select_related("user").first()
    choices = []
    if comment is not None:
        if comment.author_email:
            choices.append(("email", comment.author_email.casefold(), "Email address"))
        if comment.user_id:
            choices.append(("user", str(comment.user_id), f"Account {comment.user}"))
        if comment.ip_address:
            choices.append(("ip", comment.ip_address, "This IP address"))
            choices.append(("ip", suggested_range(comment.ip_address), "The IP range"))
    values = {"kind": request.POST.get("kind", ""), "value": request.POST.get("value", "")}
    values["note"] = request.POST.get("note", "")
    error = ""
    status = 200
    if request.method == "POST":
        try:
            block = services.block_commenter(
                kind=values["kind"],
                value=values["value"],
                moderator=request.user,
                note=values["note"],
            )
        except services.BlockInvalid as invalid:
            error = str(invalid)
            status = 400
        else:
            messages.success(
                request,
                f"Blocked {block.get_kind_display().lower()} {block.value}: their new comments "
                "will go to the trash.",
            )
            return redirect(reverse("comment_moderation:blocks"))
    elif comment is not None and choices:
        values["kind"], values["value"] = choices[-1][0], choices[-1][1]
        if comment.author_email:
            values["kind"], values["value"] = choices[0][0], choices[0][1]
    return render(
        request,
        "publishing/admin/comment_blocks.html",
        {
            "blocks": Block.objects.select_related("created_by"),
            "comment": comment,
            "choices": choices,
            "values": values,
            "kinds": Block.Kind.choices,
            "error": error,
        },
        status=status,
    )


@require_POST
def unblock(request: HttpRequest, pk: int) -> HttpResponse:
    _require_moderator(request)
    if pk <= DB_INT_MAX and services.unblock(block_id=pk, moderator=request.user):
        messages.success(request, "Unblocked.")
    else:
        messages.error(request, "That block was already removed.")
    return redirect(reverse("comment_moderation:blocks"))


# --- Mail that has not gone out ---------------------------------------------------------------


def _retry_failed():
    from broadsheet.comments import outbox

    return getattr(outbox, "retry_failed", None)


def mail(request: HttpRequest) -> HttpResponse:
    """Notification mail still waiting or given up on, with a retry for the failed ones (when
    the outbox offers one)."""
    _require_moderator(request)
    retry = _retry_failed()
    if request.method == "POST":
        if retry is None:
            messages.error(request, "Retrying by hand is not available: the worker retries.")
            return redirect(reverse("comment_moderation:mail"))
        ids = [int(pk) for pk in request.POST.getlist("ids") if pk.isascii() and pk.isdigit()]
        if ids:
            retry(ids)
            messages.success(
                request, f"{len(ids)} message{'s' if len(ids) != 1 else ''} queued again."
            )
        else:
            messages.error(request, "Select at least one message.")
        return redirect(reverse("comment_moderation:mail"))
    rows = OutboxMessage.objects.filter(
        status__in=[
            OutboxMessage.Status.FAILED,
            OutboxMessage.Status.PENDING,
            OutboxMessage.Status.SENDING,
        ]
    ).order_by("-created_at", "-id")
    page = Paginator(rows, 100).get_page(request.GET.get("p"))
    return render(
        request,
        "publishing/admin/comment_mail.html",
        {"page_obj": page, "can_retry": retry is not None},
    )


# --- Personal data: export and erase ----------------------------------------------------------


@never_cache
def personal_data(request: HttpRequest) -> HttpResponse:
    """A moderator exports (JSON) or erases what is stored for an email address. POST only for
    both, so the address never lands in a URL or a log; erasing asks for confirmation."""
    _require_moderator(request)
    email = privacy.normalise(request.POST.get("email", ""))
    action = request.POST.get("action", "")
    context = {"email": email, "error": "", "summary": None, "done": None}
    if request.method == "POST":
        try:
            from django.core.validators import validate_email

            validate_email(email)
        except forms.ValidationError:
            context["error"] = "Enter a valid email address."
            return render(request, "publishing/admin/personal_data.html", context, status=400)
        if action == "export":
            data = privacy.export_personal_data(email)
            response = HttpResponse(
                json.dumps(data, indent=2, ensure_ascii=False),
                content_type="application/json; charset=utf-8",
            )
            safe = "".join(ch if ch.isalnum() else "-" for ch in email)[:60]
            response["Content-Disposition"] = f'attachment; filename="personal-data-{safe}.json"'
            return response
        if action == "erase" and request.POST.get("confirm") == "yes":
            context["done"] = privacy.erase_personal_data(email, moderator=request.user)
        elif action == "erase":
            context["summary"] = privacy.summary(email)
        else:
            context["error"] = "Choose Export or Erase."
    return render(request, "publishing/admin/personal_data.html", context)
