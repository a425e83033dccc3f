"""The hot statements of ingest, set-based, with a lean PostgreSQL form and a portable ORM form.

On PostgreSQL every statement sends whole columns as arrays (`unnest(%s::bigint[], ...)`, `= ANY(%s)`)
through a server-binding psycopg cursor: no model instances, no per-value field preparation and no
client-side quoting of thousands of literals, which is where Django's bulk_create spends its time on
1,000-record calls. Elsewhere (SQLite for the quick start) the same operations go through the ORM.
Both forms run in the caller's transaction and are covered by the same tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

import psycopg
from django.db import connection

from contacts.models import Event, Order, OrderItem, Workspace
from contacts.planner_stats import note_rows_written


def _postgres() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def _cursor() -> Iterator[psycopg.Cursor]:
    connection.ensure_connection()
    # Django's own cursors bind client-side; a plain psycopg cursor binds on the server, arrays included.
    # Errors are wrapped like Django's (OperationalError, IntegrityError, ...) so callers see one kind.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def _table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _column(model: type, field: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(field).column)


def ids_by_key(model: type, *, workspace: Workspace, key: str, values: Sequence[str]) -> dict[str, int]:
    """{natural key: id} of the workspace's rows whose `key` (external_id, sku, ...) is among `values`."""
    if not values:
        return {}
    if not _postgres():
        return dict(model.objects.filter(workspace=workspace, **{f"{key}__in": values}).values_list(key, "id"))
    sql = (
        f"SELECT {_column(model, key)}, id FROM {_table(model)} "
        f"WHERE {_column(model, 'workspace')} = %s AND {_column(model, key)} = ANY(%s::text[])"
    )
    with _cursor() as cursor:
        cursor.execute(sql, [workspace.pk, list(values)])
        return dict(cursor.fetchall())


def existing_event_ids(*, workspace: Workspace, event_ids: Sequence[str]) -> set[str]:
    if not event_ids:
        return set()
    if not _postgres():
        return set(Event.objects.filter(workspace=workspace, event_id__in=event_ids).values_list("event_id", flat=True))
    sql = f"SELECT event_id FROM {_table(Event)} WHERE workspace_id = %s AND event_id = ANY(%s::text[])"
    with _cursor() as cursor:
        cursor.execute(sql, [workspace.pk, list(event_ids)])
        return {row[0] for row in cursor.fetchall()}


EventRow = tuple[int, str, datetime, str | None, str | None, str | None, dict, str]


def insert_events(*, workspace: Workspace, rows: Sequence[EventRow]) -> None:
    """Insert (contact_id, type, occurred_at, device, url, campaign, properties, event_id) rows; an event_id
    stored meanwhile by a concurrent call is skipped (ON CONFLICT DO NOTHING)."""
    if not rows:
        return
    note_rows_written({Event: len(rows)})
    if not _postgres():
        Event.objects.bulk_create(
            [
                Event(
                    workspace=workspace,
                    contact_id=contact_id,
                    type=type_,
                    occurred_at=occurred_at,
                    device=device,
                    url=url,
                    campaign=campaign,
                    properties=properties,
                    event_id=event_id,
                )
                for contact_id, type_, occurred_at, device, url, campaign, properties, event_id in rows
            ],
            ignore_conflicts=True,
        )
        return
    columns = list(zip(*rows, strict=True))
    properties = [json.dumps(value, ensure_ascii=False, separators=(",", ":")) for value in columns[6]]
    sql = f"""
        INSERT INTO {_table(Event)} (workspace_id, contact_id, type, occurred_at, device, url, campaign,
                                     properties, event_id)
        SELECT %s, r.contact_id, r.type, r.occurred_at, r.device, r.url, r.campaign, r.properties::jsonb, r.event_id
        FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::text[],
                    %s::text[])
             AS r(contact_id, type, occurred_at, device, url, campaign, properties, event_id)
        ON CONFLICT DO NOTHING
    """
    params = [workspace.pk, *(list(column) for column in columns[:6]), properties, list(columns[7])]
    with _cursor() as cursor:
        cursor.execute(sql, params)


