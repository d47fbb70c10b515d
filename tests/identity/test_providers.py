"""Sign-in with X, Facebook and Google, end to end against loopback fakes of their endpoints
(catalog rows O01 state, O02 PKCE; redirect URI exactness; Google's ID token and nonce)."""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
import requests
from allauth.account.models import EmailAddress
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialAccount
from django.test import Client
from django.test.client import RequestFactory

from .fakes import (
    REFUSAL_REASONS,
    SCENARIOS,
    FakeAuthServer,
    FakeFacebook,
    FakeGoogle,
    FakeX,
    Grant,
    authorize,
    open_callback,
    pkce_challenge,
    query_of,
    record_authentication_errors,
    signed_in_user_id,
    start_sign_in,
)

BASE_URL = "http://testserver"


@dataclass(frozen=True)
class Spec:
    provider: str
    fake_class: type[FakeAuthServer]
    display_name: str
    uid_field: str

    @property
    def login_path(self) -> str:
        return f"/accounts/{self.provider}/login/"

    @property
    def callback_path(self) -> str:
        return f"/accounts/{self.provider}/login/callback/"


SPECS = {
    "twitter_oauth2": Spec("twitter_oauth2", FakeX, "X", "id"),
    "facebook": Spec("facebook", FakeFacebook, "Facebook", "id"),
    "google": Spec("google", FakeGoogle, "Google", "sub"),
}


@pytest.fixture
def configure(settings):
    """Point one provider's app at a fake; the callback base is the test client's host."""
    settings.BROADSHEET_BASE_URL = BASE_URL

    def apply(spec: Spec, fake, app_settings: dict | None = None, **provider_settings) -> None:
        providers = copy.deepcopy(settings.SOCIALACCOUNT_PROVIDERS)
        providers[spec.provider].update(provider_settings)
        providers[spec.provider]["APPS"] = [
            {
                "client_id": fake.client_id,
                "secret": fake.client_secret,
                "settings": {**fake.app_settings(), **(app_settings or {})},
            }
        ]
        settings.SOCIALACCOUNT_PROVIDERS = providers  # a new object: setting_changed fires

    return apply


@pytest.fixture(params=list(SPECS))
def provider(request, configure):
    """(spec, running fake) for each of X, Facebook, Google."""
    spec = SPECS[request.param]
    with spec.fake_class(redirect_uri=BASE_URL + spec.callback_path) as fake:
        configure(spec, fake)
        yield spec, fake


def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


def sign_in(client, spec):
    callback = authorize(start_sign_in(client, spec.login_path))
    return callback, open_callback(client, callback)


def assert_nobody_signed_in(client) -> None:
    assert signed_in_user_id(client) is None
    assert SocialAccount.objects.count() == 0


# --- the happy path (so every refusal below can be told from a broken setup) ---------------
@pytest.mark.django_db
def test_sign_in_through_the_provider_creates_the_account_and_signs_in(provider):
    spec, fake = provider
    client = csrf_client()
    _, response = sign_in(client, spec)

    assert response.status_code == 302, response.content[:500]
    user_id = signed_in_user_id(client)
    assert user_id is not None
    account = SocialAccount.objects.get()
    assert account.provider == spec.provider
    assert account.uid == str(fake.user[spec.uid_field])
    assert str(account.user_id) == user_id
    assert fake.hits[fake.token_path] == 1
    assert fake.token_failures == []


@pytest.mark.django_db
@pytest.mark.parametrize("provider", ["facebook", "google"], indirect=True)  # X gives none
def test_provider_email_is_not_put_on_the_user(provider):
    spec, fake = provider
    assert fake.user["email"]
    client = csrf_client()
    sign_in(client, spec)

    account = SocialAccount.objects.get()
    assert account.user.email == ""
    assert not EmailAddress.objects.filter(user=account.user).exists()


@pytest.mark.django_db
def test_provider_display_name(provider):
    spec, _ = provider
    request = RequestFactory().get("/")
    assert get_adapter().get_provider(request, spec.provider).name == spec.display_name


