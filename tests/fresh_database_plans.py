"""Plans on a brand-new PostgreSQL database, as a new user meets them: `python -m tests.fresh_database_plans URL`.

Run by `tests/test_fresh_database_plans.py` in a process of its own, because a fresh database is one
that nothing has analysed yet, which the test database (shared with every other test) is not.

It creates the database at URL (dropping it first), migrates it, and ingests a small shop through the
ingest services with the automatic ANALYZE switched off: 60 products, 600 contacts, 1,000 orders with 1 to
3 items and 3,000 events. Every statement that refreshes the computed figures is captured. Then it
EXPLAINs those statements, which ran without statistics. Then the count of a preview of every template and
every example of the definition contract, and the recompute of a segment and its real-time re-evaluation of a
few contacts: those after the tables the ingest calls changed have been analysed, as the ingest services
do after they commit. Prints one JSON object: {"plans": {label: plan}, "analyzed_before": [tables with
statistics before], "analyzed_by_ingest": [tables the ingest services' rule analysed]}.
"""

from __future__ import annotations

import json
import os
import random
import sys
from datetime import UTC, datetime, timedelta
from unittest import mock


def main(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    _recreate_database(url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from contacts.planner_stats import analyze_if_grown

    # The figure refresh runs inside the ingest transaction, before anything can be analysed: its plan
    # must be good with no statistics at all.
    with mock.patch("contacts.planner_stats.analyze_if_grown", lambda written: []):
        workspace = _shop()
        plans = _refresh_plans(workspace)
    before = _analyzed()
    # What the ingest calls above would have analysed after their commits, had it been on.
    analyzed_now = analyze_if_grown(_row_counts())
    # Previews and recomputes run after ingest has committed (and analysed what it changed materially).
    plans.update(_preview_plans(workspace))
    plans.update(_membership_plans(workspace))
    print(json.dumps({"plans": plans, "analyzed_before": before, "analyzed_by_ingest": sorted(analyzed_now)}))


def _recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


NOW = datetime.now(UTC).replace(microsecond=0)
RNG = random.Random(11)


def _shop():
    from contacts.ingest import ingest_contacts, ingest_events, ingest_products
    from contacts.models import Workspace

    workspace = Workspace.objects.create(name="Fresh Shop")
    producers, categories = ["Acme", "Nordwind", "Hexa"], ["Shoes", "Accessories", "Apparel"]
    products = [
        {"sku": f"SKU-{n}", "name": f"Product {n}", "producer": producers[n % 3], "category": categories[n % 3]}
        for n in range(1, 61)
    ]
    _check(ingest_products(workspace=workspace, records=products))
    contacts = [
        {"external_id": f"c{n}", "email": f"c{n}@example.com", "country": RNG.choice(["PL", "DE", "FR"]),
         "email_status": "subscribed", "tags": ["vip"] if n % 7 == 0 else []}
        for n in range(600)
    ]  # fmt: skip
    _check(ingest_contacts(workspace=workspace, records=contacts))
    _more_orders(workspace, batch=0)
    kinds = ["email_open", "email_click", "page_view", "cart_add", "product_view"]
    events = [
        {"contact": f"c{RNG.randrange(600)}", "type": RNG.choice(kinds), "device": RNG.choice(["mobile", "desktop"]),
         "occurred_at": (NOW - timedelta(minutes=RNG.randrange(60 * 24 * 200))).isoformat(),
         "properties": {"utm_source": RNG.choice(["facebook", "google"])}}
        for _ in range(3000)
    ]  # fmt: skip
    for start in range(0, len(events), 1000):
        _check(ingest_events(workspace=workspace, records=events[start : start + 1000]))
    return workspace


def _more_orders(workspace, *, batch: int) -> None:
    from contacts.ingest import ingest_orders

    orders = [
        {"external_id": f"o{batch}-{n}", "contact": f"c{RNG.randrange(600)}",
         "ordered_at": (NOW - timedelta(minutes=RNG.randrange(60 * 24 * 400))).isoformat(),
         "source": RNG.choice(["organic", "paid_search", "paid_social", "email"]),
         "items": [{"sku": f"SKU-{RNG.randrange(1, 61)}", "quantity": RNG.randint(1, 3),
                    "unit_price": f"{RNG.randrange(500, 30000) / 100:.2f}"} for _ in range(RNG.randint(1, 3))]}
        for n in range(1000)
    ]  # fmt: skip
    _check(ingest_orders(workspace=workspace, records=orders))


def _check(result) -> None:
    if result.errors:
        raise SystemExit(f"ingest refused records: {result.errors[:3]}")


def _refresh_plans(workspace) -> dict:
    """The figure refresh of each kind of ingest call, captured while it runs and explained afterwards."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from contacts.ingest import ingest_contacts, ingest_events

    plans = {}
    with CaptureQueriesContext(connection) as queries:
        _more_orders(workspace, batch=1)
    plans["figure refresh after orders"] = _explain_captured(queries, "UPDATE")
    with CaptureQueriesContext(connection) as queries:
        _check(ingest_events(workspace=workspace, records=[
            {"contact": f"c{n}", "type": "email_open", "occurred_at": NOW.isoformat()} for n in range(0, 600, 3)
        ]))  # fmt: skip
    plans["figure refresh after events"] = _explain_captured(queries, "UPDATE")
    with CaptureQueriesContext(connection) as queries:
        _check(ingest_contacts(workspace=workspace, records=[
            {"external_id": f"c{n}", "city": "Kraków"} for n in range(0, 600, 2)
        ]))  # fmt: skip
    plans["figure refresh after contacts"] = _explain_captured(queries, "UPDATE")
    return plans


def _explain_captured(queries, verb: str):
    from contacts.models import ContactStats

    table = ContactStats._meta.db_table
    statements = _statements(queries, verb, table)
    if len(statements) != 1:
        raise SystemExit(f"expected one {verb} of {table}, found {len(statements)}")
    return _explain(statements[0], [])


def _statements(queries, verb: str, table: str) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith(verb) and table in q["sql"]]


def _explain(sql: str, params) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def _preview_plans(workspace) -> dict:
    from segments_app.models import Segment
    from segments_app.selectors import contact_ids_sql, segment_contacts
    from segments_app.templates_library import templates

    referenced = Segment.objects.create(
        workspace=workspace, name="openers", definition=_template("engaged_openers_7d")["definition"]
    )
    definitions = {f"preview: {t['key']}": t["definition"] for t in templates()}
    definitions.update({f"preview: contract {name}": d for name, d in _contract_examples(referenced.pk).items()})
    plans = {}
    for label, definition in definitions.items():
        sql, params = contact_ids_sql(segment_contacts(workspace=workspace, definition=definition, now=NOW))
        plans[label] = _explain(f"SELECT count(*) FROM ({sql}) matched", params)
    return plans


def _template(key: str) -> dict:
    from segments_app.templates_library import templates

    return next(t for t in templates() if t["key"] == key)


def _contract_examples(segment_id: int) -> dict[str, dict]:
    """The format's examples, and two conditions that read items and event properties."""
    from segments_app.examples import contract_examples

    return {
        **{name.removeprefix("contract: "): d for name, d in contract_examples(segment_id).items()},
        "category spend": {"match": "all", "conditions": [
            {"type": "orders", "filters": [{"field": "product.category", "op": "eq", "value": "Accessories"},
                                           {"field": "unit_price", "op": "gt", "value": 50}],
             "window": {"last": 12, "unit": "months"}, "measure": "sum", "op": "gte", "value": 200}]},
        "event property": {"match": "all", "conditions": [
            {"type": "event", "event": "cart_add",
             "filters": [{"field": "properties.utm_source", "op": "eq", "value": "facebook"}],
             "measure": "count", "op": "gte", "value": 1}]},
    }  # fmt: skip


def _membership_plans(workspace) -> dict:
    """The recompute statement of a segment (the definition evaluated once and diffed with its members),
    in full and for a few contacts as real time runs it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from contacts.models import Contact
    from segments_app import membership
    from segments_app.models import Segment, SegmentMember

    segment = Segment.objects.create(
        workspace=workspace, name="paid only", definition=_template("paid_source_only")["definition"]
    )
    plans = {}
    member_table = SegmentMember._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        membership.recompute_membership(segment_id=segment.pk, trigger="manual")
    plans["segment recompute"] = _explain(_one(queries, member_table), [])
    ids = list(Contact.objects.filter(workspace=workspace).order_by("pk").values_list("pk", flat=True)[:50])
    with CaptureQueriesContext(connection) as queries:
        membership.recompute_contacts(segment_id=segment.pk, contact_ids=ids, trigger="real_time")
    plans["segment real-time re-evaluation"] = _explain(_one(queries, member_table), [])
    return plans


def _one(queries, table: str) -> str:
    statements = _statements(queries, "WITH", table)
    if len(statements) != 1:
        raise SystemExit(f"expected one diff statement on {table}, found {len(statements)}")
    return statements[0]


def _tables() -> list[str]:
    from contacts.models import Contact, ContactStats, ContactTag, Event, Order, OrderItem, Product

    return [m._meta.db_table for m in (Contact, ContactStats, ContactTag, Event, Order, OrderItem, Product)]


def _analyzed() -> list[str]:
    """The tables that have planner statistics."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname = ANY(%s) AND reltuples >= 0", [_tables()])
        return sorted(row[0] for row in cursor.fetchall())


def _row_counts() -> dict[str, int]:
    from django.db import connection

    counts = {}
    with connection.cursor() as cursor:
        for table in _tables():
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    return counts


if __name__ == "__main__":
    main(sys.argv[1])
