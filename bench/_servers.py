"""Helpers shared by the benchmarks that drive the real servers on loopback.

- :class:`Processes` starts servers (``broadsheet serve``, nginx) each in its own process
  group and stops all of them on the way out, also on Ctrl+C, SIGTERM or an exception; the
  children get SIGTERM if this process dies without cleaning up (``PR_SET_PDEATHSIG``).
- :func:`django_env`, :func:`run_python`, :func:`broadsheet` run Django code and commands in
  a child process against a chosen var dir and database; :func:`migrate` migrates an empty
  database, or loads the migrated copy kept in ``var/bench-cache/``.
- :func:`app_nginx_conf` / :func:`static_nginx_conf` write standalone nginx configurations.
- :func:`http_request` makes one request, no redirects followed;
  :func:`run_wrk` runs Debian's wrk, bounded in time, with the Lua scripts in ``bench/lua/``,
  and returns a :class:`WrkResult` parsed from the ``BENCH_JSON`` line ``report.lua`` prints.
- :func:`create_postgres` / :func:`drop_postgres`, :func:`flush_redis`, :func:`versions`.
- :data:`POST_DISCUSSION`: the discussion settings the comment-posting benchmarks run with.

Only 127.0.0.1 addresses; ports are picked free at run time.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.client import HTTPConnection
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LUA_DIR = Path(__file__).with_name("lua")
PYTHON = sys.executable
HOST = "127.0.0.1"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
# Migrated, empty databases, reused while the migrations and installed packages stay the same
# (var/ is not in git).
CACHE_DIR = ROOT / "var" / "bench-cache"
# Environment the benchmarks set themselves: an inherited value would point them elsewhere.
OWN_VARIABLES = (
    "BROADSHEET_VAR_DIR",
    "BROADSHEET_BASE_URL",
    "BROADSHEET_SITE_URL",
    "BROADSHEET_PAGE_CACHE_DIR",
    "DATABASE_URL",
    "REDIS_URL",
    "EMAIL_URL",
    "STATIC_ROOT",
    "MEDIA_ROOT",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def base_url(port: int) -> str:
    return f"http://{HOST}:{port}"


# WordPress's comment benchmark turned off its flood filter, moderation and notification mail
# (anchors/wordpress/RESULTS.md); these are the same switches here (Settings > Discussion, the
# DiscussionSettings fields). 0 turns a counting limit off (antispam.Limits).
POST_DISCUSSION = {
    "flood_seconds": 0,
    "rate_per_minute_ip": 0,
    "rate_per_hour_ip": 0,
    "rate_per_minute_email": 0,
    "rate_per_minute_account": 0,
    "manual_approval": False,
    "previously_approved": False,
    "notify_on_post": False,
    "notify_on_hold": False,
    "notify_author": False,
}


# --- Django in child processes -----------------------------------------------------------------
def django_env(
    var_dir: Path,
    *,
    database_url: str = "",
    base_url: str = "",
    redis_url: str = "",
    **extra: str,
) -> dict[str, str]:
    """The environment for ``broadsheet`` commands and servers of one benchmark deployment.

    Empty ``database_url`` means the SQLite file in ``var_dir``; ``extra`` adds or overrides
    variables (``BROADSHEET_PAGE_CACHE_DIR="off"``, ``COMMENTS_FORM_MIN_SECONDS="0"``…).
    """
    env = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    env.update(
        BROADSHEET_VAR_DIR=str(var_dir),
        DJANGO_SETTINGS_MODULE="broadsheet.config.settings",
        EMAIL_URL="console://",  # no worker runs: mail stays in the outbox anyway
        DEBUG="0",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p),
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    if base_url:
        env["BROADSHEET_BASE_URL"] = base_url
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


def _run(argv: Sequence[str], env: dict[str, str], what: str, timeout: float) -> str:
    """Run ``argv`` to its end in the project's root; its output, or a RuntimeError with all
    it printed."""
    out = subprocess.run(  # noqa: S603 — our own interpreter and code
        list(argv),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode:
        raise RuntimeError(f"{what} failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    return out.stdout


def run_python(code: str, env: dict[str, str], *args: str, timeout: float = 900) -> Any:
    """Run ``code`` in a child interpreter; return the JSON its last line of output holds."""
    out = _run([PYTHON, "-c", code, *args], env, "child Python", timeout)
    return json.loads(out.strip().splitlines()[-1])


def broadsheet(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    """Run a ``broadsheet`` command to its end; return its standard output."""
    return _run(
        [PYTHON, "-m", "broadsheet.cli", *args], env, f"broadsheet {' '.join(args)}", timeout
    )


MIGRATE = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
print("{}")
"""


