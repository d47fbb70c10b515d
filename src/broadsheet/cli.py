"""The `broadsheet` command.

broadsheet demo    migrate, load the demo publication, print how to sign in, serve it
broadsheet serve   serve what is there (granian, WSGI, static files through whitenoise)
broadsheet import-wxr FILE [--uploads DIR] [--dry-run]   move a WordPress site in
broadsheet export-wxr [--output FILE]                     write the site as a WordPress export
broadsheet worker  send the outbox's mail and run background tasks (the demo starts one)
broadsheet ...     anything else is a Django management command (migrate, createsuperuser…)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broadsheet.config.settings")
    import django

    django.setup()


def _manage(*args: str) -> None:
    from django.core.management import call_command

    call_command(*args)


def serve(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="broadsheet serve")
    parser.add_argument("--host", default=os.environ.get("BROADSHEET_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BROADSHEET_PORT", 8000)))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BROADSHEET_WORKERS", 2)))
    parser.add_argument("--no-collectstatic", action="store_true")
    args = parser.parse_args(argv)
    _setup_django()
    if not args.no_collectstatic:
        _manage("collectstatic", "--noinput", "--verbosity", "0")
    from broadsheet.core import pagecache

    # Pages cached by the code or settings that ran before (templates, the site's address)
    # may no longer be what this code renders.
    pagecache.clear()
    granian = [
        sys.executable, "-m", "granian",
        "--interface", "wsgi",
        "--host", args.host,
        "--port", str(args.port),
        "--workers", str(args.workers),
        "--blocking-threads", os.environ.get("BROADSHEET_THREADS", "2"),
        "--no-ws",
        "--log-level", "warning",
        "broadsheet.config.wsgi:application",
    ]  # fmt: skip
    print(f"Serving Broadsheet at http://{args.host}:{args.port}/  (Ctrl+C stops)", flush=True)
    os.execv(sys.executable, granian)  # noqa: S606 — replace this process with the server
    return 0  # pragma: no cover


def _start_demo_identity_provider(base_url: str) -> str | None:
    """With Node and the npm packages present (`make demo` installs them), run a local OpenID
    provider so a newcomer can try "click an icon to log in" in the popup. Any name and any
    password sign in. Skipped when providers are configured already."""
    script = ROOT / "devtools" / "oidc-provider.mjs"
    node = shutil.which("node")
    if (
        os.environ.get("BROADSHEET_SOCIALACCOUNT_PROVIDERS")
        or not node
        or not script.exists()
        or not (ROOT / "node_modules" / "oidc-provider").exists()
    ):
        return None
    var = Path(os.environ.get("BROADSHEET_VAR_DIR", ROOT / "var"))
    var.mkdir(parents=True, exist_ok=True)
    log = var / "demo-oidc-provider.log"
    secret = secrets.token_urlsafe(24)
    with log.open("w") as out:
        subprocess.Popen(  # noqa: S603 — our own script, fixed arguments
            [
                node,
                str(script),
                "--client-id",
                "broadsheet-demo",
                "--client-secret",
                secret,
                "--redirect-uri",
                f"{base_url}/accounts/oidc/demo-id/login/callback/",
                "--exit-with-parent",
            ],
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
    for _ in range(100):  # bounded: 10 s
        first = log.read_text().partition("\n")[0]
        if first:
            issuer = json.loads(first)["issuer"]
            break
        time.sleep(0.1)
    else:
        return None
    os.environ["BROADSHEET_SOCIALACCOUNT_PROVIDERS"] = json.dumps(
        {"openid_connect": {"APPS": [{
            "provider_id": "demo-id", "name": "Demo ID", "client_id": "broadsheet-demo",
            "secret": secret, "settings": {"server_url": issuer},
        }]}}
    )  # fmt: skip
    os.environ["BROADSHEET_ALLOW_HTTP_PROVIDERS"] = "1"
    return issuer


def _start_demo_worker() -> subprocess.Popen:
    """`broadsheet worker` beside the demo server, so notifications are sent (to the console
    unless EMAIL_URL says otherwise). It stops with the server (Ctrl+C reaches both; it also
    exits when its parent is gone)."""
    return subprocess.Popen(  # noqa: S603 — our own command, fixed arguments
        [sys.executable, "-m", "broadsheet.cli", "worker", "--exit-with-parent", "-v", "0"],
        stdin=subprocess.DEVNULL,
    )


def demo(argv: list[str]) -> int:
    port = None
    for i, arg in enumerate(argv):  # --port=N or --port N, as `serve` takes it
        if arg.startswith("--port="):
            port = arg.split("=", 1)[1]
        elif arg == "--port" and i + 1 < len(argv):
            port = argv[i + 1]
    port = port or os.environ.get("BROADSHEET_PORT", "8000")
    os.environ.setdefault("BROADSHEET_BASE_URL", f"http://127.0.0.1:{port}")
    os.environ.setdefault("EMAIL_URL", "console://")  # notifications printed here
    provider = _start_demo_identity_provider(os.environ["BROADSHEET_BASE_URL"].rstrip("/"))
    _setup_django()
    from django.conf import settings

    from broadsheet.publishing.demo import load_demo, reset_demo_editor

    _manage("migrate", "--noinput", "--verbosity", "0")
    summary = load_demo(base_url=settings.BROADSHEET_BASE_URL)
    username, password = reset_demo_editor()
    _start_demo_worker()
    print(
        f"\nDemo publication loaded ({summary}).\n"
        f"  Site:   http://127.0.0.1:{port}/\n"
        f"  Admin:  http://127.0.0.1:{port}/admin/  user: {username}  password: {password}\n"
        "  (a new password is generated each time the demo starts)\n"
        + (
            f'  Log in to comment with "Demo ID" (a local OpenID provider at {provider}):\n'
            "  any name, any password.\n"
            if provider
            else ""
        )
        + "  Mail:   sent by a background worker (broadsheet worker)"
        + (", printed here\n" if os.environ["EMAIL_URL"].startswith("console:") else "\n"),
        flush=True,
    )
    return serve(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else "help"
    if command == "demo":
        return demo(argv[1:])
    if command == "serve":
        return serve(argv[1:])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broadsheet.config.settings")
    from django.core.management import execute_from_command_line

    if command in ("import-wxr", "export-wxr", "nginx-config"):  # Django uses underscores
        argv[0] = command.replace("-", "_")
    execute_from_command_line(["broadsheet", *argv])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
