"""Loaded with -p before Django's settings: the test environment's defaults."""

import os
from pathlib import Path

os.environ.setdefault("BROADSHEET_PLAIN_STATIC", "1")
os.environ.setdefault(
    "BROADSHEET_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test")
)
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")  # Playwright's event loop + live_server
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each pytest-xdist worker its own var directory: page cache, media, uploads and logs of
    # one worker's tests are never seen by the other's.
    os.environ["BROADSHEET_VAR_DIR"] = str(
        Path(os.environ["BROADSHEET_VAR_DIR"]) / os.environ["PYTEST_XDIST_WORKER"]
    )


def suite_redis_db() -> int:
    """The Redis database this test process may flush: the suite's own
    (``BROADSHEET_TEST_REDIS_DB``; CI runs two suites side by side), plus the pytest-xdist
    worker's number, so two workers of one suite never flush each other's."""
    base = int(os.environ.get("BROADSHEET_TEST_REDIS_DB", 13))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return base + (int(worker[2:]) if worker[2:].isdigit() else 0)


def suite_on_postgresql() -> bool:
    """Whether this run of the suite is its PostgreSQL run (``DATABASE_URL=postgres://…``)."""
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
