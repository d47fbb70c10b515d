"""Imports started from the admin: the uploaded file, the background process that imports it,
and the progress the admin page shows meanwhile.

One ``WordPressImport`` row per upload. The web request stores the file under
``VAR_DIR/imports/<id>.xml`` and starts ``broadsheet run_wxr_import <id>`` in its own session, so
the import outlives the request (and a restart of the web server). The process:

1. marks the row running (before the import: on SQLite the import's transaction holds the
   write lock until it ends, so nothing else can write to the row meanwhile);
2. runs ``import_wxr`` and writes its progress to ``VAR_DIR/imports/<id>.json`` (a file, not the
   database, for the same reason), atomically and at most four times a second;
3. stores the report or the error on the row, and deletes the uploaded file.

A process that dies without step 3 (killed, out of memory) is noticed by ``refresh``: the row is
marked failed. The import runs in one transaction, so nothing of it was kept.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .models import WordPressImport

logger = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 512 * 1024 * 1024
PROGRESS_INTERVAL = 0.25  # seconds between two writes of the progress file
STALE_UPLOAD_SECONDS = 24 * 3600
ACTIVE = (WordPressImport.Status.QUEUED, WordPressImport.Status.RUNNING)

# The processes this web worker started, so that finished ones are reaped (no zombies) and a
# crash before the first progress write is noticed.
_children: dict[int, subprocess.Popen] = {}


class ImportBusy(Exception):
    """Another import is queued or running: one at a time (on SQLite the second would wait for
    the first's write lock and fail; on PostgreSQL they would race on the same WordPress ids)."""


def max_upload_bytes() -> int:
    return int(getattr(settings, "BROADSHEET_WXR_UPLOAD_MAX_BYTES", DEFAULT_MAX_UPLOAD_BYTES))


def imports_dir() -> Path:
    folder = Path(settings.VAR_DIR) / "imports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def upload_path(job_id: int) -> Path:
    return imports_dir() / f"{job_id}.xml"


def progress_path(job_id: int) -> Path:
    return imports_dir() / f"{job_id}.json"


def log_path(job_id: int) -> Path:
    return imports_dir() / f"{job_id}.log"


# --- Starting ---------------------------------------------------------------------------------


def active_job() -> WordPressImport | None:
    """The import queued or running now, if any (after noticing dead processes)."""
    for job in WordPressImport.objects.filter(status__in=ACTIVE).order_by("created_at"):
        if refresh(job).status in ACTIVE:
            return job
    return None


def create_job(
    *, upload: Path, file_name: str, file_size: int, dry_run: bool, user: Any
) -> WordPressImport:
    """Record an uploaded file as a queued import, move it to ``<id>.xml`` and start the
    background process. The upload is moved (or left for the caller to delete) either way.
    Raises ``ImportBusy`` while another import is queued or running."""
    if connection.in_atomic_block:
        # The background process could not see the row before this transaction commits.
        raise RuntimeError("create_job must run outside a transaction (ATOMIC_REQUESTS off)")
    # On SQLite (transactions start IMMEDIATE) this makes check-and-create one step.
    with transaction.atomic():
        if active_job() is not None:
            raise ImportBusy
        job = WordPressImport.objects.create(
            file_name=file_name[:255],
            file_size=file_size,
            dry_run=dry_run,
            created_by=user if getattr(user, "pk", None) else None,
        )
    os.replace(upload, upload_path(job.pk))
    try:
        start(job)
    except (OSError, RuntimeError) as exc:
        logger.exception("could not start WordPress import %s", job.pk)
        WordPressImport.objects.filter(pk=job.pk).update(
            status=WordPressImport.Status.FAILED,
            error=f"The import could not be started: {exc}. Nothing was imported.",
            finished_at=timezone.now(),
        )
        upload_path(job.pk).unlink(missing_ok=True)
        job.refresh_from_db()
    return job


def remove_stale_uploads(max_age: float = STALE_UPLOAD_SECONDS) -> None:
    """Partial uploads left by a web worker that died while receiving one."""
    cutoff = time.time() - max_age
    for part in imports_dir().glob("upload-*.part"):
        try:
            if part.stat().st_mtime < cutoff:
                part.unlink()
        except FileNotFoundError:
            pass


def start(job: WordPressImport) -> subprocess.Popen:
    """Run ``broadsheet run_wxr_import <id>`` in the background, on this process's database."""
    _reap()
    with log_path(job.pk).open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 — our own command, fixed arguments
            [sys.executable, "-m", "broadsheet.cli", "run_wxr_import", str(job.pk)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=child_environment(),
            start_new_session=True,  # not stopped with the web worker's process group
            close_fds=True,
        )
    _children[job.pk] = process
    # Until the process writes its own progress, the admin knows its pid from this (never
    # written over the process's own, should it be quicker).
    ProgressFile(progress_path(job.pk), pid=process.pid).write(
        "queued", 0, job.file_size, replace=False
    )
    return process


def child_environment() -> dict[str, str]:
    """This process's environment, with DATABASE_URL naming the database this process really
    uses (under the test runner, the test database) and the same VAR_DIR."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = os.environ.get(
        "DJANGO_SETTINGS_MODULE", "broadsheet.config.settings"
    )
    env["BROADSHEET_VAR_DIR"] = str(settings.VAR_DIR)
    url = database_url(connection.settings_dict)
    if url:
        env["DATABASE_URL"] = url
    return env


def database_url(db: dict[str, Any]) -> str | None:
    """A DATABASE_URL for the connection settings ``db`` (SQLite and PostgreSQL)."""
    engine = db.get("ENGINE", "")
    if engine.endswith("sqlite3"):
        name = str(db.get("NAME") or "")
        if not name or name == ":memory:" or "mode=memory" in name:
            raise RuntimeError("an import process cannot share an in-memory SQLite database")
        return "sqlite:///" + quote(str(Path(name).resolve()))
    if "postgresql" in engine or "postgis" in engine:
        user = quote(str(db.get("USER") or ""), safe="")
        password = db.get("PASSWORD") or ""
        auth = (
            f"{user}:{quote(str(password), safe='')}@" if password else f"{user}@" if user else ""
        )
        host = str(db.get("HOST") or "")
        host = f"[{host}]" if ":" in host else quote(host, safe="")
        port = f":{db['PORT']}" if db.get("PORT") else ""
        options = {
            k: v for k, v in (db.get("OPTIONS") or {}).items() if isinstance(v, str | int | bool)
        }
        query = f"?{urlencode(options)}" if options else ""
        return f"postgres://{auth}{host}{port}/{quote(str(db.get('NAME') or ''), safe='')}{query}"
    return None  # another engine: the environment's own DATABASE_URL


# --- Running (in the background process) ------------------------------------------------------


def run(job_id: int) -> WordPressImport:
    """Import the uploaded file of a queued job and record the outcome on its row."""
    from .importer import ImportFailed, import_wxr  # only the background process needs it

    path = upload_path(job_id)
    claimed = WordPressImport.objects.filter(
        pk=job_id, status=WordPressImport.Status.QUEUED
    ).update(status=WordPressImport.Status.RUNNING)
    job = WordPressImport.objects.get(pk=job_id)
    if not claimed:
        raise RuntimeError(f"import {job_id} is {job.status}, not queued")
    progress = ProgressFile(progress_path(job_id), pid=os.getpid())
    progress.write("starting", 0, job.file_size)
    # A polite stop (SIGTERM) rolls the transaction back and is recorded, like any failure.
    signal.signal(signal.SIGTERM, _terminated)
    outcome: dict[str, Any] = {
        "status": WordPressImport.Status.FAILED,
        "error": "The import was stopped before it finished. Nothing was imported.",
    }
    try:
        report = import_wxr(
            path=path, dry_run=job.dry_run, progress=progress, max_bytes=max_upload_bytes()
        )
        data = report.as_dict()
        data["file"] = job.file_name
        outcome = {"status": WordPressImport.Status.DONE, "report": data}
    except ImportFailed as exc:
        outcome["error"] = _public(str(exc), job, path)
    except Exception as exc:
        traceback.print_exc()  # stderr is the job's log file
        outcome["error"] = (
            f"The import stopped on an unexpected error ({type(exc).__name__}). "
            f"Nothing was imported. The details are in {_shown_log(job_id)}."
        )
    finally:
        # Also after SystemExit (SIGTERM) and KeyboardInterrupt, which then go on up.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        path.unlink(missing_ok=True)
        WordPressImport.objects.filter(pk=job_id).update(finished_at=timezone.now(), **outcome)
        progress_path(job_id).unlink(missing_ok=True)
    job.refresh_from_db()
    return job


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def _public(message: str, job: WordPressImport, path: Path) -> str:
    """The reader's message names the stored file; show the name the editor uploaded."""
    return message.replace(str(path), job.file_name).replace(path.name, job.file_name)


def _shown_log(job_id: int) -> str:
    try:
        return str(log_path(job_id).relative_to(Path(settings.VAR_DIR).parent))
    except ValueError:
        return str(log_path(job_id))


class ProgressFile:
    """The progress callback of ``import_wxr``: writes ``{phase, done, total}`` to a JSON file,
    atomically (a temporary file renamed over it), at most every ``PROGRESS_INTERVAL`` seconds
    apart from phase changes and the end of a phase."""

    def __init__(self, path: Path, *, pid: int) -> None:
        self.path = path
        self.pid = pid
        self.host = socket.gethostname()
        self.phase = ""
        self.last = 0.0

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if phase == self.phase and done != total and now - self.last < PROGRESS_INTERVAL:
            return
        self.write(phase, done, total)

    def write(self, phase: str, done: int, total: int | None, *, replace: bool = True) -> None:
        self.phase = phase
        self.last = time.monotonic()
        data = {
            "phase": phase,
            "done": done,
            "total": total,
            "pid": self.pid,
            "host": self.host,
            "at": time.time(),
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(data, out)
            if replace:
                os.replace(tmp, self.path)
            else:
                try:
                    os.link(tmp, self.path)  # fails if the file exists
                except FileExistsError:
                    pass
        finally:
            Path(tmp).unlink(missing_ok=True)


# --- Watching (in the web process) -------------------------------------------------------------


def read_progress(job_id: int) -> dict[str, Any]:
    try:
        data = json.loads(progress_path(job_id).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def refresh(job: WordPressImport) -> WordPressImport:
    """``job`` as it stands; a queued or running job whose process has gone away without
    recording an outcome is marked failed (nothing was kept: the import is one transaction)."""
    if job.status not in ACTIVE:
        return job
    if not _gone(job.pk):
        return job
    job.refresh_from_db()
    if job.status not in ACTIVE:  # it finished between the two looks
        return job
    error = (
        "The import process stopped before it finished (it was killed, or the server "
        "stopped). The import runs in one transaction, so nothing of it was kept. "
        f"Details may be in {_shown_log(job.pk)}."
    )
    WordPressImport.objects.filter(pk=job.pk, status__in=ACTIVE).update(
        status=WordPressImport.Status.FAILED, error=error, finished_at=timezone.now()
    )
    upload_path(job.pk).unlink(missing_ok=True)
    progress_path(job.pk).unlink(missing_ok=True)
    job.refresh_from_db()
    return job


def _reap() -> None:
    for job_id, process in list(_children.items()):
        if process.poll() is not None:
            del _children[job_id]


def _gone(job_id: int) -> bool:
    """Whether the process of ``job_id`` has certainly ended. Unknown (another host, no
    progress written yet by a process another worker started) counts as running."""
    process = _children.get(job_id)
    if process is not None:
        if process.poll() is None:
            return False
        del _children[job_id]
        return True
    _reap()
    progress = read_progress(job_id)
    pid = progress.get("pid")
    if not isinstance(pid, int) or progress.get("host") != socket.gethostname():
        return False
    return not _running(pid, job_id)


def _running(pid: int, job_id: int) -> bool:
    proc = Path("/proc")
    if proc.is_dir():
        try:
            cmdline = (proc / str(pid) / "cmdline").read_bytes()
        except FileNotFoundError:
            return False
        except OSError:
            return True
        # Empty for a zombie; another command if the pid was reused.
        return f"run_wxr_import\0{job_id}\0".encode() in cmdline
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
