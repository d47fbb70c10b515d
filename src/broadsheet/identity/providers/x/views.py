"""X (OAuth 2.0 with PKCE): allauth's adapter with the endpoints taken from the app's
settings, so one deployment (or one test) can point them elsewhere."""

from __future__ import annotations

from allauth.socialaccount.providers.oauth2.views import OAuth2LoginView
from allauth.socialaccount.providers.twitter_oauth2.views import TwitterOAuth2Adapter

from broadsheet.identity.oauth import StrictAdapterMixin, StrictCallbackView

AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
ACCESS_TOKEN_URL = "https://api.x.com/2/oauth2/token"  # noqa: S105 (a URL, not a secret)
PROFILE_URL = "https://api.x.com/2/users/me"


class StrictTwitterOAuth2Adapter(StrictAdapterMixin, TwitterOAuth2Adapter):
    """Client authentication stays HTTP Basic (``basic_auth``), as X documents for
    confidential clients."""

    @property
    def authorize_url(self) -> str:
        return self.endpoint("authorize_url", AUTHORIZE_URL)

    @property
    def access_token_url(self) -> str:
        return self.endpoint("access_token_url", ACCESS_TOKEN_URL)

    @property
    def profile_url(self) -> str:
        return self.endpoint("profile_url", PROFILE_URL)


oauth2_login = OAuth2LoginView.adapter_view(StrictTwitterOAuth2Adapter)
oauth2_callback = StrictCallbackView.adapter_view(StrictTwitterOAuth2Adapter)
