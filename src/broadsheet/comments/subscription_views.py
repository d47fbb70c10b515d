"""Pages behind the links in subscription mail, and a signed-in reader's own subscriptions.

Mounted at ``/comments/subscriptions/`` (namespace ``comments``):

- ``confirm/<token>/``: GET shows a page with a button; its POST (CSRF) confirms. Mail scanners
  fetch links, so a GET never confirms anything.
- ``unsubscribe/<token>/``: GET shows a page with a button and changes nothing; POST ends exactly
  that subscription. The POST needs no cookie and no CSRF token (RFC 8058 one-click: the mail
  client posts ``List-Unsubscribe=One-Click`` with no cookies); the signed token in the address
  is the only credential, and all it can do is end one subscription.
- ``""`` (login required): the reader's subscriptions, by account and by verified address, each
  with an unsubscribe button (POST + CSRF) to ``<id>/unsubscribe/``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from . import subscriptions
from .models import Subscription

TEMPLATES = "comments/subscriptions/"


def _page(request, name: str, context: dict, status: int = 200) -> HttpResponse:
    response = TemplateResponse(request, TEMPLATES + name, context, status=status)
    response["X-Robots-Tag"] = "noindex"
    # The token is in the address: never sent to another site (and "no-referrer" would make
    # the browser send "Origin: null" with the form, which CSRF checking refuses).
    response["Referrer-Policy"] = "same-origin"
    return response


def _invalid(request, *, expired: bool = False) -> HttpResponse:
    return _page(request, "invalid.html", {"expired": expired}, status=410 if expired else 400)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscription = subscriptions.read_confirm_token(token)
    except subscriptions.ExpiredToken:
        return _invalid(request, expired=True)
    except subscriptions.InvalidToken:
        return _invalid(request)
    if subscription.unsubscribed_at is not None:
        return _page(request, "confirm.html", {"subscription": subscription, "state": "cancelled"})
    if subscription.confirmed_at is not None:
        return _page(request, "confirm.html", {"subscription": subscription, "state": "done"})
    if request.method == "POST":
        subscriptions.confirm(subscription)
        return _page(request, "confirm.html", {"subscription": subscription, "state": "done"})
    return _page(request, "confirm.html", {"subscription": subscription, "state": "ask"})


@csrf_exempt  # RFC 8058 one-click: the mail client's POST has no cookie; the token decides
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscription = subscriptions.read_unsubscribe_token(token)
    except subscriptions.InvalidToken:
        return _invalid(request)
    if request.method == "POST":
        subscriptions.unsubscribe(subscription)
        return _page(request, "unsubscribe.html", {"subscription": subscription, "state": "done"})
    state = "done" if subscription.unsubscribed_at is not None else "ask"
    return _page(request, "unsubscribe.html", {"subscription": subscription, "state": state})


def owned_by(user):
    """Subscriptions of this account: made while signed in, or for one of its verified
    addresses."""
    from allauth.account.models import EmailAddress

    emails = [
        subscriptions.normalise_email(email)
        for email in EmailAddress.objects.filter(user=user, verified=True).values_list(
            "email", flat=True
        )
    ]
    return Subscription.objects.filter(Q(user=user) | Q(email__in=emails)).select_related("thread")


@never_cache
@login_required
def index(request: HttpRequest) -> HttpResponse:
    mine = owned_by(request.user).filter(unsubscribed_at__isnull=True)
    return _page(
        request,
        "index.html",
        {
            "thread_subscriptions": [s for s in mine if s.kind == Subscription.Kind.THREAD],
            "posts_subscriptions": [s for s in mine if s.kind == Subscription.Kind.POSTS],
        },
    )


@require_POST
@login_required
def unsubscribe_own(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(owned_by(request.user), pk=pk)
    if subscriptions.unsubscribe(subscription):
        what = (
            f"follow-up comments on “{subscription.thread}”"
            if subscription.thread_id
            else "new posts"
        )
        messages.success(request, f"You will no longer get email about {what}.")
    return redirect(reverse("comments:subscriptions"))


urlpatterns = [
    path("", index, name="subscriptions"),
    path("<int:pk>/unsubscribe/", unsubscribe_own, name="subscription_unsubscribe_own"),
    path("confirm/<str:token>/", confirm, name="subscription_confirm"),
    path("unsubscribe/<str:token>/", unsubscribe, name="subscription_unsubscribe"),
]
