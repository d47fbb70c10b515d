"""Loopback stand-ins for the sign-in services Broadsheet talks to: X, Facebook, Google and an
"evil" OpenID provider that mints bad ID tokens on request.

Each fake is a real HTTP server (``ThreadingHTTPServer`` on 127.0.0.1, an ephemeral port, in a
daemon thread), so the Django code under test reaches it with ``requests`` exactly as it would
reach the real service. A fake is as strict as the service it stands for, and stricter where
that helps a test fail: codes are single-use, PKCE is S256 only and checked
(``base64url(sha256(verifier)) == challenge``), the redirect URI must equal the registered one
byte for byte, and the client must authenticate the way the service documents. ``hits`` counts
requests per path, ``authorize_requests`` keeps the parameters of every authorization request,
``token_failures`` says why a code exchange was refused.

The authorization endpoint does not show a consent page: it answers at once with a 302 to the
redirect URI carrying ``code`` and ``state`` (and ``iss`` where the service sends one). Tests
follow the Location headers themselves.

The helpers at the end drive a sign-in with Django's test client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "broadsheet-client"
CLIENT_SECRET = "broadsheet-s3cret"  # noqa: S105 (a test value)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: Any

    @property
    def params(self) -> dict[str, str]:
        return {**self.query, **self.form}

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization", "")
        return value[7:] if value.startswith("Bearer ") else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json"})

    @classmethod
    def redirect(cls, location: str) -> Response:
        return cls(302, b"", {"Location": location})

    @classmethod
    def text(cls, text: str, status: int = 400) -> Response:
        return cls(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServer  # set on the per-server subclass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        form: dict[str, str] = {}
        if "application/x-www-form-urlencoded" in self.headers.get("Content-Type", ""):
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        request = Request(
            method,
            parts.path,
            dict(parse_qsl(parts.query, keep_blank_values=True)),
            form,
            self.headers,
        )
        response = self.fake.dispatch(request)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # keep pytest's output clean


class FakeServer:
    """A routed HTTP server on 127.0.0.1. Subclasses fill ``routes()``."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def routes(self) -> dict[tuple[str, str], Any]:
        return {}

    def dispatch(self, request: Request) -> Response:
        with self.lock:
            self.hits[request.path] += 1
        handler = self.routes().get((request.method, request.path))
        if handler is None:
            return Response.text("not found", 404)
        return handler(request)

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())


@dataclass
class Grant:
    """What an authorization code stands for."""

    challenge: str
    redirect_uri: str
    scope: str
    nonce: str | None