# --- the authorization request ---------------------------------------------------------------
@pytest.mark.django_db
def test_login_get_renders_a_confirm_page_and_does_not_contact_the_provider(provider):
    spec, fake = provider
    response = Client().get(spec.login_path)

    assert response.status_code == 200
    assert b'method="post"' in response.content.lower()
    assert fake.total_hits == 0


@pytest.mark.django_db
def test_login_post_without_csrf_token_is_refused(provider):
    spec, fake = provider
    client = csrf_client()
    client.get(spec.login_path)
    response = client.post(spec.login_path, {})

    assert response.status_code == 403
    assert fake.total_hits == 0


@pytest.mark.django_db
def test_authorization_request_has_pkce_s256_exact_redirect_uri_and_state(provider):
    spec, fake = provider
    url = start_sign_in(csrf_client(), spec.login_path)
    assert url.startswith(fake.url + fake.authorize_path + "?")
    params = query_of(url)

    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert params["redirect_uri"] == BASE_URL + spec.callback_path
    assert len(params["state"]) >= 16
    assert params["client_id"] == fake.client_id
    assert params["response_type"] == "code"


@pytest.mark.django_db
def test_google_sends_a_fresh_nonce_and_asks_for_openid(configure):
    spec = SPECS["google"]
    with FakeGoogle(redirect_uri=BASE_URL + spec.callback_path) as fake:
        configure(spec, fake)
        first = query_of(start_sign_in(csrf_client(), spec.login_path))
        second = query_of(start_sign_in(csrf_client(), spec.login_path))

    assert len(first["nonce"]) >= 32
    assert first["nonce"] != second["nonce"]
    assert "openid" in first["scope"].split()


@pytest.mark.django_db
def test_redirect_uri_comes_from_base_url_not_the_request_host(provider, settings):
    spec, _ = provider
    settings.BROADSHEET_BASE_URL = "https://news.example.test"
    params = query_of(start_sign_in(csrf_client(), spec.login_path))

    assert params["redirect_uri"] == "https://news.example.test" + spec.callback_path


@pytest.mark.django_db
def test_login_request_cannot_change_authorization_parameters(provider):
    spec, _ = provider
    evil = "?auth_params=redirect_uri%3Dhttps%3A%2F%2Fevil.test%2F%26state%3Dx&scope=admin"
    params = query_of(start_sign_in(csrf_client(), spec.login_path, evil))

    assert params["redirect_uri"] == BASE_URL + spec.callback_path
    assert params["state"] != "x"
    assert "admin" not in params.get("scope", "").replace(",", " ").split()


@pytest.mark.django_db
def test_connect_process_is_refused(provider):
    spec, fake = provider
    client = csrf_client()
    page = client.get(spec.login_path + "?process=connect")
    token = page.cookies["csrftoken"].value
    response = client.post(spec.login_path + "?process=connect", {"csrfmiddlewaretoken": token})

    assert response.status_code == 400
    assert fake.total_hits == 0


# --- the callback: state (O01) ---------------------------------------------------------------
@pytest.mark.django_db
def test_replayed_callback_is_refused(provider):
    spec, fake = provider
    client = csrf_client()
    callback, first = sign_in(client, spec)
    assert first.status_code == 302

    replay = open_callback(client, callback)
    assert replay.status_code == 400
    assert fake.hits[fake.token_path] == 1  # the code was not offered again
    assert SocialAccount.objects.count() == 1


@pytest.mark.django_db
def test_replayed_callback_in_a_fresh_session_is_refused(provider):
    spec, fake = provider
    callback, first = sign_in(csrf_client(), spec)
    assert first.status_code == 302

    other = csrf_client()
    replay = open_callback(other, callback)
    assert replay.status_code == 400
    assert signed_in_user_id(other) is None
    assert fake.hits[fake.token_path] == 1


@pytest.mark.django_db
@pytest.mark.parametrize("state", [None, "", "wrong"])
def test_callback_without_the_flows_state_is_refused(provider, state):
    spec, fake = provider
    client = csrf_client()
    callback = authorize(start_sign_in(client, spec.login_path))
    if state == "wrong":
        state = secrets.token_urlsafe(12)
    response = open_callback(client, callback, state=state)

    assert response.status_code == 400
    assert_nobody_signed_in(client)
    assert fake.hits[fake.token_path] == 0


