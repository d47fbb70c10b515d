"""Google as an OpenID provider: the ID token from the token endpoint is always checked
(signature against Google's JWKS, issuer, audience, expiry and our nonce); allauth skips the
signature for tokens from the token endpoint."""

from __future__ import annotations

from allauth.socialaccount.providers.google.views import GoogleOAuth2Adapter
from allauth.socialaccount.providers.oauth2.views import OAuth2LoginView
from django.http import HttpRequest

from broadsheet.identity.oauth import (
    StrictAdapterMixin,
    StrictCallbackView,
)

ISSUER = "https://accounts.google.com"
# Google documents both forms for the ``iss`` claim of its ID tokens ("Validating an ID
# token": https://accounts.google.com or accounts.google.com).
ID_TOKEN_ISSUERS = (ISSUER, "accounts.google.com")
AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
ACCESS_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, not a secret)
JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"
USERINFO_URL = "https://openidconnect.googleapis.com/v1/userinfo"


class StrictGoogleOAuth2Adapter(StrictAdapterMixin, GoogleOAuth2Adapter):
    @property
    def authorize_url(self) -> str:
        return self.endpoint("authorize_url", AUTHORIZE_URL)

    @property
    def access_token_url(self) -> str:
        return self.endpoint("access_token_url", ACCESS_TOKEN_URL)

    @property
    def jwks_url(self) -> str:
        return self.endpoint("jwks_url", JWKS_URL)

    @property
    def identity_url(self) -> str:
        return self.endpoint("userinfo_url", USERINFO_URL)

    def complete_login(self, request: HttpRequest, app, token, **kwargs):
        claims = self.checked_id_token(
            kwargs["response"],
            jwks_url=self.jwks_url,
            issuer=ID_TOKEN_ISSUERS,
            client_id=app.client_id,
        )
        # The account is keyed by (issuer, sub); one spelling of Google's issuer.
        data = {**claims, "bs_issuer": ISSUER}
        if app.settings.get("fetch_userinfo") and "picture" not in data:
            userinfo = self.userinfo_for(self.identity_url, token.token, claims)
            if userinfo.get("picture"):
                data["picture"] = userinfo["picture"]
        return self.get_provider().sociallogin_from_response(request, data)


oauth2_login = OAuth2LoginView.adapter_view(StrictGoogleOAuth2Adapter)
oauth2_callback = StrictCallbackView.adapter_view(StrictGoogleOAuth2Adapter)