class FakeAuthServer(FakeServer):
    """The authorization-code flow as RFC 6749, RFC 7636 and RFC 9700 describe it."""

    authorize_path = "/authorize"
    token_path = "/token"
    token_method = "POST"
    client_auth = "post"  # "post": client_id/client_secret parameters; "basic": HTTP Basic
    access_token_type = "bearer"

    def __init__(
        self,
        *,
        redirect_uri: str,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        user: dict | None = None,
    ) -> None:
        super().__init__()
        self.redirect_uri = redirect_uri  # registered; must match exactly
        self.client_id = client_id
        self.client_secret = client_secret
        self.user = dict(user or self.default_user())
        self.response_iss: str | None = None  # RFC 9207 ``iss`` on the authorization response
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.token_failures: list[str] = []
        self.codes: dict[str, Grant] = {}
        self.tokens: dict[str, Grant] = {}

    def default_user(self) -> dict:
        return {}

    def routes(self):
        return {
            ("GET", self.authorize_path): self.authorize,
            (self.token_method, self.token_path): self.token,
        }

    # --- authorization endpoint ----------------------------------------------------------
    def authorize(self, request: Request) -> Response:
        params = request.query
        with self.lock:
            self.authorize_requests.append(dict(params))
        # Errors about the client or the redirect URI are shown here, never redirected
        # (RFC 6749 4.1.2.1).
        if params.get("client_id") != self.client_id:
            return Response.text("unknown client_id")
        if params.get("redirect_uri") != self.redirect_uri:
            return Response.text("redirect_uri is not the registered one")
        problem = None
        if params.get("response_type") != "code":
            problem = "unsupported_response_type"
        elif params.get("code_challenge_method") != "S256" or not re.fullmatch(
            r"[A-Za-z0-9_-]{43}", params.get("code_challenge", "")
        ):
            problem = "invalid_request"
        answer: dict[str, str] = {}
        if problem:
            answer["error"] = problem
        else:
            code = secrets.token_urlsafe(24)
            with self.lock:
                self.codes[code] = Grant(
                    challenge=params["code_challenge"],
                    redirect_uri=params["redirect_uri"],
                    scope=params.get("scope", ""),
                    nonce=params.get("nonce"),
                )
            answer["code"] = code
        if "state" in params:
            answer["state"] = params["state"]
        if self.response_iss:
            answer["iss"] = self.response_iss
        return Response.redirect(f"{self.redirect_uri}?{urlencode(answer)}")

    # --- token endpoint ------------------------------------------------------------------
    def token(self, request: Request) -> Response:
        params = request.params if self.token_method == "GET" else request.form
        with self.lock:
            self.token_requests.append(dict(params))
        if not self.client_authenticated(request, params):
            return self.refuse("invalid_client", "client authentication failed", 401)
        if params.get("grant_type") != "authorization_code":
            return self.refuse("unsupported_grant_type", "grant_type")
        with self.lock:
            grant = self.codes.pop(params.get("code", ""), None)  # single use, even on failure
        if grant is None:
            return self.refuse("invalid_grant", "unknown or already used code")
        if params.get("redirect_uri") != grant.redirect_uri:
            return self.refuse("invalid_grant", "redirect_uri differs from the authorization")
        verifier = params.get("code_verifier")
        if not verifier or not re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier):
            return self.refuse("invalid_grant", "PKCE: code_verifier missing or malformed")
        if not hmac.compare_digest(pkce_challenge(verifier), grant.challenge):
            return self.refuse("invalid_grant", "PKCE: code_verifier does not match")
        access_token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[access_token] = grant
        return Response.json(self.token_response(grant, access_token))

    def client_authenticated(self, request: Request, params: dict[str, str]) -> bool:
        if self.client_auth == "basic":
            value = request.headers.get("Authorization", "")
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            return value.startswith("Basic ") and hmac.compare_digest(value[6:], expected)
        return params.get("client_id") == self.client_id and hmac.compare_digest(
            params.get("client_secret", ""), self.client_secret
        )

    def refuse(self, error: str, reason: str, status: int = 400) -> Response:
        with self.lock:
            self.token_failures.append(reason)
        return Response.json({"error": error, "error_description": reason}, status)

    def token_response(self, grant: Grant, access_token: str) -> dict:
        return {
            "access_token": access_token,
            "token_type": self.access_token_type,
            "expires_in": 3600,
            "scope": grant.scope,
        }

    def grant_for(self, request: Request, token: str | None) -> Grant | None:
        with self.lock:
            return self.tokens.get(token or "")


# --- X ---------------------------------------------------------------------------------------
class FakeX(FakeAuthServer):
    """X's OAuth 2.0: ``/i/oauth2/authorize``, ``/2/oauth2/token`` with HTTP Basic client
    authentication (confidential client), ``/2/users/me`` with a bearer token."""

    authorize_path = "/i/oauth2/authorize"
    token_path = "/2/oauth2/token"
    client_auth = "basic"

    def default_user(self) -> dict:
        return {
            "id": "1449660812",
            "name": "Ada Lovelace",
            "username": "ada",
            "profile_image_url": "https://pbs.twimg.example/ada_normal.jpg",
        }

    def routes(self):
        return {**super().routes(), ("GET", "/2/users/me"): self.me}

    def me(self, request: Request) -> Response:
        if self.grant_for(request, request.bearer()) is None:
            return Response.json({"title": "Unauthorized", "status": 401}, 401)
        self.user_fields = request.query.get("user.fields", "")
        return Response.json({"data": self.user})

    def app_settings(self) -> dict:
        return {
            "authorize_url": self.url + self.authorize_path,
            "access_token_url": self.url + self.token_path,
            "profile_url": self.url + "/2/users/me",
        }


# --- Facebook ------------------------------------------------------------------------------
class FakeFacebook(FakeAuthServer):
    """Facebook Login's manual flow: ``/dialog/oauth``, ``GET /oauth/access_token`` with the
    client credentials and the PKCE verifier as query parameters, ``/me`` which insists on
    ``appsecret_proof`` = HMAC-SHA256(access token, app secret)."""

    authorize_path = "/dialog/oauth"
    token_path = "/oauth/access_token"
    token_method = "GET"
    client_auth = "post"

    def default_user(self) -> dict:
        return {"id": "10229876543210", "name": "Grace Hopper", "email": "grace@example.test"}

    def routes(self):
        return {**super().routes(), ("GET", "/me"): self.me}

    def me(self, request: Request) -> Response:
        token = request.query.get("access_token")
        if self.grant_for(request, token) is None:
            return Response.json(
                {
                    "error": {
                        "message": "Invalid OAuth access token",
                        "type": "OAuthException",
                        "code": 190,
                    }
                },
                400,
            )
        proof = hmac.new(self.client_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.query.get("appsecret_proof", ""), proof):
            return Response.json(
                {
                    "error": {
                        "message": "Invalid appsecret_proof",
                        "type": "GraphMethodException",
                        "code": 100,
                    }
                },
                400,
            )
        fields = [f for f in request.query.get("fields", "id").split(",") if f]
        return Response.json({k: v for k, v in self.user.items() if k in fields or k == "id"})

    def app_settings(self) -> dict:
        return {
            "authorize_url": self.url + self.authorize_path,
            "access_token_url": self.url + self.token_path,
            "graph_url": self.url,
        }