@pytest.mark.django_db
def test_callback_opened_in_another_session_is_refused(provider):
    spec, fake = provider
    victim, attacker = csrf_client(), csrf_client()
    callback = authorize(start_sign_in(victim, spec.login_path))

    response = open_callback(attacker, callback)
    assert response.status_code == 400
    assert_nobody_signed_in(attacker)
    assert fake.hits[fake.token_path] == 0

    # The flow still belongs to the browser that started it.
    assert open_callback(victim, callback).status_code == 302
    assert signed_in_user_id(victim) is not None


# --- the code exchange: PKCE (O02) -----------------------------------------------------------
@pytest.mark.django_db
def test_code_injected_into_another_flow_fails_pkce_at_the_provider(provider):
    spec, fake = provider
    victim, attacker = csrf_client(), csrf_client()
    stolen_code = query_of(authorize(start_sign_in(victim, spec.login_path)))["code"]
    attacker_callback = authorize(start_sign_in(attacker, spec.login_path))

    response = open_callback(attacker, attacker_callback, code=stolen_code)
    assert response.status_code == 400
    assert_nobody_signed_in(attacker)
    assert fake.token_failures == ["PKCE: code_verifier does not match"]


def test_fake_refuses_a_wrong_verifier_and_a_second_use():
    """The fake itself: without this the PKCE test above could pass for another reason."""
    with FakeGoogle(redirect_uri="http://testserver/cb/") as fake:
        verifier = secrets.token_urlsafe(48)
        params = {
            "client_id": fake.client_id,
            "redirect_uri": fake.redirect_uri,
            "response_type": "code",
            "scope": "openid",
            "state": "s",
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        }
        code = query_of(authorize(f"{fake.url}{fake.authorize_path}?{urlencode(params)}"))["code"]
        body = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": fake.redirect_uri,
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "code_verifier": secrets.token_urlsafe(48),
        }
        wrong = requests.post(fake.url + "/token", data=body, timeout=5)
        right = requests.post(
            fake.url + "/token", data={**body, "code_verifier": verifier}, timeout=5
        )

    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert right.status_code == 400  # the code died with the failed attempt
    assert fake.token_failures == [
        "PKCE: code_verifier does not match",
        "unknown or already used code",
    ]


# --- RFC 9207 iss on the authorization response ----------------------------------------------
@pytest.mark.django_db
def test_unexpected_iss_in_the_response_is_refused(provider):
    spec, fake = provider
    client = csrf_client()
    callback = authorize(start_sign_in(client, spec.login_path))
    response = open_callback(client, callback, iss="https://attacker.example.test")

    assert response.status_code == 400
    assert_nobody_signed_in(client)
    assert fake.hits[fake.token_path] == 0


@pytest.mark.django_db
def test_google_response_with_googles_iss_is_accepted(configure):
    spec = SPECS["google"]
    with FakeGoogle(redirect_uri=BASE_URL + spec.callback_path) as fake:
        fake.response_iss = "https://accounts.google.com"
        configure(spec, fake)
        client = csrf_client()
        _, response = sign_in(client, spec)

    assert response.status_code == 302
    assert signed_in_user_id(client) is not None


# --- Google's ID token -----------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_google_bad_id_token_is_refused(configure, monkeypatch, scenario):
    errors = record_authentication_errors(monkeypatch)
    spec = SPECS["google"]
    with FakeGoogle(redirect_uri=BASE_URL + spec.callback_path) as fake:
        fake.scenario = scenario
        configure(spec, fake)
        client = csrf_client()
        _, response = sign_in(client, spec)

    assert response.status_code == 400
    assert_nobody_signed_in(client)
    assert fake.hits[fake.token_path] == 1  # refused on the token, not before
    assert len(errors) == 1
    assert REFUSAL_REASONS[scenario] in str(errors[0]).lower()


