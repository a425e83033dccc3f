"""Benchmark of segment previews on PostgreSQL: every template, every example of the format, and a few more.

    DATABASE_URL=postgres://.../ds_bench python -m bench.segments [--workspace "Demo Shop"] [--runs 5]
        [--only KEY,KEY] [--no-preview] [--output PATH] [--growth-from PATH]

Runs against a workspace loaded by `manage.py seed_demo` (`make bench-data`: 1,000,000 contacts, and
100,000 for the growth factors) and changes nothing: the segments two definitions refer to are created
inside a transaction that is rolled back at the end.

For each definition: the compiled count query (what a preview counts) is run once to warm the cache,
then `--runs` times, each in a preview's transaction (statement timeout, no JIT, work_mem of
`segments_app.guards`); the median is reported with the row count and the shape of PostgreSQL's plan. The
whole preview service (validation, count, sample of 10, summary) is timed too. Each definition has a
target by what it reads, decided with the compiler itself (`compiler.answered_by_figures`): 300 ms when
it reads contact fields and computed figures only (orders and event conditions that a stored figure
answers count as figures), 1 s when it reads orders, items or events in a window, 2 s for anything else.

Every definition also has the SQL an expert would write by hand on the same schema (`bench.hand_written`);
the ratio compiled / hand-written (median against median) shows what the generic compiler costs (target
at most 1.3), and the benchmark stops if the two ever count differently.

`--growth-from` names the JSON of an earlier run on a smaller data set (e.g. 100,000 contacts): each
definition's time is then divided by its time there, next to its plan shape.

Prints markdown tables and writes bench/results/segments.json (or `--output`).
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

from bench.hand_written import HAND_WRITTEN, HandContext  # noqa: E402
from contacts.models import Workspace  # noqa: E402
from segments_app import services  # noqa: E402
from segments_app.catalog import build_catalog  # noqa: E402
from segments_app.compiler import answered_by_figures  # noqa: E402
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
FIELDS_MS, ROWS_MS, LIBRARY_MS = 300, 1000, 2000
RATIO_TARGET = 1.3


def extra_definitions(paid_only_id: int) -> dict[str, dict]:
    """Conditions marketers build often that neither the templates nor the contract's examples cover:
    item filters over all time, category spend in a window, an event property, plain recency, and a
    negated segment reference inside an OR (segment `paid_only_id`: the paid_source_only template)."""
    accessories = {"field": "product.category", "op": "eq", "value": "Accessories"}
    return {
        "extra: Accessories items over 50": {"match": "all", "conditions": [
            {"type": "orders", "filters": [accessories, {"field": "unit_price", "op": "gt", "value": 50}],
             "measure": "count", "op": "gte", "value": 1}]},
        "extra: Accessories spend in 12 months at least 200": {"match": "all", "conditions": [
            {"type": "orders", "filters": [accessories], "window": {"last": 12, "unit": "months"},
             "measure": "sum", "op": "gte", "value": 200}]},
        "extra: put SKU-1 in the cart": {"match": "all", "conditions": [
            {"type": "event", "event": "cart_add",
             "filters": [{"field": "properties.sku", "op": "eq", "value": "SKU-1"}],
             "measure": "count", "op": "gte", "value": 1}]},
        "extra: opened an email in 7 days": {"match": "all", "conditions": [
            {"type": "event", "event": "email_open", "window": {"last": 7, "unit": "days"},
             "measure": "count", "op": "gte", "value": 1}]},
        "extra: no order in 30 days": {"match": "all", "conditions": [
            {"type": "orders", "window": {"last": 30, "unit": "days"}, "measure": "count", "op": "eq", "value": 0}]},
        "extra: active and (vip or not paid-only)": {"match": "all", "conditions": [
            {"type": "attribute", "field": "lifecycle_stage", "op": "in", "value": ["active", "returning"]},
            {"match": "any", "conditions": [
                {"type": "tag", "op": "has_any", "value": ["vip"]},
                {"type": "segment", "op": "not_in", "segment": paid_only_id}]}]},
    }  # fmt: skip


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


def median_ms_alternating(actions: list[Callable[[], Any]], runs: int) -> list[tuple[float, Any]]:
    """Each action once to warm up, then all of them in turn `runs` times; (median ms, last result) of each."""
    results = [action() for action in actions]
    samples: list[list[float]] = [[] for _ in actions]
    for _ in range(runs):
        for index, action in enumerate(actions):
            started = time.perf_counter()
            results[index] = action()
            samples[index].append((time.perf_counter() - started) * 1000)
    return [(statistics.median(times), result) for times, result in zip(samples, results, strict=True)]


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


def kind_of(group: Group, segments: WorkspaceSegments, catalog, now: datetime) -> str:
    """What a definition reads, referenced segments included: `fields` (contact columns, figures, tags, and
    orders or event conditions the stored figures answer), `windowed rows` (orders or events in a window)
    or `all-time rows` (orders or events over all time)."""
    kinds = set()

    def walk(node) -> None:
        if isinstance(node, Group):
            for child in node.conditions:
                walk(child)
        elif isinstance(node, SegmentCondition):
            walk(segments.resolve(node.segment))
        elif isinstance(node, (OrdersCondition, EventCondition)) and not answered_by_figures(
            node, catalog=catalog, now=now
        ):
            kinds.add("windowed rows" if node.window is not None else "all-time rows")
        else:
            kinds.add("fields")

    walk(group)
    if "all-time rows" in kinds:
        return "all-time rows"
    return "windowed rows" if "windowed rows" in kinds else "fields"


TARGETS = {"fields": FIELDS_MS, "windowed rows": ROWS_MS, "all-time rows": LIBRARY_MS}


def measure(
    workspace: Workspace,
    name: str,
    definition: dict,
    runs: int,
    with_preview: bool,
    now: datetime,
    engaged_openers_id: int,
    paid_only_id: int,
) -> dict:
    catalog = build_catalog(workspace)
    segments = WorkspaceSegments(workspace.pk)
    group = parse_definition(definition, catalog=catalog, segments=segments)
    sql, params = matching_ids(workspace=workspace, group=group, catalog=catalog, segments=segments, now=now).sql()
    count_sql = f"SELECT count(*) FROM ({sql}) matched"
    kind = kind_of(group, segments, catalog, now)
    hand = HAND_WRITTEN.get(name)
    hand_sql, hand_params = (None, None)
    if hand is not None:
        context = HandContext(
            workspace_id=workspace.pk, now=now, engaged_openers_id=engaged_openers_id, paid_only_id=paid_only_id
        )
        hand_sql, hand_params = hand(context)
    try:
        # Compiled and hand-written runs alternate, so that both meet the same cache and the same neighbours.
        timings = median_ms_alternating(
            [lambda: _scalar(count_sql, params)] + ([lambda: _scalar(hand_sql, hand_params)] if hand else []), runs
        )
        (count_ms, count) = timings[0]
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
    if hand is not None:
        hand_ms, hand_count = timings[1]
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


def add_growth(rows: list[dict], earlier_path: Path) -> dict:
    """Each row's time divided by the same definition's time in an earlier run (a smaller data set)."""
    earlier = json.loads(earlier_path.read_text())
    by_name = {row["name"]: row for row in earlier["rows"]}
    for row in rows:
        before = by_name.get(row["name"])
        if before and before.get("count_ms") and row.get("count_ms"):
            row["growth"] = round(row["count_ms"] / before["count_ms"], 1)
            row["earlier_ms"] = before["count_ms"]
    return earlier["counts"]


def report(rows: list[dict], workspace: Workspace, counts: dict, now: datetime, earlier: dict | None) -> None:
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
    if earlier:
        print()
        print(f"Growth from {earlier['contacts']:,} to {counts['contacts']:,} contacts (same definitions, same data "
              f"generator):")  # fmt: skip
        print()
        print("| Definition | ms before | ms now | Growth | Plan |")
        print("|---|---:|---:|---:|---|")
        for r in rows:
            if "growth" in r:
                print(
                    f"| {r['name']} | {r['earlier_ms']:,.0f} | {r['count_ms']:,.0f} | {r['growth']:.1f}x "
                    f"| `{r['plan']}` |"
                )
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
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    parser.add_argument("--growth-from", type=Path, help="JSON of an earlier run on a smaller data set")
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
        paid_only = Segment.objects.create(
            workspace=workspace,
            name="bench: paid sources only (rolled back)",
            definition=next(t for t in templates() if t["key"] == "paid_source_only")["definition"],
        )
        definitions = {f"template: {t['key']}": t["definition"] for t in templates()}
        definitions.update(contract_examples(referenced.pk))
        definitions.update(extra_definitions(paid_only.pk))
        for name, definition in definitions.items():
            if only and name not in only and name.removeprefix("template: ") not in only:
                continue
            rows.append(
                measure(workspace, name, definition, args.runs, not args.no_preview, now, referenced.pk, paid_only.pk)
            )
        transaction.set_rollback(True)
    earlier = add_growth(rows, args.growth_from) if args.growth_from else None
    report(rows, workspace, counts, now, earlier)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {"workspace": workspace.name, "counts": counts, "now": now.isoformat(), "runs": args.runs, "rows": rows},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
