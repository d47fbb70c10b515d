"""Facebook Login, the manually built redirect flow (never the JavaScript SDK: the CSP allows
no third-party scripts), with the endpoints taken from the app's settings."""

from __future__ import annotations

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.providers.facebook.constants import GRAPH_API_URL, GRAPH_API_VERSION
from allauth.socialaccount.providers.facebook.flows import compute_appsecret_proof
from allauth.socialaccount.providers.facebook.views import FacebookOAuth2Adapter
from allauth.socialaccount.providers.oauth2.views import OAuth2LoginView
from allauth.utils import get_request_param
from django.http import HttpRequest

from broadsheet.identity.oauth import StrictAdapterMixin, StrictCallbackView

AUTHORIZE_URL = f"https://www.facebook.com/{GRAPH_API_VERSION}/dialog/oauth"


class StrictFacebookOAuth2Adapter(StrictAdapterMixin, FacebookOAuth2Adapter):
    @property
    def authorize_url(self) -> str:
        return self.endpoint("authorize_url", AUTHORIZE_URL)

    @property
    def graph_url(self) -> str:
        return self.endpoint("graph_url", GRAPH_API_URL).rstrip("/")

    @property
    def access_token_url(self) -> str:
        return self.endpoint("access_token_url", f"{self.graph_url}/oauth/access_token")

    def get_access_token_data(self, request: HttpRequest, app, client, pkce_code_verifier=None):
        # Facebook's code exchange is a GET, and allauth's client only puts the PKCE verifier
        # in a POST body: without this the verifier would never be sent.
        code = get_request_param(self.request, "code")
        extra = {"code_verifier": pkce_code_verifier} if pkce_code_verifier else None
        data = client.get_access_token(code, extra_data=extra)
        self.did_fetch_access_token = True
        return data

    def complete_login(self, request: HttpRequest, app, token, **kwargs):
        # allauth's flows.complete_login always asks graph.facebook.com; ask the configured
        # Graph API, with appsecret_proof so a stolen token is useless without our secret.
        provider = self.get_provider()
        params = {
            "fields": ",".join(provider.get_fields()),
            "access_token": token.token,
            "appsecret_proof": compute_appsecret_proof(app, token),
        }
        with get_adapter().get_requests_session() as session:
            response = session.get(f"{self.graph_url}/me", params=params)
            response.raise_for_status()
            extra_data = response.json()
        return provider.sociallogin_from_response(request, extra_data)


oauth2_login = OAuth2LoginView.adapter_view(StrictFacebookOAuth2Adapter)
oauth2_callback = StrictCallbackView.adapter_view(StrictFacebookOAuth2Adapter)
