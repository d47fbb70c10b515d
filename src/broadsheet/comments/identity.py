"""How a commenter was identified. The comments app only knows this shape; which accounts and
providers exist is the business of ``COMMENTS_IDENTITY_RESOLVER`` (a dotted path to a function
``request -> Identity | None``; None means a guest)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Identity:
    GUEST = "guest"
    ACCOUNT = "account"
    PROVIDER = "provider"

    kind: str
    name: str = ""
    provider: str = ""  # the provider's id, e.g. "twitter_oauth2" or an OIDC provider_id
    provider_name: str = ""  # what readers see: "X", "Mastodon", "Example ID"
    avatar_url: str = ""
    profile_url: str = ""


def identity_for(request: HttpRequest) -> Identity | None:
    path = getattr(settings, "COMMENTS_IDENTITY_RESOLVER", "")
    if path:
        return import_string(path)(request)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Identity(kind=Identity.ACCOUNT, name=user.get_full_name() or user.get_username())
    return None
