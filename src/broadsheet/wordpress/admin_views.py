"""“Import from WordPress” in the Wagtail admin: upload a WXR file, watch the import run in the
background, read its report. The import itself is ``jobs`` (and ``importer``); these views only
receive the file, hand it over and show what the job wrote."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload
from django.core.paginator import Paginator
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from broadsheet.publishing.models import ArticlePage, StandardPage

from . import jobs
from .models import WordPressId, WordPressImport

PERMISSION = "wordpress.add_wordpressimport"
# Room for the other form fields and the multipart headers around the file.
MULTIPART_SLACK = 64 * 1024
PHASES = {
    "queued": "Waiting to start",
    "starting": "Starting",
    "check": "Checking the file",
    "import": "Importing",
    "index": "Updating the search index",
}
NOTES_SHOWN = 20  # examples per kind of note shown at once; the rest behind “more”


def _require_importer(request: HttpRequest) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied


class ImportForm(forms.Form):
    file = forms.FileField(
        label="WordPress export file",
        max_length=255,
        help_text="The .xml file from Tools › Export in WordPress (“All content”).",
    )
    dry_run = forms.BooleanField(
        label="Dry run: do everything, report, then undo it",
        required=False,
    )


class StoredUpload(UploadedFile):
    """An uploaded file already written to its place on disk."""

    def __init__(self, path: Path, name: str, content_type: str, size: int, charset, extra):
        super().__init__(None, name, content_type, size, charset, extra)
        self.path = path

    def temporary_file_path(self) -> str:
        return str(self.path)


class CappedUploadHandler(FileUploadHandler):
    """Streams the form's one ``file`` to a new file under ``VAR_DIR/imports``, counting the
    bytes that really arrive (whatever Content-Length said). Past ``limit`` it deletes what it
    wrote and stops the upload. Nothing is held in memory."""

    def __init__(self, request: HttpRequest, *, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.path: Path | None = None
        self.out = None
        self.received = 0
        self.too_large = False
        self.kept = False

    def new_file(self, field_name, file_name, *args, **kwargs) -> None:
        if field_name != "file" or self.path is not None:
            raise SkipFile
        super().new_file(field_name, file_name, *args, **kwargs)
        fd, name = tempfile.mkstemp(dir=jobs.imports_dir(), prefix="upload-", suffix=".part")
        self.path = Path(name)
        self.out = os.fdopen(fd, "wb")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.too_large = True
            self.discard()
            raise StopUpload(connection_reset=False)
        self.out.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> StoredUpload | None:
        if self.out is None:
            return None
        self.out.close()
        return StoredUpload(
            self.path,
            self.file_name,
            self.content_type,
            file_size,
            self.charset,
            self.content_type_extra,
        )

    def upload_interrupted(self) -> None:
        self.discard()

    def discard(self) -> None:
        """Delete the partial or refused file (kept once handed to a job)."""
        if self.out is not None:
            self.out.close()
        if self.path is not None and not self.kept:
            self.path.unlink(missing_ok=True)


# --- Upload and list ---------------------------------------------------------------------------


@csrf_exempt  # checked in _receive, once the upload handler is in place (Django's own recipe)
@require_http_methods(["GET", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    _require_importer(request)
    if request.method == "POST":
        return _upload(request)
    return _index_page(request, ImportForm())


def _upload(request: HttpRequest) -> HttpResponse:
    limit = jobs.max_upload_bytes()
    running = jobs.active_job()
    if running is not None:
        return _index_page(request, ImportForm(), status=409)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit + MULTIPART_SLACK:  # refused before reading; a lie is caught below
        return _too_large(request, limit)
    jobs.remove_stale_uploads()
    handler = CappedUploadHandler(request, limit=limit)
    request.upload_handlers = [handler]
    try:
        return _receive(request, handler=handler)
    finally:
        handler.discard()


@csrf_protect
def _receive(request: HttpRequest, *, handler: CappedUploadHandler) -> HttpResponse:
    form = ImportForm(request.POST, request.FILES)
    if handler.too_large:
        return _too_large(request, handler.limit)
    if not form.is_valid():
        return _index_page(request, form, status=400)
    upload = form.cleaned_data["file"]
    try:
        job = jobs.create_job(
            upload=handler.path,
            file_name=upload.name,
            file_size=upload.size,
            dry_run=form.cleaned_data["dry_run"],
            user=request.user,
        )
    except jobs.ImportBusy:
        return _index_page(request, ImportForm(), status=409)
    handler.kept = True
    if job.status == WordPressImport.Status.FAILED:
        messages.error(request, f"“{job.file_name}” uploaded, but the import could not start.")
    else:
        messages.success(request, f"“{job.file_name}” uploaded; the import has started.")
    return redirect("wordpress_import:detail", pk=job.pk)


def _too_large(request: HttpRequest, limit: int) -> HttpResponse:
    error = (
        f"The file is larger than the upload limit of {filesizeformat(limit)} "
        f"({limit:,} bytes). Nothing was kept. Import a file this size from the command line "
        "(broadsheet import-wxr FILE), or raise BROADSHEET_WXR_UPLOAD_MAX_BYTES."
    )
    return _index_page(request, ImportForm(), error=error, status=413)


def _index_page(
    request: HttpRequest, form: ImportForm, *, error: str = "", status: int = 200
) -> HttpResponse:
    running = jobs.active_job()
    if status == 409:
        error = "Another import is running: wait for it to finish, then upload again."
    page = Paginator(
        WordPressImport.objects.select_related("created_by").order_by("-created_at", "-pk"), 25
    ).get_page(request.GET.get("p"))
    return render(
        request,
        "wordpress/admin/index.html",
        {
            "form": form,
            "error": error,
            "running": running,
            "page_obj": page,
            "max_bytes": jobs.max_upload_bytes(),
            "on_sqlite": connection.vendor == "sqlite",
        },
        status=status,
    )


# --- One import: progress, then the report -----------------------------------------------------


@require_GET
@never_cache
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_importer(request)
    job = jobs.refresh(
        get_object_or_404(WordPressImport.objects.select_related("created_by"), pk=pk)
    )
    context: dict[str, Any] = {"job": job, "progress": _progress(job)}
    if job.status == WordPressImport.Status.DONE:
        context.update(_report(job.report))
        if not job.dry_run:
            context["imported"], context["imported_total"] = _imported_pages(job, request)
    return render(request, "wordpress/admin/detail.html", context)


@require_GET
@never_cache
def status(request: HttpRequest, pk: int) -> JsonResponse:
    _require_importer(request)
    job = jobs.refresh(get_object_or_404(WordPressImport, pk=pk))
    return JsonResponse(
        {
            "id": job.pk,
            "status": job.status,
            "status_label": job.get_status_display(),
            "finished": job.status not in jobs.ACTIVE,
            "url": reverse("wordpress_import:detail", args=[job.pk]),
            **_progress(job),
        }
    )


def _progress(job: WordPressImport) -> dict[str, Any]:
    if job.status not in jobs.ACTIVE:
        return {"phase": job.status, "phase_label": job.get_status_display(), "done": None,
                "total": None, "percent": None, "amount": ""}  # fmt: skip
    data = jobs.read_progress(job.pk)
    phase = data.get("phase") or "queued"
    done = data.get("done") if isinstance(data.get("done"), int) else 0
    total = data.get("total") if isinstance(data.get("total"), int) else None
    label = PHASES.get(phase, "Finishing")
    if phase == "import" and total and done >= total:
        label = "Finishing: page hierarchy, featured images and old addresses"
    percent = min(100, int(done * 100 / total)) if total else None
    if phase in ("queued", "starting"):
        done, percent = 0, 0
    if phase == "index":
        amount = f"{done:,} of {total:,} pages" if total else ""
    else:
        amount = f"{filesizeformat(done)} of {filesizeformat(total)}" if total else ""
    if phase in ("check", "import", "index") and total:
        amount = f"{amount} ({percent} %)"
    return {
        "phase": phase,
        "phase_label": label,
        "done": done,
        "total": total,
        "percent": percent,
        "amount": amount,
    }


def _report(report: dict[str, Any]) -> dict[str, Any]:
    """The stored report, arranged for the page: counts grouped by kind, notes with examples."""
    groups: dict[str, list[tuple[str, int]]] = {}
    for key, n in (report.get("counts") or {}).items():
        head, _, tail = str(key).partition(".")
        groups.setdefault(head, []).append(((tail or head).replace("_", " "), n))
    notes = []
    totals = report.get("note_counts") or {}
    for kind, examples in (report.get("notes") or {}).items():
        examples = list(examples)
        total = max(int(totals.get(kind, 0)), len(examples))
        notes.append(
            {
                "kind": kind,
                "total": total,
                "shown": examples[:NOTES_SHOWN],
                "more": examples[NOTES_SHOWN:],
                "unlisted": total - len(examples),
            }
        )
    return {
        "counts": [(head.replace("_", " ").capitalize(), rows) for head, rows in groups.items()],
        "notes": notes,
        "seconds": list((report.get("seconds") or {}).items()),
        "site_key": report.get("site_key", ""),
    }


def _imported_pages(job: WordPressImport, request: HttpRequest, limit: int = 10):
    """The posts and pages this run created (the first ``limit``), with their total."""
    site_key = (job.report or {}).get("site_key")
    if not site_key or job.finished_at is None:
        return [], 0
    rows = WordPressId.objects.filter(
        site_key=site_key,
        kind__in=[WordPressId.Kind.POST, WordPressId.Kind.PAGE],
        imported_at__gte=job.created_at,
        imported_at__lte=job.finished_at,
    ).order_by("pk")
    total = rows.count()
    ids = list(rows.values_list("object_id", flat=True)[:limit])
    found = {p.pk: p for p in ArticlePage.objects.filter(pk__in=ids)}
    found.update({p.pk: p for p in StandardPage.objects.filter(pk__in=ids)})
    pages = []
    for pk in ids:
        page = found.get(pk)
        if page is None:
            continue
        pages.append(
            {
                "title": page.title,
                "kind": "Article" if isinstance(page, ArticlePage) else "Page",
                "edit_url": reverse("wagtailadmin_pages:edit", args=[page.pk]),
                "live_url": page.get_url(request) if page.live else "",
            }
        )
    return pages, total
