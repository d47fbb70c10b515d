"""A real OpenID provider (npm oidc-provider) on loopback, started per test."""

from __future__ import annotations

import copy
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
OP_SCRIPT = ROOT / "devtools" / "oidc-provider.mjs"


def _first_line(stream, timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    return lines.get(timeout=timeout)


def add_oidc_app(
    settings, *, provider_id: str, name: str, issuer: str, client_id: str, secret: str
) -> None:
    providers = copy.deepcopy(settings.SOCIALACCOUNT_PROVIDERS)
    apps = providers.setdefault("openid_connect", {}).setdefault("APPS", [])
    apps.append(
        {
            "provider_id": provider_id,
            "name": name,
            "client_id": client_id,
            "secret": secret,
            "settings": {"server_url": issuer},
        }
    )
    settings.SOCIALACCOUNT_PROVIDERS = providers


@pytest.fixture
def oidc_op(settings):
    """Start an oidc-provider for a provider id: ``issuer = oidc_op("op1", name="OP1")``.
    Registers it with the site (at ``BROADSHEET_BASE_URL``) as an OpenID Connect app, as an
    operator would."""
    node = shutil.which("node")
    if not node or not (ROOT / "node_modules" / "oidc-provider").exists():
        message = "node and `npm ci` (oidc-provider) are needed for the OpenID provider tests"
        if os.environ.get("BROADSHEET_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    processes = []

    def start(
        provider_id="op1",
        *,
        name=None,
        client_id="broadsheet",
        secret="s3cret",
        register=True,
        env=None,
    ):
        callback = f"{settings.BROADSHEET_BASE_URL}/accounts/oidc/{provider_id}/login/callback/"
        process = subprocess.Popen(  # noqa: S603 — our own script, fixed arguments
            [
                node,
                str(OP_SCRIPT),
                "--client-id",
                client_id,
                "--client-secret",
                secret,
                "--redirect-uri",
                callback,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
        )
        processes.append(process)
        issuer = json.loads(_first_line(process.stdout, 20))["issuer"]
        deadline = time.monotonic() + 10
        while True:
            try:
                if requests.get(f"{issuer}/.well-known/openid-configuration", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("oidc-provider did not start")
            time.sleep(0.1)
        if register:
            add_oidc_app(
                settings,
                provider_id=provider_id,
                name=name or provider_id.upper(),
                issuer=issuer,
                client_id=client_id,
                secret=secret,
            )
        return issuer

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()


def op_login(page, login="alice"):
    """oidc-provider's development login, then its consent page."""
    import re

    page.wait_for_url(re.compile(r"/interaction/"))
    page.fill('input[name="login"]', login)
    page.fill('input[name="password"]', "anything")
    page.click('button[type="submit"]')
    page.wait_for_url(re.compile(r"/interaction/.*"))
    page.wait_for_selector("text=Authorize")
    page.click('button[type="submit"]')


@pytest.fixture
def demo_article(db):
    """The demo publication in the test database; returns the seed article's path."""
    from broadsheet.comments.models import Thread
    from broadsheet.publishing.demo import load_demo

    load_demo(base_url="http://testserver")
    return max(Thread.objects.all(), key=lambda t: t.comments.count()).url
