"""Loaded with -p before Django's settings: the test environment's defaults."""

import os
from pathlib import Path

os.environ.setdefault("BROADSHEET_PLAIN_STATIC", "1")
os.environ.setdefault(
    "BROADSHEET_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test")
)
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")  # Playwright's event loop + live_server
