"""OAuth 2.0 and OpenID Connect by the book (RFC 9700, RFC 9207, OIDC Core), on top of
allauth's providers.

allauth 65.22 binds ``state`` to the browser session and to the provider, consumes it on use,
and does PKCE. What it leaves to us, and this module adds to every provider Broadsheet offers:

- PKCE S256 always, whatever the configuration says;
- nothing from the login request reaches the authorization request (allauth merges the
  ``scope`` and ``auth_params`` query parameters, which can override ``redirect_uri``/``state``);
  only ``process=login`` is accepted (no account "connect" started by a link);
- the redirect URI is built from ``BROADSHEET_BASE_URL``, never from the request's Host, so it is
  exactly the registered one;
- the authorization response's ``iss`` (RFC 9207) is compared with the issuer of the flow the
  ``state`` belongs to before any code is exchanged (mix-up defence), and required when the
  server says it sends one;
- ID tokens are always signature-checked against the issuer's keys (allauth skips this for
  tokens from the token endpoint, so ``alg: none`` would pass), with a fixed list of asymmetric
  algorithms, and ``iss``, ``aud`` (exactly our client), ``exp``/``iat``, ``nonce`` and ``sub``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection
from typing import Any

import jwt
import requests
from allauth.account.utils import get_next_redirect_url
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.providers.base.constants import AuthProcess
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.utils import generate_code_challenge
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView
from allauth.utils import get_request_param
from django.conf import settings
from django.http import HttpRequest, HttpResponseBadRequest

# Parameters the authorization request sets itself; configuration may not override them.
RESERVED_AUTH_PARAMS = frozenset(
    {
        "client_id",
        "redirect_uri",
        "response_type",
        "response_mode",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "request",
        "request_uri",
    }
)
# Asymmetric algorithms only: an HS256 token "signed" with the public key must not pass.
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
CLOCK_LEEWAY = 60  # seconds


class IdentityError(OAuth2Error):
    """A response from a provider that Broadsheet refuses, with the reason in the log."""


def absolute_url(path: str) -> str:
    return settings.BROADSHEET_BASE_URL + path


class StrictProviderMixin:
    """For a subclass of an allauth ``OAuth2Provider``."""

    def get_pkce_params(self) -> dict:
        return generate_code_challenge()  # S256, whatever OAUTH_PKCE_ENABLED says

    def get_auth_params(self) -> dict:
        params = super().get_auth_params()
        return {k: v for k, v in params.items() if k not in RESERVED_AUTH_PARAMS}

    def get_redirect_from_request_kwargs(self, request: HttpRequest) -> dict:
        process = get_request_param(request, "process") or AuthProcess.LOGIN
        if process != AuthProcess.LOGIN:
            raise ImmediateHttpResponse(
                HttpResponseBadRequest(
                    "Only signing in is possible here.", content_type="text/plain"
                )
            )
        kwargs: dict[str, Any] = {"process": AuthProcess.LOGIN}
        next_url = get_next_redirect_url(request)  # checked by AccountAdapter.is_safe_url
        if next_url:
            kwargs["next_url"] = next_url
        return kwargs

    def flow_state(self, request: HttpRequest) -> tuple[dict, dict]:
        """(extra authorization parameters, extra state to stash) for one flow. The state
        records the issuer this flow expects an answer from."""
        issuer = self.expected_issuer()
        return {}, {"issuer": issuer, "iss_required": self.issuer_parameter_required()}

    def expected_issuer(self) -> str | None:
        return self.app.settings.get("issuer") if self.app else None

    def issuer_parameter_required(self) -> bool:
        return bool(self.app and self.app.settings.get("iss_required"))

    def redirect(self, request: HttpRequest, process, next_url=None, data=None, **kwargs):
        if process != AuthProcess.LOGIN:
            return HttpResponseBadRequest("Only signing in is possible here.")
        kwargs.pop("scope", None)
        kwargs.pop("auth_params", None)
        try:
            extra_params, extra_state = self.flow_state(request)
        except (OAuth2Error, requests.RequestException, KeyError, ValueError) as error:
            # Discovery failed: the provider is down or misconfigured.
            return render_authentication_error(request, self, exception=error)
        auth_params = {**self.get_auth_params(), **extra_params}
        return super().redirect(
            request,
            process,
            next_url,
            data,
            auth_params=auth_params,
            scope=self.get_scope(),
            **extra_state,
            **kwargs,
        )


class StrictAdapterMixin:
    """For a subclass of an allauth ``OAuth2Adapter``. ``state`` is set by the callback view
    before any request to the provider."""

    state: dict | None = None

    def endpoint(self, name: str, default: str) -> str:
        """A provider URL from the app's settings (another region, a proxy, a test's fake)."""
        return self.get_provider().app.settings.get(name) or default

    def get_callback_url(self, request: HttpRequest, app) -> str:
        return absolute_url(self.get_provider().get_callback_url())

    def checked_id_token(self, response: dict, *, jwks_url: str, issuer, client_id: str) -> dict:
        """The token response's ID token, every check done, with this flow's nonce."""
        id_token = response.get("id_token")
        if not id_token:
            raise IdentityError("the token response has no ID token")
        return verify_id_token(
            id_token,
            jwks_url=jwks_url,
            issuer=issuer,
            client_id=client_id,
            nonce=(self.state or {}).get("nonce"),
        )

    def userinfo_for(self, url: str, access_token: str, claims: dict) -> dict:
        """Userinfo, which must be about the ID token's subject (OIDC Core 5.3.2)."""
        userinfo = fetch_json(url, headers={"Authorization": f"Bearer {access_token}"})
        if str(userinfo.get("sub")) != str(claims["sub"]):
            raise IdentityError("userinfo is about another subject than the ID token")
        return userinfo


