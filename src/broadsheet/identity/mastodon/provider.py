"""Mastodon: any instance a reader names, with an OAuth client registered per instance."""

from __future__ import annotations

from allauth.socialaccount.providers.base import ProviderAccount
from allauth.socialaccount.providers.base.constants import AuthProcess
from allauth.socialaccount.providers.oauth2.provider import OAuth2Provider
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import reverse

from broadsheet.identity.oauth import StrictProviderMixin


def _web_url(value, *, https_only: bool) -> str | None:
    if not isinstance(value, str) or len(value) > 500:
        return None
    if value.startswith("https://") or (not https_only and value.startswith("http://")):
        return value
    return None


class MastodonAccount(ProviderAccount):
    def get_avatar_url(self) -> str | None:
        return _web_url(self.account.extra_data.get("avatar"), https_only=True)

    def get_profile_url(self) -> str | None:
        return _web_url(self.account.extra_data.get("url"), https_only=False)

    def to_str(self) -> str:
        data = self.account.extra_data
        acct, instance = data.get("acct"), data.get("bs_instance")
        if acct and instance and "@" not in acct:
            return f"@{acct}@{instance}"
        return f"@{acct}" if acct else super().to_str()


class MastodonProvider(StrictProviderMixin, OAuth2Provider):
    """One provider for every instance (``uses_apps = False``: one "Mastodon" icon, and
    ``SocialAccount.provider == "mastodon"``). The instance is part of the account's uid, so
    ``123@a.example`` and ``123@b.example`` are different people."""

    id = "mastodon"
    name = "Mastodon"
    uses_apps = False
    pkce_enabled_default = True
    account_class = MastodonAccount

    def get_callback_url(self, instance: str = "") -> str:
        return reverse("mastodon_callback", kwargs={"instance": instance})

    def get_auth_params(self) -> dict:
        return {}

    def get_default_scope(self) -> list[str]:
        return ["profile"]

    def get_scope(self) -> list[str]:
        return self.get_default_scope()

    def expected_issuer(self) -> str | None:
        return None  # per instance: kept in each flow's state (flows.start)

    def get_redirect_from_request_kwargs(self, request: HttpRequest) -> dict:
        kwargs = super().get_redirect_from_request_kwargs(request)
        kwargs["instance"] = request.POST.get("instance", "")
        return kwargs

    def redirect(
        self, request: HttpRequest, process, next_url=None, data=None, instance: str = "", **kwargs
    ) -> HttpResponse:
        from . import flows, views

        if process != AuthProcess.LOGIN:
            return HttpResponseBadRequest("Only signing in is possible here.")
        try:
            return flows.start(request, instance, next_url)
        except flows.InstanceRefused as refused:
            return views.instance_form(
                request, instance=instance, next_url=next_url, error=str(refused), status=400
            )

    def extract_uid(self, data: dict) -> str:
        return f"{data['id']}@{data['bs_instance']}"

    def extract_common_fields(self, data: dict) -> dict:
        name = (data.get("display_name") or "").strip() or data.get("username") or ""
        return {"name": name[:150], "username": (data.get("acct") or "")[:150]}

    def extract_email_addresses(self, data: dict) -> list:
        return []  # Mastodon's API has no email address


provider_classes = [MastodonProvider]
