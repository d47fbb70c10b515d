"""A full-page cache for anonymous readers, kept as files on disk.

Rule: a page is shared only when it is the same bytes for every reader. So it is stored only
for a plain ``GET`` of the canonical host, without a query string, from a browser that carries
no personal cookie (a session, or held comments of its own), when the view opted in with
:func:`cache_page` and the response set no cookie and is not private. Everything personal on
the page (identity line, CSRF token, remembered details, held comments) comes from
``/comments/session/``.

Why files: every app process on the machine sees one store, and invalidation (an unlink) is
seen by all of them at once without a message bus; and nginx can serve the same files without
touching Python (``broadsheet nginx-config``). ``/a/b/`` is kept as ``<root>/a/b/index.html``
(``index.rss`` and ``index.atom`` for feeds), with its headers beside it in ``….headers``.

Invalidation is by tag (``page:12``, ``listing``): each stored file is listed under its tags
in ``<root>/.tags/<tag>``; invalidating a tag stamps ``<root>/.stamps/<tag>`` and deletes the
files listed. A render that began before the stamp is not stored (it may show the old state):
the stamp is checked before the file is written and again after it is listed, so a render and
an invalidation that overlap can never leave a stale page behind.

The hit path (:class:`PageCacheHandler`) answers before Django builds a request: one
``stat`` and a dictionary lookup in a small per-process memory copy, re-read when the file
changes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponseBase

logger = logging.getLogger(__name__)

EXTENSIONS = {
    "text/html": "html",
    "application/rss+xml": "rss",
    "application/atom+xml": "atom",
}
CONTENT_TYPES = {ext: f"{ctype}; charset=utf-8" for ctype, ext in EXTENSIONS.items()}
# Headers that belong to one response, not to the page.
UNSTORED_HEADERS = {"date", "content-length", "set-cookie", "x-page-cache"}
# A stamp's time is set to the nanosecond by ``os.utime`` (not left to the kernel's clock
# tick), so a render is compared with it exactly; this margin only absorbs file systems that
# keep coarser times.
STAMP_MARGIN_NS = 0
MEMORY_LIMIT_BYTES = 64 * 1024 * 1024
ALL = "_all"
EXPIRES = "_expires"


def cache_page(request: HttpRequest, *tags: str, expires: datetime | None = None) -> None:
    """Mark the response to ``request`` as shareable, invalidated by any of ``tags``, and
    (if given) deleted at ``expires`` by the worker's sweep: a page that changes with time
    alone, such as comments closing on old articles."""
    existing = getattr(request, "page_cache_tags", None) or set()
    request.page_cache_tags = existing | set(tags)
    if expires is not None:
        current = getattr(request, "page_cache_expires", None)
        request.page_cache_expires = expires if current is None else min(current, expires)


def page_tag(page_id: int) -> str:
    return f"page:{int(page_id)}"


def _safe_parts(path: str) -> list[str] | None:
    """The directory parts of a URL path that may name a file under the root, or None.

    Only paths that end in a slash and whose every part is a plain name: no ``.``/``..``,
    no empty part (``//``), no NUL or backslash, no dot files (the store's own ``.tags``).
    """
    if not path.startswith("/") or not path.endswith("/") or len(path) > 1024:
        return None
    parts = path[1:-1].split("/") if path != "/" else []
    for part in parts:
        if not part or part.startswith(".") or "\\" in part or "\x00" in part:
            return None
    return parts


@dataclass
class _Entry:
    file: str
    ino: int
    mtime_ns: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class PageStore:
    root: Path
    memory: dict[str, _Entry] = field(default_factory=dict)
    memory_bytes: int = 0

    # --- reading (the hit path) ---------------------------------------------------------------
    def lookup(self, path: str) -> _Entry | None:
        """The stored page for a URL path (already known to be cacheable), or None."""
        entry = self.memory.get(path)
        if entry is not None:
            try:
                st = os.stat(entry.file)
            except OSError:
                st = None
            if st is not None and st.st_ino == entry.ino and st.st_mtime_ns == entry.mtime_ns:
                return entry
            self._forget(path)
        parts = _safe_parts(path)
        if parts is None:
            return None
        base = self.root.joinpath(*parts)
        for ext in EXTENSIONS.values():
            file = base / f"index.{ext}"
            try:
                with open(file, "rb") as fh:
                    st = os.fstat(fh.fileno())
                    body = fh.read()
                headers = json.loads((base / f"index.{ext}.headers").read_text())
            except (OSError, ValueError):
                continue
            entry = _Entry(str(file), st.st_ino, st.st_mtime_ns, [tuple(h) for h in headers], body)
            self._remember(path, entry)
            return entry
        return None

    def _remember(self, path: str, entry: _Entry) -> None:
        if self.memory_bytes + len(entry.body) > MEMORY_LIMIT_BYTES:
            self.memory.clear()
            self.memory_bytes = 0
        self.memory[path] = entry
        self.memory_bytes += len(entry.body)

    def _forget(self, path: str) -> None:
        entry = self.memory.pop(path, None)
        if entry is not None:
            self.memory_bytes -= len(entry.body)

    # --- writing -------------------------------------------------------------------------------
    def _stamp_file(self, tag: str) -> Path:
        return self.root / ".stamps" / tag

    def _tag_file(self, tag: str) -> Path:
        return self.root / ".tags" / tag

    def invalidated_since(self, tags: Iterable[str], started_ns: int) -> bool:
        for tag in (*tags, ALL):
            try:
                stamped = os.stat(self._stamp_file(tag)).st_mtime_ns
            except FileNotFoundError:
                continue
            if stamped >= started_ns - STAMP_MARGIN_NS:
                return True
        return False

    def store(
        self,
        path: str,
        *,
        ext: str,
        body: bytes,
        headers: list[tuple[str, str]],
        tags: set[str],
        started_ns: int,
        expires_ns: int | None = None,
    ) -> bool:
        """Write a page unless one of its tags was invalidated after its render began."""
        parts = _safe_parts(path)
        if parts is None or not tags or self.invalidated_since(tags, started_ns):
            return False
        base = self.root.joinpath(*parts)
        base.mkdir(parents=True, exist_ok=True, mode=0o755)
        file = base / f"index.{ext}"
        _write_atomic(base / f"index.{ext}.headers", json.dumps(headers).encode())
        _write_atomic(file, body)
        relative = "/".join([*parts, f"index.{ext}"])
        (self.root / ".tags").mkdir(exist_ok=True)
        for tag in tags:
            with open(self._tag_file(tag), "a", encoding="utf-8") as fh:
                fh.write(relative + "\n")
        if expires_ns is not None:
            with open(self.root / ".tags" / EXPIRES, "a", encoding="utf-8") as fh:
                fh.write(f"{expires_ns} {relative}\n")
        if self.invalidated_since(tags, started_ns):
            _unlink(file)
            return False
        return True

    def invalidate(self, *tags: str) -> int:
        """Delete every page stored under any of ``tags``; returns how many were deleted."""
        (self.root / ".stamps").mkdir(parents=True, exist_ok=True)
        deleted = 0
        for tag in tags:
            _touch(self._stamp_file(tag))
            listed = self._tag_file(tag)
            taken = listed.with_name(f"{listed.name}.{secrets.token_hex(6)}.taken")
            try:
                os.rename(listed, taken)
            except FileNotFoundError:
                continue
            try:
                lines = taken.read_text(encoding="utf-8").splitlines()
            finally:
                _unlink(taken)
            for relative in set(lines):
                if ".." in relative.split("/") or relative.startswith("/"):
                    continue
                if _unlink(self.root / relative):
                    deleted += 1
                _unlink(self.root / f"{relative}.headers")
        return deleted

    def sweep_expired(self, now_ns: int | None = None) -> int:
        """Delete the pages whose time is up; returns how many."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        listed = self.root / ".tags" / EXPIRES
        taken = listed.with_name(f"{EXPIRES}.{secrets.token_hex(6)}.taken")
        try:
            os.rename(listed, taken)
        except FileNotFoundError:
            return 0
        try:
            lines = taken.read_text(encoding="utf-8").splitlines()
        finally:
            _unlink(taken)
        deleted, keep = 0, []
        for line in lines:
            when, _, relative = line.partition(" ")
            if not when.isdigit() or ".." in relative.split("/") or relative.startswith("/"):
                continue
            if int(when) > now_ns:
                keep.append(line)
            elif _unlink(self.root / relative):
                _unlink(self.root / f"{relative}.headers")
                deleted += 1
        if keep:
            with open(listed, "a", encoding="utf-8") as fh:
                fh.write("\n".join(keep) + "\n")
        return deleted

    def clear(self) -> None:
        """Delete every stored page (a change every page shows: settings, sections, sites)."""
        (self.root / ".stamps").mkdir(parents=True, exist_ok=True)
        _touch(self._stamp_file(ALL))
        for child in list(self.root.iterdir()) if self.root.exists() else []:
            if child.name == ".stamps":
                continue
            gone = child.with_name(f".gone-{secrets.token_hex(6)}")
            try:
                os.rename(child, gone)
            except FileNotFoundError:
                continue
            if gone.is_dir():
                shutil.rmtree(gone, ignore_errors=True)
            else:
                _unlink(gone)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # Readable by the front server's user (nginx serves these files itself).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _touch(path: Path) -> None:
    """Stamp ``path`` with now, never moving it back (two invalidations of one tag may land
    in either order; a stamp that went back would let an older render be stored)."""
    now = time.time_ns()
    try:
        stamp = max(now, os.stat(path).st_mtime_ns + 1)
    except FileNotFoundError:
        path.touch()
        stamp = now
    os.utime(path, ns=(stamp, stamp))


def _unlink(path: Path) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


# --- configuration ---------------------------------------------------------------------------
_store: PageStore | None = None
_configured = False


def store() -> PageStore | None:
    """The page store of this process, or None when the page cache is off."""
    global _store, _configured
    if not _configured:
        root = getattr(settings, "BROADSHEET_PAGE_CACHE_DIR", None)
        _store = PageStore(Path(root)) if root else None
        _configured = True
    return _store


def reset() -> None:
    """Forget the configured store (tests change settings)."""
    global _store, _configured
    _store, _configured = None, False


_local = threading.local()


def invalidate(*tags: str) -> None:
    if (s := store()) is not None and not getattr(_local, "suspended", False):
        s.invalidate(*tags)
        broadcast.send({"tags": list(tags)})


@contextlib.contextmanager
def one_clear_at_the_end():
    """A bulk change (an import) in this thread invalidates nothing page by page; every
    page is cleared once when it ends. Other threads' changes still invalidate as usual."""
    _local.suspended = True
    try:
        yield
    finally:
        _local.suspended = False
        clear()


def suspended() -> bool:
    return getattr(_local, "suspended", False)


def clear() -> None:
    if (s := store()) is not None:
        s.clear()
        broadcast.send({"clear": True})


def last_cleared() -> int | None:
    """When the whole cache was last cleared (ns; 0 if never), or None when it is off."""
    page_store = store()
    if page_store is None:
        return None
    try:
        return os.stat(page_store._stamp_file(ALL)).st_mtime_ns
    except FileNotFoundError:
        return 0


def sweep_expired() -> int:
    return s.sweep_expired() if (s := store()) is not None else 0


def canonical_host() -> str:
    return urlsplit(settings.BROADSHEET_BASE_URL).netloc


def personal_cookies() -> tuple[str, ...]:
    return (settings.SESSION_COOKIE_NAME, *settings.BROADSHEET_PERSONAL_COOKIES)


# --- other machines --------------------------------------------------------------------------
class Broadcast:
    """Invalidations reach the app processes of other machines through Redis (``REDIS_URL``):
    each one is published after it is done here, and every app process listens in a thread and
    applies what another machine's store did to its own. A machine that lost the connection
    clears its pages when it gets it back, since it cannot know what it missed."""

    CHANNEL = "broadsheet:pagecache"

    def __init__(self) -> None:
        self._client = None
        self._missed = False
        self._listening = False
        self._lock = threading.Lock()

    def _redis(self):
        url = getattr(settings, "REDIS_URL", "")
        if not url:
            return None
        if self._client is None:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # No retries: a request that approved a comment must not wait for a Redis that
            # is down (its own machine's pages are already cleared).
            self._client = redis.Redis.from_url(
                url, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
            )
        return self._client

    @property
    def origin(self) -> str:
        """This machine's store: its own app processes have applied the change already."""
        page_store = store()
        return f"{socket.gethostname()}:{page_store.root.resolve() if page_store else ''}"

    def send(self, message: dict) -> None:
        client = self._redis()
        if client is None:
            return
        try:
            if self._missed:  # what could not be told before: other machines clear all
                client.publish(self.CHANNEL, json.dumps({"clear": True, "origin": self.origin}))
                self._missed = False
            client.publish(self.CHANNEL, json.dumps({**message, "origin": self.origin}))
        except Exception:  # noqa: BLE001 — the local invalidation is done; told later
            self._missed = True
            logger.warning("Could not tell other machines about a page cache invalidation")

    def listen(self) -> None:
        """Start this process's listener (once)."""
        with self._lock:
            if self._listening or self._redis() is None or store() is None:
                return
            self._listening = True
        threading.Thread(target=self._run, name="pagecache-broadcast", daemon=True).start()

    def _run(self) -> None:
        import redis

        backoff, first = 0.5, True
        while True:
            try:
                # A connection of its own, without a read timeout (it waits for messages),
                # pinged every 15 s so a dead one is noticed.
                client = redis.Redis.from_url(
                    settings.REDIS_URL, socket_connect_timeout=2, health_check_interval=15
                )
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.CHANNEL)
                if not first and (page_store := store()) is not None:
                    page_store.clear()  # what happened while we were away is unknown
                first, backoff = False, 0.5
                while True:  # until the connection fails
                    item = pubsub.get_message(timeout=5)
                    if item is not None:
                        self.apply(item.get("data"))
            except Exception:  # noqa: BLE001 — Redis went away: try again, then clear
                logger.warning("Page cache broadcast lost its Redis connection; retrying")
                time.sleep(backoff)
                backoff = min(backoff * 2, 30)

    def apply(self, data) -> None:
        try:
            message = json.loads(data)
        except (TypeError, ValueError):
            return
        page_store = store()
        if page_store is None or message.get("origin") == self.origin:
            return
        if message.get("clear"):
            page_store.clear()
        else:
            page_store.invalidate(*[str(tag) for tag in message.get("tags", [])][:100])


