"""A Mastodon instance on loopback that speaks the endpoints Broadsheet uses, as documented at
docs.joinmastodon.org (OAuth, apps, accounts), strictly enough to catch a client mistake:

- ``GET /.well-known/oauth-authorization-server`` (RFC 8414, as Mastodon 4.3 serves it);
- ``POST /api/v1/apps`` counts registrations;
- ``GET /oauth/authorize`` checks the client, the exact redirect URI and PKCE S256, then
  answers as if the reader pressed "Authorize": a 302 back with ``code`` and ``state``;
- ``POST /oauth/token``: single-use codes, client credentials, the exact redirect URI,
  ``sha256(code_verifier) == code_challenge``; also the ``client_credentials`` grant;
- ``GET /api/v1/accounts/verify_credentials`` with a Bearer token; ``GET /api/v1/instance``.

Plus ``Canary``, a TCP listener that only counts connections (SSRF tests expect 0), and
``stub_resolver`` for ``BROADSHEET_RESOLVER``: names ending in ``.test`` in ``NAMES`` resolve
to loopback, nothing else resolves.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

NAMES: dict[str, list[str]] = {
    "a.test": ["127.0.0.1"],
    "b.test": ["127.0.0.1"],
    "loopback.test": ["127.0.0.1"],
}


def stub_resolver(host: str, port: int) -> list[str]:
    try:
        return list(NAMES[host])
    except KeyError:
        raise socket.gaierror(socket.EAI_NONAME, "not in the test's name list") from None


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class FakeMastodon:
    def __init__(self, name: str = "a.test", *, account_id: str = "110", register_delay=0.0):
        self.name = name
        self.register_delay = register_delay
        self.lock = threading.RLock()
        self.hits: Counter[str] = Counter()
        self.hosts: list[str] = []  # Host headers received
        self.registrations = 0
        self.apps: dict[str, dict] = {}
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.authorize_params: list[dict] = []
        self.token_errors: list[str] = []
        # A hostile instance may hand out another instance's client_id (it is public: it is in
        # every authorization URL); set this before the registration to play one.
        self.next_client_id: str | None = None
        self.account = {
            "id": account_id,
            "username": "ana",
            "acct": "ana",
            "display_name": "Ana Reader",
            "avatar": f"https://files.{name}/avatars/ana.png",
            "url": f"https://{name}/@ana",
            "note": "",
        }
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.domain = f"{name}:{self.port}"
        self.issuer = f"http://{self.domain}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeMastodon:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def forget_apps(self) -> None:
        """What an instance admin deleting our app looks like to us."""
        with self.lock:
            self.apps.clear()

    def authorize(self, url: str) -> str:
        """The reader's browser at ``/oauth/authorize`` pressing "Authorize": the URL it is
        sent back to. ``url`` names the instance (``a.test``); the request goes to loopback."""
        parts = urlsplit(url)
        assert parts.netloc == self.domain, url
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            target = f"{parts.path}?{parts.query}"
            connection.sendall(
                f"GET {target} HTTP/1.0\r\nHost: {self.domain}\r\n\r\n".encode("ascii")
            )
            raw = b""
            while chunk := connection.recv(65536):
                raw += chunk
        finally:
            connection.close()
        head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        assert status == 302, raw[:500]
        return headers["location"]

    # --- the server ---------------------------------------------------------------------

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, body, content_type="application/json", headers=None):
                data = json.dumps(body).encode() if content_type == "application/json" else body
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _form(self) -> dict[str, str]:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

            def _query(self) -> dict[str, str]:
                query = urlsplit(self.path).query
                return {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}

            def _record(self) -> str:
                path = urlsplit(self.path).path
                with fake.lock:
                    fake.hits[f"{self.command} {path}"] += 1
                    fake.hosts.append(self.headers.get("Host", ""))
                return path

            def do_GET(self):
                path = self._record()
                if path == "/.well-known/oauth-authorization-server":
                    return self._send(200, fake.metadata())
                if path == "/api/v1/instance":
                    return self._send(200, {"uri": fake.domain, "title": "Fake", "version": "4.3"})
                if path == "/oauth/authorize":
                    return fake.do_authorize(self, self._query())
                if path == "/api/v1/accounts/verify_credentials":
                    auth = self.headers.get("Authorization", "")
                    token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
                    with fake.lock:
                        account = fake.tokens.get(token)
                    if account is None:
                        return self._send(401, {"error": "The access token is invalid"})
                    return self._send(200, account)
                return self._send(404, {"error": "Record not found"})

            def do_POST(self):
                path = self._record()
                form = self._form()
                if path == "/api/v1/apps":
                    return fake.do_register(self, form)
                if path == "/oauth/token":
                    return fake.do_token(self, form)
                return self._send(404, {"error": "Record not found"})

        return Handler

    def metadata(self) -> dict:
        base = f"http://{self.domain}"
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "app_registration_endpoint": f"{base}/api/v1/apps",
            "scopes_supported": ["read", "write", "push", "profile", "read:accounts"],
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    def do_register(self, handler, form: dict) -> None:
        if self.register_delay:
            time.sleep(self.register_delay)  # widens the window two racing sign-ins share
        redirect_uris = form.get("redirect_uris", "").split()
        if not form.get("client_name") or not redirect_uris:
            return handler._send(422, {"error": "Validation failed"})
        client_id = self.next_client_id or secrets.token_urlsafe(16)
        secret = secrets.token_urlsafe(24)
        with self.lock:
            self.registrations += 1
            self.apps[client_id] = {
                "secret": secret,
                "redirect_uris": redirect_uris,
                "scopes": form.get("scopes", "read").split(),
            }
        return handler._send(
            200,
            {
                "id": str(self.registrations),
                "name": form["client_name"],
                "website": form.get("website"),
                "redirect_uri": "\n".join(redirect_uris),
                "redirect_uris": redirect_uris,
                "client_id": client_id,
                "client_secret": secret,
            },
        )

    def do_authorize(self, handler, query: dict) -> None:
        with self.lock:
            self.authorize_params.append(dict(query))
            app = self.apps.get(query.get("client_id", ""))
        problems = []
        if app is None:
            problems.append("unknown client")
        elif query.get("redirect_uri") not in app["redirect_uris"]:
            problems.append("redirect_uri is not registered")
        elif not set(query.get("scope", "").split()) <= set(app["scopes"]):
            problems.append("scope")
        if query.get("response_type") != "code":
            problems.append("response_type")
        if (
            query.get("code_challenge_method") != "S256"
            or len(query.get("code_challenge", "")) != 43
        ):
            problems.append("PKCE S256 required")
        if problems:
            body = f"<h1>An error has occurred</h1><p>{', '.join(problems)}</p>".encode()
            return handler._send(400, body, "text/html; charset=utf-8")
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = {
                "client_id": query["client_id"],
                "redirect_uri": query["redirect_uri"],
                "challenge": query["code_challenge"],
                "used": False,
            }
        back = (
            f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        )
        return handler._send(302, b"", "text/html", {"Location": back})

    def issue_code(self, client_id: str, redirect_uri: str, verifier: str) -> str:
        """A code as if a reader had authorized ``client_id`` here (for mix-up tests)."""
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = {
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "challenge": s256(verifier),
                "used": False,
            }
        return code

    def do_token(self, handler, form: dict) -> None:
        def fail(status: int, error: str):
            with self.lock:
                self.token_errors.append(error)
            return handler._send(status, {"error": error, "error_description": error})

        with self.lock:
            app = self.apps.get(form.get("client_id", ""))
        if app is None or not secrets.compare_digest(app["secret"], form.get("client_secret", "")):
            return fail(401, "invalid_client")
        grant = form.get("grant_type")
        if grant == "client_credentials":
            return handler._send(
                200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer"}
            )
        if grant != "authorization_code":
            return fail(400, "unsupported_grant_type")
        with self.lock:
            issued = self.codes.get(form.get("code", ""))
            if issued is None or issued["used"]:
                return fail(400, "invalid_grant")
            issued["used"] = True
        if issued["client_id"] != form["client_id"]:
            return fail(400, "invalid_grant")
        if issued["redirect_uri"] != form.get("redirect_uri"):
            return fail(400, "invalid_grant")
        if s256(form.get("code_verifier", "")) != issued["challenge"]:
            return fail(400, "invalid_grant")
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = dict(self.account)
        return handler._send(
            200,
            {"access_token": token, "token_type": "Bearer", "scope": "profile", "created_at": 0},
        )


class Canary:
    """Counts every TCP connection to it: an SSRF test passes with ``hits == 0``."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = self.socket.getsockname()[1]
        self.hits = 0
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.closed:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.hits += 1
            connection.close()

    def start(self) -> Canary:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.closed = True
        try:
            self.socket.shutdown(socket.SHUT_RDWR)  # wakes the accept() above on Linux
        except OSError:
            pass
        self.socket.close()
