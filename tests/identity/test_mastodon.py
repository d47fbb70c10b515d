"""Signing in with Mastodon end to end against fake instances on loopback (``a.test`` and
``b.test``, both 127.0.0.1 through a stub resolver): the reader types an instance, is sent to
its authorization page, comes back and is signed in. Plus the catalog rows O04 (mix-up) and
O08 (SSRF through the instance field), and the CSRF / GET rules of the login page."""

from __future__ import annotations

import copy
import html
import re
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount
from django.db import connections
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from broadsheet.identity.mastodon import flows
from broadsheet.identity.mastodon.models import MastodonApp

from .fake_mastodon import NAMES, Canary, FakeMastodon

pytestmark = pytest.mark.django_db


@pytest.fixture
def mastodon_settings(settings):
    settings.BROADSHEET_MASTODON_SCHEME = "http"
    settings.BROADSHEET_MASTODON_ALLOW_PORTS = True
    settings.BROADSHEET_OUTBOUND_ALLOW_NETWORKS = ["127.0.0.1/32"]
    settings.BROADSHEET_RESOLVER = "tests.identity.fake_mastodon.stub_resolver"
    settings.BROADSHEET_BASE_URL = "http://testserver"
    providers = copy.deepcopy(settings.SOCIALACCOUNT_PROVIDERS)
    providers.setdefault("mastodon", {})["ENABLED"] = True
    settings.SOCIALACCOUNT_PROVIDERS = providers
    return settings


@pytest.fixture
def instance(mastodon_settings):
    """A factory of fake instances, stopped after the test."""
    started: list[FakeMastodon] = []

    def make(name: str = "a.test", **kwargs) -> FakeMastodon:
        fake = FakeMastodon(name, **kwargs).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def canary():
    c = Canary().start()
    yield c
    c.stop()


def provider_url(response) -> str:
    """Where the login POST sends the browser: a redirect, or (through the CSP handoff page
    for a POST that leaves the site) the page's "Continue" link."""
    if response.status_code in (302, 303):
        return response["Location"]
    assert response.status_code == 200, response.content[:500]
    match = re.search(r'id="handoff-link" href="([^"]+)"', response.content.decode())
    assert match, response.content[:500]
    return html.unescape(match.group(1))


def start(client: Client, text: str, **extra):
    return client.post(reverse("mastodon_login"), {"instance": text, **extra})


def callback_path(url: str) -> str:
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == "testserver", url
    return f"{parts.path}?{parts.query}"


def sign_in(client: Client, fake: FakeMastodon, extra_query: str = ""):
    authorize = provider_url(start(client, fake.domain))
    back = fake.authorize(authorize)
    return client.get(callback_path(back) + extra_query)


def session_user(client: Client):
    return client.get(reverse("comments:session")).json()["user"]


def token_hits(fake: FakeMastodon) -> int:
    return fake.hits["POST /oauth/token"]


def refused_page(response) -> bool:
    return response.status_code == 400 and b"Logging in did not work" in response.content


# --- signing in --------------------------------------------------------------------------------


def test_reader_signs_in_with_their_mastodon_account(instance):
    fake = instance("a.test")
    client = Client()
    response = sign_in(client, fake)

    assert response.status_code == 302
    assert "_auth_user_id" in client.session
    account = SocialAccount.objects.get(provider="mastodon")
    assert account.uid == f"110@{fake.domain}"
    assert account.get_provider_account().get_avatar_url() == "https://files.a.test/avatars/ana.png"
    assert account.get_provider_account().get_profile_url() == "https://a.test/@ana"
    user = session_user(client)
    assert user["name"] == "Ana Reader"
    assert user["provider"] == "Mastodon"
    # The authorization request: this instance's own redirect URI, PKCE S256, scope "profile".
    [params] = fake.authorize_params
    assert (
        params["redirect_uri"]
        == f"http://testserver/accounts/mastodon/{fake.domain}/login/callback/"
    )
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["scope"] == "profile"
    assert fake.registrations == 1
    # Every request reached 127.0.0.1 with the instance's name as Host.
    assert set(fake.hosts) == {fake.domain}


def test_second_sign_in_reuses_the_registered_app(instance):
    fake = instance("a.test")
    assert sign_in(Client(), fake).status_code == 302
    assert sign_in(Client(), fake).status_code == 302
    assert fake.registrations == 1
    assert MastodonApp.objects.count() == 1
    assert SocialAccount.objects.count() == 1  # the same person both times


