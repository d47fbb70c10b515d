"""Outbound HTTP to hosts a reader typed (a Mastodon instance), without becoming a way into the
server's own network (SSRF).

Rules, enforced for every request before any socket is opened:

- the host is resolved once, and EVERY address it resolves to must be public: no loopback,
  private, link-local (cloud metadata at 169.254.169.254), carrier-grade NAT, unspecified,
  reserved, multicast, ``0.0.0.0/8`` or IPv6 site-local. IPv6 addresses that carry an IPv4
  address (IPv4-mapped, 6to4, Teredo, NAT64) are judged by the address they carry. A name that
  answers with one public and one private address is refused: the client could pick either.
- the connection goes to the address that was checked, so a DNS answer that changes between the
  check and the connect (DNS rebinding) cannot redirect it; the Host header, TLS SNI and
  certificate check still use the name;
- redirects are not followed, proxies from the environment are not used, a request takes at
  most 5 seconds to connect and read, and a response body over 1 MB is refused.

``BROADSHEET_OUTBOUND_ALLOW_NETWORKS`` lists networks that are allowed anyway; it is empty in
production, and only tests widen it to reach their fake servers on loopback.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils.module_loading import import_string
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]  # (host, port) -> address strings

TIMEOUT = 5.0  # seconds, for connecting and for the whole response
MAX_RESPONSE_BYTES = 1_000_000
DEFAULT_PORTS = {"http": 80, "https": 443}

# Belt and braces next to ipaddress's own flags, which differ between Python versions.
_DENIED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "::/96",  # IPv4-compatible (deprecated)
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",  # site-local (deprecated, still routed by some networks)
        "ff00::/8",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """An outbound request that would not go to a public address, or a response that breaks the
    limits. ``str()`` is safe to show to the reader."""

    def __init__(self, message: str, *, host: str = "", address: str | None = None):
        super().__init__(message)
        self.host = host
        self.address = address


class ResponseTooLarge(Refused, requests.RequestException):
    pass


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def get_resolver() -> Resolver:
    return import_string(settings.BROADSHEET_RESOLVER)


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(n, strict=False)
        for n in getattr(settings, "BROADSHEET_OUTBOUND_ALLOW_NETWORKS", [])
    ]


def embedded(ip: IPAddress) -> list[IPAddress]:
    """The addresses a packet to ``ip`` really goes to: the IPv4 address inside an IPv4-mapped,
    NAT64, 6to4 or Teredo address (Teredo: server and client), else ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return [ip.ipv4_mapped]
        if ip in _NAT64:
            return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
        if ip.sixtofour is not None:
            return [ip.sixtofour]
        if ip.teredo is not None:
            return list(ip.teredo)
    return [ip]


def is_public(ip: IPAddress) -> bool:
    """True only for an address on the public internet."""
    for address in embedded(ip):
        if any(address in net for net in _DENIED_NETWORKS if net.version == address.version):
            return False
        if (
            not address.is_global
            or address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
            or getattr(address, "is_site_local", False)
        ):
            return False
    return True


def _is_allowed(ip: IPAddress, allowed) -> bool:
    if not allowed:
        return False
    candidates = {ip, *embedded(ip)}
    return all(any(c.version == n.version and c in n for n in allowed) for c in candidates)


def vet(host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` and return its addresses if every one of them may be connected to;
    raise ``Refused`` otherwise (and when the name does not resolve)."""
    try:
        answers = get_resolver()(host, port)
    except (OSError, UnicodeError) as error:
        raise Refused(f"{host} could not be found.", host=host) from error
    if not answers:
        raise Refused(f"{host} could not be found.", host=host)
    allowed = _allowed_networks()
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            ip = ipaddress.ip_address(str(answer).split("%", 1)[0])
        except ValueError as error:
            raise Refused(f"{host} gave an unusable address.", host=host) from error
        if not is_public(ip) and not _is_allowed(ip, allowed):
            raise Refused(
                f"{host} points to a private or local network address; "
                "only servers on the public internet can be used.",
                host=host,
                address=str(ip),
            )
        if ip not in addresses:
            addresses.append(ip)
    return addresses


# --- a requests session that connects only to vetted addresses ------------------------------


class _PinnedConnectionMixin:
    """Connects to one of the addresses ``vet`` returned instead of resolving the name again."""

    def __init__(self, *args, pinned_addresses: tuple[str, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.pinned_addresses = pinned_addresses

    def _new_conn(self) -> socket.socket:
        if not self.pinned_addresses:
            raise NewConnectionError(self, "refused: no vetted address to connect to")
        last_error: OSError | None = None
        for address in self.pinned_addresses:
            try:
                return urllib3_connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as error:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from error
            except OSError as error:
                last_error = error
        raise NewConnectionError(self, f"Failed to establish a new connection: {last_error}")


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class _PinnedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class VettedAdapter(HTTPAdapter):
    """Vets the host of every request and hands urllib3 a pool bound to the vetted addresses."""

    def __init__(self) -> None:
        super().__init__(max_retries=0, pool_block=False)
        self._pools: dict[tuple, HTTPConnectionPool] = {}

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        parts = urlsplit(request.url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            raise Refused("Only http and https addresses can be fetched.")
        host = parts.hostname
        port = parts.port or DEFAULT_PORTS[scheme]
        addresses = tuple(str(ip) for ip in vet(host, port))
        _, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        key = (scheme, host, port, addresses, tuple(sorted(pool_kwargs.items())))
        pool = self._pools.get(key)
        if pool is None:
            if scheme == "https":
                pool = _PinnedHTTPSConnectionPool(
                    host, port, maxsize=1, pinned_addresses=addresses, **pool_kwargs
                )
            else:
                pool = _PinnedHTTPConnectionPool(host, port, maxsize=1, pinned_addresses=addresses)
            self._pools[key] = pool
        return pool

    def close(self) -> None:
        super().close()
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


class GuardedSession(requests.Session):
    """``requests.Session`` with the rules above; use as a context manager."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False  # no proxies or .netrc from the environment
        self.proxies = {}
        self.adapters.clear()
        adapter = VettedAdapter()
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self.headers["Accept"] = "application/json"

    def get_redirect_target(self, resp):
        return None  # never follow, and never read a redirect's body outside the size limit

    def send(self, request, **kwargs):
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        kwargs["proxies"] = {}
        kwargs["timeout"] = _capped_timeout(kwargs.get("timeout"))
        started = time.monotonic()
        response = super().send(request, **kwargs)
        try:
            declared = int(response.headers.get("Content-Length") or 0)
        except ValueError:
            declared = 0
        if declared > MAX_RESPONSE_BYTES:
            response.close()
            raise ResponseTooLarge(f"The answer from {urlsplit(request.url).hostname} is too big.")
        body = bytearray()
        try:
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise ResponseTooLarge(
                        f"The answer from {urlsplit(request.url).hostname} is too big."
                    )
                if time.monotonic() - started > TIMEOUT:
                    raise requests.Timeout(f"{request.url} took too long to answer.")
        finally:
            response.close()
        response._content = bytes(body)
        response._content_consumed = True
        return response


def _capped_timeout(timeout) -> float | tuple[float, float]:
    if isinstance(timeout, tuple):
        return tuple(min(t or TIMEOUT, TIMEOUT) for t in timeout)  # type: ignore[return-value]
    return min(timeout or TIMEOUT, TIMEOUT)


def session() -> GuardedSession:
    """A session for requests to hosts a reader typed."""
    return GuardedSession()
