"""Benchmark of segment previews on PostgreSQL: every template and every example of the contract.

    DATABASE_URL=postgres://.../ds_bench python -m bench.segments [--workspace "Demo Shop"] [--runs 5]
                                                                  [--only KEY,KEY] [--no-preview]

Runs against a workspace loaded by `manage.py seed_demo` (1,000,000 contacts for the published figures)
and changes nothing: the one segment the contract's last example refers to is created inside a
transaction that is rolled back at the end.

For each definition: the compiled count query (what a preview counts) is run once to warm the cache,
then `--runs` times, each in a preview's transaction (statement timeout, no JIT, work_mem of
`segments_app.guards`); the median is reported with the row count and the shape of PostgreSQL's plan. The
whole preview service (validation, count, sample of 10, summary) is timed too. Each definition has a
target by what it reads: 300 ms for contact fields and computed figures, 1.5 s for windowed orders,
items and events, 3 s for anything in the library (all-time aggregates over the orders).

Three definitions also have the SQL an expert would write by hand; the ratio compiled / hand-written
(median against median) shows what the generic compiler costs (target at most 1.3).

Prints a markdown table and writes bench/results/segments.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from contacts.models import Workspace  # noqa: E402
from segments_app import services  # noqa: E402
from segments_app.catalog import build_catalog  # noqa: E402
from segments_app.definition import (  # noqa: E402
    EventCondition,
    Group,
    OrdersCondition,
    SegmentCondition,
    WorkspaceSegments,
    parse_definition,
)
from segments_app.examples import contract_examples  # noqa: E402
from segments_app.guards import PreviewTimeout, statement_timeout  # noqa: E402
from segments_app.models import Segment  # noqa: E402
from segments_app.selectors import matching_ids  # noqa: E402
from segments_app.templates_library import templates  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "segments.json"
FIELDS_MS, ROWS_MS, LIBRARY_MS = 300, 1500, 3000
RATIO_TARGET = 1.3


# --- what an expert would write by hand ------------------------------------------------------------------------

HAND_WRITTEN: dict[str, Callable[[int, datetime], tuple[str, list]]] = {
    # Sum of Acme items per contact over the window. Items carry their order's contact and time, so an expert
    # reads the items alone: one range of the (product, ordered_at) index per Acme product, grouped.
    "contract: up-selling": lambda ws, now: (
        """
        SELECT count(*) FROM (
            SELECT i.contact_id
            FROM contacts_orderitem i
            JOIN contacts_product p ON p.id = i.product_id
            WHERE p.workspace_id = %s AND p.producer = 'Acme'
              AND i.ordered_at >= %s AND i.ordered_at <= %s
            GROUP BY i.contact_id
            HAVING sum(i.quantity * i.unit_price) > 300
        ) buyers
        """,
        [ws, _months_ago(now, 6), now],
    ),
    # Bought SKU-1 in the last month and never SKU-2/SKU-3: EXISTS and NOT EXISTS over the items.
    "contract: cross-selling": lambda ws, now: (
        """
        SELECT count(*) FROM contacts_contact c
        WHERE c.workspace_id = %s
          AND EXISTS (
            SELECT 1 FROM contacts_orderitem i JOIN contacts_product p ON p.id = i.product_id
            WHERE i.contact_id = c.id AND p.workspace_id = %s AND p.sku = 'SKU-1'
              AND i.ordered_at >= %s AND i.ordered_at <= %s)
          AND NOT EXISTS (
            SELECT 1 FROM contacts_orderitem i JOIN contacts_product p ON p.id = i.product_id
            WHERE i.contact_id = c.id AND p.workspace_id = %s AND p.sku IN ('SKU-2', 'SKU-3'))
        """,
        [ws, ws, _months_ago(now, 1), now, ws],
    ),
    # Opened in 7 days (semi-join on the events index), subscribed, and in Poland or tagged vip.
    "contract: engaged and reachable": lambda ws, now: (
        """
        SELECT count(*) FROM contacts_contact c
        WHERE c.workspace_id = %s AND c.email_status = 'subscribed'
          AND c.id IN (SELECT e.contact_id FROM contacts_event e
                       WHERE e.workspace_id = %s AND e.type = 'email_open'
                         AND e.occurred_at >= %s AND e.occurred_at <= %s)
          AND (c.country = 'PL' OR EXISTS (
                SELECT 1 FROM contacts_contacttag ct JOIN contacts_tag t ON t.id = ct.tag_id
                WHERE ct.contact_id = c.id AND t.workspace_id = %s AND t.name = 'vip'))
        """,
        [ws, ws, now - _days(7), now, ws],
    ),
}


def _days(n: int):
    from datetime import timedelta

    return timedelta(days=n)


def _months_ago(now: datetime, months: int) -> datetime:
    from segments_app.timespec import subtract

    return subtract(now, months, "months")


# --- measuring ------------------------------------------------------------------------------------------------


def median_ms(action: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Run once to warm up, then `runs` times; the median in milliseconds and the last result."""
    result = action()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


