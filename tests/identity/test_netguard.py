"""O08 (SSRF) at the unit level: which addresses ``netguard.vet`` lets a request reach, what the
guarded session does with redirects, big answers and proxies, and which instance names
``normalise_instance`` accepts. Only loopback is ever connected to."""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from broadsheet.core import netguard
from broadsheet.identity.mastodon.flows import InstanceRefused, normalise_instance

from .fake_mastodon import Canary, FakeMastodon

ANSWERS: dict[str, list[str]] = {}


def resolver(host: str, port: int) -> list[str]:
    if host not in ANSWERS:
        raise socket.gaierror(socket.EAI_NONAME, "unknown")
    return ANSWERS[host]


@pytest.fixture
def answers(settings):
    settings.BROADSHEET_RESOLVER = "tests.identity.test_netguard.resolver"
    settings.BROADSHEET_OUTBOUND_ALLOW_NETWORKS = []
    ANSWERS.clear()
    yield ANSWERS
    ANSWERS.clear()


@pytest.fixture
def canary():
    c = Canary().start()
    yield c
    c.stop()


REFUSED = [
    "127.0.0.1",
    "127.255.255.254",
    "::1",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "fe80::1",
    "fe80::1%eth0",
    "100.64.0.1",  # carrier-grade NAT
    "100.127.255.255",
    "0.0.0.0",
    "0.1.2.3",
    "::",
    "192.0.0.1",
    "198.18.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "224.0.0.1",
    "ff02::1",
    "fec0::1",  # site-local
    "fc00::1",
    "fd12:3456::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::7f00:1",  # IPv4-compatible
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::1",  # local-use NAT64
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2001:0:808:808::80ff:fffe",  # Teredo, client 127.0.0.1
]

