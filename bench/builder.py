"""Benchmark of the wizard's live count: what a marketer waits for while editing a segment.

    DATABASE_URL=postgres://... python -m bench.builder [--workspace "Demo Shop"] [--samples 7]

Needs a seeded workspace (`manage.py seed_demo --contacts 100000 --workspace NAME`). For a few typical
definitions it posts the builder form exactly as the page renders it (`tests.web.formdata`) to the
live-count view (`POST /segments/builder/preview/`: parse the form, validate with the API's validator,
count, summarise, render), to the examples view that the page calls once the count is shown
(`POST /segments/builder/sample/`: the first 10 matching contacts) and to the structural-edit view
(`POST /segments/builder/action/`: re-render the builder with its errors), through Django's test client
with an editor signed in, and reports the median and the slowest of `--samples` warm runs (after one
warm-up). Also reports `elapsed_ms` of the preview service itself (validation and count).

Prints a markdown table and writes bench/results/builder.json. The temporary user is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from contacts.models import Contact, Workspace, WorkspaceMember  # noqa: E402
from segments_app.membership import workspace_catalog  # noqa: E402
from tests.web.formdata import builder_form  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "builder.json"
USERNAME = "bench-builder"


def _orders(*filters, window=None, measure="count", op="gte", value=1) -> dict:
    condition = {"type": "orders", "filters": list(filters), "measure": measure, "op": op, "value": value}
    if window:
        condition["window"] = window
    if not filters:
        del condition["filters"]
    return condition


def _event(event: str, days: int) -> dict:
    return {"type": "event", "event": event, "window": {"last": days, "unit": "days"}, "measure": "count",
            "op": "gte", "value": 1}


ACME = {"field": "product.producer", "op": "eq", "value": "Acme"}
DEFINITIONS: dict[str, dict] = {
    "country is PL": {"match": "all", "conditions": [
        {"type": "attribute", "field": "country", "op": "eq", "value": "PL"}]},
    "spent >= 500 and active (computed figures)": {"match": "all", "conditions": [
        {"type": "attribute", "field": "total_spent", "op": "gte", "value": 500},
        {"type": "attribute", "field": "lifecycle_stage", "op": "eq", "value": "active"}]},
    "cart open in the last 48 h": {"match": "all", "conditions": [
        {"type": "attribute", "field": "cart_open_since", "op": "in_last", "value": {"last": 48, "unit": "hours"}}]},
    "Acme spend > 300 in 6 months (items, window)": {"match": "all", "conditions": [
        _orders(ACME, window={"last": 6, "unit": "months"}, measure="sum", op="gt", value=300)]},
    "opened in 7 days, subscribed, PL or vip (spec example)": {"match": "all", "conditions": [
        _event("email_open", 7),
        {"type": "attribute", "field": "email_status", "op": "eq", "value": "subscribed"},
        {"match": "any", "conditions": [
            {"type": "attribute", "field": "country", "op": "eq", "value": "PL"},
            {"type": "tag", "op": "has_any", "value": ["vip"]}]}]},
    "Acme > 100 in 6 months and (opened in 7 days or vip)": {"match": "all", "conditions": [
        _orders(ACME, window={"last": 6, "unit": "months"}, measure="sum", op="gt", value=100),
        {"match": "any", "conditions": [_event("email_open", 7), {"type": "tag", "op": "has_any", "value": ["vip"]}]}]},
    "3+ orders, none in 90 days, never paid ads": {"match": "all", "conditions": [
        {"type": "attribute", "field": "orders_count", "op": "gte", "value": 3},
        {"type": "attribute", "field": "last_order_at", "op": "not_in_last", "value": {"last": 90, "unit": "days"}},
        _orders({"field": "source", "op": "in", "value": ["paid_search", "paid_social"]}, op="eq", value=0)]},
}


def timed(client: Client, url: str, data) -> tuple[float, object]:
    """Milliseconds of one POST through the whole Django stack, and the response."""
    started = time.perf_counter()
    response = client.post(url, data)
    return (time.perf_counter() - started) * 1000, response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", default="Demo Shop")
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args()
    workspace = Workspace.objects.get(name=args.workspace)
    contacts = Contact.objects.filter(workspace=workspace).count()
    user = get_user_model().objects.create_user(username=USERNAME)
    WorkspaceMember.objects.create(workspace=workspace, user=user, role="editor")
    client = Client()
    client.force_login(user)
    catalog = workspace_catalog(workspace)
    rows = []
    try:
        for name, definition in DEFINITIONS.items():
            form = builder_form(definition, catalog=catalog)
            edit = form.copy()
            edit["action"] = "refresh"
            preview_ms, service_ms, sample_ms, action_ms, counts = [], [], [], [], set()
            for sample in range(args.samples + 1):
                elapsed, response = timed(client, "/segments/builder/preview/", form)
                page = response.content.decode()
                if "The preview took longer than" in page:
                    rows.append({"definition": name, "count": None, "preview_median_ms": round(elapsed),
                                 "preview_max_ms": round(elapsed), "service_median_ms": None, "sample_median_ms": None,
                                 "action_median_ms": None, "timeout": True})
                    break  # the same definition would time out again
                if response.status_code != 200 or 'data-count=""' in page:
                    raise SystemExit(f"{name}: the preview failed: {page[:500]}")
                sample_elapsed, _ = timed(client, "/segments/builder/sample/", form)
                action_elapsed, _ = timed(client, "/segments/builder/action/", edit)
                if sample == 0:
                    continue  # warm-up
                counts.add(int(re.search(r'data-count="(\d+)"', page).group(1)))
                service_ms.append(int(re.search(r"counted in ([\d,]+) ms", page).group(1).replace(",", "")))
                preview_ms.append(elapsed)
                sample_ms.append(sample_elapsed)
                action_ms.append(action_elapsed)
            if not preview_ms:
                continue
            rows.append({
                "definition": name,
                "count": counts.pop(),
                "preview_median_ms": round(statistics.median(preview_ms)),
                "preview_max_ms": round(max(preview_ms)),
                "service_median_ms": round(statistics.median(service_ms)),
                "sample_median_ms": round(statistics.median(sample_ms)),
                "action_median_ms": round(statistics.median(action_ms)),
            })
    finally:
        user.delete()
    report = {
        "benchmark": "builder live count",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "database": f"{connection.vendor} {connection.pg_version if connection.vendor == 'postgresql' else ''}",
        "workspace": args.workspace,
        "contacts": contacts,
        "samples": args.samples,
        "preview_timeout_ms": settings.SEGMENT_PREVIEW_TIMEOUT_MS,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"Builder live count on {contacts:,} contacts ({report['database']}, {report['machine']}), "
          f"median and max of {args.samples} warm runs\n")
    print("| definition | count | live count, median | slowest | of which service | then examples, median "
          "| builder edit, median |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        if row.get("timeout"):
            print(f"| {row['definition']} | – | stopped by the preview timeout after {row['preview_median_ms']} ms "
                  "| | | | |")
            continue
        print(f"| {row['definition']} | {row['count']:,} | {row['preview_median_ms']} ms | {row['preview_max_ms']} ms "
              f"| {row['service_median_ms']} ms | {row['sample_median_ms']} ms | {row['action_median_ms']} ms |")


if __name__ == "__main__":
    main()
