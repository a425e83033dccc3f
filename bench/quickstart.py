"""The quick start's live counts on SQLite: every template, every example of the format and every single
condition the wizard offers, at 2,000 and 10,000 demo contacts.

    python -m bench.quickstart [--contacts 2000,10000] [--runs 3] [--analyze-off]

For each size it makes a fresh SQLite file under var/bench/, migrates it and loads the demo the way `make
run` does (`manage.py setup_demo --contacts N`), with no ANALYZE of its own beyond what the product runs.
Then, in a process of its own, it counts every definition the way the wizard's live count does
(`services.preview_segment(..., sample_size=0)`: validation, count, summary), once to warm up and then
`--runs` times; the median is reported. Target: 300 ms each.

"Every single condition the wizard offers" is built from the workspace's catalog, as the wizard builds its
pickers: each contact field, computed figure and custom attribute with each of its operators; tags with
each operator; orders with each measure and operator over all time and in the last 30 days, and with each
order filter; each event type with a count over all time and in the last 7 days and a last time, and with
each event filter; a segment reference both ways. Values come from the demo data (the most common value of
a text field, the first choices of a choice field), so the conditions match some contacts.

Prints a summary per size (how many definitions, median and slowest, any over the target) and writes
bench/results/quickstart.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "quickstart.json"
TARGET_MS = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", default="2000,10000", help="comma-separated demo sizes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: measure this SQLite file
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_all(args.runs)))
        return
    results = {}
    for size in (int(n) for n in args.contacts.split(",")):
        database = ROOT / "var" / "bench" / f"quickstart-{size}.sqlite3"
        database.parent.mkdir(parents=True, exist_ok=True)
        database.unlink(missing_ok=True)
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "SEGMENT_PREVIEW_TIMEOUT_MS": "0"}
        started = time.perf_counter()
        for command in (["migrate", "--noinput", "-v0"], ["setup_demo", "--contacts", str(size)]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
        setup_s = time.perf_counter() - started
        done = subprocess.run(
            [sys.executable, "-m", "bench.quickstart", "--measure", str(database), "--runs", str(args.runs)],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        rows = json.loads(done.stdout.strip().splitlines()[-1])
        results[size] = {"setup_s": round(setup_s, 1), "rows": rows}
        report(size, setup_s, rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": machine(), "target_ms": TARGET_MS, "sizes": results}, indent=2))


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()[0]}


def report(size: int, setup_s: float, rows: list[dict]) -> None:
    times = [r["ms"] for r in rows]
    over = [r for r in rows if r["ms"] > TARGET_MS]
    print(f"\n{size:,} demo contacts (setup {setup_s:.0f} s), {len(rows)} definitions: median "
          f"{statistics.median(times):.1f} ms, slowest {max(times):.1f} ms; over {TARGET_MS} ms: {len(over)}; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| slowest definitions | ms | count |")
    print("|---|---:|---:|")
    for r in sorted(rows, key=lambda r: -r["ms"])[:8]:
        print(f"| {r['name']} | {r['ms']:.1f} | {r['count']:,} |")


# --- in the measuring process ----------------------------------------------------------------------------------


def measure_all(runs: int) -> list[dict]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.db import transaction

    from contacts.demo.loader import DEFAULT_WORKSPACE
    from contacts.models import Workspace
    from segments_app import services
    from segments_app.catalog import build_catalog
    from segments_app.examples import contract_examples
    from segments_app.models import Segment
    from segments_app.templates_library import templates

    workspace = Workspace.objects.get(name=DEFAULT_WORKSPACE)
    rows = []
    with transaction.atomic():
        openers = next(t for t in templates() if t["key"] == "engaged_openers_7d")
        referenced = Segment.objects.create(
            workspace=workspace, name="bench: openers", definition=openers["definition"]
        )
        definitions = {f"template: {t['key']}": t["definition"] for t in templates()}
        definitions.update(contract_examples(referenced.pk))
        catalog = build_catalog(workspace).as_json()
        for name, condition in wizard_conditions(catalog, workspace, referenced.pk).items():
            definitions[name] = {"match": "all", "conditions": [condition]}
        for name, definition in definitions.items():
            samples, count = [], None
            for _ in range(runs + 1):
                started = time.perf_counter()
                count = services.preview_segment(workspace=workspace, definition=definition, sample_size=0).count
                samples.append((time.perf_counter() - started) * 1000)
            rows.append({"name": name, "ms": round(statistics.median(samples[1:]), 1), "count": count})
        transaction.set_rollback(True)
    return rows


def wizard_conditions(catalog: dict, workspace, segment_id: int) -> dict[str, dict]:
    """One condition per field and operator, per kind and measure, per filter: what the wizard offers."""
    conditions: dict[str, dict] = {}
    for field in catalog["fields"]:
        for op in field["operators"]:
            condition = {"type": "attribute", "field": field["key"], "op": op}
            value = _value(field, op, workspace)
            if value is not _NONE:
                condition["value"] = value
            conditions[f"field {field['key']} {op}"] = condition
    for op in ("has_any", "has_all", "has_none"):
        conditions[f"tags {op}"] = {"type": "tag", "op": op, "value": ["vip", "newsletter"]}
    kinds = {kind["type"]: kind for kind in catalog["conditions"]}
    last_30 = {"last": 30, "unit": "days"}
    for measure, spec in kinds["orders"]["measures"].items():
        for op in spec["operators"]:
            for window in (None, last_30):
                condition = {"type": "orders", "measure": measure, "op": op}
                value = _measure_value(spec["type"], op, measure)
                if value is not _NONE:
                    condition["value"] = value
                if window:
                    condition["window"] = window
                conditions[f"orders {measure} {op}{' in 30 days' if window else ''}"] = condition
    for flt in catalog["order_filters"]:
        op = _filter_op(flt)
        filter_ = {"field": flt["key"], "op": op, "value": _value(flt, op, workspace)}
        conditions[f"orders with {flt['key']} {op}"] = {
            "type": "orders", "filters": [filter_], "measure": "count", "op": "gte", "value": 1,
        }  # fmt: skip
    for event_type in catalog["event_types"]:
        conditions[f"event {event_type} ever"] = {
            "type": "event", "event": event_type, "measure": "count", "op": "gte", "value": 1,
        }  # fmt: skip
        conditions[f"event {event_type} in 7 days"] = {
            "type": "event", "event": event_type, "window": {"last": 7, "unit": "days"},
            "measure": "count", "op": "gte", "value": 1,
        }  # fmt: skip
        conditions[f"event {event_type} last in 30 days"] = {
            "type": "event", "event": event_type, "measure": "last_at", "op": "in_last", "value": last_30,
        }  # fmt: skip
    for flt in catalog["event_filters"]:
        op = _filter_op(flt)
        filter_ = {"field": flt["key"], "op": op, "value": _value(flt, op, workspace)}
        conditions[f"event with {flt['key']} {op}"] = {
            "type": "event", "event": "any", "filters": [filter_], "measure": "count", "op": "gte", "value": 1,
        }  # fmt: skip
    conditions["event product_view with properties.sku eq"] = {
        "type": "event", "event": "product_view", "measure": "count", "op": "gte", "value": 1,
        "filters": [{"field": "properties.sku", "op": "eq", "value": "SKU-1"}],
    }  # fmt: skip
    for op in ("in", "not_in"):
        conditions[f"segment {op}"] = {"type": "segment", "op": op, "segment": segment_id}
    return conditions


_NONE = object()


def _filter_op(field: dict) -> str:
    return next(op for op in ("eq", "gt", "after", "is_true") if op in field["operators"])


def _measure_value(type_: str, op: str, measure: str) -> Any:
    if type_ == "datetime":
        return _time_value(op)
    if op in ("is_set", "is_not_set"):
        return _NONE
    number = 1 if measure == "count" else 100
    return [number, number * 5] if op == "between" else number


def _time_value(op: str) -> Any:
    if op in ("is_set", "is_not_set"):
        return _NONE
    if op in ("in_last", "not_in_last"):
        return {"last": 30, "unit": "days"}
    if op == "between":
        return [{"ago": 90, "unit": "days"}, {"ago": 30, "unit": "days"}]
    return {"ago": 30, "unit": "days"}


def _value(field: dict, op: str, workspace) -> Any:
    type_ = field["type"]
    if op in ("is_set", "is_not_set", "is_true", "is_false"):
        return _NONE
    if type_ == "datetime":
        return _time_value(op)
    if type_ == "number":
        return [10, 500] if op == "between" else 100
    if type_ == "choice":
        choices = field["choices"] or [_common_text(field["key"], workspace) or "x"]
        return choices[:2] if op in ("in", "not_in") else choices[0]
    text = _common_text(field["key"], workspace) or "a"
    if op in ("contains", "not_contains", "starts_with", "ends_with"):
        return text[:3]
    return [text] if op in ("in", "not_in") else text


def _common_text(key: str, workspace) -> str | None:
    """The most common value of a text field in the workspace's data (contacts, orders, products, events)."""
    from django.core.exceptions import FieldError
    from django.db import DatabaseError
    from django.db.models import Count

    from contacts.models import Contact, Event, Order, Product

    sources = {
        "source": (Order, "source"), "currency": (Order, "currency"), "product.sku": (Product, "sku"),
        "product.name": (Product, "name"), "product.producer": (Product, "producer"),
        "product.category": (Product, "category"), "url": (Event, "url"), "campaign": (Event, "campaign"),
        "top_category": (Product, "category"), "top_producer": (Product, "producer"),
    }  # fmt: skip
    model, column = sources.get(key, (Contact, key))
    if key.startswith("attributes."):
        model, column = Contact, f"attributes__{key.removeprefix('attributes.')}"
    if model is Contact and key not in {f.name for f in Contact._meta.fields} and not key.startswith("attributes."):
        return None  # a computed figure: its values are not text of the data
    try:
        row = (
            model.objects.filter(workspace=workspace).exclude(**{f"{column}__isnull": True})
            .values(column).annotate(n=Count("pk")).order_by("-n").first()
        )  # fmt: skip
    except (DatabaseError, FieldError):  # a key this database cannot group by: use a literal instead
        return None
    value = row[column] if row else None
    return value if isinstance(value, str) and value else None


if __name__ == "__main__":
    main()