PUBLIC = [
    "93.184.216.34",
    "8.8.8.8",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize("address", REFUSED)
def test_vet_refuses_a_name_that_resolves_to_a_non_public_address(answers, address):
    answers["instance.example"] = [address]
    with pytest.raises(netguard.Refused) as refused:
        netguard.vet("instance.example", 443)
    assert ipaddress.ip_address(refused.value.address) == ipaddress.ip_address(
        address.split("%")[0]
    )
    assert "only servers on the public internet" in str(refused.value)


@pytest.mark.parametrize("address", PUBLIC)
def test_vet_accepts_a_public_address(answers, address):
    answers["instance.example"] = [address]
    assert netguard.vet("instance.example", 443) == [ipaddress.ip_address(address)]


@pytest.mark.parametrize(
    "mixed",
    [["93.184.216.34", "127.0.0.1"], ["10.0.0.1", "93.184.216.34"], ["2606:4700::1", "::1"]],
)
def test_vet_refuses_when_any_answer_is_private(answers, mixed):
    answers["instance.example"] = mixed
    with pytest.raises(netguard.Refused):
        netguard.vet("instance.example", 443)


@pytest.mark.parametrize("reply", [[], ["not-an-address"]])
def test_vet_refuses_empty_or_unusable_answers(answers, reply):
    answers["instance.example"] = reply
    with pytest.raises(netguard.Refused):
        netguard.vet("instance.example", 443)


def test_vet_refuses_a_name_that_does_not_resolve(answers):
    with pytest.raises(netguard.Refused, match="could not be found"):
        netguard.vet("nowhere.example", 443)


def test_allowlist_opens_only_the_listed_network(answers, settings):
    settings.BROADSHEET_OUTBOUND_ALLOW_NETWORKS = ["127.0.0.1/32"]
    answers["one.test"] = ["127.0.0.1"]
    answers["two.test"] = ["127.0.0.2"]
    assert [str(ip) for ip in netguard.vet("one.test", 80)] == ["127.0.0.1"]
    with pytest.raises(netguard.Refused):
        netguard.vet("two.test", 80)


def test_system_resolver_is_the_default(settings):
    assert settings.BROADSHEET_RESOLVER == "broadsheet.core.netguard.system_resolver"
    assert netguard.get_resolver() is netguard.system_resolver
    assert "127.0.0.1" in netguard.system_resolver("127.0.0.1", 80)


# --- the guarded session ---------------------------------------------------------------------


class _Odd(BaseHTTPRequestHandler):
    target = ""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", self.target)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/big":
            body = b"x" * (netguard.MAX_RESPONSE_BYTES + 1)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/big-unannounced":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()  # no Content-Length: read until close
            for _ in range(40):
                self.wfile.write(b"y" * 64 * 1024)


@pytest.fixture
def odd_server(canary):
    handler = type("Handler", (_Odd,), {"target": f"http://127.0.0.1:{canary.port}/"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def loopback_allowed(answers, settings):
    settings.BROADSHEET_OUTBOUND_ALLOW_NETWORKS = ["127.0.0.1/32"]
    answers["a.test"] = ["127.0.0.1"]
    return answers


def test_session_connects_to_the_vetted_address_with_the_name_as_host(
    loopback_allowed, monkeypatch
):
    fake = FakeMastodon("a.test").start()
    looked_up: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def spy(host, *args, **kwargs):
        looked_up.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    try:
        with netguard.session() as http:
            response = http.get(f"http://{fake.domain}/api/v1/instance")
    finally:
        fake.stop()
    assert response.status_code == 200
    assert response.json()["uri"] == fake.domain
    assert fake.hosts == [fake.domain]  # the Host header names the instance
    assert "a.test" not in looked_up  # no second lookup that DNS rebinding could answer


def test_session_never_follows_a_redirect(loopback_allowed, odd_server, canary):
    with netguard.session() as http:
        response = http.get(f"http://a.test:{odd_server}/redirect", allow_redirects=True)
    assert response.status_code == 302
    assert canary.hits == 0


@pytest.mark.parametrize("path", ["/big", "/big-unannounced"])
def test_session_refuses_an_answer_over_one_megabyte(loopback_allowed, odd_server, path):
    with netguard.session() as http, pytest.raises(netguard.ResponseTooLarge):
        http.get(f"http://a.test:{odd_server}{path}")


def test_session_refuses_a_private_address_before_connecting(answers, canary):
    answers["loopback.test"] = ["127.0.0.1"]
    with netguard.session() as http, pytest.raises(netguard.Refused):
        http.get(f"http://loopback.test:{canary.port}/")
    with netguard.session() as http, pytest.raises(netguard.Refused):
        http.get(f"http://127.0.0.1:{canary.port}/")
    assert canary.hits == 0


def test_session_ignores_proxies_from_the_environment(loopback_allowed, canary, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{canary.port}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{canary.port}")
    fake = FakeMastodon("a.test").start()
    try:
        with netguard.session() as http:
            assert http.get(f"http://{fake.domain}/api/v1/instance").status_code == 200
    finally:
        fake.stop()
    assert canary.hits == 0


def test_session_caps_the_timeout():
    assert netguard._capped_timeout(None) == netguard.TIMEOUT
    assert netguard._capped_timeout(60) == netguard.TIMEOUT
    assert netguard._capped_timeout((1, 60)) == (1, netguard.TIMEOUT)


def test_session_refuses_other_schemes(loopback_allowed):
    with netguard.session() as http, pytest.raises((netguard.Refused, requests.RequestException)):
        http.get("file:///etc/passwd")


# --- instance names --------------------------------------------------------------------------


@pytest.fixture
def ports_allowed(settings):
    settings.BROADSHEET_MASTODON_ALLOW_PORTS = True
    settings.BROADSHEET_MASTODON_SCHEME = "https"


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1:{port}",
        "127.0.0.1",
        "http://127.0.0.1:{port}/",
        "[::1]",
        "[::1]:{port}",
        "::1",
        "2130706433",
        "2130706433:{port}",
        "0177.0.0.1",
        "0x7f.1",
        "0x7f000001",
        "127.1",
        "169.254.169.254",
        "0xa9.0xfe.0xa9.0xfe",
        "１２７．０．０．１",  # full-width digits and dots
        "user@127.0.0.1",
    ],
)
def test_instance_given_as_an_ip_address_is_refused(ports_allowed, text):
    with pytest.raises(InstanceRefused, match="not an IP address"):
        normalise_instance(text.format(port=8123))


@pytest.mark.parametrize(
    "text",
    ["localhost", "localhost:3000", "LOCALHOST.", "api.localhost", "printer.local", "intranet"],
)
def test_local_names_are_refused(ports_allowed, text):
    with pytest.raises(InstanceRefused, match="is not a server on the internet"):
        normalise_instance(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "mastodon social",
        "a..b.example",
        "-bad.example",
        "bad_.example",
        "ftp://mastodon.social",
        "javascript:alert(1)",
        "mastodon.social:0",
        "mastodon.social:99999",
        "@alice@",
        "@alice@bob@mastodon.social",
        "a" * 400,
        "x" * 64 + ".example",
    ],
)
def test_unusable_input_is_refused(ports_allowed, text):
    with pytest.raises(InstanceRefused) as refused:
        normalise_instance(text)
    assert "for example mastodon.social" in str(refused.value)


@pytest.mark.parametrize(
    "text", ["https://user:secret@mastodon.social/", "https://mastodon.social@127.0.0.1/"]
)
def test_credentials_in_an_address_are_refused(ports_allowed, text):
    with pytest.raises(InstanceRefused, match="Leave out the name and password"):
        normalise_instance(text)


def test_a_port_is_refused_unless_allowed(settings):
    settings.BROADSHEET_MASTODON_ALLOW_PORTS = False
    settings.BROADSHEET_MASTODON_SCHEME = "https"
    with pytest.raises(InstanceRefused, match="Leave out the port number"):
        normalise_instance("mastodon.social:8443")
    assert normalise_instance("mastodon.social:443") == "mastodon.social"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mastodon.social", "mastodon.social"),
        ("  Mastodon.Social.  ", "mastodon.social"),
        ("@alice@mastodon.social", "mastodon.social"),
        ("alice@mastodon.social", "mastodon.social"),
        ("user@host.example", "host.example"),
        ("https://mastodon.social/@alice", "mastodon.social"),
        ("https://mastodon.social:443/about?x=1#top", "mastodon.social"),
        ("http://Mastodon.Social/path", "mastodon.social"),
        ("mastodon.social/@alice", "mastodon.social"),
        ("mastodon.social\\@evil.example", "mastodon.social"),
        ("mästodon.example", "xn--mstodon-5wa.example"),
        ("https://MÄSTODON.example/", "xn--mstodon-5wa.example"),
        ("ＭＡＳＴＯＤＯＮ。social", "mastodon.social"),
        ("a.test:8123", "a.test:8123"),
        ("1.2.3.4.nip.example", "1.2.3.4.nip.example"),  # a name; vet() judges its addresses
    ],
)
def test_instance_is_normalised(ports_allowed, text, expected):
    assert normalise_instance(text) == expected


# --- TLS: connected to the vetted address, verified against the name ---------------------------


def _self_signed(tmp_path, name: str):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


@pytest.fixture
def tls_server(tmp_path):
    import ssl

    servers = []

    def make(cert_name: str):
        cert_file, key_file = _self_signed(tmp_path, cert_name)
        seen: list[str | None] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        context.sni_callback = lambda sock, server_name, ctx: seen.append(server_name)

        class Hello(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = b'{"host": "%s"}' % self.headers["Host"].encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1], cert_file, seen

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def test_https_uses_the_name_for_sni_and_the_certificate(loopback_allowed, tls_server):
    port, cert_file, seen = tls_server("a.test")
    with netguard.session() as http:
        response = http.get(f"https://a.test:{port}/", verify=cert_file)
    assert response.json() == {"host": f"a.test:{port}"}
    assert seen == ["a.test"]


def test_https_refuses_a_certificate_for_another_name(loopback_allowed, tls_server):
    port, cert_file, _ = tls_server("other.test")
    with netguard.session() as http, pytest.raises(requests.exceptions.SSLError):
        http.get(f"https://a.test:{port}/", verify=cert_file)
