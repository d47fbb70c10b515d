"""``/accounts/mastodon/login/``: GET shows the "which server?" form (a link from another site
starts nothing); POST, with Django's CSRF check, starts the sign-in. The callback is per
instance, ``/accounts/mastodon/<instance>/login/callback/``."""

from __future__ import annotations

from allauth.account.internal.decorators import login_not_required
from allauth.account.utils import get_next_redirect_url
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import get_adapter
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from . import flows


def instance_form(
    request: HttpRequest,
    *,
    instance: str = "",
    next_url: str | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "mastodon/login.html",
        {"instance": instance[: flows.MAX_INPUT], "next_url": next_url or "", "error": error},
        status=status,
    )


@login_not_required
@require_http_methods(["GET", "HEAD", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    if not flows.enabled():
        raise Http404("Signing in with Mastodon is not enabled.")
    if request.method != "POST":
        return instance_form(
            request,
            instance=request.GET.get("instance", ""),
            next_url=get_next_redirect_url(request),
        )
    provider = get_adapter(request).get_provider(request, flows.PROVIDER_ID)
    try:
        kwargs = provider.get_redirect_from_request_kwargs(request)  # process=login only
    except ImmediateHttpResponse as refused:
        return refused.response
    return provider.redirect(request, **kwargs)


@login_not_required
@require_GET
def callback(request: HttpRequest, instance: str) -> HttpResponse:
    if not flows.enabled():
        raise Http404("Signing in with Mastodon is not enabled.")
    try:
        return flows.finish(request, instance)
    except ImmediateHttpResponse as response:
        return response.response