def schema_key() -> str:
    """Changes whenever a migration file or an installed package does."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    for dist in sorted(
        f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()
    ):
        digest.update(dist.encode() + b"\0")
    return digest.hexdigest()[:16]


def migrate(env: dict[str, str], database_url: str, *, cache: bool = True) -> str:
    """Bring an empty database (SQLite file or PostgreSQL database) to the current migrations.

    ``migrate`` takes most of a minute (far more on a busy machine); with ``cache`` the
    result of the first run is kept in ``var/bench-cache/`` (a copy of the SQLite file, a
    ``pg_dump`` of the PostgreSQL one) and loaded instead next time. Returns "migrated" or
    "restored".
    """
    key = schema_key()
    sqlite = database_url.startswith("sqlite:///")
    cached = CACHE_DIR / (f"sqlite-{key}.sqlite3" if sqlite else f"postgres-{key}.sql")
    if sqlite:
        target = Path(database_url[len("sqlite:///") :])
        target.parent.mkdir(parents=True, exist_ok=True)
    if cache and cached.exists():
        if sqlite:
            shutil.copyfile(cached, target)
        else:
            subprocess.run(  # noqa: S603
                ["psql", "-qX", "-v", "ON_ERROR_STOP=1", "-d", database_url, "-f", cached],
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip
        return "restored"
    run_python(MIGRATE, env)
    if cache:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f".{cached.name}.{os.getpid()}")
        if sqlite:
            conn = sqlite3.connect(target)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
            shutil.copyfile(target, partial)
        else:
            subprocess.run(  # noqa: S603
                ["pg_dump", "-Ox", "-d", database_url, "-f", partial],  # no owner, privileges
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip
        os.replace(partial, cached)
    return "migrated"


# --- processes ---------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the benchmark's process goes away.
    (Linux ties this to the thread that started the child: start servers from the main
    thread, not from a pool.)"""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    log: Path
    port: int

    @property
    def url(self) -> str:
        return base_url(self.port)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def count_in_log(self, needle: str) -> int:
        return self.log_text().count(needle)


class Processes:
    """The servers a benchmark started; leaving the ``with`` block stops every one of them.

    Each runs in its own session (process group), so stopping one reaches its workers too
    (granian's, nginx's), and a Ctrl+C in the terminal reaches only this process, which then
    stops them in order.
    """

    def __init__(self) -> None:
        self.servers: list[Server] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Processes:
        # SIGTERM and SIGHUP unwind like Ctrl+C, so the ``finally`` blocks and __exit__ run.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._previous[sig] = signal.signal(sig, _raise_interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log: Path,
        port: int,
        env: dict[str, str] | None = None,
    ) -> Server:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            process = subprocess.Popen(  # noqa: S603 — our own servers, fixed arguments
                list(argv),
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 — single-threaded parent
            )
        server = Server(name, process, log, port)
        self.servers.append(server)
        return server

    def start_app(
        self, name: str, env: dict[str, str], *, log: Path, workers: int = 2, port: int = 0
    ) -> Server:
        """``broadsheet serve`` (granian, WSGI) on a free loopback port; not waited for."""
        port = port or free_port()
        argv = [
            PYTHON,
            "-m",
            "broadsheet.cli",
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-collectstatic",
        ]
        return self.start(name, argv, log=log, port=port, env=env)

    def start_nginx(self, name: str, conf: Path, *, port: int) -> Server:
        """nginx in the foreground (the configuration says ``daemon off``), prefix = its dir."""
        prefix = conf.parent
        argv = [NGINX, "-c", str(conf), "-p", str(prefix), "-e", str(prefix / "error.log")]
        return self.start(name, argv, log=prefix / "nginx.out", port=port)

    def stop(self, server: Server, timeout: float = 20) -> None:
        process = server.process
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        # Workers left behind by a master that died first.
        _signal_group(process.pid, signal.SIGKILL)
        if server in self.servers:
            self.servers.remove(server)

    def stop_all(self) -> None:
        for server in reversed(list(self.servers)):
            try:
                self.stop(server)
            except Exception as exc:  # noqa: BLE001 — keep stopping the others
                print(f"could not stop {server.name}: {exc}", file=sys.stderr)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --- HTTP --------------------------------------------------------------------------------------