class StrictCallbackView(OAuth2CallbackView):
    def _get_state(self, request: HttpRequest, provider):
        state, response = super()._get_state(request, provider)
        if response is not None or state is None:
            return state, response
        problem = response_issuer_problem(request, state)
        if problem:
            return None, render_authentication_error(
                request,
                provider,
                exception=IdentityError(problem),
                extra_context={"state": state, "callback_view": self},
            )
        try:
            self.adapter.get_client(request, provider.app)  # resolves discovery now, inside the
        except (OAuth2Error, requests.RequestException) as error:  # error page, not a 500
            return None, render_authentication_error(
                request,
                provider,
                exception=error,
                extra_context={"state": state, "callback_view": self},
            )
        self.adapter.state = state
        return state, None


def response_issuer_problem(request: HttpRequest, state: dict) -> str | None:
    """RFC 9207: the ``iss`` of the authorization response must be the issuer this flow was
    started with; a server that says it sends ``iss`` must send it."""
    received = request.GET.get("iss")
    expected = state.get("issuer")
    if received is not None:
        if not expected:
            return f"unexpected issuer {received!r} in the response"
        if not secrets.compare_digest(received.encode(), expected.encode()):
            return f"the response came from {received!r}, but this sign-in began at {expected!r}"
    elif expected and state.get("iss_required"):
        return "the response carries no issuer, but the server promised one (RFC 9207)"
    return None


def fetch_json(url: str, **kwargs) -> dict:
    with get_adapter().get_requests_session() as session:
        response = session.get(url, **kwargs)
        response.raise_for_status()
        data = response.json()
    if not isinstance(data, dict):
        raise IdentityError(f"{url} did not return a JSON object")
    return data


def signing_key(jwks: dict, header: dict):
    alg = header.get("alg")
    if alg not in ID_TOKEN_ALGORITHMS:
        raise IdentityError(f"ID token algorithm {alg!r} is not accepted")
    kid = header.get("kid")
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("use", "sig") == "sig"]
    if kid is not None:
        keys = [k for k in keys if k.get("kid") == kid]
    if len(keys) != 1:
        raise IdentityError(f"no single signing key {kid!r} in the issuer's key set")
    jwk = keys[0]
    if jwk.get("alg", alg) != alg:
        raise IdentityError(f"key {kid!r} is for {jwk.get('alg')!r}, not {alg!r}")
    return jwt.PyJWK.from_json(json.dumps({**jwk, "alg": alg})).key


def verify_id_token(
    token: str,
    *,
    jwks_url: str,
    issuer: str | Collection[str],
    client_id: str,
    nonce: str | None,
) -> dict:
    """Every check of OIDC Core 3.1.3.7 that applies to a confidential code-flow client."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in ID_TOKEN_ALGORITHMS:  # before any request for keys
            raise IdentityError(f"ID token algorithm {header.get('alg')!r} is not accepted")
        key = signing_key(fetch_json(jwks_url), header)
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[header["alg"]],
            audience=client_id,
            issuer=issuer,
            leeway=CLOCK_LEEWAY,
            options={"require": ["iss", "sub", "aud", "exp", "iat"], "strict_aud": False},
        )
    except jwt.PyJWTError as error:
        raise IdentityError(f"ID token refused: {error}") from error
    audience = claims["aud"]
    if isinstance(audience, list) and set(audience) != {client_id}:
        raise IdentityError("ID token is also meant for another client")
    if "azp" in claims and claims["azp"] != client_id:
        raise IdentityError("ID token was issued to another client")
    if nonce is None or not secrets.compare_digest(
        str(claims.get("nonce", "")).encode(), nonce.encode()
    ):
        raise IdentityError("ID token nonce does not match this sign-in")
    jwtkit.verify_jti(claims)
    return claims


def refuse_issuer_change(provider_id: str, uid: str, issuer: str) -> None:
    """An identity is keyed by issuer and subject: a provider id re-pointed at another issuer
    cannot sign in to the accounts the first one created. Checked before allauth's lookup,
    which saves the new answer over the stored one."""
    from allauth.socialaccount.models import SocialAccount

    stored = (
        SocialAccount.objects.filter(provider=provider_id, uid=uid)
        .values_list("extra_data", flat=True)
        .first()
    )
    token = stored.get("id_token") if isinstance(stored, dict) else None
    before = token.get("iss") if isinstance(token, dict) else (stored or {}).get("bs_issuer")
    if before and before != issuer:
        raise IdentityError(f"account was created by {before}, answer from {issuer}")


def oidc_nonce_state() -> tuple[dict, dict]:
    nonce = secrets.token_urlsafe(32)
    return {"nonce": nonce}, {"nonce": nonce}
