"""Loading a first, large data set into empty PostgreSQL tables the way bulk loaders do.

Row by row, a million contacts cost every index of every table one random B-tree insertion per row; with
the 128 MB of shared buffers of a stock server those insertions evict and rewrite index pages over and over.
Into tables that hold nothing yet, three things make the same load several times faster, and none of them
changes what ends up stored:

- the secondary indexes are dropped first and built again afterwards, each in one sorted pass (primary keys
  and unique constraints stay, so every row is still checked on the way in);
- the tables are truncated inside the loading transaction (they are empty, so nothing is lost), which lets
  `COPY ... FREEZE` write the rows already frozen and visible to every later transaction: no VACUUM has to
  rewrite the whole data set afterwards before index-only scans work;
- index builds get more `maintenance_work_mem` for the transaction.

Everything happens in the caller's transaction: if anything fails, the tables are as they were.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, models

BUILD_MEMORY = "512MB"


def tables_are_empty(models_: Iterable[type[models.Model]]) -> bool:
    """Whether none of these tables holds a row of any workspace."""
    return not any(model._base_manager.exists() for model in models_)


def truncate_for_freeze(root: type[models.Model]) -> None:
    """TRUNCATE `root` and the tables that reference it (all empty: see `tables_are_empty`) in this
    transaction, so that COPY into them may use FREEZE."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {connection.ops.quote_name(root._meta.db_table)} CASCADE")


def drop_secondary_indexes(models_: Iterable[type[models.Model]]) -> dict[str, list[str]]:
    """Drop the indexes of these tables that back no constraint; returns, by table, the statements that build
    them again."""
    tables = [model._meta.db_table for model in models_]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            FROM pg_index i
            JOIN pg_class t ON t.oid = i.indrelid
            WHERE t.relname = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            ORDER BY 1, 2
            """,
            [tables],
        )
        found = cursor.fetchall()
        dropped: dict[str, list[str]] = {}
        for table, name, definition in found:
            cursor.execute(f"DROP INDEX {name}")
            dropped.setdefault(table, []).append(definition)
    return dropped


def build_indexes(statements: Iterable[str]) -> None:
    """Build the indexes `drop_secondary_indexes` dropped.

    A table with foreign-key checks still queued (deferred to the commit) cannot be indexed: they are run
    first, as the commit would have run them.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SELECT set_config('maintenance_work_mem', %s, true)", [BUILD_MEMORY])
        for statement in statements:
            cursor.execute(statement)
