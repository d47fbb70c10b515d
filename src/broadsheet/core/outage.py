"""R03: when the database or the cache cannot be reached, readers get a clear 503 (with
``Retry-After``), never a 500 page or a traceback, and a reader who was sending a comment gets
their text back in a form they can send again.

What counts as an outage is narrow on purpose: a lost or refused connection, a timeout, a busy
or unreadable database file. Ordinary bugs (IntegrityError, ProgrammingError, a SQL syntax
error, a missing table) stay 500s, so they are seen and fixed rather than hidden as "try again".

The middleware sits near the top of ``MIDDLEWARE`` (right after SecurityMiddleware and
WhiteNoise). Django turns an exception into a response at every middleware layer, so there are
two ways an outage reaches it:

- raised by the view or while rendering its template: ``process_exception`` answers 503;
- raised by a middleware below it (sessions, authentication, redirects): Django has already
  made a 500 of it; the ``got_request_exception`` receiver marks the request, and the 500 is
  replaced on the way out.

The 503 page is rendered without context processors (they read the database) and without the
site's base template (its navigation comes from the database).

Recovery needs no restart. On PostgreSQL, Django closes a connection that failed during a
request when the request ends, and ``CONN_HEALTH_CHECKS`` replaces a persistent connection that
died while idle before it is used. On SQLite Django never finds a connection unusable, so a kept
connection that hit an I/O error, a full disk or a file it could not open would go on failing
until its ``CONN_MAX_AGE`` ran out: an outage closes it here, and the next request opens the file
afresh. redis-py reconnects on the next command.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Callable

from django.core.signals import got_request_exception
from django.db import utils as db_utils
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.cache import add_never_cache_headers

logger = logging.getLogger(__name__)

RETRY_AFTER = 60
MESSAGE = "The site is briefly unavailable, please try again in a minute."

# SQLite primary result codes that mean "not now" rather than "this code is wrong": busy or
# locked, out of memory, I/O error, disk full, cannot open the file, lock protocol.
_SQLITE_TRANSIENT = {5, 6, 7, 10, 13, 14, 15}
# The comment form's fields a reader fills in or the page carries; the honeypot (website2) and
# the old CSRF token are not sent back.
_COMMENT_FIELDS = (
    "thread",
    "comment_parent",
    "submission_key",
    "form_token",
    "author",
    "email",
    "url",
    "comment",
)


def _redis_errors() -> tuple[type[BaseException], ...]:
    try:
        from redis import exceptions
    except ImportError:  # pragma: no cover — redis is a dependency, but only used with REDIS_URL
        return ()
    return (exceptions.ConnectionError, exceptions.TimeoutError)


def _redis_config_errors() -> tuple[type[BaseException], ...]:
    try:
        from redis import exceptions
    except ImportError:  # pragma: no cover
        return ()
    # Subclasses of ConnectionError that a restart does not cure: a wrong password is a bug.
    return (exceptions.AuthenticationError, exceptions.AuthorizationError)


def _psycopg_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return ()
    return (psycopg.OperationalError, psycopg.InterfaceError)


def _is_outage_error(error: BaseException) -> bool:
    if isinstance(error, _redis_config_errors()):
        return False
    if isinstance(error, _redis_errors()):
        return True
    if isinstance(error, (db_utils.OperationalError, db_utils.InterfaceError)):
        cause = error.__cause__
        if isinstance(cause, sqlite3.Error):
            # sqlite3 calls almost everything OperationalError, syntax errors included.
            code = getattr(cause, "sqlite_errorcode", None)
            return (
                isinstance(cause, sqlite3.OperationalError)
                and code is not None
                and code & 0xFF in _SQLITE_TRANSIENT
            )
        # PostgreSQL (psycopg): connection lost or refused, admin shutdown, query cancelled,
        # deadlock, too many connections. Its bugs are ProgrammingError, IntegrityError, DataError.
        return True
    # Raised by psycopg outside Django's wrapper (closing a dead connection).
    return isinstance(error, _psycopg_errors())


def outage_cause(error: BaseException | None) -> BaseException | None:
    """The error in ``error``'s chain (itself, what it was raised from or while handling) that
    means the database or the cache cannot be reached just now; None when there is none."""
    seen = 0
    while error is not None and seen < 8:  # bounded: a chain is short, a cycle is possible
        if _is_outage_error(error):
            return error
        error = error.__cause__ or error.__context__
        seen += 1
    return None


def is_outage(error: BaseException | None) -> bool:
    return outage_cause(error) is not None


def _comment_post_path() -> str | None:
    try:
        return reverse("comments:post")
    except NoReverseMatch:  # pragma: no cover — a site without the comments app
        return None


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def _comment_fields(request: HttpRequest) -> dict[str, str] | None:
    """What the reader sent to the comment form, or None for any other request."""
    if request.method != "POST" or request.path != _comment_post_path():
        return None
    try:
        return {name: request.POST.get(name, "") for name in _COMMENT_FIELDS}
    except Exception:  # noqa: BLE001 — an unreadable body: the plain 503 page, not a 500
        return None


def outage_response(request: HttpRequest, error: BaseException) -> HttpResponse:
    """The 503 answer: JSON for scripts, else a page; for a comment, the page is the form again
    with the reader's text and the same submission key (a post that was stored after all is
    not stored twice when sent again)."""
    if _wants_json(request):
        response: HttpResponse = JsonResponse(
            {"error": MESSAGE, "retry_after": RETRY_AFTER}, status=503
        )
    else:
        fields = _comment_fields(request)
        context = {"message": MESSAGE, "retry_after": RETRY_AFTER, "comment": fields}
        if fields is not None:
            from django.middleware.csrf import get_token

            # From the CSRF cookie already read (no database); sent again with the form.
            context["csrf_token"] = get_token(request)
            context["action"] = request.path
        response = HttpResponse(render_to_string("503.html", context), status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    add_never_cache_headers(response)
    return response


def _close_failed_sqlite_connection(error: BaseException) -> None:
    """Close this thread's SQLite connection when the outage in ``error`` came from SQLite (see
    the module's docstring); not inside a transaction, which belongs to whoever opened it (a
    test's). Only outages that reach this middleware are seen: the worker's loop and a view
    that catches a database error keep their connection until its ``CONN_MAX_AGE`` ends."""
    from django.db import connection

    cause = outage_cause(error)
    if (
        isinstance(getattr(cause, "__cause__", None), sqlite3.Error)
        and connection.vendor == "sqlite"
        and not connection.in_atomic_block
    ):
        connection.close()


def _log(request: HttpRequest, error: BaseException, *, traceback: bool) -> None:
    logger.error(
        "Service unavailable for %s %s: %s: %s",
        request.method,
        request.path,
        type(error).__name__,
        str(error).strip().splitlines()[0] if str(error).strip() else "",
        exc_info=error if traceback else None,
    )


def _note_outage(sender, request=None, **kwargs) -> None:
    """``got_request_exception``: a middleware below ours failed for want of the database or
    the cache; remember it on the request so OutageMiddleware can answer 503."""
    error = sys.exc_info()[1]
    if request is not None and is_outage(error):
        request._broadsheet_outage = error  # noqa: SLF001 — read only by OutageMiddleware


got_request_exception.connect(_note_outage, dispatch_uid="broadsheet.core.outage")


class OutageMiddleware:
    """Turn a lost database or cache connection, anywhere below this middleware, into a 503
    with ``Retry-After`` and a short message (see the module's docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        error = getattr(request, "_broadsheet_outage", None)
        if error is not None and response.status_code >= 500 and response.status_code != 503:
            # django.request has logged the traceback with the 500 it made.
            _log(request, error, traceback=False)
            _close_failed_sqlite_connection(error)
            return outage_response(request, error)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_outage(exception):
            return None
        _log(request, exception, traceback=True)
        _close_failed_sqlite_connection(exception)
        return outage_response(request, exception)
