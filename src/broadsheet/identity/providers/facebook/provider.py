from __future__ import annotations

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.providers.facebook.provider import FacebookProvider
from allauth.socialaccount.providers.oauth2.provider import OAuth2Provider
from django.http import HttpRequest

from broadsheet.identity.oauth import StrictProviderMixin

from .views import StrictFacebookOAuth2Adapter


class StrictFacebookProvider(StrictProviderMixin, FacebookProvider):
    """Only the redirect flow. The JS SDK (``METHOD: js_sdk``) would load a third-party script
    our CSP forbids, and its token login skips state and PKCE, so it cannot be configured."""

    name = "Facebook"
    oauth2_adapter_class = StrictFacebookOAuth2Adapter
    supports_token_authentication = False

    def get_method(self) -> str:
        return "oauth2"

    def get_login_url(self, request: HttpRequest, **kwargs) -> str:
        kwargs.pop("method", None)
        return OAuth2Provider.get_login_url(self, request, **kwargs)

    def media_js(self, request: HttpRequest) -> str:
        return ""

    def verify_token(self, request: HttpRequest, token):
        raise get_adapter().validation_error("invalid_token")


provider_classes = [StrictFacebookProvider]