@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    cookies: dict[str, str] = field(default_factory=dict)


def http_request(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30,
) -> Response:
    """One request, no redirects followed (so a 301 shows as a 301)."""
    match = re.fullmatch(r"http://([^/:]+):(\d+)(/.*)?", url)
    if not match:
        raise ValueError(f"not a loopback http URL: {url}")
    conn = HTTPConnection(match[1], int(match[2]), timeout=timeout)
    try:
        conn.request(method, match[3] or "/", body=body, headers=headers or {})
        raw = conn.getresponse()
        data = raw.read()
        names: dict[str, str] = {}
        cookies: dict[str, str] = {}
        for name, value in raw.getheaders():
            key = name.lower()
            names[key] = f"{names[key]}, {value}" if key in names else value
            if key == "set-cookie":
                jar = SimpleCookie()
                jar.load(value)
                cookies.update({k: m.value for k, m in jar.items()})
        return Response(raw.status, names, data, cookies)
    finally:
        conn.close()


def wait_for(server: Server, path: str = "/healthz", *, timeout: float = 180) -> None:
    """Wait until ``server`` answers ``path`` (any status below 500); fail early if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited ({server.process.returncode}):\n{server.log_text()[-3000:]}"
            )
        try:
            if http_request(server.url + path, timeout=5).status < 500:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{server.name} did not answer {path} within {timeout:.0f} s")


# --- nginx -------------------------------------------------------------------------------------
def app_nginx_conf(
    env: dict[str, str],
    *,
    directory: Path,
    listen_port: int,
    upstreams: Iterable[int],
    workers: int = 2,
) -> Path:
    """The production front server: ``broadsheet nginx-config --standalone`` for ``env``."""
    directory.mkdir(parents=True, exist_ok=True)
    args = [
        "nginx-config",
        "--listen",
        f"{HOST}:{listen_port}",
        "--standalone",
        str(directory),
        "--workers",
        str(workers),
    ]
    for port in upstreams:
        args += ["--upstream", f"{HOST}:{port}"]
    conf = directory / "nginx.conf"
    conf.write_text(broadsheet(env, *args))
    return conf


STATIC_CONF = """\
# A minimal nginx serving one folder: the "limit" row of the serving benchmark.
worker_processes {workers};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
{user}
events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    server_tokens off;
    types {{
        text/html html;
    }}
    default_type application/octet-stream;
    charset utf-8;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    server {{
        listen {listen};
        root {root};
    }}
}}
"""


def static_nginx_conf(*, directory: Path, root: Path, listen_port: int, workers: int = 2) -> Path:
    """A standalone nginx.conf that serves ``root`` as static files, nothing else."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(
        STATIC_CONF.format(
            workers=workers,
            prefix=directory,
            # nginx's workers run as nobody unless told otherwise: temp dirs are 0700.
            user="user root;" if os.geteuid() == 0 else "",
            listen=f"{HOST}:{listen_port}",
            root=root,
        )
    )
    return conf


# --- wrk ---------------------------------------------------------------------------------------
@dataclass
class WrkResult:
    requests: int
    seconds: float
    bytes: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int  # connect + read + write errors and timeouts
    status_errors: int  # wrk's own count: statuses >= 400
    statuses: dict[str, int]  # only when the script counts them (statuses.lua)
    command: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def rate_of(self, *statuses: str) -> float:
        """Responses per second with one of ``statuses`` (needs statuses.lua)."""
        n = sum(self.statuses.get(s, 0) for s in statuses)
        return n / self.seconds if self.seconds else 0.0

    def others(self, *expected: str) -> int:
        """Responses with a status not in ``expected``, plus socket errors (needs statuses.lua)."""
        return sum(n for s, n in self.statuses.items() if s not in expected) + self.socket_errors

    @property
    def errors(self) -> int:
        return self.socket_errors + self.status_errors