@pytest.mark.django_db(transaction=True)
def test_racing_first_sign_ins_register_the_app_once(instance):
    fake = instance("a.test", register_delay=0.5)
    barrier = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            client = Client()
            barrier.wait()
            results.append(provider_url(start(client, fake.domain)))
        except BaseException as error:  # noqa: BLE001 — reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(results) == 2 and all("/oauth/authorize?" in url for url in results)
    assert fake.registrations == 1
    assert MastodonApp.objects.count() == 1


def test_app_the_instance_forgot_is_registered_again(instance):
    fake = instance("a.test")
    assert sign_in(Client(), fake).status_code == 302
    fake.forget_apps()
    MastodonApp.objects.update(last_used_at=timezone.now() - timedelta(days=2))

    client = Client()
    assert sign_in(client, fake).status_code == 302
    assert "_auth_user_id" in client.session
    assert fake.registrations == 2
    assert MastodonApp.objects.count() == 1


def test_iss_naming_the_instance_itself_is_accepted(instance):
    fake = instance("a.test")
    client = Client()
    response = sign_in(client, fake, "&" + urlencode({"iss": fake.issuer}))
    assert response.status_code == 302
    assert "_auth_user_id" in client.session


def test_replayed_callback_is_refused(instance):
    fake = instance("a.test")
    client = Client()
    back = fake.authorize(provider_url(start(client, fake.domain)))
    assert client.get(callback_path(back)).status_code == 302
    client.logout()
    again = client.get(callback_path(back))
    assert refused_page(again)
    assert "_auth_user_id" not in client.session
    assert token_hits(fake) == 1


# --- O04: mix-up -------------------------------------------------------------------------------


def _pending(client: Client, fake: FakeMastodon) -> dict:
    """Start a sign-in at ``fake``; the authorization request's parameters."""
    url = provider_url(start(client, fake.domain))
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_answer_from_another_instance_is_refused_before_any_code_is_exchanged(instance):
    a, b = instance("a.test"), instance("b.test", account_id="666")
    client = Client()
    flow_a = _pending(client, a)
    flow_b = _pending(Client(), b)  # the attacker's own flow at b, for a code from b
    code_b = b.issue_code(flow_b["client_id"], flow_b["redirect_uri"], "v" * 43)

    # b's answer (it names b as issuer, RFC 9207) delivered to a's callback with a's state.
    query = urlencode({"code": code_b, "state": flow_a["state"], "iss": b.issuer})
    response = client.get(f"/accounts/mastodon/{a.domain}/login/callback/?{query}")

    assert refused_page(response)
    assert "_auth_user_id" not in client.session
    assert token_hits(a) == 0 and token_hits(b) == 0
    assert SocialAccount.objects.count() == 0


def test_code_from_another_instance_without_iss_is_useless_at_this_one(instance):
    # Mastodon sends no iss: the code reaches a's token endpoint, which has never seen it.
    a, b = instance("a.test"), instance("b.test", account_id="666")
    client = Client()
    flow_a = _pending(client, a)
    flow_b = _pending(Client(), b)
    code_b = b.issue_code(flow_b["client_id"], flow_b["redirect_uri"], "v" * 43)

    query = urlencode({"code": code_b, "state": flow_a["state"]})
    response = client.get(f"/accounts/mastodon/{a.domain}/login/callback/?{query}")

    assert refused_page(response)
    assert "_auth_user_id" not in client.session
    assert a.token_errors == ["invalid_grant"] and token_hits(b) == 0
    assert SocialAccount.objects.count() == 0


def test_callback_at_one_instance_with_the_state_of_another_is_refused(instance):
    a, b = instance("a.test"), instance("b.test", account_id="666")
    client = Client()
    flow_a = _pending(client, a)
    b.next_client_id = flow_a["client_id"]  # b copies a's public client_id
    flow_b = _pending(client, b)
    assert flow_b["client_id"] == flow_a["client_id"]
    # A genuine code from a, delivered to a's callback, but with the state of the flow at b.
    back_a = a.authorize(provider_url(start(Client(), a.domain)))
    code_a = parse_qs(urlsplit(back_a).query)["code"][0]
    query = urlencode({"code": code_a, "state": flow_b["state"]})
    response = client.get(f"/accounts/mastodon/{a.domain}/login/callback/?{query}")

    assert refused_page(response)
    assert "_auth_user_id" not in client.session
    assert token_hits(a) == 0 and token_hits(b) == 0
    # The state was used up: the genuine answer from b cannot follow.
    query = urlencode({"code": "x", "state": flow_b["state"]})
    assert refused_page(client.get(f"/accounts/mastodon/{b.domain}/login/callback/?{query}"))
    assert token_hits(b) == 0


