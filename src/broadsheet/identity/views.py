"""Signing in from the comment form, and coming back to it.

``start`` is where the form's icons post to: it keeps what the reader typed, then begins the
sign-in (in the popup the page's script opened, or in the page itself). Every sign-in ends at
``done``, which tells the form (through ``postMessage`` to this site's exact origin, or a
``BroadcastChannel``) and closes the popup, or sends a full-page reader back to the form.
"""

from __future__ import annotations

from urllib.parse import urlencode

from allauth.socialaccount.adapter import get_adapter
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from broadsheet.comments import drafts
from broadsheet.comments.forms import CommentForm
from broadsheet.comments.models import Thread
from broadsheet.comments.views import form_page, no_thread, thread_from, thread_url
from broadsheet.core.net import csrf_passes, is_cross_site

from . import services
from .adapters import is_local_path

STATUSES = ("ok", "error", "cancelled")


def done_url(thread: Thread, *, popup: bool, js: bool) -> str:
    query = urlencode({"thread": thread.pk, "popup": int(popup), "js": int(js)})
    return f"{reverse('identity:done')}?{query}"


def done_url_for_state(state: dict, status: str) -> str | None:
    """Where a failed or cancelled sign-in that began at the comment form goes."""
    next_url = state.get("next") if isinstance(state, dict) else None
    if next_url and is_local_path(next_url) and next_url.startswith(reverse("identity:done")):
        return f"{next_url}&{urlencode({'status': status})}"
    return None


@csrf_exempt  # checked below: without a token the reader is sent to a confirm page instead
@require_POST
def start(request: HttpRequest) -> HttpResponse:
    if is_cross_site(request):
        return HttpResponseForbidden(
            "Forbidden: sign-in can only be started from this site.", content_type="text/plain"
        )
    thread = thread_from(request.POST.get("thread", ""))
    if thread is None:
        return no_thread(request)
    drafts.save(request, thread.pk, request.POST)
    popup = request.POST.get("popup") == "1"
    js = request.POST.get("js") == "1"
    request.session["bs_identity_popup"] = popup
    next_url = done_url(thread, popup=popup, js=js)
    choice = services.choice(request, request.POST.get("identity_provider", ""))

    def again(message: str) -> HttpResponse:
        form = CommentForm(request.POST)
        form.is_valid()
        form.errors.clear()  # only the sign-in problem: the comment itself was not sent yet
        form.add_error(None, message)
        return form_page(request, form=form, thread=thread, status=400)

    if choice is None:
        return again("That way of logging in is not offered here. Your comment is still here.")
    if choice.kind == "site":
        return HttpResponseRedirect(
            f"{reverse('account_login')}?{urlencode({'next': next_url})}", status=303
        )
    if choice.kind == "mastodon":
        from .mastodon import flows

        instance = request.POST.get("mastodon_instance", "")
        if not csrf_passes(request):
            query = urlencode({"instance": instance, "next": next_url})
            return HttpResponseRedirect(f"{reverse('mastodon_login')}?{query}", status=303)
        try:
            return flows.start(request, instance, next_url)
        except flows.InstanceRefused as refused:
            return again(str(refused))
    provider = get_adapter().get_provider(request, choice.key)
    if csrf_passes(request):
        return provider.redirect(request, "login", next_url=next_url)
    # No token (no JavaScript on a cached page): allauth's confirm page has one.
    return HttpResponseRedirect(
        provider.get_login_url(request, process="login", next=next_url), status=303
    )


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """ "Log Out" on the comment form page (without JavaScript): ends the identity and comes
    back to the form with the text, which a plain log-out would lose with the session."""
    from allauth.account.adapter import get_adapter as get_account_adapter

    thread = thread_from(request.POST.get("thread", ""))
    if thread is None:
        return no_thread(request)
    draft = {name: request.POST.get(name, "") for name in ("comment", "author", "email", "url")}
    if request.user.is_authenticated:
        get_account_adapter(request).logout(request)
    drafts.save(request, thread.pk, draft)
    return HttpResponseRedirect(
        f"{reverse('comments:respond', args=[thread.pk])}#respond", status=303
    )


@require_GET
def done(request: HttpRequest) -> HttpResponse:
    thread = thread_from(request.GET.get("thread", ""))
    popup = request.GET.get("popup") == "1"
    status = request.GET.get("status", "ok")
    if status not in STATUSES or (status == "ok" and not request.user.is_authenticated):
        status = "error"
    if thread is None:
        back = "/"
    elif request.GET.get("js") == "1":
        back = thread_url(thread, "respond")  # the page's script brings the text back
    else:
        query = f"?{urlencode({'signin': status})}" if status != "ok" else ""
        back = f"{reverse('comments:respond', args=[thread.pk])}{query}#respond"
    if not popup:
        return HttpResponseRedirect(back, status=303)
    return render(
        request,
        "identity/done.html",
        {"data": {"type": "broadsheet-identity", "status": status}, "back": back},
    )
