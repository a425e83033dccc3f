"""Guard rails for interactive segment queries: previews stop after SEGMENT_PREVIEW_TIMEOUT_MS.

A marketer's preview runs the definition against the whole workspace while they wait; a definition
that turns out to be too expensive must answer a clear error quickly and free the worker, not hold a
gunicorn worker and a database connection for minutes.

- PostgreSQL: `set_config('statement_timeout', ..., true)`, i.e. `SET LOCAL`, inside the preview's
  transaction. The server cancels a statement that outgrows it (SQLSTATE 57014); the transaction (or
  savepoint) is rolled back, which also undoes the setting, so the connection goes back to the pool
  unchanged. On success the previous value is restored explicitly, because inside a caller's
  transaction (a savepoint) SET LOCAL would otherwise outlive the block.
- SQLite (the quick start) has no statement timeout: a progress handler, called every
  `_SQLITE_PROGRESS_STEPS` virtual-machine instructions, aborts the running statement once the
  deadline has passed (SQLite then raises "interrupted"). A read-only statement interrupted this way
  does not roll back the surrounding transaction.

`SEGMENT_PREVIEW_TIMEOUT_MS` = 0 disables the limit.

On PostgreSQL the same transaction also turns JIT compilation off (it costs a second or more on the
big aggregates of a preview and gains nothing on queries that run once) and raises `work_mem` to
`PREVIEW_WORK_MEM`, so that the hash of a semi-join or of a `NOT IN (... GROUP BY ...)` over a million
contacts stays in memory instead of spilling to disk or falling back to a per-row subplan.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import OperationalError, connection, transaction

_QUERY_CANCELED = "57014"
_SQLITE_PROGRESS_STEPS = 10_000
PREVIEW_WORK_MEM = "128MB"


class PreviewTimeout(Exception):
    """A preview outgrew its statement timeout; the definition must be narrowed."""

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        seconds = f"{timeout_ms / 1000:g}"
        super().__init__(
            f"The preview took longer than {seconds} s and was stopped. Narrow the definition and try again: "
            "add a time window to orders and event conditions, use more specific filters, or rely on the "
            "computed contact fields (e.g. total_spent, last_order_at) instead of all-time order aggregates."
        )


def preview_timeout_ms() -> int:
    """The configured limit in milliseconds (0: no limit)."""
    return max(0, int(settings.SEGMENT_PREVIEW_TIMEOUT_MS))


@contextmanager
def statement_timeout(timeout_ms: int | None = None) -> Iterator[None]:
    """Run the block in one transaction whose statements are stopped after `timeout_ms` (default: the setting).

    Raises `PreviewTimeout` when a statement is stopped; the transaction is rolled back.

    >>> with statement_timeout():  # doctest: +SKIP
    ...     count = queryset.count()
    """
    limit = preview_timeout_ms() if timeout_ms is None else max(0, timeout_ms)
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                settings_ = {"jit": "off", "work_mem": PREVIEW_WORK_MEM}
                if limit:
                    settings_["statement_timeout"] = f"{limit}ms"
                previous = _set_local(**settings_)
                yield
                _set_local(**previous)
            elif connection.vendor == "sqlite" and limit:
                with _sqlite_deadline(limit):
                    yield
            else:
                yield
    except OperationalError as exc:
        if limit and _was_stopped(exc):
            raise PreviewTimeout(limit) from exc
        raise


def _set_local(**values: str) -> dict[str, str]:
    """SET LOCAL each setting (for the transaction); returns the values they had before."""
    previous = {}
    with connection.cursor() as cursor:
        for name, value in values.items():
            cursor.execute("SELECT current_setting(%s), set_config(%s, %s, true)", [name, name, value])
            previous[name] = cursor.fetchone()[0]
    return previous


@contextmanager
def _sqlite_deadline(limit_ms: int) -> Iterator[None]:
    connection.ensure_connection()
    raw = connection.connection
    deadline = time.monotonic() + limit_ms / 1000

    def past_deadline() -> int:
        # A non-zero answer makes SQLite abort the running statement.
        return 1 if time.monotonic() > deadline else 0

    raw.set_progress_handler(past_deadline, _SQLITE_PROGRESS_STEPS)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)


def _was_stopped(exc: OperationalError) -> bool:
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == _QUERY_CANCELED:
        return True
    return connection.vendor == "sqlite" and "interrupted" in str(exc)
