"""Real Broadsheet processes for tests, on free loopback ports: app servers (``broadsheet
serve``: granian, WSGI), nginx in front of them (``broadsheet nginx-config``), a migrated SQLite
file for them, the suite's Redis database, and a reader that posts comments to an app server as
a browser does. For the reliability rows (R01–R03), scale-out (L01), nginx and shared limits."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

from tests._env import suite_redis_db

ROOT = Path(__file__).resolve().parent.parent
BROADSHEET = str(Path(sys.executable).with_name("broadsheet"))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SQLITE_FILE = "broadsheet.sqlite3"  # the settings' database in BROADSHEET_VAR_DIR by default


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unavailable(message: str, *required_by: str) -> NoReturn:
    """Skip, or fail where the environment requires the service (CI sets the variables)."""
    if any(os.environ.get(name) for name in required_by):
        pytest.fail(message)
    pytest.skip(message)


def require_nginx() -> None:
    if not Path(NGINX).exists():
        unavailable(
            "nginx is not installed (apt-get install nginx-light)", "BROADSHEET_REQUIRE_NGINX"
        )


def suite_redis():
    """A client of the suite's own Redis database (the only one it may flush)."""
    redis = pytest.importorskip("redis")
    client = redis.Redis(host="127.0.0.1", port=6379, db=suite_redis_db(), socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        client.close()
        unavailable("Redis is not running on 127.0.0.1:6379", "BROADSHEET_REQUIRE_REDIS")
    return client


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


def app_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a Broadsheet process with its files in ``var_dir``."""
    env = {
        **os.environ,
        # The settings module under test (the suite's own, unless the environment names one).
        "DJANGO_SETTINGS_MODULE": os.environ.get(
            "DJANGO_SETTINGS_MODULE", "broadsheet.config.settings"
        ),
        "BROADSHEET_VAR_DIR": str(var_dir),
        "BROADSHEET_PLAIN_STATIC": "1",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p
        ),
        "REDIS_URL": "",
    }
    env.update(overrides)
    return env


def server_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    """An app server's environment for R01–R03: the database is what a test names
    (``DATABASE_URL``), anti-automation needs no waiting, and nothing is cached."""
    defaults = {
        "BROADSHEET_TRUSTED_PROXIES": "",
        "COMMENTS_FORM_MIN_SECONDS": "0",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        # What R01–R03 measure is the application and its database: no shared page cache.
        "BROADSHEET_PAGE_CACHE_DIR": "off",
    }
    return app_env(var_dir, **{**defaults, **overrides})


def sqlite_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a Broadsheet process on ``var_dir``'s own SQLite file."""
    env = app_env(var_dir, **overrides)
    env.pop("DATABASE_URL", None)
    return env


def migrate_sqlite(var_dir: Path) -> Path:
    """``migrate`` into a new SQLite file in ``var_dir``; returns the file."""
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"],
        env=sqlite_env(var_dir),
        check=True,
        timeout=300,
    )
    return var_dir / SQLITE_FILE


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite database through SQLite's backup API: the settings keep it in WAL mode,
    where the file alone may lack pages still in its ``-wal`` file."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def django_shell(env: dict[str, str], code: str) -> str:
    """Run ``code`` with ``django shell`` in ``env``; returns what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "django", "shell", "-c", code],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    ).stdout.decode()


def wait_until_up(
    url: str,
    *,
    process: subprocess.Popen | None = None,
    name: str = "the app server",
    log: Path | None = None,
    timeout: float = 60,
) -> float:
    """Wait until ``url`` answers 200 (failing if ``process`` ends first); returns the seconds
    that took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process is not None and process.poll() is not None:
            pytest.fail(f"{name} exited ({process.returncode}); see {log}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{name} did not answer {url} within {timeout:.0f} s")


def stop_process_group(process: subprocess.Popen, *, timeout: float = 20) -> None:
    """SIGTERM to the process's group (started with ``start_new_session``), SIGKILL if it has
    not ended within ``timeout`` seconds."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class AppServer:
    """``broadsheet serve --workers N`` in its own process group; ``stop()`` ends it."""

    def __init__(self, env: dict[str, str], log: Path, *, workers: int = 1, threads: int = 4):
        self.env = {**env, "BROADSHEET_THREADS": str(threads)}
        self.log = log
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def launch(self) -> AppServer:
        """Start the server without waiting for it (``wait_until_up``)."""
        self.process = subprocess.Popen(
            [BROADSHEET, "serve", "--port", str(self.port), "--workers", str(self.workers),
             "--no-collectstatic"],
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("a"),
        )  # fmt: skip
        return self

    def wait_until_up(self, path: str = "/healthz", *, timeout: float = 60) -> float:
        return wait_until_up(self.base + path, process=self.process, log=self.log, timeout=timeout)

    def start(self, *, wait_path: str = "/healthz", timeout: float = 60) -> AppServer:
        self.launch().wait_until_up(wait_path, timeout=timeout)
        return self

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
        if self.process is not None:
            stop_process_group(self.process)
            self.process = None


def server_on_test_database(var_dir: Path, *, workers: int = 1, **env: str) -> AppServer:
    """An app server (not started yet) on the database pytest-django set up for this run, with
    its files and its log (``server.log``) in ``var_dir``."""
    from django.db import connection

    env = server_env(var_dir, DATABASE_URL=database_url(connection.settings_dict), **env)
    return AppServer(env, var_dir / "server.log", workers=workers)


class Nginx:
    """Debian's nginx with the configuration ``broadsheet nginx-config`` writes for ``env``
    (its files in ``folder``), in front of the app servers at ``upstreams``."""

    def __init__(
        self,
        env: dict[str, str],
        folder: Path,
        *,
        listen: str,
        upstreams: list[str],
        workers: int | None = None,
    ):
        folder.mkdir()
        config = subprocess.run(
            [BROADSHEET, "nginx-config", "--listen", listen, "--standalone", str(folder),
             *(["--workers", str(workers)] if workers else []),
             *(f"--upstream={u}" for u in upstreams)],
            env=env, timeout=60, capture_output=True,
        )  # fmt: skip
        if config.returncode:
            pytest.fail(f"broadsheet nginx-config failed: {config.stderr.decode()[-3000:]}")
        (folder / "nginx.conf").write_bytes(config.stdout)
        self.folder = folder
        self.process = subprocess.Popen(
            [NGINX, "-c", str(folder / "nginx.conf"), "-p", str(folder)],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=(folder / "stderr.log").open("w"),
        )

    def wait_until_up(self, base: str, timeout: float = 20) -> None:
        wait_until_up(
            f"{base}/healthz",
            process=self.process,
            name="nginx",
            log=self.folder / "stderr.log",
            timeout=timeout,
        )

    def stop(self) -> None:
        stop_process_group(self.process, timeout=10)


def relearn_content_types() -> None:
    """Forget the content type ids this process remembers and learn them all again, at once:
    a flush between transactional tests may have made the content types again, with new ids,
    and a cache left half-empty makes the next serialized rollback create one while it restores
    the rows (Wagtail's ``Task.__init__`` asks for it), and the restore of that row then fails."""
    from django.apps import apps
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()
    ContentType.objects.get_for_models(*apps.get_models())


def prepare_site(*, base_url: str, **discussion) -> tuple[int, str]:
    """The demo publication in the test database (committed: call from a transactional test),
    with the given discussion settings; returns the seed article's thread id and its URL."""
    from wagtail.models import Site

    from broadsheet.comments.models import Thread
    from broadsheet.publishing.demo import load_demo
    from broadsheet.publishing.discussion import DiscussionSettings

    relearn_content_types()
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
