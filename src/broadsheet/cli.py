"""The `broadsheet` command.

broadsheet demo    migrate, load the demo publication, print how to sign in, serve it
broadsheet serve   serve what is there (granian, WSGI, static files through whitenoise)
broadsheet ...     anything else is a Django management command (migrate, createsuperuser…)
"""

from __future__ import annotations

import os
import sys


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
    granian = [
        sys.executable, "-m", "granian",
        "--interface", "wsgi",
        "--host", args.host,
        "--port", str(args.port),
        "--workers", str(args.workers),
        "--blocking-threads", os.environ.get("BROADSHEET_THREADS", "4"),
        "--no-ws",
        "--log-level", "warning",
        "broadsheet.config.wsgi:application",
    ]  # fmt: skip
    print(f"Serving Broadsheet at http://{args.host}:{args.port}/  (Ctrl+C stops)", flush=True)
    os.execv(sys.executable, granian)  # noqa: S606 — replace this process with the server
    return 0  # pragma: no cover


def demo(argv: list[str]) -> int:
    _setup_django()
    from django.conf import settings

    from broadsheet.publishing.demo import load_demo, reset_demo_editor

    _manage("migrate", "--noinput", "--verbosity", "0")
    summary = load_demo(base_url=settings.BROADSHEET_BASE_URL)
    username, password = reset_demo_editor()
    port = next((a.split("=", 1)[1] for a in argv if a.startswith("--port=")), None)
    port = port or os.environ.get("BROADSHEET_PORT", "8000")
    print(
        f"\nDemo publication loaded ({summary}).\n"
        f"  Site:   http://127.0.0.1:{port}/\n"
        f"  Admin:  http://127.0.0.1:{port}/admin/  user: {username}  password: {password}\n"
        "  (a new password is generated each time the demo starts)\n",
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

    execute_from_command_line(["broadsheet", *argv])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
