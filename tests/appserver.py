"""A real Broadsheet app server (``broadsheet serve``: granian, WSGI) on a free loopback port,
and a reader that posts comments to it as a browser does. For the reliability rows (R01–R03)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
BROADSHEET = str(Path(sys.executable).with_name("broadsheet"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(settings_dict: dict, *, port: int | None = None) -> str:
    """The URL of the database pytest-django set up for this run (SQLite file or PostgreSQL),
    optionally through another port on loopback (a proxy)."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    return (
        f"postgres://{user}{password}@{host}:{port or settings_dict.get('PORT') or 5432}"
        f"/{settings_dict['NAME']}"
    )


def server_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        # The settings module under test (the suite's own, unless the environment names one).
        "DJANGO_SETTINGS_MODULE": os.environ.get(
            "DJANGO_SETTINGS_MODULE", "broadsheet.config.settings"
        ),
        "BROADSHEET_VAR_DIR": str(var_dir),
        "BROADSHEET_PLAIN_STATIC": "1",
        "BROADSHEET_TRUSTED_PROXIES": "",
        "COMMENTS_FORM_MIN_SECONDS": "0",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p
        ),
        "REDIS_URL": "",
        # What R01–R03 measure is the application and its database: no shared page cache.
        "BROADSHEET_PAGE_CACHE_DIR": "off",
    }
    env.update(overrides)
    return env


class AppServer:
    """``broadsheet serve --workers N`` in its own process group; ``stop()`` ends it."""

    def __init__(self, env: dict[str, str], log: Path, *, workers: int = 1, threads: int = 4):
        self.env = {**env, "BROADSHEET_THREADS": str(threads)}
        self.log = log
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, *, wait_path: str = "/healthz", timeout: float = 60) -> AppServer:
        self.process = subprocess.Popen(
            [BROADSHEET, "serve", "--port", str(self.port), "--workers", str(self.workers),
             "--no-collectstatic"],
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("a"),
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the app server exited ({self.process.returncode}); see {self.log}")
            try:
                if httpx.get(self.base + wait_path, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"the app server did not answer {wait_path} within {timeout:.0f} s")

    def worker_pids(self) -> list[int]:
        """Granian's worker processes (children of its main process)."""
        if self.process is None:
            return []
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # "pid (name) state ppid …"; the name may hold spaces, so split after ")".
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def kill9(self) -> None:
        """SIGKILL to the whole server: main process and workers, mid-request."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


def prepare_site(*, base_url: str, **discussion) -> tuple[int, str]:
    """The demo publication in the test database (committed: call from a transactional test),
    with the given discussion settings; returns the seed article's thread id and its URL."""
    from wagtail.models import Site

    from broadsheet.comments.models import Thread
    from broadsheet.publishing.demo import load_demo
    from broadsheet.publishing.discussion import DiscussionSettings

    load_demo(base_url=base_url)
    DiscussionSettings.objects.update_or_create(
        site=Site.objects.get(is_default_site=True), defaults=discussion
    )
    thread = Thread.objects.get(title__startswith="Greetings from Lugansk Communists")
    return thread.pk, thread.url


# Anti-automation out of the way (R01–R03 are not about it): no flood wait, generous limits.
OPEN_LIMITS = {
    "flood_seconds": 0,
    "rate_per_minute_ip": 100_000,
    "rate_per_hour_ip": 1_000_000,
    "rate_per_minute_email": 100_000,
    "rate_per_minute_account": 100_000,
    "manual_approval": False,
}


@dataclass
class Commenter:
    """One browser: fetches the form's personal parts as comments.js does, then posts."""

    base: str
    thread_id: int
    name: str = "Reader"
    timeout: float = 10
    client: httpx.Client = field(init=False)
    session: dict | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.client = httpx.Client(timeout=self.timeout, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def ready(self) -> bool:
        try:
            response = self.client.get(
                f"{self.base}/comments/session/", params={"thread": self.thread_id}
            )
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        self.session = response.json()
        return True

    def post(self, text: str, *, key: str, email: str | None = None) -> httpx.Response:
        """Raises httpx.HTTPError when no answer came (a connection dropped mid-request)."""
        if self.session is None and not self.ready():
            raise httpx.ConnectError("no session")
        return self.client.post(
            f"{self.base}/comments/post/",
            data={
                "csrfmiddlewaretoken": self.session["csrf_token"],
                "form_token": self.session["form_token"],
                "thread": self.thread_id,
                "comment_parent": 0,
                "submission_key": key,
                "author": self.name,
                "email": email or f"{self.name.lower().replace(' ', '.')}@example.org",
                "url": "",
                "comment": text,
            },
        )
