"""OpenID Connect through the strict ``openid_connect`` provider against EvilOP, a loopback
provider that lies on request: bad ID tokens (catalog O05), a response from the wrong issuer
(O04), discovery about another issuer, and account takeover by linking (O06)."""

from __future__ import annotations

import copy

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.test import Client

from .fakes import (
    REFUSAL_REASONS,
    SCENARIOS,
    EvilOP,
    authorize,
    open_callback,
    provider_url,
    query_of,
    record_authentication_errors,
    signed_in_user_id,
    start_sign_in,
)

BASE_URL = "http://testserver"
STRICT_OIDC = "broadsheet.identity.providers.openid_connect.provider.StrictOIDCProvider"


def login_path(provider_id: str) -> str:
    return f"/accounts/oidc/{provider_id}/login/"


def callback_path(provider_id: str) -> str:
    return f"/accounts/oidc/{provider_id}/login/callback/"


@pytest.fixture
def evil_op(settings):
    """Factory: ``evil_op("evil")`` starts an EvilOP and registers it as an OpenID Connect
    app with that provider_id."""
    settings.BROADSHEET_BASE_URL = BASE_URL
    settings.BROADSHEET_ALLOW_HTTP_PROVIDERS = True
    started: list[EvilOP] = []

    def start(provider_id: str = "evil") -> EvilOP:
        op = EvilOP(redirect_uri=BASE_URL + callback_path(provider_id)).start()
        started.append(op)
        providers = copy.deepcopy(settings.SOCIALACCOUNT_PROVIDERS)
        oidc = providers.setdefault("openid_connect", {})
        oidc["OAUTH_PKCE_ENABLED"] = True
        oidc["provider_class"] = STRICT_OIDC
        oidc.setdefault("APPS", []).append(
            {
                "provider_id": provider_id,
                "name": provider_id.title(),
                "client_id": op.client_id,
                "secret": op.client_secret,
                "settings": {"server_url": op.url},
            }
        )
        settings.SOCIALACCOUNT_PROVIDERS = providers  # a new object: setting_changed fires
        return op

    yield start
    for op in started:
        op.stop()


@pytest.fixture
def auth_errors(monkeypatch):
    return record_authentication_errors(monkeypatch)


def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


def sign_in(client, provider_id="evil", **callback_changes):
    callback = authorize(start_sign_in(client, login_path(provider_id)))
    return open_callback(client, callback, **callback_changes)


def assert_refused(response, client) -> None:
    assert response.status_code == 400, response.status_code
    assert signed_in_user_id(client) is None
    assert SocialAccount.objects.count() == 0


# --- the honest provider: the control every refusal below is measured against -----------------
@pytest.mark.django_db
def test_honest_id_token_signs_in(evil_op):
    op = evil_op()
    client = csrf_client()
    response = sign_in(client)

    assert response.status_code == 302, response.content[:500]
    account = SocialAccount.objects.get()
    assert (account.provider, account.uid) == ("evil", "alice")
    assert str(account.user_id) == signed_in_user_id(client)
    assert account.extra_data["id_token"]["iss"] == op.url
    authorize_request = op.authorize_requests[0]
    assert authorize_request["code_challenge_method"] == "S256"
    assert len(authorize_request["nonce"]) >= 32
    assert authorize_request["redirect_uri"] == BASE_URL + callback_path("evil")


# --- O05: bad ID tokens ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_bad_id_token_is_refused(evil_op, auth_errors, scenario):
    op = evil_op()
    op.scenario = scenario
    client = csrf_client()
    response = sign_in(client)

    assert op.hits["/token"] == 1  # the token was obtained; it is the ID token that fails
    assert op.hits["/userinfo"] == 0  # refused before anything is asked about the reader
    assert_refused(response, client)
    assert len(auth_errors) == 1
    assert REFUSAL_REASONS[scenario] in str(auth_errors[0]).lower()


# --- O04: the authorization response names its issuer (RFC 9207) -----------------------------
@pytest.mark.django_db
def test_response_from_another_issuer_is_refused_before_the_code_is_exchanged(evil_op, auth_errors):
    op = evil_op()
    client = csrf_client()
    response = sign_in(client, iss="http://127.0.0.1:9/another-issuer")

    assert_refused(response, client)
    assert op.hits["/token"] == 0
    assert "127.0.0.1:9/another-issuer" in str(auth_errors[0])


@pytest.mark.django_db
def test_response_of_the_other_op_delivered_to_this_flow_is_refused(evil_op):
    op1, op2 = evil_op("evil"), evil_op("evil2")
    client = csrf_client()
    callback1 = authorize(start_sign_in(client, login_path("evil")))
    callback2 = authorize(start_sign_in(client, login_path("evil2")))
    answer2 = query_of(callback2)
    assert answer2["iss"] == op2.url
    # op2's code and iss, delivered to op1's callback with op1's state
    response = open_callback(client, callback1, code=answer2["code"], iss=answer2["iss"])

    assert_refused(response, client)
    assert op1.hits["/token"] == 0
    assert op2.hits["/token"] == 0