# --- ID tokens -----------------------------------------------------------------------------
SCENARIOS = (
    "wrong_iss",
    "wrong_aud",
    "extra_aud",
    "bad_nonce",
    "missing_nonce",
    "expired",
    "alg_none",
    "hs256_public_key",
    "unknown_kid",
    "bad_signature",
)
# What a verifier should say when it refuses each mutation (lower case), so a test can check
# that a token was refused by its own check and not by accident.
REFUSAL_REASONS = {
    "wrong_iss": "issuer",
    "wrong_aud": "audience",
    "extra_aud": "another client",
    "bad_nonce": "nonce",
    "missing_nonce": "nonce",
    "expired": "expired",
    "alg_none": "algorithm 'none'",
    "hs256_public_key": "algorithm 'hs256'",
    "unknown_kid": "signing key",
    "bad_signature": "signature verification failed",
}


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class IdTokenIssuer:
    """Mints RS256 ID tokens, honest or mutated by ``scenario`` (one of ``SCENARIOS``)."""

    issuer: str
    client_id: str
    user: dict

    def init_keys(self) -> None:
        self.private_key = _rsa_key()
        self.other_key = _rsa_key()  # signs "unknown kid" tokens; never published
        self.kid = "test-key-" + secrets.token_hex(4)
        self.scenario = "honest"

    def jwks(self) -> dict:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": str(self.user["sub"]),
            "aud": self.client_id,
            "azp": self.client_id,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
        }
        for claim in ("email", "email_verified", "name", "picture"):
            if claim in self.user:
                claims[claim] = self.user[claim]
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        scenario = self.scenario
        if scenario == "wrong_iss":
            claims["iss"] = "https://issuer.invalid"
        elif scenario == "wrong_aud":
            claims["aud"] = claims["azp"] = "another-client"
        elif scenario == "extra_aud":
            claims["aud"] = [self.client_id, "another-client"]
        elif scenario == "bad_nonce":
            claims["nonce"] = secrets.token_urlsafe(32)
        elif scenario == "missing_nonce":
            claims.pop("nonce", None)
        elif scenario == "expired":  # well outside any clock leeway
            claims["iat"], claims["exp"] = now - 1200, now - 600
        header = {"kid": self.kid, "typ": "JWT"}
        if scenario == "alg_none":
            return _compact({**header, "alg": "none"}, claims, lambda _: b"")
        if scenario == "hs256_public_key":
            pem = self.private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return _compact(
                {**header, "alg": "HS256"},
                claims,
                lambda signing_input: hmac.new(pem, signing_input, hashlib.sha256).digest(),
            )
        if scenario == "unknown_kid":
            return jwt.encode(
                claims, self.other_key, algorithm="RS256", headers={"kid": "rotated-away"}
            )
        token = jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})
        if scenario == "bad_signature":
            head, body, signature = token.split(".")
            raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
            raw[len(raw) // 2] ^= 0x01
            token = f"{head}.{body}.{b64url(bytes(raw))}"
        return token


def _compact(header: dict, claims: dict, sign) -> str:
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    return f"{signing_input}.{b64url(sign(signing_input.encode('ascii')))}"


# --- Google --------------------------------------------------------------------------------
class FakeGoogle(IdTokenIssuer, FakeAuthServer):
    """Google's endpoints: ``/o/oauth2/v2/auth``, ``/token`` (client credentials in the body,
    answers with an RS256 ``id_token``), ``/oauth2/v3/certs`` (JWKS), ``/userinfo``. Its ID
    tokens say ``iss: https://accounts.google.com`` wherever the fake runs, as Google's do."""

    authorize_path = "/o/oauth2/v2/auth"
    token_path = "/token"
    issuer = "https://accounts.google.com"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.init_keys()
        self.userinfo_overrides: dict[str, Any] = {}

    def default_user(self) -> dict:
        return {
            "sub": "110169484474386276334",
            "name": "Katherine Johnson",
            "email": "katherine@example.test",
            "email_verified": True,
            "picture": "https://lh3.googleusercontent.example/a/kj",
        }

    def routes(self):
        return {
            **super().routes(),
            ("GET", "/oauth2/v3/certs"): lambda request: Response.json(self.jwks()),
            ("GET", "/userinfo"): self.userinfo,
        }

    def token_response(self, grant: Grant, access_token: str) -> dict:
        response = super().token_response(grant, access_token)
        if "openid" in grant.scope.split():
            response["id_token"] = self.id_token(grant)
        return response

    def userinfo(self, request: Request) -> Response:
        if self.grant_for(request, request.bearer()) is None:
            return Response.json({"error": "invalid_token"}, 401)
        return Response.json({**self.user, **self.userinfo_overrides})

    def app_settings(self) -> dict:
        return {
            "authorize_url": self.url + self.authorize_path,
            "access_token_url": self.url + self.token_path,
            "jwks_url": self.url + "/oauth2/v3/certs",
            "userinfo_url": self.url + "/userinfo",
        }


# --- an OpenID provider that lies -----------------------------------------------------------
class EvilOP(IdTokenIssuer, FakeAuthServer):
    """A generic OpenID provider with discovery. Honest unless ``scenario`` names one of
    ``SCENARIOS``; ``discovery_overrides`` changes the discovery document (e.g. its issuer);
    ``response_iss`` is the ``iss`` of the authorization response (its own issuer by default,
    as discovery promises; ``None`` leaves it out)."""

    authorize_path = "/authorize"
    token_path = "/token"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.init_keys()
        self.issuer = self.url
        self.response_iss = self.url
        self.discovery_overrides: dict[str, Any] = {}

    def default_user(self) -> dict:
        return {"sub": "alice", "name": "Alice", "preferred_username": "alice"}

    def routes(self):
        return {
            **super().routes(),
            ("GET", "/.well-known/openid-configuration"): self.discovery,
            ("GET", "/jwks"): lambda request: Response.json(self.jwks()),
            ("GET", "/userinfo"): self.userinfo,
        }

    def discovery(self, request: Request) -> Response:
        return Response.json(
            {
                "issuer": self.issuer,
                "authorization_endpoint": self.url + self.authorize_path,
                "token_endpoint": self.url + self.token_path,
                "userinfo_endpoint": self.url + "/userinfo",
                "jwks_uri": self.url + "/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                ],
                "scopes_supported": ["openid", "profile", "email"],
                "authorization_response_iss_parameter_supported": True,
                **self.discovery_overrides,
            }
        )

    def token_response(self, grant: Grant, access_token: str) -> dict:
        return {**super().token_response(grant, access_token), "id_token": self.id_token(grant)}

    def userinfo(self, request: Request) -> Response:
        if self.grant_for(request, request.bearer()) is None:
            return Response.json({"error": "invalid_token"}, 401)
        return Response.json(self.user)


# --- driving a sign-in with Django's test client ---------------------------------------------
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
HANDOFF_LINK = re.compile(
    r'<a[^>]*\bid="handoff-link"[^>]*\bhref="([^"]+)"|'
    r'<a[^>]*\bhref="([^"]+)"[^>]*\bid="handoff-link"'
)


def provider_url(response) -> str | None:
    """Where a login POST sends the browser: a redirect, or the handoff page's link."""
    if response.status_code in (301, 302, 303, 307, 308):
        return response["Location"]
    if response.status_code == 200:
        match = HANDOFF_LINK.search(response.content.decode())
        if match:
            return html.unescape(match.group(1) or match.group(2))
    return None


def start_sign_in(client, login_path: str, query: str = "") -> str:
    """GET the confirm page, POST its form (with its CSRF token): the provider's URL."""
    page = client.get(login_path + query)
    assert page.status_code == 200, page.status_code
    match = CSRF_INPUT.search(page.content.decode())
    assert match, "the confirm page has no CSRF-protected form"
    response = client.post(login_path + query, {"csrfmiddlewaretoken": match.group(1)})
    url = provider_url(response)
    assert url, f"no way to the provider in the answer ({response.status_code})"
    return url


def authorize(url: str) -> str:
    """Visit the fake's authorization endpoint; the callback URL it sends the browser to."""
    response = requests.get(url, allow_redirects=False, timeout=5)
    assert response.status_code == 302, (response.status_code, response.text)
    return response.headers["Location"]


def open_callback(client, url: str, **changes: str | None):
    """GET the callback URL with the test client; ``changes`` replace (or, with None, drop)
    query parameters."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return client.get(parts.path, query)


def signed_in_user_id(client) -> str | None:
    return client.session.get("_auth_user_id")


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def record_authentication_errors(monkeypatch) -> list[BaseException | None]:
    """Every exception a failed sign-in reports to the social account adapter, so a test can
    tell which check refused it."""
    from allauth.socialaccount.adapter import get_adapter

    adapter_class = type(get_adapter())
    original = adapter_class.on_authentication_error
    errors: list[BaseException | None] = []

    def spy(self, request, provider, error=None, exception=None, extra_context=None):
        errors.append(exception)
        return original(self, request, provider, error, exception, extra_context)

    monkeypatch.setattr(adapter_class, "on_authentication_error", spy)
    return errors
