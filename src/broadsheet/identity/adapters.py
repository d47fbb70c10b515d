"""allauth adapters: where Broadsheet's sign-in rules live."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.providers.base.constants import AuthError
from django.conf import settings
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

logger = logging.getLogger(__name__)
CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def is_local_path(url: str | None) -> bool:
    """Only a path on this site: "/2017/11/20/slug/#respond". Never an absolute URL, not even
    to this host, never "//host", "/\\host", or anything with control characters."""
    if not url or not isinstance(url, str) or len(url) > 2000:
        return False
    if not url.startswith("/") or url.startswith("//") or CONTROL.search(url):
        return False
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return False
    return url_has_allowed_host_and_scheme(url, allowed_hosts=None)


def on_base_url(url: str) -> str:
    """The same link on the site's canonical address: links in mail never take their host
    from the request's Host header."""
    parts = urlsplit(url)
    if not parts.scheme:
        return url
    base = urlsplit(settings.BROADSHEET_BASE_URL)
    return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, parts.fragment))


class AccountAdapter(DefaultAccountAdapter):
    def is_safe_url(self, url: str | None) -> bool:
        return is_local_path(url)

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        context = {
            key: on_base_url(value) if isinstance(value, str) and key.endswith("_url") else value
            for key, value in context.items()
        }
        super().send_mail(template_prefix, email, context)

    def get_email_confirmation_url(self, request, emailconfirmation) -> str:
        return on_base_url(super().get_email_confirmation_url(request, emailconfirmation))

    def get_reset_password_from_key_url(self, key: str) -> str:
        return on_base_url(super().get_reset_password_from_key_url(key))

    def get_client_ip(self, request: HttpRequest) -> str:
        """For the login rate limits: the reader's address, believing X-Forwarded-For only from
        BROADSHEET_TRUSTED_PROXIES (the same rule as comments), so readers behind the site's
        own proxy are not counted as one, and nobody can forge their way out of a limit."""
        from broadsheet.core.net import client_ip

        return client_ip(request) or super().get_client_ip(request)

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return getattr(settings, "BROADSHEET_OPEN_SIGNUP", True)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def list_providers(self, request: HttpRequest):
        providers = super().list_providers(request)
        return [p for p in providers if p.app is not None or _enabled_without_app(p.id)]

    def is_email_verified(self, provider, email) -> bool:
        # A provider's word that an address is verified is never enough to link accounts.
        return False

    def populate_user(self, request, sociallogin, data):
        # The provider's email address is not copied: no account is ever found, linked or
        # blocked by an address the reader did not verify with us.
        user = super().populate_user(request, sociallogin, {**data, "email": None})
        sociallogin.email_addresses = []
        return user

    def pre_social_login(self, request: HttpRequest, sociallogin) -> None:
        # (The issuer check runs earlier, in oauth.refuse_issuer_change: allauth has already
        # saved the new answer over the stored account by the time this hook runs.)
        if sociallogin.state.get("process", "login") != "login":
            from .oauth import IdentityError

            raise ImmediateHttpResponse(
                render_authentication_error(
                    request,
                    sociallogin.account.get_provider(request),
                    exception=IdentityError("connecting accounts is not offered"),
                    extra_context={"state": sociallogin.state},
                )
            )

    def on_authentication_error(
        self, request, provider, error=None, exception=None, extra_context=None
    ) -> None:
        """A failed or cancelled sign-in goes back to the comment form (or closes the popup)
        when it started there; the reader's text is waiting."""
        from .views import done_url_for_state

        state = (extra_context or {}).get("state") or {}
        status = "cancelled" if error == AuthError.CANCELLED else "error"
        if status == "error":  # for the operator: why a reader could not sign in
            logger.warning("Sign-in with %s refused: %s", provider, exception or error)
        url = done_url_for_state(state, status)
        if url:
            raise ImmediateHttpResponse(HttpResponseRedirect(url))
        raise ImmediateHttpResponse(
            render(
                request,
                "socialaccount/authentication_error.html",
                {
                    "status": status,
                    "provider": provider,
                    "popup": _popup_flag(request),
                    "popup_data": {"type": "broadsheet-identity", "status": status},
                },
                status=400 if status == "error" else 200,
            )
        )


def _popup_flag(request) -> bool:
    return bool(request.session.get("bs_identity_popup"))


def _enabled_without_app(provider_id: str) -> bool:
    return bool(settings.SOCIALACCOUNT_PROVIDERS.get(provider_id, {}).get("ENABLED"))
