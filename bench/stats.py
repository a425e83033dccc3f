"""Benchmark of the computed contact figures on PostgreSQL.

    DATABASE_URL=postgres://... python -m bench.stats [--contacts 50000] [--samples 15] [--keep]

Generates a synthetic workspace (per contact about 5 orders of 2 items and 20 events, spread over
two years, with skewed event types and devices), then times:

- refresh_contact_stats for 1,000 random contacts, as ingest calls it (all kinds, events only,
  orders only), median and 90th percentile over several samples;
- recompute_workspace_stats, refresh_time_dependent_stats and refresh_rfm over the workspace.

Prints a markdown table and writes bench/results/stats.json. The workspace is removed at the end
unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402

from contacts.models import Workspace  # noqa: E402
from contacts.stats import (  # noqa: E402
    recompute_workspace_stats,
    refresh_contact_stats,
    refresh_rfm,
    refresh_time_dependent_stats,
)

WORKSPACE_NAME = "bench-stats"
RESULTS = Path(__file__).resolve().parent / "results" / "stats.json"
BATCH = 1000  # contacts per refresh_contact_stats call: one ingest call of at most 1,000 records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the generated workspace")
    parser.add_argument("--reuse", action="store_true", help="reuse a workspace kept by an earlier run")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("bench.stats measures PostgreSQL: set DATABASE_URL=postgres://...")

    workspace = Workspace.objects.filter(name=WORKSPACE_NAME).first()
    started = time.perf_counter()
    if args.reuse and workspace is not None:
        counts = existing_counts(workspace.pk)
    else:
        drop_workspace()
        workspace = Workspace.objects.create(name=WORKSPACE_NAME)
        counts = generate(workspace.pk, args.contacts)
    generate_s = time.perf_counter() - started
    now = datetime.now(UTC)
    rows: list[dict] = []

    seconds = timed(lambda: recompute_workspace_stats(workspace_id=workspace.pk, now=now))
    rows.append(row("recompute_workspace_stats (whole workspace, incl. RFM)", [seconds], counts["contacts"]))
    analyze()
    seconds = timed(lambda: recompute_workspace_stats(workspace_id=workspace.pk, now=now))
    rows.append(row("recompute_workspace_stats again (rows exist, vacuumed)", [seconds], counts["contacts"]))
    analyze()

    ids = list(range(counts["first_id"], counts["first_id"] + counts["contacts"]))
    rng = random.Random(7)
    for kinds in [("contact", "orders", "events"), ("events",), ("orders",)]:
        samples = []
        for _ in range(args.samples):
            sample = rng.sample(ids, BATCH)
            samples.append(timed(lambda s=sample, k=kinds: refresh_in_transaction(workspace.pk, s, k, now)))
        rows.append(row(f"refresh_contact_stats, {BATCH} contacts, kinds={'+'.join(kinds)}", samples, BATCH))

    samples = [timed(lambda: refresh_time_dependent_stats(workspace_id=workspace.pk, now=now)) for _ in range(3)]
    rows.append(row("refresh_time_dependent_stats (nothing changed)", samples, counts["contacts"]))
    later = now + timedelta(days=365)
    seconds = timed(lambda: refresh_time_dependent_stats(workspace_id=workspace.pk, now=later))
    rows.append(row("refresh_time_dependent_stats (a year later: most rows change)", [seconds], counts["contacts"]))
    samples = [timed(lambda: refresh_rfm(workspace_id=workspace.pk)) for _ in range(3)]
    rows.append(row("refresh_rfm (nothing changed)", samples, counts["contacts"]))

    report(rows, counts, generate_s)
    if not args.keep:
        drop_workspace()


def refresh_in_transaction(workspace_id: int, contact_ids: list[int], kinds: tuple[str, ...], now: datetime) -> None:
    with transaction.atomic():  # as ingest: inside the transaction of its writes
        refresh_contact_stats(workspace_id=workspace_id, contact_ids=contact_ids, kinds=kinds, now=now)


def generate(workspace_id: int, contacts: int) -> dict:
    """Contacts, 2,000 products, ~5 orders of 2 items and ~20 events per contact, with set-based SQL."""
    statements = [
        (
            """INSERT INTO contacts_contact (workspace_id, external_id, created_at, attributes, updated_at)
               SELECT %(ws)s, 'bench-' || g, now() - random() * interval '730 days', '{}'::jsonb, now()
               FROM generate_series(1, %(contacts)s) g""",
        ),
        (
            """INSERT INTO contacts_product (workspace_id, sku, name, category, producer, price)
               SELECT %(ws)s, 'SKU-' || g, 'Product ' || g, 'Category ' || (g %% 30), 'Producer ' || (g %% 100),
                      round((5 + random() * 195)::numeric, 2)
               FROM generate_series(1, 2000) g""",
        ),
        (
            """INSERT INTO contacts_order (workspace_id, contact_id, external_id, ordered_at, currency, total, source)
               SELECT %(ws)s, %(first)s + floor(random() * %(contacts)s)::bigint, 'bench-o-' || g,
                      now() - power(random(), 2) * interval '730 days', 'EUR', 0, 'web'
               FROM generate_series(1, %(contacts)s * 5) g""",
        ),
        (
            """INSERT INTO contacts_orderitem (order_id, contact_id, ordered_at, product_id, quantity, unit_price)
               SELECT o.id, o.contact_id, o.ordered_at, %(first_product)s + floor(power(random(), 3) * 2000)::bigint,
                      1 + floor(random() * 3)::int, round((5 + random() * 95)::numeric, 2)
               FROM contacts_order o CROSS JOIN generate_series(1, 2)
               WHERE o.workspace_id = %(ws)s""",
        ),
        (
            """UPDATE contacts_order o SET total = t.total
               FROM (SELECT i.order_id, sum(i.quantity * i.unit_price) AS total FROM contacts_orderitem i
                     JOIN contacts_order o2 ON o2.id = i.order_id WHERE o2.workspace_id = %(ws)s
                     GROUP BY i.order_id) t
               WHERE o.id = t.order_id""",
        ),
        (
            """INSERT INTO contacts_event (workspace_id, contact_id, type, occurred_at, device, properties)
               SELECT %(ws)s, %(first)s + floor(random() * %(contacts)s)::bigint,
                      (ARRAY['page_view','page_view','page_view','page_view','product_view','product_view',
                             'email_sent','email_sent','email_open','email_open','email_click','cart_add',
                             'cart_add','app_open','checkout_start'])[1 + floor(random() * 15)::int],
                      now() - power(random(), 2) * interval '730 days',
                      (ARRAY['mobile','mobile','desktop','tablet','other',NULL])[1 + floor(random() * 6)::int],
                      '{}'::jsonb
               FROM generate_series(1, %(contacts)s * 20) g""",
        ),
    ]
    params = {"ws": workspace_id, "contacts": contacts}
    with connection.cursor() as cursor:
        for index, (sql,) in enumerate(statements):
            if index == 2:  # orders need the first contact id, items the first product id
                cursor.execute("SELECT min(id) FROM contacts_contact WHERE workspace_id = %s", [workspace_id])
                params["first"] = cursor.fetchone()[0]
                cursor.execute("SELECT min(id) FROM contacts_product WHERE workspace_id = %s", [workspace_id])
                params["first_product"] = cursor.fetchone()[0]
            cursor.execute(sql, params)
    analyze()
    return existing_counts(workspace_id)


def existing_counts(workspace_id: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), count(*) FROM contacts_contact WHERE workspace_id = %s", [workspace_id])
        first_id, contacts = cursor.fetchone()
        counts = {"contacts": contacts, "first_id": first_id}
        for name, sql in [
            ("orders", "SELECT count(*) FROM contacts_order WHERE workspace_id = %s"),
            (
                "items",
                "SELECT count(*) FROM contacts_orderitem i JOIN contacts_order o ON o.id = i.order_id"
                " WHERE o.workspace_id = %s",
            ),
            ("events", "SELECT count(*) FROM contacts_event WHERE workspace_id = %s"),
        ]:
            cursor.execute(sql, [workspace_id])
            counts[name] = cursor.fetchone()[0]
    return counts


def analyze() -> None:
    """VACUUM ANALYZE what the benchmark writes: the shared server may run without autovacuum, and dead
    rows left by earlier runs would be measured instead of the code."""
    with connection.cursor() as cursor:
        for table in (
            "contacts_contact",
            "contacts_contactstats",
            "contacts_order",
            "contacts_orderitem",
            "contacts_product",
            "contacts_event",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")


def drop_workspace() -> None:
    """Delete the benchmark's rows with set-based statements (the ORM's cascade would load them all)."""
    workspace = Workspace.objects.filter(name=WORKSPACE_NAME).first()
    if workspace is None:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM contacts_orderitem WHERE order_id IN (SELECT id FROM contacts_order WHERE workspace_id = %s)",
            [workspace.pk],
        )
        for table in (
            "contacts_order",
            "contacts_event",
            "contacts_contactstats",
            "contacts_contact",
            "contacts_product",
        ):
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace.pk])
        workspace.delete()
    analyze()  # without autovacuum the indexes would keep the deleted entries and slow every insertion


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    print(f"  {seconds * 1000:,.1f} ms", file=sys.stderr, flush=True)
    return seconds


def row(name: str, samples: list[float], contacts: int) -> dict:
    print(name, file=sys.stderr, flush=True)
    ordered = sorted(samples)
    median = statistics.median(ordered)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {
        "name": name,
        "samples": len(samples),
        "median_ms": round(median * 1000, 1),
        "p90_ms": round(p90 * 1000, 1),
        "contacts": contacts,
        "contacts_per_s": round(contacts / median) if median else None,
    }


def report(rows: list[dict], counts: dict, generate_s: float) -> None:
    header = (
        f"Data: {counts['contacts']:,} contacts, {counts['orders']:,} orders, {counts['items']:,} items, "
        f"{counts['events']:,} events (generated in {generate_s:.1f} s). PostgreSQL "
        f"{connection.pg_version}. Load average (1 min) at the end: {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs."
    )
    print(header)
    print()
    print("| Operation | Samples | Median ms | p90 ms | Contacts | Contacts/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['name']} | {r['samples']} | {r['median_ms']:,} | {r['p90_ms']:,} | {r['contacts']:,} "
            f"| {r['contacts_per_s']:,} |"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"data": counts, "generate_s": generate_s, "load_average": os.getloadavg(), "rows": rows}, indent=2)
    )
    print(f"\nWritten to {RESULTS}")


if __name__ == "__main__":
    main()
