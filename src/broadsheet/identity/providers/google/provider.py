from __future__ import annotations

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.providers.google.provider import GoogleProvider
from django.http import HttpRequest

from broadsheet.identity.oauth import StrictProviderMixin, oidc_nonce_state

from .views import ISSUER, StrictGoogleOAuth2Adapter


class StrictGoogleProvider(StrictProviderMixin, GoogleProvider):
    """Sign in with Google through the code flow only, as an OpenID provider: ``openid`` is
    always asked for, each flow sends a fresh ``nonce`` that the ID token must carry back, and
    an ``iss`` in the authorization response must be Google's. One Tap / token login (which
    has no nonce bound to this browser) is switched off."""

    name = "Google"
    oauth2_adapter_class = StrictGoogleOAuth2Adapter
    supports_token_authentication = False

    def expected_issuer(self) -> str:
        return ISSUER

    def flow_state(self, request: HttpRequest) -> tuple[dict, dict]:
        params, state = super().flow_state(request)
        nonce_params, nonce_state = oidc_nonce_state()
        return {**params, **nonce_params}, {**state, **nonce_state}

    def get_scope(self) -> list[str]:
        scope = super().get_scope()
        return scope if "openid" in scope else ["openid", *scope]

    def verify_token(self, request: HttpRequest, token):
        raise get_adapter().validation_error("invalid_token")


provider_classes = [StrictGoogleProvider]