@pytest.mark.django_db
def test_google_token_login_is_switched_off(configure):
    """One Tap style login by a bare ID token has no nonce bound to this browser."""
    from django.core.exceptions import ValidationError

    spec = SPECS["google"]
    with FakeGoogle(redirect_uri=BASE_URL + spec.callback_path) as fake:
        configure(spec, fake)
        request = RequestFactory().get("/")
        google = get_adapter().get_provider(request, "google")
        honest = fake.id_token(Grant(challenge="", redirect_uri="", scope="openid", nonce=None))
        assert not google.supports_token_authentication
        with pytest.raises(ValidationError):
            google.verify_token(request, {"id_token": honest})
        assert fake.total_hits == 0


@pytest.mark.django_db
def test_google_short_issuer_form_is_accepted(configure):
    """Google documents ``accounts.google.com`` (no scheme) as a valid ``iss`` too."""
    spec = SPECS["google"]
    with FakeGoogle(redirect_uri=BASE_URL + spec.callback_path) as fake:
        fake.issuer = "accounts.google.com"
        configure(spec, fake)
        client = csrf_client()
        _, response = sign_in(client, spec)

    assert response.status_code == 302
    assert signed_in_user_id(client) is not None


@pytest.mark.django_db
def test_google_userinfo_about_another_subject_is_refused(configure):
    spec = SPECS["google"]
    with FakeGoogle(redirect_uri=BASE_URL + spec.callback_path) as fake:
        del fake.user["picture"]  # so the picture is fetched from userinfo
        fake.userinfo_overrides = {"sub": "someone-else"}
        configure(spec, fake, app_settings={"fetch_userinfo": True})
        client = csrf_client()
        _, response = sign_in(client, spec)

    assert fake.hits["/userinfo"] == 1
    assert response.status_code == 400
    assert_nobody_signed_in(client)


@pytest.mark.django_db
def test_google_userinfo_fills_in_the_picture(configure):
    spec = SPECS["google"]
    with FakeGoogle(redirect_uri=BASE_URL + spec.callback_path) as fake:
        picture = fake.user.pop("picture")
        fake.userinfo_overrides = {"picture": picture}
        configure(spec, fake, app_settings={"fetch_userinfo": True})
        sign_in(csrf_client(), spec)

    assert SocialAccount.objects.get().extra_data["picture"] == picture


# --- Facebook --------------------------------------------------------------------------------
@pytest.mark.django_db
def test_facebook_js_sdk_cannot_be_configured(configure):
    spec = SPECS["facebook"]
    with FakeFacebook(redirect_uri=BASE_URL + spec.callback_path) as fake:
        configure(spec, fake, METHOD="js_sdk")
        request = RequestFactory().get("/")
        facebook = get_adapter().get_provider(request, "facebook")
        assert facebook.get_login_url(request) == spec.login_path
        assert facebook.get_login_url(request, method="js_sdk") == spec.login_path
        assert facebook.media_js(request) == ""
        assert not facebook.supports_token_authentication

        client = csrf_client()
        _, response = sign_in(client, spec)

    assert response.status_code == 302
    assert signed_in_user_id(client) is not None


@pytest.mark.django_db
def test_facebook_profile_comes_from_the_configured_graph_url_with_appsecret_proof(configure):
    spec = SPECS["facebook"]
    with FakeFacebook(redirect_uri=BASE_URL + spec.callback_path) as fake:
        configure(spec, fake)
        sign_in(csrf_client(), spec)
        exchange = fake.token_requests[0]

    assert fake.hits["/me"] == 1  # refused without a correct appsecret_proof
    assert "code_verifier" in exchange


@pytest.mark.django_db
def test_x_client_authenticates_with_http_basic(configure):
    spec = SPECS["twitter_oauth2"]
    with FakeX(redirect_uri=BASE_URL + spec.callback_path) as fake:
        configure(spec, fake)
        sign_in(csrf_client(), spec)
        exchange = fake.token_requests[0]

    assert "client_secret" not in exchange
    assert fake.hits["/2/users/me"] == 1
    assert "username" in fake.user_fields.split(",")
