"""Signing in with a Mastodon account on any instance.

There is no fixed authorization server: the reader names one, so the instance is untrusted
input all the way.

- ``normalise_instance`` turns what the reader typed ("@ana@mastodon.social",
  "https://Mastodon.Social/about") into one canonical host name and refuses IP literals in any
  spelling, local names, ports (outside tests) and URLs with credentials.
- Every request to the instance goes through ``broadsheet.core.netguard``: only public
  addresses, the connection pinned to the address that was checked, no redirects, 5 s, 1 MB.
- The OAuth client is registered on first use (``POST /api/v1/apps``) exactly once, even when
  two readers race, and registered again once when the instance no longer knows it.
- Mix-up defence (RFC 9700 §4.4): each instance has its own redirect URI, the state (bound to
  the session and to this provider by allauth) records the instance, and the callback refuses
  an answer that arrives at another instance's address before any code is exchanged. An ``iss``
  in the answer must be the instance's issuer (RFC 9207).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import socket
from datetime import timedelta
from urllib.parse import urlencode

import idna
import requests
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.helpers import complete_social_login, render_authentication_error
from allauth.socialaccount.internal import statekit
from allauth.socialaccount.models import SocialToken
from allauth.socialaccount.providers.base.constants import AuthError, AuthProcess
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from broadsheet.core import netguard
from broadsheet.identity.oauth import IdentityError, absolute_url, response_issuer_problem

from .models import MastodonApp

PROVIDER_ID = "mastodon"
MAX_INPUT = 300
# An app not used for this long is checked (client_credentials grant) before it is used again:
# an instance that forgot it would show the reader an error page we never hear about.
RECHECK_AFTER = timedelta(days=1)
ACCOUNT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")  # WHATWG URL: "ends in a number" = IPv4
LOCAL_NAMES = ("localhost", "local", "internal", "lan", "home.arpa", "arpa", "invalid", "onion")

EXAMPLE = "Type the address of your Mastodon server, for example mastodon.social."


class InstanceRefused(Exception):
    """The instance a reader typed cannot be used; ``str()`` says why, for the reader."""


class InvalidClient(IdentityError):
    """The instance no longer knows the client we registered."""


# --- the instance name -------------------------------------------------------------------


def scheme() -> str:
    return settings.BROADSHEET_MASTODON_SCHEME


def base_url(domain: str) -> str:
    return f"{scheme()}://{domain}"


def default_issuer(domain: str) -> str:
    return f"{base_url(domain)}/"


def callback_url(domain: str) -> str:
    return absolute_url(reverse("mastodon_callback", kwargs={"instance": domain}))


def split_domain(domain: str) -> tuple[str, int]:
    host, _, port = domain.partition(":")
    return host, int(port) if port else netguard.DEFAULT_PORTS[scheme()]


def _looks_like_ip(host: str) -> bool:
    if NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(host)  # 127.1, 0x7f.1, 0177.0.0.1, 2130706433
        return True
    except (OSError, ValueError):
        return False


def normalise_instance(text: str) -> str:
    """The canonical ``host`` (``host:port`` where ports are allowed) of the Mastodon server a
    reader named, as an IDNA (ASCII) lower-case name, or ``InstanceRefused``."""
    value = (text or "").strip()
    if not value:
        raise InstanceRefused(EXAMPLE)
    if len(value) > MAX_INPUT or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise InstanceRefused(f"That is not the address of a server. {EXAMPLE}")
    if "://" in value:
        url_scheme, _, rest = value.partition("://")
        if url_scheme.lower() not in ("http", "https"):
            raise InstanceRefused(f"That is not the address of a server. {EXAMPLE}")
        value = re.split(r"[/?#\\]", rest, maxsplit=1)[0]
        if "@" in value:
            raise InstanceRefused(f"Leave out the name and password from the address. {EXAMPLE}")
    else:
        value = re.split(r"[/?#\\]", value.lstrip("@"), maxsplit=1)[0]
        if "@" in value:  # a handle: alice@mastodon.social
            user, _, value = value.partition("@")
            if not user or "@" in value:
                raise InstanceRefused(f"That is not the address of a server. {EXAMPLE}")
    if value.startswith("[") or value.count(":") > 1:
        raise InstanceRefused(f"Type the server's name, not an IP address. {EXAMPLE}")
    host, colon, port_text = value.partition(":")
    port = None
    if colon:
        if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
            raise InstanceRefused(f"That is not the address of a server. {EXAMPLE}")
        port = int(port_text)
        if port == netguard.DEFAULT_PORTS[scheme()]:
            port = None
        elif not getattr(settings, "BROADSHEET_MASTODON_ALLOW_PORTS", False):
            raise InstanceRefused(f"Leave out the port number (“:{port}”). {EXAMPLE}")
    host = host.rstrip(".").lower()
    if _looks_like_ip(host):
        raise InstanceRefused(f"Type the server's name, not an IP address. {EXAMPLE}")
    try:
        host = idna.encode(host, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        raise InstanceRefused(f"That is not the address of a server. {EXAMPLE}") from None
    if _looks_like_ip(host):  # full-width digits and dots become an IP address after mapping
        raise InstanceRefused(f"Type the server's name, not an IP address. {EXAMPLE}")
    labels = host.split(".")
    if len(host) > 253 or not all(LABEL.fullmatch(label) for label in labels):
        raise InstanceRefused(f"That is not the address of a server. {EXAMPLE}")
    if len(labels) < 2 or any(host == name or host.endswith(f".{name}") for name in LOCAL_NAMES):
        raise InstanceRefused(f"“{host}” is not a server on the internet. {EXAMPLE}")
    return f"{host}:{port}" if port else host


# --- talking to the instance ----------------------------------------------------------------


def _json(response: requests.Response, what: str) -> dict:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise IdentityError(f"{what}: the answer (HTTP {response.status_code}) is not JSON")
    return data


def _string(data: dict, key: str, limit: int = 500) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise IdentityError(f"the answer has no usable {key!r}")
    return value


def _metadata(domain: str, http: netguard.GuardedSession) -> dict:
    """RFC 8414 metadata (Mastodon 4.3+), or ``{}`` for an older server that at least answers
    the Mastodon instance API."""
    base = base_url(domain)
    response = http.get(f"{base}/.well-known/oauth-authorization-server")
    if response.status_code == 200:
        metadata = _json(response, "metadata")
        issuer = metadata.get("issuer")
        if not isinstance(issuer, str) or issuer.rstrip("/") != base:
            raise InstanceRefused(f"{domain} describes itself as another server.")
        methods = metadata.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise InstanceRefused(f"{domain} does not offer the secure way of signing in.")
        return metadata
    response = http.get(f"{base}/api/v1/instance")
    if response.status_code != 200:
        raise InstanceRefused(f"{domain} does not look like a Mastodon server.")
    _json(response, "instance")
    return {}


def _register(domain: str, http: netguard.GuardedSession) -> dict:
    metadata = _metadata(domain, http)
    supported = metadata.get("scopes_supported") or []
    scopes = "profile" if "profile" in supported else "read:accounts"
    redirect_uri = callback_url(domain)
    response = http.post(
        f"{base_url(domain)}/api/v1/apps",
        data={
            "client_name": settings.WAGTAIL_SITE_NAME,
            "redirect_uris": redirect_uri,
            "scopes": scopes,
            "website": settings.BROADSHEET_BASE_URL,
        },
    )
    if response.status_code != 200:
        raise InstanceRefused(
            f"{domain} did not let this site register (HTTP {response.status_code})."
        )
    data = _json(response, "app registration")
    return {
        "client_id": _string(data, "client_id", 255),
        "client_secret": _string(data, "client_secret", 255),
        "redirect_uri": redirect_uri,
        "scopes": scopes,
        "issuer": metadata.get("issuer") or default_issuer(domain),
    }


def _get_or_create(domain: str, http: netguard.GuardedSession) -> MastodonApp:
    app = MastodonApp.objects.filter(domain=domain).first()
    if app is not None:
        return app
    try:
        # The row is created and filled in one transaction, so a second reader waits for it
        # (SQLite: BEGIN IMMEDIATE; PostgreSQL: the unique index) instead of registering again.
        with transaction.atomic():
            app, created = MastodonApp.objects.get_or_create(domain=domain)
            if created:
                for field, value in _register(domain, http).items():
                    setattr(app, field, value)
                app.last_used_at = timezone.now()
                app.save()
    except IntegrityError:
        app = MastodonApp.objects.get(domain=domain)
    return app


def _client_is_known(app: MastodonApp, http: netguard.GuardedSession) -> bool:
    if app.last_used_at and timezone.now() - app.last_used_at < RECHECK_AFTER:
        return True
    response = http.post(
        f"{base_url(app.domain)}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "scope": app.scopes,
        },
    )
    if response.status_code in (400, 401) and _error_code(response) == "invalid_client":
        return False
    MastodonApp.objects.filter(pk=app.pk).update(last_used_at=timezone.now())
    return True


def _error_code(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def get_or_register(domain: str, http: netguard.GuardedSession) -> MastodonApp:
    """This site's client at ``domain``, registered on first use and once more when the
    instance has forgotten it or the site moved (its redirect URI changed)."""
    for _attempt in range(2):
        app = _get_or_create(domain, http)
        if app.redirect_uri == callback_url(domain) and _client_is_known(app, http):
            return app
        MastodonApp.objects.filter(pk=app.pk, client_id=app.client_id).delete()
    raise InstanceRefused(f"{domain} did not accept this site's registration. Try again later.")


def enabled() -> bool:
    return bool(settings.SOCIALACCOUNT_PROVIDERS.get(PROVIDER_ID, {}).get("ENABLED"))


def start(request: HttpRequest, instance: str, next_url: str | None) -> HttpResponse:
    """Begin signing in at the instance the reader typed: the redirect to its authorization
    page. ``InstanceRefused`` (with a message for the reader) when that instance cannot be
    used; nothing is sent anywhere before the name and its addresses are checked."""
    if not enabled():
        raise InstanceRefused("Signing in with Mastodon is not available on this site.")
    domain = normalise_instance(instance)
    if next_url and not get_account_adapter(request).is_safe_url(next_url):
        next_url = None
    provider = get_adapter(request).get_provider(request, PROVIDER_ID)
    try:
        with netguard.session() as http:
            netguard.vet(*split_domain(domain))  # a clear answer before anything is stored
            app = get_or_register(domain, http)
    except netguard.Refused as refused:
        raise InstanceRefused(f"{refused} {EXAMPLE}") from refused
    except (requests.RequestException, IdentityError) as error:
        raise InstanceRefused(
            f"{domain} could not be reached or did not answer like a Mastodon server. "
            "Check the address and try again."
        ) from error
    pkce = provider.get_pkce_params()
    state_id = provider.stash_redirect_state(
        request,
        AuthProcess.LOGIN,
        next_url,
        None,
        pkce_code_verifier=pkce["code_verifier"],
        instance=domain,
        client_id=app.client_id,
        issuer=app.issuer or default_issuer(domain),
        iss_required=False,  # Mastodon does not send iss yet (mastodon/mastodon#31116)
    )
    challenge = pkce["code_challenge"]
    query = urlencode(
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": app.redirect_uri,
            "scope": app.scopes,
            "state": state_id,
            "code_challenge": challenge.decode() if isinstance(challenge, bytes) else challenge,
            "code_challenge_method": "S256",
        }
    )
    return HttpResponseRedirect(f"{base_url(domain)}/oauth/authorize?{query}")


# --- the callback ------------------------------------------------------------------------


def _same(a, b) -> bool:
    return isinstance(a, str) and isinstance(b, str) and hmac.compare_digest(a.encode(), b.encode())


def _exchange(http: netguard.GuardedSession, app: MastodonApp, code: str, verifier) -> str:
    response = http.post(
        f"{base_url(app.domain)}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "redirect_uri": app.redirect_uri,
            "code_verifier": verifier or "",
        },
    )
    if response.status_code != 200:
        error = _error_code(response)
        if error == "invalid_client":
            raise InvalidClient(f"{app.domain} no longer knows this site's client")
        raise IdentityError(f"{app.domain} refused the code: {error or response.status_code}")
    data = _json(response, "token")
    if "iss" in data and not _same(data["iss"], app.issuer or default_issuer(app.domain)):
        raise IdentityError(f"the token came from issuer {data['iss']!r}")
    return _string(data, "access_token", 2000)


def _account(http: netguard.GuardedSession, app: MastodonApp, token: str) -> dict:
    response = http.get(
        f"{base_url(app.domain)}/api/v1/accounts/verify_credentials",
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code != 200:
        raise IdentityError(f"{app.domain} did not say who signed in ({response.status_code})")
    data = _json(response, "account")
    account_id = data.get("id")
    if not isinstance(account_id, str) or not ACCOUNT_ID.fullmatch(account_id):
        raise IdentityError("the account has no usable id")
    account = {"id": account_id, "bs_instance": app.domain, "bs_issuer": app.issuer}
    for key, limit in (("username", 100), ("acct", 300), ("display_name", 200)):
        value = data.get(key)
        account[key] = value[:limit] if isinstance(value, str) else ""
    for key in ("avatar", "url"):
        value = data.get(key)
        account[key] = value if isinstance(value, str) and len(value) <= 500 else ""
    return account


def finish(request: HttpRequest, instance: str) -> HttpResponse:
    """The instance's answer, at ``/accounts/mastodon/<instance>/login/callback/``."""
    provider = get_adapter(request).get_provider(request, PROVIDER_ID)
    state_id = request.GET.get("state", "")
    state = None
    if state_id:
        state = statekit.unstash_state(request, state_id=state_id, provider_id=provider.sub_id)
    if state is None:
        return render_authentication_error(request, provider, extra_context={"state_id": state_id})

    def refuse(reason: str, error=AuthError.UNKNOWN) -> HttpResponse:
        return render_authentication_error(
            request,
            provider,
            error=error,
            exception=IdentityError(reason),
            extra_context={"state": state},
        )

    # Mix-up: an answer meant for (or from) another instance, before anything is exchanged.
    if not _same(state.get("instance"), instance):
        return refuse(
            f"this sign-in began at {state.get('instance')!r}, answer sent to {instance!r}"
        )
    problem = response_issuer_problem(request, state)
    if problem:
        return refuse(problem)
    if "error" in request.GET or "code" not in request.GET:
        cancelled = request.GET.get("error") == "access_denied"
        return refuse(
            f"{instance} answered {request.GET.get('error', 'without a code')!r}",
            AuthError.CANCELLED if cancelled else AuthError.UNKNOWN,
        )
    app = MastodonApp.objects.filter(domain=instance).first()
    if app is None or not _same(app.client_id, state.get("client_id")):
        return refuse(f"the client registered at {instance} changed during the sign-in")
    try:
        with netguard.session() as http:
            token = _exchange(http, app, request.GET["code"], state.get("pkce_code_verifier"))
            account = _account(http, app, token)
    except InvalidClient as error:
        MastodonApp.objects.filter(pk=app.pk, client_id=app.client_id).delete()
        return refuse(f"{error}; it will be registered again on the next try")
    except (netguard.Refused, requests.RequestException, IdentityError) as error:
        return refuse(str(error))
    MastodonApp.objects.filter(pk=app.pk).update(last_used_at=timezone.now())
    login = provider.sociallogin_from_response(request, account)
    login.token = SocialToken(token=token)
    login.state = state
    return complete_social_login(request, login)
