from __future__ import annotations

from allauth.socialaccount.providers.twitter_oauth2.provider import TwitterOAuth2Provider

from broadsheet.identity.oauth import StrictProviderMixin

from .views import StrictTwitterOAuth2Adapter


class StrictXProvider(StrictProviderMixin, TwitterOAuth2Provider):
    """X sends no ``iss`` and no ID token: state, PKCE S256 and the exact redirect URI are
    the whole defence, and all three are enforced by the mixins."""

    name = "X"
    oauth2_adapter_class = StrictTwitterOAuth2Adapter


provider_classes = [StrictXProvider]