@pytest.mark.django_db
def test_missing_iss_is_refused_when_discovery_promises_it(evil_op, auth_errors):
    op = evil_op()
    op.response_iss = None
    client = csrf_client()
    response = sign_in(client)

    assert_refused(response, client)
    assert op.hits["/token"] == 0
    assert "RFC 9207" in str(auth_errors[0])


@pytest.mark.django_db
def test_discovery_about_another_issuer_is_refused(evil_op, auth_errors):
    op = evil_op()
    op.discovery_overrides = {"issuer": "http://127.0.0.1:9"}
    client = csrf_client()
    page = client.get(login_path("evil"))
    token = page.cookies["csrftoken"].value
    response = client.post(login_path("evil"), {"csrfmiddlewaretoken": token})

    assert provider_url(response) is None
    assert response.status_code == 400
    assert op.hits["/.well-known/openid-configuration"] >= 1
    assert op.hits["/authorize"] == 0
    assert "discovery names issuer" in str(auth_errors[0])


# --- O06: the account is keyed by (issuer, sub); email never links ---------------------------
@pytest.mark.django_db
def test_same_sub_from_two_issuers_makes_two_users(evil_op):
    op1, op2 = evil_op("evil"), evil_op("evil2")
    assert op1.user["sub"] == op2.user["sub"] == "alice"
    first, second = csrf_client(), csrf_client()

    assert sign_in(first, "evil").status_code == 302
    assert sign_in(second, "evil2").status_code == 302

    one = SocialAccount.objects.get(provider="evil")
    two = SocialAccount.objects.get(provider="evil2")
    assert one.uid == two.uid == "alice"
    assert one.user_id != two.user_id
    assert signed_in_user_id(first) == str(one.user_id)
    assert signed_in_user_id(second) == str(two.user_id)


@pytest.mark.django_db
def test_same_sub_again_signs_in_the_same_user(evil_op):
    op = evil_op()
    first, again = csrf_client(), csrf_client()
    assert sign_in(first).status_code == 302
    op.user["preferred_username"] = "someone-else"  # mutable claims do not matter
    assert sign_in(again).status_code == 302

    assert SocialAccount.objects.count() == 1
    assert signed_in_user_id(first) == signed_in_user_id(again)


@pytest.mark.django_db
@pytest.mark.parametrize("email_verified", [False, True])
def test_provider_email_of_a_local_user_does_not_sign_in_as_them(evil_op, email_verified):
    bob = get_user_model().objects.create_user(
        username="bob", email="bob@example.test", password="correct horse battery"
    )
    EmailAddress.objects.create(user=bob, email=bob.email, verified=True, primary=True)
    op = evil_op()
    op.user.update(sub="mallory", email="bob@example.test", email_verified=email_verified)
    client = csrf_client()
    response = sign_in(client)

    # The reader gets an account of their own (without the address), never bob's.
    assert response.status_code == 302
    account = SocialAccount.objects.get(provider="evil", uid="mallory")
    assert account.user_id != bob.pk
    assert signed_in_user_id(client) == str(account.user_id)
    assert account.user.email == ""
    assert not SocialAccount.objects.filter(user=bob).exists()
    assert list(EmailAddress.objects.filter(user=bob).values_list("email", flat=True)) == [
        "bob@example.test"
    ]


@pytest.mark.django_db
def test_provider_id_repointed_at_another_issuer_cannot_reach_existing_accounts(
    evil_op, settings, auth_errors
):
    op = evil_op()
    first = csrf_client()
    assert sign_in(first).status_code == 302
    alice = SocialAccount.objects.get()

    # The operator points "evil" at another issuer that also has a subject "alice".
    with EvilOP(redirect_uri=BASE_URL + callback_path("evil")) as impostor:
        providers = copy.deepcopy(settings.SOCIALACCOUNT_PROVIDERS)
        (app,) = [a for a in providers["openid_connect"]["APPS"] if a["provider_id"] == "evil"]
        app["settings"]["server_url"] = impostor.url
        app["client_id"], app["secret"] = impostor.client_id, impostor.client_secret
        settings.SOCIALACCOUNT_PROVIDERS = providers
        second = csrf_client()
        response = sign_in(second)

    assert impostor.hits["/token"] == 1
    assert response.status_code == 400
    assert signed_in_user_id(second) is None
    assert SocialAccount.objects.get() == alice
    assert SocialAccount.objects.get().extra_data["id_token"]["iss"] == op.url
    assert "account was created by" in str(auth_errors[-1])


@pytest.mark.django_db
def test_discovery_that_changes_during_the_flow_gives_the_error_page(evil_op):
    op = evil_op()
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    callback = authorize(start_sign_in(client, login_path("evil")))
    op.discovery_overrides = {"issuer": "http://127.0.0.1:9"}
    response = open_callback(client, callback)

    assert signed_in_user_id(client) is None
    assert op.hits["/token"] == 0
    assert response.status_code == 400