broadcast = Broadcast()


# --- the WSGI entry --------------------------------------------------------------------------
class PageCacheHandler(WSGIHandler):
    """Django's WSGI handler with the page cache in front: a hit is answered before any
    middleware or URL routing runs; a response the view marked with :func:`cache_page` is
    stored after the whole middleware stack has added its headers."""

    def __init__(self) -> None:
        super().__init__()
        self.host = canonical_host()
        self.https = bool(getattr(settings, "BROADSHEET_HTTPS", False))
        self.cookies = tuple(f"{name}=" for name in personal_cookies())
        broadcast.listen()

    def _shareable_request(self, environ: dict) -> bool:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return False
        if environ.get("QUERY_STRING") or environ.get("HTTP_HOST") != self.host:
            return False
        if self.https and environ.get("HTTP_X_FORWARDED_PROTO") != "https":
            return False
        cookie = environ.get("HTTP_COOKIE")
        # A substring test may see a personal cookie that is not there: that only skips the
        # cache, never serves a shared page to a personal request.
        return not (cookie and any(name in cookie for name in self.cookies))

    def __call__(self, environ, start_response):
        page_store = store()
        if page_store is not None and self._shareable_request(environ):
            try:
                path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
            except UnicodeError:
                path = ""
            entry = page_store.lookup(path) if path else None
            if entry is not None:
                headers = [
                    *entry.headers,
                    ("Content-Length", str(len(entry.body))),
                    ("X-Page-Cache", "hit"),
                ]
                start_response("200 OK", headers)
                return [b""] if environ["REQUEST_METHOD"] == "HEAD" else [entry.body]
        return super().__call__(environ, start_response)

    def get_response(self, request):
        # Before any query: a render that began before an invalidation is never stored.
        request.page_cache_started_ns = time.time_ns()
        response = super().get_response(request)
        page_store = store()
        if page_store is not None and getattr(request, "page_cache_tags", None):
            try:
                stored = self._store(page_store, request, response)
            except OSError:  # a full disk, a clear() racing: the reader still gets the page
                logger.exception("Could not store %s in the page cache", request.path)
                stored = False
            response["X-Page-Cache"] = "stored" if stored else "bypass"
        return response

    def _store(self, page_store: PageStore, request, response: HttpResponseBase) -> bool:
        if request.method != "GET" or request.META.get("QUERY_STRING"):
            return False
        if not self._shareable_request(request.META) or getattr(request, "is_preview", False):
            return False
        if response.status_code != 200 or response.streaming or response.cookies:
            return False
        control = response.get("Cache-Control", "")
        if "Cookie" in response.get("Vary", "") or any(
            word in control for word in ("private", "no-store", "no-cache")
        ):
            return False
        ext = EXTENSIONS.get(response.get("Content-Type", "").partition(";")[0].strip())
        if ext is None:
            return False
        headers = [
            (name, value)
            for name, value in response.items()
            if name.lower() not in UNSTORED_HEADERS
        ]
        return page_store.store(
            request.path,
            ext=ext,
            body=response.content,
            headers=headers,
            tags=request.page_cache_tags,
            started_ns=request.page_cache_started_ns,
            expires_ns=_ns(getattr(request, "page_cache_expires", None)),
        )


def _ns(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1_000_000_000)
