"""The moderation queue in the Wagtail admin. The rules are the comments app's services; this
module only lists, filters and hands moderators' decisions to them."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from broadsheet.comments import forms as comment_forms
from broadsheet.comments import services
from broadsheet.comments.models import Comment, Thread

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


def queue(request: HttpRequest) -> HttpResponse:
    _require_moderator(request)
    status = request.GET.get("status", "pending")
    if status not in dict(STATUS_TABS):
        status = "pending"
    comments = Comment.objects.select_related("thread", "parent").order_by("-created_at", "-id")
    if status != "all":
        comments = comments.filter(status=status)
    thread_id = request.GET.get("thread", "")
    if thread_id.isascii() and thread_id.isdigit():
        comments = comments.filter(thread_id=int(thread_id))
    query = request.GET.get("q", "").strip()
    if query:
        comments = comments.search(query)
    page = Paginator(comments, 50).get_page(request.GET.get("p"))
    counts = Comment.objects.status_counts()
    counts["all"] = sum(counts.values())
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
    comment = get_object_or_404(Comment.objects.select_related("thread"), pk=pk)
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
        {"comment": comment, "form": form, "next": request.GET.get("next", "")},
    )
