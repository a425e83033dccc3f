"""Plans stay good on a brand-new PostgreSQL database: no statement is left to the luck of statistics.

`tests/fresh_database_plans.py` builds a fresh database in a process of its own, ingests a small shop
without any manual ANALYZE and explains what the product runs. Checked here are plan shapes, not times:

- the figure refresh inside each ingest call, planned with no statistics at all, reads each contact's
  rows through an index that leads with the contact and never rescans a CTE, a subquery or an aggregate
  in a nested loop (on a fresh database that shape took minutes for 1,000 orders);
- the ingest services analysed every table they changed materially, so previews of every template and
  contract example, a segment recompute and its real-time re-evaluation have no nested loop over a CTE
  scan, an aggregate or a sequential scan of a large table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
LARGE_TABLES = {
    "contacts_contact",
    "contacts_contactstats",
    "contacts_order",
    "contacts_orderitem",
    "contacts_event",
    "contacts_contacttag",
    "segments_app_segmentmember",
}
RESCANNED = {"CTE Scan", "Subquery Scan", "Aggregate", "WindowAgg", "Sort"}
PASS_THROUGH = {"Materialize", "Memoize", "Hash", "Gather"}
INDEX_LOOKUPS = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


@pytest.fixture(scope="module")
def fresh() -> dict:
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("plans are checked on PostgreSQL")
    host, port = database.get("HOST") or "127.0.0.1", database.get("PORT") or 5432
    user = database.get("USER") or "postgres"
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    url = f"postgres://{user}{password}@{host}:{port}/{database['NAME']}_fresh_plans"
    done = subprocess.run(
        [sys.executable, "-m", "tests.fresh_database_plans", url],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def inner_side(loop: dict) -> dict:
    inner = loop["Plans"][1]
    while inner["Node Type"] in PASS_THROUGH and inner.get("Plans"):
        inner = inner["Plans"][0]
    return inner


def leftmost_leaf(plan: dict) -> dict:
    while plan.get("Plans"):
        plan = plan["Plans"][0]
    return plan


def rescanned_inner_sides(plan: dict) -> list[str]:
    """Nested loops whose inner side is run again for every outer row although it does not depend on it."""
    bad = []
    for node in nodes(plan):
        if node["Node Type"] != "Nested Loop":
            continue
        inner = inner_side(node)
        if inner["Node Type"] in RESCANNED:
            bad.append(f"Nested Loop over {inner['Node Type']}")
        elif inner["Node Type"] == "Seq Scan" and inner.get("Relation Name") in LARGE_TABLES:
            bad.append(f"Nested Loop over Seq Scan {inner['Relation Name']}")
    return bad


def test_the_database_was_fresh_and_ingest_analysed_every_table_it_changed(fresh):
    assert fresh["analyzed_before"] == []
    assert set(fresh["analyzed_by_ingest"]) >= {
        "contacts_contact",
        "contacts_contactstats",
        "contacts_order",
        "contacts_orderitem",
        "contacts_event",
        "contacts_product",
    }


REFRESHES = ["figure refresh after orders", "figure refresh after events", "figure refresh after contacts"]


@pytest.mark.parametrize("label", REFRESHES)
def test_the_figure_refresh_without_statistics_reads_each_contact_through_its_indexes(fresh, label):
    plan = fresh["plans"][label]
    assert not [n for n in nodes(plan) if n["Node Type"] == "CTE Scan"]
    # Every join is a LATERAL step of one contact's computation (its outer side is that contact's row) or
    # an index lookup from the contact's orders to their items and products.
    loops = [n for n in nodes(plan) if n["Node Type"] == "Nested Loop"]
    assert loops
    for loop in loops:
        one_contact = leftmost_leaf(loop["Plans"][0])["Node Type"] == "Result"
        assert one_contact or inner_side(loop)["Node Type"] in INDEX_LOOKUPS, inner_side(loop)["Node Type"]
    scans = [n for n in nodes(plan) if n.get("Relation Name") in ("contacts_order", "contacts_event")]
    assert scans
    for scan in scans:
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"), scan["Node Type"]
        condition = scan.get("Index Cond") or scan.get("Recheck Cond") or ""
        assert "contact_id" in condition, condition


def test_every_preview_and_recompute_after_ingest_has_no_rescanned_inner_side(fresh):
    labels = [label for label in fresh["plans"] if label not in REFRESHES]
    assert len(labels) > 30
    bad = {label: rescanned_inner_sides(fresh["plans"][label]) for label in labels}
    assert {label: shapes for label, shapes in bad.items() if shapes} == {}
