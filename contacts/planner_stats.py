"""Planner statistics that follow the data: a table is analysed when writes change it materially.

A query plan is only as good as the row counts the planner believes. A fresh database has none
(PostgreSQL: "never analysed", SQLite: no `sqlite_stat1`), and a table that grew tenfold since its
last `ANALYZE` is planned as if it were small: nested loops where hash joins belong, the wrong index
for a correlated subquery. PostgreSQL's autovacuum would catch up eventually (when it runs at all:
it can be switched off, and it does not see temporary tables); SQLite has nothing of the kind.

So every writer that adds or changes rows in bulk reports it with `note_rows_written`, and after its
transaction commits each reported table whose changes since its last analysis exceed
`ANALYZE_MIN_ROWS + ANALYZE_GROWTH_SHARE * estimated rows` (autovacuum's own rule, with the same
defaults) is analysed there and then. ANALYZE samples a fixed number of rows, so it costs
milliseconds on small tables and well under a second on large ones, and large tables need it rarely.

The statements themselves are written so that a stale estimate cannot make them explode (see
`contacts.stats`); fresh statistics make them fast as well.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.db import DatabaseError, connection, models, transaction

logger = logging.getLogger(__name__)

ANALYZE_GROWTH_SHARE = 0.10
ANALYZE_MIN_ROWS = 50
# A concurrent ANALYZE of the same table (another ingest call, autovacuum) is not waited for.
_LOCK_TIMEOUT = "200ms"


def note_rows_written(written: Mapping[type[models.Model], int]) -> None:
    """Report rows inserted, updated or deleted per model; tables that changed materially are analysed
    once the current transaction commits (at once outside a transaction).

    >>> note_rows_written({Event: 1000, ContactStats: 640})  # doctest: +SKIP
    """
    tables = {model._meta.db_table: count for model, count in written.items() if count > 0}
    if tables:
        transaction.on_commit(lambda: analyze_if_grown(tables))


def analyze_if_grown(written: Mapping[str, int]) -> list[str]:
    """Analyse each table whose changes since its last analysis are material; returns the tables analysed.

    `written` maps table names to the rows just written to them, counted in case the database's own
    change counters have not caught up yet.
    """
    if connection.vendor == "postgresql":
        due = [table for table, changed, estimated in _postgresql_counts(written) if _material(changed, estimated)]
    elif connection.vendor == "sqlite":
        due = [table for table, changed, estimated in _sqlite_counts(written) if _material(changed, estimated)]
    else:
        return []
    return [table for table in due if _analyze(table)]


def analyze_tables(*tables: type[models.Model] | str) -> None:
    """Analyse these tables (models or table names) now: after a bulk load such as the seed or a full
    rebuild of the figures, and for temporary tables, which autovacuum never sees."""
    for table in tables:
        _analyze(table if isinstance(table, str) else table._meta.db_table)


def _material(changed: int, estimated: int | None) -> bool:
    """`estimated` None: never analysed, so any row is news."""
    if estimated is None:
        return changed > 0
    return changed > ANALYZE_MIN_ROWS + ANALYZE_GROWTH_SHARE * estimated


def _postgresql_counts(written: Mapping[str, int]) -> list[tuple[str, int, int | None]]:
    names = sorted(written)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, c.reltuples, COALESCE(s.n_mod_since_analyze, 0)
            FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
            WHERE c.oid = ANY(%s::regclass[])
            """,
            [names],
        )
        rows = cursor.fetchall()
    # reltuples is -1 until the first ANALYZE (PostgreSQL 14 and later).
    return [
        (name, max(int(modified), written[name]), int(reltuples) if reltuples >= 0 else None)
        for name, reltuples, modified in rows
    ]


def _sqlite_counts(written: Mapping[str, int]) -> list[tuple[str, int, int | None]]:
    """SQLite keeps no change counter: the table's row count now (its largest rowid, read from the end of
    the table's B-tree) against the count its last ANALYZE recorded."""
    counts = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
        has_stats = cursor.fetchone() is not None
        for name in sorted(written):
            quoted = connection.ops.quote_name(name)
            cursor.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {quoted}")
            rows_now = int(cursor.fetchone()[0])
            estimated = None
            if has_stats:
                cursor.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = %s LIMIT 1", [name])
                row = cursor.fetchone()
                if row is not None and row[0]:
                    estimated = int(str(row[0]).split()[0])
            changed = max(rows_now - (estimated or 0), written[name] if estimated is None else 0)
            counts.append((name, changed, estimated))
    return counts


def _analyze(table: str) -> bool:
    quoted = connection.ops.quote_name(table)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
            cursor.execute(f"ANALYZE {quoted}")
    except DatabaseError as exc:
        # Statistics are an optimisation: a busy table is analysed by the next writer instead.
        logger.info("ANALYZE %s skipped: %s", table, exc)
        return False
    return True