def lock_orders(*, workspace: Workspace, external_ids: Sequence[str]) -> dict[str, tuple[int, int, datetime]]:
    """{external_id: (order id, contact id, ordered_at)} of the stored orders among `external_ids`, locked in
    key order."""
    if not external_ids:
        return {}
    if not _postgres():
        queryset = (
            Order.objects.select_for_update()
            .filter(workspace=workspace, external_id__in=external_ids)
            .order_by("external_id")
            .values_list("external_id", "id", "contact_id", "ordered_at")
        )
        return {external_id: tuple(rest) for external_id, *rest in queryset}
    sql = (
        f"SELECT external_id, id, contact_id, ordered_at FROM {_table(Order)} "
        f"WHERE workspace_id = %s AND external_id = ANY(%s::text[]) ORDER BY external_id FOR UPDATE"
    )
    with _cursor() as cursor:
        cursor.execute(sql, [workspace.pk, list(external_ids)])
        return {external_id: tuple(rest) for external_id, *rest in cursor.fetchall()}


OrderRow = tuple[str, int, datetime, str | None, str, Decimal]


def upsert_orders(*, workspace: Workspace, rows: Sequence[OrderRow]) -> dict[str, int]:
    """Insert or update (external_id, contact_id, ordered_at, source, currency, total) rows; returns
    {external_id: order id}."""
    if not rows:
        return {}
    note_rows_written({Order: len(rows)})
    if not _postgres():
        orders = [
            Order(
                workspace=workspace,
                external_id=external_id,
                contact_id=contact_id,
                ordered_at=ordered_at,
                source=source,
                currency=currency,
                total=total,
            )
            for external_id, contact_id, ordered_at, source, currency, total in rows
        ]
        Order.objects.bulk_create(
            orders,
            update_conflicts=True,
            unique_fields=["workspace", "external_id"],
            update_fields=["contact", "ordered_at", "source", "currency", "total"],
        )
        if any(order.pk is None for order in orders):
            return ids_by_key(Order, workspace=workspace, key="external_id", values=[row[0] for row in rows])
        return {order.external_id: order.pk for order in orders}
    columns = [list(column) for column in zip(*rows, strict=True)]
    sql = f"""
        INSERT INTO {_table(Order)} (workspace_id, external_id, contact_id, ordered_at, source, currency, total)
        SELECT %s, r.* FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[], %s::text[], %s::text[],
                                   %s::numeric[]) AS r
        ON CONFLICT (workspace_id, external_id) DO UPDATE SET
            contact_id = EXCLUDED.contact_id, ordered_at = EXCLUDED.ordered_at, source = EXCLUDED.source,
            currency = EXCLUDED.currency, total = EXCLUDED.total
        RETURNING external_id, id
    """
    with _cursor() as cursor:
        cursor.execute(sql, [workspace.pk, *columns])
        return dict(cursor.fetchall())


ItemRow = tuple[int, int, datetime, int, int, Decimal]


def replace_items(*, workspace: Workspace, order_ids: Iterable[int], rows: Sequence[ItemRow]) -> None:
    """Make the orders' items exactly the (order_id, contact_id, ordered_at, product_id, quantity, unit_price)
    rows; contact_id and ordered_at are the order's own, copied onto its items (see OrderItem)."""
    order_ids = list(order_ids)
    note_rows_written({OrderItem: len(rows)})
    if not _postgres():
        OrderItem.objects.filter(order_id__in=order_ids).delete()
        OrderItem.objects.bulk_create(
            [
                OrderItem(
                    workspace=workspace,
                    order_id=order_id,
                    contact_id=contact_id,
                    ordered_at=ordered_at,
                    product_id=product_id,
                    quantity=quantity,
                    unit_price=unit_price,
                )
                for order_id, contact_id, ordered_at, product_id, quantity, unit_price in rows
            ]
        )
        return
    with _cursor() as cursor:
        cursor.execute(f"DELETE FROM {_table(OrderItem)} WHERE order_id = ANY(%s::bigint[])", [order_ids])
        if rows:
            columns = [list(column) for column in zip(*rows, strict=True)]
            cursor.execute(
                f"INSERT INTO {_table(OrderItem)} "
                f"(workspace_id, order_id, contact_id, ordered_at, product_id, quantity, unit_price) "
                f"SELECT %s, r.* FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::bigint[], "
                f"%s::integer[], %s::numeric[]) AS r",
                [workspace.pk, *columns],
            )


def create_bare(model: type, *, workspace: Workspace, key: str, values: Sequence[str]) -> None:
    """Rows that only have their natural key (unknown contacts of orders, unknown SKUs); races are harmless."""
    model.objects.bulk_create([model(workspace=workspace, **{key: value}) for value in values], ignore_conflicts=True)
    note_rows_written({model: len(values)})
