"""A commenter's own comment, within the edit window: edit it or take it down, from the browser
that posted it (the signed commenter cookie) or the account that did. The article page is
shared, so it never carries these links: the session endpoint tells the page's script which
comments are this reader's, and the script adds them. Every response here is private."""

from __future__ import annotations

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from . import cookies, selectors, services
from . import forms as comment_forms
from .models import DB_INT_MAX, Comment
from .views import thread_url


class OwnEditForm(forms.Form):
    text = forms.CharField(label="Comment", widget=forms.Textarea(attrs={"rows": 8}), strip=False)

    def clean_text(self) -> str:
        return comment_forms.clean_text(self.cleaned_data["text"])


def _private(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    response["Cache-Control"] += ", private"
    patch_vary_headers(response, ["Cookie"])
    return response


def _who(request: HttpRequest) -> dict:
    return {"browser_key": cookies.browser_key(request), "user": request.user}


def _denied(request, comment: Comment, denial: services.OwnCommentDenied, text: str = ""):
    """403 with the reason. The comment's text is shown back only to its owner (after the
    window), and what they typed is always given back, so nothing is lost."""
    own = services.is_own_comment(comment, **_who(request))
    response = render(
        request,
        "comments/own/denied.html",
        {
            "message": denial.message,
            "reason": denial.reason,
            "text": text or (comment.text if own else ""),
            "thread": comment.thread,
            "thread_url": thread_url(comment.thread),
        },
        status=403,
    )
    return _private(response)


def _comment_page(comment: Comment, anchor: str = "") -> str:
    """The page of comments that shows it (with pages of comments, not always the article's
    own address), at ``anchor`` (its own by default)."""
    if not url_has_allowed_host_and_scheme(comment.thread.url, None):
        return thread_url(comment.thread, anchor or comment.anchor)
    url = selectors.comment_url(comment).partition("#")[0]
    return f"{url}#{anchor or comment.anchor}"


def _comment(pk: int) -> Comment:
    if pk > DB_INT_MAX:
        raise Http404
    return get_object_or_404(Comment.objects.select_related("thread"), pk=pk)


@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    comment = _comment(pk)
    typed = request.POST.get("text", "") if request.method == "POST" else ""
    try:
        services.check_own_comment(comment, **_who(request))
    except services.OwnCommentDenied as denial:
        return _denied(request, comment, denial, typed)
    form = OwnEditForm(request.POST or None, initial={"text": comment.text})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                comment = services.edit_own_comment(
                    comment=comment, text=form.cleaned_data["text"], **_who(request)
                )
            except services.OwnCommentDenied as denial:
                return _denied(request, comment, denial, typed)
            return _private(HttpResponseRedirect(_comment_page(comment), status=303))
        status = 400
    response = render(
        request,
        "comments/own/edit.html",
        {
            "comment": comment,
            "form": form,
            "until": services.own_edit_until(comment),
            "thread_url": _comment_page(comment),
        },
        status=status,
    )
    return _private(response)


@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    comment = _comment(pk)
    try:
        services.check_own_comment(comment, **_who(request))
    except services.OwnCommentDenied as denial:
        return _denied(request, comment, denial)
    if request.method == "POST":
        try:
            services.delete_own_comment(comment=comment, **_who(request))
        except services.OwnCommentDenied as denial:
            return _denied(request, comment, denial)
        return _private(HttpResponseRedirect(_comment_page(comment, "comments"), status=303))
    response = render(
        request,
        "comments/own/delete.html",
        {
            "comment": comment,
            "until": services.own_edit_until(comment),
            "thread_url": _comment_page(comment),
        },
    )
    return _private(response)


urlpatterns = [
    path("<int:pk>/edit/", edit, name="own_edit"),
    path("<int:pk>/delete/", delete, name="own_delete"),
]