def run_wrk(
    url: str,
    *,
    duration: float,
    connections: int = 16,
    threads: int = 1,
    scripts: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 10,
    cpus: str = "",
) -> WrkResult:
    """Run wrk against ``url`` for ``duration`` seconds and parse its report.

    ``scripts`` are file names in ``bench/lua/`` put together in that order, ``report.lua``
    always last. ``cpus`` pins wrk with taskset (``"1"``, ``"0,1"``); empty: not pinned.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-wrk-", delete=False) as f:
        for name in [*scripts, "report.lua"]:
            f.write(f"-- {name}\n{(LUA_DIR / name).read_text()}\n")
        script = f.name
    argv = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        f"{max(1, round(timeout))}s",
        "-s",
        script,
        url,
    ]
    if cpus:
        argv = ["taskset", "-c", cpus, *argv]
    try:
        out = subprocess.run(  # noqa: S603
            argv,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=duration + timeout + 60,
        )
    finally:
        os.unlink(script)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if out.returncode or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}{out.stderr}")
    data = json.loads(line[len("BENCH_JSON ") :])
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        bytes=data["bytes"],
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        socket_errors=data["connect_errors"]
        + data["read_errors"]
        + data["write_errors"]
        + data["timeouts"],
        status_errors=data["status_errors"],
        statuses=data["statuses"],
        command=" ".join(argv[argv.index(WRK) :]).replace(script, "SCRIPT"),
    )


def median_result(results: Sequence[WrkResult]) -> WrkResult:
    """The run with the median requests per second (the lower middle one for an even count)."""
    ordered = sorted(results, key=lambda r: r.rps)
    return ordered[(len(ordered) - 1) // 2]


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def session_tokens(app_url: str, thread: int) -> dict[str, str]:
    """What the article page's script gets from the personal-parts endpoint, as the
    comment-posting wrk script (``lua/comment_post.lua``) takes it from the environment."""
    response = http_request(f"{app_url}/comments/session/?thread={thread}")
    if response.status != 200 or "csrftoken" not in response.cookies:
        raise RuntimeError(f"/comments/session/: HTTP {response.status}, {response.cookies}")
    data = json.loads(response.body)
    quote = lambda value: urllib.parse.quote(value, safe="")  # noqa: E731
    return {
        "BENCH_THREAD": str(thread),
        "BENCH_FORM_TOKEN": quote(data["form_token"]),
        "BENCH_CSRF": quote(data["csrf_token"]),
        "BENCH_CSRF_COOKIE": response.cookies["csrftoken"],
    }


# --- databases -----------------------------------------------------------------------------------
def create_postgres(server_url: str, name: str) -> str:
    """Create (afresh) database ``name`` on ``server_url`` (postgres://user@host:port)."""
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


def drop_postgres(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flush_redis(url: str) -> None:
    """Empty the one Redis database ``url`` names (the benchmark's own)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# --- the machine -------------------------------------------------------------------------------
def _first_line(argv: Sequence[str], pattern: str = "") -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = out.stdout + out.stderr
    if pattern:
        match = re.search(pattern, text)
        return match[1] if match else "?"
    return text.strip().splitlines()[0] if text.strip() else "?"


def versions() -> dict[str, str]:
    import importlib.metadata as md

    def dist(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "?"

    return {
        "nginx": _first_line([NGINX, "-v"], r"nginx/(\S+)"),
        "wrk": _first_line([WRK, "-v"], r"wrk (\S+)"),
        "granian": dist("granian"),
        "Django": dist("django"),
        "Wagtail": dist("wagtail"),
        "Python": sys.version.split()[0],
        "PostgreSQL": _first_line(["psql", "--version"], r"(\d+\.\d+)"),
    }