def plan_shape(sql: str, params: list | tuple) -> str:
    """The plan's main nodes, e.g. `Aggregate > Hash Semi Join [Seq Scan contacts_contact, ...]`."""
    with statement_timeout(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return _shape(plan[0]["Plan"])


def _shape(node: dict) -> str:
    name = node["Node Type"]
    if node.get("Strategy") and node["Node Type"] == "Aggregate":
        name = f"{node['Strategy'].capitalize()}Aggregate"
    if node.get("Join Type") and "Join" in name or name == "Nested Loop":
        name = f"{name} ({node['Join Type']})" if node.get("Join Type") not in (None, "Inner") else name
    target = node.get("Index Name") or node.get("Relation Name")
    if target:
        name += f" {target.removeprefix('contacts_')}"
    children = [c for c in node.get("Plans", []) if c.get("Parent Relationship") != "InitPlan"]
    if node["Node Type"] in ("Hash", "Materialize", "Gather", "Gather Merge", "Sort", "Memoize") and len(children) == 1:
        return _shape(children[0])  # plumbing: show what it wraps
    if not children:
        return name
    if len(children) == 1:
        return f"{name} > {_shape(children[0])}"
    return f"{name} [{', '.join(_shape(c) for c in children)}]"


def kind_of(group: Group, segments: WorkspaceSegments) -> str:
    """What a definition reads, referenced segments included: `fields` (contact columns, figures, tags),
    `windowed rows` (orders or events in a window) or `all-time rows` (orders or events over all time)."""
    kinds = set()

    def walk(node) -> None:
        if isinstance(node, Group):
            for child in node.conditions:
                walk(child)
        elif isinstance(node, (OrdersCondition, EventCondition)):
            kinds.add("windowed rows" if node.window is not None else "all-time rows")
        elif isinstance(node, SegmentCondition):
            walk(segments.resolve(node.segment))
        else:
            kinds.add("fields")

    walk(group)
    if "all-time rows" in kinds:
        return "all-time rows"
    return "windowed rows" if "windowed rows" in kinds else "fields"


TARGETS = {"fields": FIELDS_MS, "windowed rows": ROWS_MS, "all-time rows": LIBRARY_MS}


def measure(workspace: Workspace, name: str, definition: dict, runs: int, with_preview: bool, now: datetime) -> dict:
    catalog = build_catalog(workspace)
    segments = WorkspaceSegments(workspace.pk)
    group = parse_definition(definition, catalog=catalog, segments=segments)
    queryset = matching_ids(workspace=workspace, group=group, catalog=catalog, segments=segments, now=now)
    sql, params = queryset.values("pk").query.sql_with_params()
    count_sql = f"SELECT count(*) FROM ({sql}) matched"
    kind = kind_of(group, segments)
    try:
        count_ms, count = median_ms(lambda: _scalar(count_sql, params), runs)
    except PreviewTimeout:
        print(f"{name}: over the preview timeout", file=sys.stderr, flush=True)
        return {"name": name, "kind": kind, "count_ms": None, "target_ms": TARGETS[kind], "within_target": False,
                "rows": None, "plan": plan_shape(count_sql, params), "sql": count_sql}  # fmt: skip
    row = {
        "name": name,
        "kind": kind,
        "count_ms": round(count_ms, 1),
        "target_ms": TARGETS[kind],
        "within_target": count_ms <= TARGETS[kind],
        "rows": count,
        "plan": plan_shape(count_sql, params),
        "sql": count_sql,
    }
    if with_preview:
        preview_ms, _ = median_ms(
            lambda: services.preview_segment(workspace=workspace, definition=definition, now=now), max(3, runs // 2)
        )
        row["preview_ms"] = round(preview_ms, 1)
    hand = HAND_WRITTEN.get(name)
    if hand is not None:
        hand_sql, hand_params = hand(workspace.pk, now)
        hand_ms, hand_count = median_ms(lambda: _scalar(hand_sql, hand_params), runs)
        if hand_count != count:
            raise SystemExit(f"{name}: the hand-written SQL counts {hand_count}, the compiled query {count}")
        row.update(
            hand_ms=round(hand_ms, 1), ratio=round(count_ms / hand_ms, 2), hand_plan=plan_shape(hand_sql, hand_params)
        )
    print(f"{name}: {count_ms:,.0f} ms, {count:,} rows", file=sys.stderr, flush=True)
    return row


def _scalar(sql: str, params) -> Any:
    """Run a count the way a preview does: in its transaction, under its statement timeout and settings."""
    with statement_timeout(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def report(rows: list[dict], workspace: Workspace, counts: dict, now: datetime) -> None:
    print(
        f"Workspace {workspace.name!r}: {counts['contacts']:,} contacts, {counts['orders']:,} orders, "
        f"{counts['items']:,} items, {counts['events']:,} events. PostgreSQL {connection.pg_version}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}; now = {now:%Y-%m-%d %H:%M} UTC; load average (1 min) "
        f"at the end {os.getloadavg()[0]:.1f}."
    )
    print()
    print("| Definition | Reads | Count ms (median) | Target ms | Rows | Preview ms | Plan |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        ok = "" if r["within_target"] else " **over**"
        preview = f"{r['preview_ms']:,.0f}" if "preview_ms" in r else "-"
        count = f"{r['count_ms']:,.0f}{ok}" if r["count_ms"] is not None else "timeout"
        found = f"{r['rows']:,}" if r["rows"] is not None else "-"
        print(f"| {r['name']} | {r['kind']} | {count} | {r['target_ms']:,} | {found} | {preview} | `{r['plan']}` |")
    hand = [r for r in rows if "hand_ms" in r]
    if hand:
        print()
        print("| Definition | Compiled ms | Hand-written ms | Ratio | Hand-written plan |")
        print("|---|---:|---:|---:|---|")
        for r in hand:
            flag = "" if r["ratio"] <= RATIO_TARGET else " **over**"
            print(
                f"| {r['name']} | {r['count_ms']:,.0f} | {r['hand_ms']:,.0f} | {r['ratio']:.2f}{flag} "
                f"| `{r['hand_plan']}` |"
            )


def table_counts(workspace_id: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM contacts_contact WHERE workspace_id = %s", [workspace_id])
        contacts = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM contacts_order WHERE workspace_id = %s", [workspace_id])
        orders = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM contacts_orderitem i JOIN contacts_order o ON o.id = i.order_id "
            "WHERE o.workspace_id = %s",
            [workspace_id],
        )
        items = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM contacts_event WHERE workspace_id = %s", [workspace_id])
        events = cursor.fetchone()[0]
    return {"contacts": contacts, "orders": orders, "items": items, "events": events}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", default="Demo Shop")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query after one warm-up (default 5)")
    parser.add_argument("--only", default="", help="comma-separated template keys or contract example names")
    parser.add_argument("--no-preview", action="store_true", help="time only the count queries")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("bench.segments measures PostgreSQL: set DATABASE_URL=postgres://...")
    workspace = Workspace.objects.filter(name=args.workspace).first()
    if workspace is None:
        raise SystemExit(f"no workspace {args.workspace!r}: load it with manage.py seed_demo")
    now = timezone.now().astimezone(UTC)
    counts = table_counts(workspace.pk)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    rows = []
    with transaction.atomic():
        referenced = Segment.objects.create(
            workspace=workspace,
            name="bench: engaged openers (rolled back)",
            definition=next(t for t in templates() if t["key"] == "engaged_openers_7d")["definition"],
        )
        definitions = {f"template: {t['key']}": t["definition"] for t in templates()}
        definitions.update(contract_examples(referenced.pk))
        for name, definition in definitions.items():
            if only and name not in only and name.removeprefix("template: ") not in only:
                continue
            rows.append(measure(workspace, name, definition, args.runs, not args.no_preview, now))
        transaction.set_rollback(True)
    report(rows, workspace, counts, now)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"workspace": workspace.name, "counts": counts, "now": now.isoformat(), "runs": args.runs, "rows": rows},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
