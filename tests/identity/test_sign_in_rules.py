"""The comment form's sign-in, through Django's test client: which icons show, where sign-in may
start, where it may lead back to, and what a guest may not do. Rows O03, O07, F03, X05."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from broadsheet.comments.models import Comment
from broadsheet.identity.adapters import is_local_path

from .conftest import add_oidc_app

pytestmark = pytest.mark.django_db

PAYLOAD = "</script><script>alert(1)</script>\u2028"

# PayloadsAllTheThings "Open Redirect" (MIT) — the shapes that matter for a path check —
# plus our own host written absolutely.
OPEN_REDIRECTS = [
    "//evil.test",
    "///evil.test",
    "////evil.test",
    "/\\evil.test",
    "\\\\evil.test",
    "/\\/evil.test",
    "https://evil.test",
    "http:evil.test",
    "https:/evil.test",
    "//evil.test/%2f..",
    "\t//evil.test",
    " //evil.test",
    "//evil%E3%80%82test",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/\x00//evil.test",
    "http://127.0.0.1.evil.test",
    "https://testserver/",
    "http://testserver/2017/",
    "@evil.test",
    "evil.test",
    "//google.com%2f%2e%2e",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_next_never_leads_off_the_site(target):
    assert not is_local_path(target)


def test_next_may_lead_to_a_path_on_the_site():
    assert is_local_path("/2017/11/20/solidarity/#respond")
    assert is_local_path("/comments/identity/done/?thread=1&popup=1&js=1")


@pytest.mark.parametrize("target", ["//evil.test", "https://evil.test/", "/\\evil.test"])
def test_signing_in_with_an_off_site_next_lands_on_the_site(client, user_factory, target):
    from allauth.account.models import EmailAddress

    user = user_factory(email="rosa@example.test")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    response = client.post(
        f"/accounts/login/?next={target}",
        {"login": "rosa@example.test", "password": "correct horse 42"},
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/") and not response["Location"].startswith("//")


@pytest.fixture
def op1_configured(settings):
    """An OpenID provider "op1" in the configuration; never contacted by these tests."""
    add_oidc_app(
        settings,
        provider_id="op1",
        name="OP1",
        issuer="https://op.invalid",
        client_id="c",
        secret="s",
    )


def icons(client, thread):
    from bs4 import BeautifulSoup

    page = client.get(f"/comments/respond/{thread.pk}/")
    soup = BeautifulSoup(page.content, "html.parser")
    return [
        (b["value"], b["data-provider-name"])
        for b in soup.select('button[name="identity_provider"]')
    ]


def test_only_configured_providers_show_an_icon(client, settings, thread_factory):
    thread = thread_factory()
    assert icons(client, thread) == [("site", "Broadsheet account")]
    providers = dict(settings.SOCIALACCOUNT_PROVIDERS)
    providers["twitter_oauth2"] = {
        **providers["twitter_oauth2"],
        "APPS": [{"client_id": "x-id", "secret": "x-secret"}],
    }
    providers["mastodon"] = {"ENABLED": True}
    settings.SOCIALACCOUNT_PROVIDERS = providers
    assert icons(client, thread) == [
        ("site", "Broadsheet account"),
        ("twitter_oauth2", "X"),
        ("mastodon", "Mastodon"),
    ]
    # Switching X off is removing its entry.
    providers = dict(providers)
    providers["twitter_oauth2"] = {"OAUTH_PKCE_ENABLED": True}
    settings.SOCIALACCOUNT_PROVIDERS = providers
    assert [key for key, _ in icons(client, thread)] == ["site", "mastodon"]


def test_article_page_is_the_same_for_every_anonymous_reader(demo_article, settings):
    providers = dict(settings.SOCIALACCOUNT_PROVIDERS)
    providers["twitter_oauth2"] = {"APPS": [{"client_id": "x-id", "secret": "x-secret"}]}
    settings.SOCIALACCOUNT_PROVIDERS = providers
    first, second = Client(), Client()
    one = first.get(demo_article)
    two = second.get(demo_article)
    assert one.status_code == two.status_code == 200
    assert one.content == two.content
    assert b'value="twitter_oauth2"' in one.content
    assert b"csrfmiddlewaretoken" not in one.content
    assert "sessionid" not in one.cookies


def test_provider_login_by_get_only_shows_a_confirm_page(client, op1_configured):
    response = client.get("/accounts/oidc/op1/login/?process=connect&next=//evil.test")
    assert response.status_code == 200
    assert b'method="post"' in response.content.lower()
    assert "socialaccount_states" not in client.session  # no flow was started


def test_connect_is_refused_and_forged_posts_start_nothing(op1_configured, thread_factory):
    forger = Client(enforce_csrf_checks=True)
    response = forger.post("/accounts/oidc/op1/login/", {"process": "login"})
    assert response.status_code == 403
    thread = thread_factory()
    # From another site: refused outright.
    response = forger.post(
        "/comments/identity/start/",
        {"thread": thread.pk, "identity_provider": "op1", "comment": "hello"},
        HTTP_ORIGIN="http://evil.test",
    )
    assert response.status_code == 403
    assert "socialaccount_states" not in forger.session
    # Same site without a token: sent to the confirm page, no flow started yet.
    response = forger.post(
        "/comments/identity/start/",
        {"thread": thread.pk, "identity_provider": "op1", "comment": "hello"},
    )
    assert response.status_code == 303
    assert response["Location"].startswith("/accounts/oidc/op1/login/?process=login")
    assert "socialaccount_states" not in forger.session


def test_connect_process_is_refused(client, settings, oidc_op):
    settings.BROADSHEET_BASE_URL = "http://testserver"
    oidc_op("op1")
    client.get("/accounts/oidc/op1/login/")  # the CSRF cookie
    response = client.post("/accounts/oidc/op1/login/", {"process": "connect"})
    assert response.status_code == 400
    assert "socialaccount_states" not in client.session


def test_sign_in_post_hands_off_to_the_provider_with_pkce_nonce_and_exact_redirect(
    client, settings, oidc_op
):
    from urllib.parse import parse_qs, urlsplit

    from bs4 import BeautifulSoup

    settings.BROADSHEET_BASE_URL = "http://testserver"
    issuer = oidc_op("op1")
    client.get("/accounts/oidc/op1/login/")
    response = client.post(
        "/accounts/oidc/op1/login/?auth_params=redirect_uri%3Dhttps%3A%2F%2Fevil.test&scope=x",
        {"process": "login", "next": "/2017/"},
    )
    # form-action 'self' would block a POST answered by an off-site redirect: a same-site page
    # continues instead.
    assert response.status_code == 200
    assert response["Cross-Origin-Opener-Policy"] == "unsafe-none"
    link = BeautifulSoup(response.content, "html.parser").select_one("#handoff-link")["href"]
    assert link.startswith(f"{issuer}/auth?")
    query = parse_qs(urlsplit(link).query)
    assert query["redirect_uri"] == ["http://testserver/accounts/oidc/op1/login/callback/"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert len(query["nonce"][0]) >= 32
    assert sorted(query["scope"][0].split()) == ["email", "openid", "profile"]  # not "x"
    assert query["state"][0]


def test_logout_only_by_post_with_token(user_factory):
    user = user_factory(email="rosa@example.test")
    reader = Client(enforce_csrf_checks=True)
    reader.force_login(user)
    assert reader.get("/accounts/logout/").status_code == 200  # a confirm page
    assert reader.post("/accounts/logout/").status_code == 403
    session = json.loads(reader.get("/comments/session/").content)
    assert session["user"]["name"]


def test_a_guest_may_not_use_the_email_of_an_account(
    client, user_factory, thread_factory, comment_data
):
    user_factory(email="rosa@example.test")
    thread = thread_factory()
    client.get(f"/comments/respond/{thread.pk}/")
    data = comment_data(thread, comment="Kept, not lost.", email="ROSA@example.test")
    response = client.post("/comments/post/", data)
    assert response.status_code == 400
    body = response.content.decode()
    assert "belongs to an account on this site" in body
    assert "Kept, not lost.</textarea>" in body
    assert Comment.objects.count() == 0


def test_text_typed_before_a_sign_in_without_javascript_comes_back_once(
    op1_configured, thread_factory
):
    thread = thread_factory()
    reader = Client(enforce_csrf_checks=True)  # a cached page without JavaScript: no token
    reader.post(
        "/comments/identity/start/",
        {
            "thread": thread.pk,
            "identity_provider": "op1",
            "comment": "My draft, kept.",
            "author": "Ana",
        },
    )
    page = reader.get(f"/comments/respond/{thread.pk}/?signin=cancelled")
    assert "My draft, kept.</textarea>" in page.content.decode()
    assert "Logging in was cancelled. Your comment is still here." in page.content.decode()
    session = json.loads(reader.get(f"/comments/session/?thread={thread.pk}").content)
    assert session["draft"]["comment"] == "My draft, kept."
    again = json.loads(reader.get(f"/comments/session/?thread={thread.pk}").content)
    assert again["draft"] is None


def test_provider_names_and_done_page_data_stay_data(client, settings, thread_factory):
    add_oidc_app(
        settings,
        provider_id="op1",
        name=PAYLOAD,
        issuer="https://op.invalid",
        client_id="c",
        secret="s",
    )
    thread = thread_factory()
    page = client.get(f"/comments/respond/{thread.pk}/").content.decode()
    assert PAYLOAD not in page
    assert "<script>alert(1)" not in page
    done = client.get(
        f"/comments/identity/done/?thread={thread.pk}&popup=1&status={PAYLOAD}"
    ).content.decode()
    assert "<script>alert(1)" not in done
    assert '"status": "error"' in done


def test_login_limits_count_the_reader_behind_the_proxy_not_the_proxy(settings, rf):
    """allauth's per-IP limits use the same trusted-proxy rule as comments: behind the site's
    own proxy each reader counts alone, and a forged X-Forwarded-For is not believed."""
    from broadsheet.core import net
    from broadsheet.identity.adapters import AccountAdapter

    settings.BROADSHEET_TRUSTED_PROXIES = ["127.0.0.1"]
    net._trusted.cache_clear()
    try:
        through_proxy = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.7")
        forged = rf.get("/", REMOTE_ADDR="127.0.0.9", HTTP_X_FORWARDED_FOR="127.0.0.8")
        assert AccountAdapter(through_proxy).get_client_ip(through_proxy) == "127.0.0.7"
        assert AccountAdapter(forged).get_client_ip(forged) == "127.0.0.9"
    finally:
        net._trusted.cache_clear()


def test_discovery_overrides_cannot_change_who_signs(settings, oidc_op):
    """An operator may point endpoints elsewhere, never the issuer or its keys."""
    from allauth.socialaccount.adapter import get_adapter
    from django.test import RequestFactory

    settings.BROADSHEET_BASE_URL = "http://testserver"
    issuer = oidc_op("op1", register=False)
    add_oidc_app(
        settings,
        provider_id="op1",
        name="OP1",
        issuer=issuer,
        client_id="broadsheet",
        secret="s3cret",
    )
    providers = dict(settings.SOCIALACCOUNT_PROVIDERS)
    app = providers["openid_connect"]["APPS"][-1]
    app["settings"]["openid_configuration_overrides"] = {
        "issuer": "https://evil.test",
        "jwks_uri": "https://evil.test/jwks",
    }
    settings.SOCIALACCOUNT_PROVIDERS = providers
    request = RequestFactory().get("/")
    provider = get_adapter().get_provider(request, "op1")
    config = provider.get_oauth2_adapter(request).openid_config
    assert config["issuer"] == issuer
    assert config["jwks_uri"].startswith(issuer)


def test_a_comment_records_the_provider_and_shows_its_name_avatar_and_profile(
    client, user_factory, thread_factory, comment_data
):
    user = user_factory(username="rosa", email="")
    user.first_name, user.last_name = "Rosa", "Example"
    user.save()
    client.force_login(user)
    session = client.session
    session["bs_identity"] = {
        "kind": "provider",
        "provider": "mastodon",
        "provider_name": "Mastodon",
        "avatar_url": "https://files.example.test/rosa.png",
        "profile_url": "https://social.example.test/@rosa",
    }
    session.save()
    thread = thread_factory()
    identity = json.loads(client.get("/comments/session/").content)["user"]
    assert identity == {
        "name": "Rosa Example",
        "kind": "provider",
        "provider": "Mastodon",
        "avatar_url": "https://files.example.test/rosa.png",
        "profile_url": "https://social.example.test/@rosa",
    }
    data = comment_data(thread, comment="Signed in from my own server.", author="", email="")
    assert client.post("/comments/post/", data).status_code == 303
    comment = Comment.objects.get()
    assert (comment.identified_by, comment.identity_provider, comment.identity_provider_name) == (
        "provider",
        "mastodon",
        "Mastodon",
    )
    assert comment.author_name == "Rosa Example" and comment.user == user
    assert comment.avatar.url == "https://files.example.test/rosa.png"
    assert 'href="https://social.example.test/@rosa"' in comment.author_link


def test_log_out_without_javascript_keeps_the_text(user_factory, thread_factory):
    thread = thread_factory()
    reader = Client(enforce_csrf_checks=True)
    reader.force_login(user_factory(email="rosa@example.test"))
    page = reader.get(f"/comments/respond/{thread.pk}/")
    assert "You are commenting using your" in page.content.decode()
    token = page.cookies["csrftoken"].value
    data = {"thread": thread.pk, "comment": "Half-written, not lost.", "csrfmiddlewaretoken": token}
    assert reader.post("/comments/identity/logout/", {"thread": thread.pk}).status_code == 403
    response = reader.post("/comments/identity/logout/", data)
    assert response.status_code == 303
    assert response["Location"] == f"/comments/respond/{thread.pk}/#respond"
    page = reader.get(f"/comments/respond/{thread.pk}/").content.decode()
    assert "Half-written, not lost.</textarea>" in page
    assert json.loads(reader.get("/comments/session/").content)["user"] is None
