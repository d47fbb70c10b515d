"""Who the reader is, for the comment form: a site account or an identity from a provider.

The identity a reader signed in with is recorded in their session at sign-in (signals.py) and
read back here; the comments app asks through ``COMMENTS_IDENTITY_RESOLVER``, so it knows
nothing about allauth.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest

from broadsheet.comments.identity import Identity
from broadsheet.core.html import safe_url

SESSION_KEY = "bs_identity"


def remember(request: HttpRequest, user, sociallogin=None) -> None:
    if sociallogin is None:
        request.session[SESSION_KEY] = {"kind": Identity.ACCOUNT}
        return
    provider = sociallogin.account.get_provider(request)
    account = sociallogin.account.get_provider_account()
    request.session[SESSION_KEY] = {
        "kind": Identity.PROVIDER,
        "provider": provider.sub_id,
        "provider_name": provider.name,
        "avatar_url": https_only(account.get_avatar_url()),
        "profile_url": https_only(account.get_profile_url()),
    }


def https_only(url) -> str:
    url = str(url or "")[:500]
    return url if url.startswith("https://") and safe_url(url) else ""


def current_identity(request: HttpRequest) -> Identity | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    stored = request.session.get(SESSION_KEY) or {"kind": Identity.ACCOUNT}
    name = user.get_full_name().strip() or user.get_username()
    if stored.get("kind") != Identity.PROVIDER:
        return Identity(kind=Identity.ACCOUNT, name=name)
    return Identity(
        kind=Identity.PROVIDER,
        name=name,
        provider=stored.get("provider", ""),
        provider_name=stored.get("provider_name", ""),
        avatar_url=stored.get("avatar_url", ""),
        profile_url=stored.get("profile_url", ""),
    )


@dataclass(frozen=True)
class Choice:
    """One icon of "click an icon to log in"."""

    key: str  # what the form sends: "site", a provider's id, or "mastodon"
    name: str  # "X", "Facebook", "Example ID"
    kind: str  # "site", "provider" or "mastodon"
    brand: str  # CSS hook for the icon: "site", "twitter_oauth2", "openid_connect", ...


def choices(request: HttpRequest) -> list[Choice]:
    """The site's own account first, then each provider that is configured (and only those)."""
    from allauth.socialaccount.adapter import get_adapter

    found = [Choice("site", f"{settings.WAGTAIL_SITE_NAME} account", "site", "site")]
    providers = get_adapter().list_providers(request)
    for provider in sorted(providers, key=lambda p: p.id == "mastodon"):  # Mastodon asks more
        kind = "mastodon" if provider.id == "mastodon" else "provider"
        found.append(Choice(provider.sub_id, provider.name, kind, provider.id))
    return found


def choice(request: HttpRequest, key: str) -> Choice | None:
    return next((c for c in choices(request) if c.key == key), None)
