"""OpenID Connect, configured by issuer URL, with the ID token fully checked."""

from __future__ import annotations

from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider

from broadsheet.identity.oauth import StrictProviderMixin, oidc_nonce_state

from .views import StrictOIDCAdapter


class StrictOIDCProvider(StrictProviderMixin, OpenIDConnectProvider):
    oauth2_adapter_class = StrictOIDCAdapter
    supports_token_authentication = False  # only the code flow, where we hold the nonce

    @property
    def configured_issuer(self) -> str:
        return self.app.settings["server_url"].split("/.well-known/")[0].rstrip("/")

    def get_oauth2_adapter(self, request):
        # One adapter per provider object, so discovery is fetched once per sign-in start.
        if getattr(self, "_adapter", None) is None:
            self._adapter = super().get_oauth2_adapter(request)
        return self._adapter

    def flow_state(self, request):
        config = self.get_oauth2_adapter(request).openid_config
        params, state = oidc_nonce_state()
        state.update(
            issuer=config["issuer"],
            iss_required=bool(config.get("authorization_response_iss_parameter_supported")),
        )
        return params, state

    def extract_uid(self, data):
        # The subject of the checked ID token; never a configurable, mutable claim.
        return str(data["id_token"]["sub"])


provider_classes = [StrictOIDCProvider]