def test_callback_without_state_is_refused(instance):
    fake = instance("a.test")
    client = Client()
    _pending(client, fake)
    response = client.get(f"/accounts/mastodon/{fake.domain}/login/callback/?code=abc")
    assert refused_page(response)
    assert token_hits(fake) == 0


# --- O08: SSRF through the instance field ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1:{port}",
        "http://127.0.0.1:{port}/",
        "localhost:{port}",
        "[::1]:{port}",
        "2130706433:{port}",
        "0177.0.0.1:{port}",
        "0x7f.1:{port}",
        "127.1:{port}",
        "ana@127.0.0.1:{port}",
    ],
)
def test_loopback_instance_is_refused_without_connecting(mastodon_settings, canary, text):
    mastodon_settings.BROADSHEET_OUTBOUND_ALLOW_NETWORKS = []
    typed = text.format(port=canary.port)
    response = start(Client(), typed)

    assert response.status_code == 400
    page = response.content.decode()
    assert "is not a server on the internet" in page or "not an IP address" in page
    assert f'value="{html.escape(typed)}"' in page  # what the reader typed is still there
    assert canary.hits == 0
    assert MastodonApp.objects.count() == 0


def test_name_that_resolves_to_loopback_is_refused_without_connecting(mastodon_settings, canary):
    mastodon_settings.BROADSHEET_OUTBOUND_ALLOW_NETWORKS = []
    assert NAMES["loopback.test"] == ["127.0.0.1"]
    response = start(Client(), f"loopback.test:{canary.port}")

    assert response.status_code == 400
    assert "points to a private or local network address" in response.content.decode()
    assert canary.hits == 0
    assert MastodonApp.objects.count() == 0


def test_flow_start_raises_instance_refused_for_the_comment_form(mastodon_settings, canary):
    mastodon_settings.BROADSHEET_OUTBOUND_ALLOW_NETWORKS = []
    request = RequestFactory().post("/comments/identity/start/")
    request.session = Client().session
    for typed in (f"127.0.0.1:{canary.port}", f"loopback.test:{canary.port}", ""):
        with pytest.raises(flows.InstanceRefused) as refused:
            flows.start(request, typed, "/")
        assert "for example mastodon.social" in str(refused.value)
    assert canary.hits == 0


# --- the login page: GET starts nothing, POST needs CSRF ----------------------------------------


def test_get_from_another_site_only_shows_the_form(instance):
    fake = instance("a.test")
    client = Client()
    response = client.get(
        reverse("mastodon_login"),
        {"instance": fake.domain, "next": "/somewhere/", "process": "login"},
        HTTP_SEC_FETCH_SITE="cross-site",
        HTTP_REFERER="http://evil.example/",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Log in with Mastodon" in page
    assert f'value="{fake.domain}"' in page and 'name="csrfmiddlewaretoken"' in page
    assert sum(fake.hits.values()) == 0
    assert "socialaccount_states" not in client.session
    assert "<script" not in page.split("<main", 1)[1] and "style=" not in page


def test_post_without_csrf_token_is_forbidden(instance):
    fake = instance("a.test")
    client = Client(enforce_csrf_checks=True)
    response = start(client, fake.domain)
    assert response.status_code == 403
    assert sum(fake.hits.values()) == 0


def test_form_with_its_csrf_token_starts_the_sign_in(instance):
    fake = instance("a.test")
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("mastodon_login")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = start(client, fake.domain, csrfmiddlewaretoken=token)
    assert provider_url(response).startswith(f"http://{fake.domain}/oauth/authorize?")


def test_process_connect_is_refused(instance):
    fake = instance("a.test")
    response = start(Client(), fake.domain, process="connect")
    assert response.status_code == 400
    assert sum(fake.hits.values()) == 0


def test_mastodon_is_off_unless_enabled(instance, settings):
    fake = instance("a.test")
    providers = copy.deepcopy(settings.SOCIALACCOUNT_PROVIDERS)
    providers["mastodon"]["ENABLED"] = False
    settings.SOCIALACCOUNT_PROVIDERS = providers
    assert Client().get(reverse("mastodon_login")).status_code == 404
    assert start(Client(), fake.domain).status_code == 404
    assert sum(fake.hits.values()) == 0
