"""Comment views: parse input, call one service, render. No rules here."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    HttpResponseRedirect,
)
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from broadsheet.core.html import json_for_html
from broadsheet.core.net import client_ip, csrf_passes, is_cross_site

from . import antispam, cookies, drafts, selectors, services
from .conf import settings_for
from .forms import CommentForm
from .identity import Identity, identity_for
from .models import DB_INT_MAX, Comment, Thread


def thread_url(thread: Thread, anchor: str = "") -> str:
    url = thread.url if url_has_allowed_host_and_scheme(thread.url, None) else "/"
    return f"{url}#{anchor}" if anchor else url


def thread_from(value: str) -> Thread | None:
    if value.isascii() and value.isdigit() and int(value) <= DB_INT_MAX:
        return Thread.objects.filter(pk=int(value)).first()
    return None


def no_thread(request: HttpRequest) -> HttpResponse:
    """The article is gone: say so, and give the reader their text to keep."""
    return render(
        request, "comments/no_thread.html", {"text": request.POST.get("comment", "")}, status=404
    )


HIDDEN_FIELDS = ("thread", "comment_parent", "submission_key")


def form_page(
    request, *, form, thread, status, confirm=False, parent=None, notice=""
) -> HttpResponse:
    """The form again, with the reader's text, the reasons, and a fresh token to send it.

    Errors of hidden fields are shown at the top (the reader cannot see those fields), and a
    reply to a comment that cannot be answered becomes a new comment if sent again, so the
    reader is never stuck with text they cannot post.
    """
    get_token(request)
    for name in HIDDEN_FIELDS:
        for error in form.errors.pop(name, []):
            form.add_error(None, error)
    data = form.data.copy()
    if parent is None and data.get("comment_parent", "0") not in ("", "0"):
        data["comment_parent"] = "0"
        form.add_error(None, "If you send it again, it will be posted as a new comment.")
    key = data.get("submission_key", "")
    if not (key.isascii() and key.isalnum() and len(key) <= 64):
        data["submission_key"] = secrets.token_hex(16)
    form.data = data
    response = render(
        request,
        "comments/form_page.html",
        {
            "form": form,
            "thread": thread,
            "confirm": confirm,
            "reply_to": parent,
            "thread_url": thread_url(thread),
            "identity": identity_for(request),
            "notice": notice,
            "form_token": antispam.form_token_for(
                thread, form.data.get("form_token", ""), typed=confirm
            ),
        },
        status=status,
    )
    add_never_cache_headers(response)
    return response


def _shown_parent(request: HttpRequest, thread: Thread) -> Comment | None:
    """The visible comment a form page says the reader is answering. Only the pages that show
    the form again need it: an accepted comment's parent is the service's business."""
    parent_id = request.POST.get("comment_parent", "")
    if not (parent_id.isascii() and parent_id.isdigit()) or not 0 < int(parent_id) <= DB_INT_MAX:
        return None
    return Comment.objects.visible().filter(pk=int(parent_id), thread=thread).first()


@csrf_exempt  # checked below, so a reader without the token gets their text back, not a 403 page
@require_POST
def post_comment(request: HttpRequest) -> HttpResponse:
    identity = identity_for(request)
    thread = thread_from(request.POST.get("thread", ""))
    if thread is None:
        return no_thread(request)
    # Name and email are asked of guests unless the site's discussion settings say otherwise.
    require_identity = identity is None and settings_for(thread).require_name_email
    form = CommentForm(request.POST, require_identity=require_identity)

    if not csrf_passes(request):
        if is_cross_site(request):
            return HttpResponseForbidden(
                "Forbidden: comments can only be posted from this site.", content_type="text/plain"
            )
        # Same site without a token (no JavaScript, or an expired token): confirm once, with
        # the details this browser commented with before filled in.
        data = request.POST.copy()
        remembered = cookies.remembered_guest(request) or {}
        for field, key in (("author", "name"), ("email", "email"), ("url", "url")):
            if not data.get(field) and remembered.get(key):
                data[field] = remembered[key]
        form = CommentForm(data, require_identity=require_identity)
        form.is_valid()
        return form_page(
            request,
            form=form,
            thread=thread,
            status=403,
            confirm=True,
            parent=_shown_parent(request, thread),
        )

    if not form.is_valid():
        return form_page(
            request, form=form, thread=thread, status=400, parent=_shown_parent(request, thread)
        )

    data = form.cleaned_data
    user = request.user if request.user.is_authenticated else None
    token = cookies.commenter_token(request) or cookies.new_browser_token()
    browser_key = cookies.key_for(token)
    try:
        result = services.post_comment(
            thread=thread,
            text=data["comment"],
            author_name=identity.name if identity else data["author"],
            author_email=user.email if user else data["email"],
            author_url=(identity.profile_url or data["url"]) if identity else data["url"],
            identity=identity,
            parent_id=data["comment_parent"] or None,
            user=user,
            browser_key=browser_key,
            submission_key=services.submission_fingerprint(
                submission_key=data["submission_key"],
                # The CSRF cookie is there from the first visit, before any commenter cookie,
                # so a first-time commenter's double click is recognised too.
                browser_key=request.COOKIES.get(settings.CSRF_COOKIE_NAME) or browser_key,
                thread=thread,
                parent_id=data["comment_parent"],
                text=data["comment"],
            ),
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
            is_moderator=bool(user and user.has_perm("comments.moderate_comment")),
            honeypot=data["website2"],
            form_token=data["form_token"],
            referrer=request.headers.get("Referer", "")[:500],
            subscribe_thread=data["subscribe_thread"],
            subscribe_posts=data["subscribe_posts"],
        )
    except services.CommentRejected as rejection:
        form.add_error(
            rejection.field if rejection.field in form.fields else None, rejection.message
        )
        response = form_page(
            request,
            form=form,
            thread=thread,
            status=rejection.status,
            parent=_shown_parent(request, thread),
        )
        if rejection.retry_after:
            response["Retry-After"] = str(rejection.retry_after)
        return response

    comment = result.comment
    drafts.discard(request, thread.pk)
    # The comments page that shows it (with pages of comments, not always the article's own).
    target = (
        selectors.comment_url(comment)
        if url_has_allowed_host_and_scheme(thread.url, None)
        else thread_url(thread, comment.anchor)
    )
    response = HttpResponseRedirect(target, status=303)
    cookies.set_commenter(response, token)
    if user is None:  # what this reader typed, never what a stored row says
        cookies.remember_guest(response, name=data["author"], email=data["email"], url=data["url"])
    if comment.status == Comment.Status.PENDING:
        cookies.add_pending(request, response, comment.pk)
    return response


@require_GET
def session(request: HttpRequest) -> HttpResponse:
    """The personal parts of an article page, fetched by the page's script: a CSRF token, who
    the reader is (and how they signed in), the details this browser commented with last time,
    and text kept while the reader signed in elsewhere (given once)."""
    identity = identity_for(request)
    thread_id = request.GET.get("thread", "")
    draft = (
        drafts.discard(request, int(thread_id))
        if thread_id.isascii() and thread_id.isdigit() and len(thread_id) < 19
        else None
    )
    thread = thread_from(thread_id)
    data = {
        "csrf_token": get_token(request),
        "user": _identity_json(identity),
        "guest": cookies.remembered_guest(request) if identity is None else None,
        "submission_key": secrets.token_hex(16),
        "form_token": antispam.issue_form_token(thread),
        "logout_url": reverse("account_logout") if identity else None,
        "draft": draft,
        # This reader's comments they may still edit or delete (ids and until when): the page
        # is the same for everyone, so its script adds the links.
        "own": [
            {
                "id": pk,
                "until": until,
                "edit_url": reverse("comments:own_edit", args=[pk]),
                "delete_url": reverse("comments:own_delete", args=[pk]),
            }
            for pk, until in (
                services.editable_own_comments(
                    thread=thread, browser_key=cookies.browser_key(request), user=request.user
                ).items()
                if thread is not None
                else []
            )
        ],
    }
    response = HttpResponse(json_for_html(data), content_type="application/json")
    add_never_cache_headers(response)
    response["Cache-Control"] += ", private"
    patch_vary_headers(response, ["Cookie"])
    return response


def _identity_json(identity: Identity | None) -> dict | None:
    if identity is None:
        return None
    return {
        "name": identity.name,
        "kind": identity.kind,
        "provider": identity.provider_name if identity.kind == Identity.PROVIDER else None,
        "avatar_url": identity.avatar_url or None,
        "profile_url": identity.profile_url or None,
    }


@require_GET
def respond(request: HttpRequest, thread_id: int) -> HttpResponse:
    """The comment form of one article on a page of its own, with the reader's kept text: where
    a sign-in without JavaScript comes back to (the article page itself is the same for every
    reader, so it cannot carry the text)."""
    thread = get_object_or_404(Thread, pk=thread_id)
    draft = {**(drafts.get(request, thread.pk) or {}), "comment_parent": "0"}
    form = CommentForm(
        initial={**draft, "submission_key": secrets.token_hex(16)},
        require_identity=identity_for(request) is None and settings_for(thread).require_name_email,
    )
    form.data = {**draft, "submission_key": secrets.token_hex(16)}
    notice = {
        "error": "Logging in did not work. Your comment is still here: try again, "
        "or fill in your details below.",
        "cancelled": "Logging in was cancelled. Your comment is still here.",
    }.get(request.GET.get("signin", ""), "")
    return form_page(request, form=form, thread=thread, status=200, notice=notice)


@require_GET
def permalink(request: HttpRequest, pk: int) -> HttpResponseRedirect:
    """To the comment on the page of comments that shows it (the page of its top-level
    comment, when the comments are broken into pages)."""
    from .selectors import comment_url

    comment = get_object_or_404(Comment.objects.visible().select_related("thread"), pk=pk)
    if not comment.thread.url:
        raise Http404
    if not url_has_allowed_host_and_scheme(comment.thread.url, None):
        return HttpResponseRedirect(thread_url(comment.thread, comment.anchor))
    return HttpResponseRedirect(comment_url(comment))
