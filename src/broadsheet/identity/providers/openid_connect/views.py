from __future__ import annotations

from allauth.account.internal.decorators import login_not_required
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.oauth2.views import OAuth2LoginView
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.http import Http404, HttpRequest
from django.urls import reverse

from broadsheet.identity.oauth import (
    IdentityError,
    StrictAdapterMixin,
    StrictCallbackView,
    absolute_url,
    fetch_json,
    refuse_issuer_change,
)


class StrictOIDCAdapter(StrictAdapterMixin, OpenIDConnectOAuth2Adapter):
    @property
    def openid_config(self) -> dict:
        if not hasattr(self, "_openid_config"):
            provider = self.get_provider()
            config = fetch_json(provider.server_url)
            overrides = provider.app.settings.get("openid_configuration_overrides", {})
            # Endpoints may be overridden (a provider behind a proxy); who signs and whose keys
            # count may not.
            config.update({k: v for k, v in overrides.items() if k not in ("issuer", "jwks_uri")})
            # OIDC Discovery 4.3: the document must be about the issuer we were configured with.
            if config.get("issuer", "").rstrip("/") != provider.configured_issuer:
                raise IdentityError(
                    f"discovery names issuer {config.get('issuer')!r}, "
                    f"configured {provider.configured_issuer!r}"
                )
            self._openid_config = config
        return self._openid_config

    def get_callback_url(self, request: HttpRequest, app) -> str:
        return absolute_url(
            reverse("openid_connect_callback", kwargs={"provider_id": self.provider_id})
        )

    def complete_login(self, request: HttpRequest, app, token, **kwargs):
        claims = self.checked_id_token(
            kwargs["response"],
            jwks_url=self.openid_config["jwks_uri"],
            issuer=self.openid_config["issuer"],
            client_id=app.client_id,
        )
        refuse_issuer_change(self.get_provider().sub_id, str(claims["sub"]), claims["iss"])
        data = {"id_token": claims}
        if app.settings.get("fetch_userinfo", True) and self.openid_config.get("userinfo_endpoint"):
            data["userinfo"] = self.userinfo_for(self.profile_url, token.token, claims)
        return self.get_provider().sociallogin_from_response(request, data)


@login_not_required
def login(request: HttpRequest, provider_id: str):
    try:
        return OAuth2LoginView.adapter_view(StrictOIDCAdapter(request, provider_id))(request)
    except SocialApp.DoesNotExist:
        raise Http404 from None


@login_not_required
def callback(request: HttpRequest, provider_id: str):
    try:
        return StrictCallbackView.adapter_view(StrictOIDCAdapter(request, provider_id))(request)
    except SocialApp.DoesNotExist:
        raise Http404 from None
