"""The figures ingest keeps up to date call by call equal a from-scratch recomputation.

Hypothesis plays random sequences of ingest calls (contacts, products, orders including upserts that
change items, contact or total, events including repeats), then the stored ContactStats rows are
compared with what `recompute_workspace_stats` rebuilds. RFM is left out: it is workspace-wide and
refreshed in bulk only. "Now" is fixed so that time-dependent figures are comparable.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from django.forms.models import model_to_dict
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts.ingest import ingest_contacts, ingest_events, ingest_orders, ingest_products
from contacts.models import Contact, ContactStats, Workspace
from contacts.stats import recompute_workspace_stats

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
IGNORED = {"contact", "workspace", "computed_at", "rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment"}

CONTACTS = [f"c{n}" for n in range(3)]
SKUS = [f"s{n}" for n in range(4)]
ORDERS = [f"o{n}" for n in range(3)]
EVENT_IDS = [f"e{n}" for n in range(4)]
EVENT_TYPES = ["email_open", "email_click", "cart_add", "page_view", "product_view", "app_open", "video_played"]

_workspaces = itertools.count()

# Times up to 400 days back, on whole minutes, so lifecycle and engagement windows are crossed both ways.
moments = st.integers(min_value=0, max_value=400 * 24 * 60).map(
    lambda minutes: (NOW - timedelta(minutes=minutes)).isoformat()
)
money = st.integers(min_value=0, max_value=20_000).map(lambda cents: f"{cents / 100:.2f}")

contact_records = st.lists(
    st.fixed_dictionaries(
        {"external_id": st.sampled_from(CONTACTS)},
        optional={"created_at": moments, "tags": st.lists(st.sampled_from(["vip", "b2b"]), max_size=2)},
    ),
    min_size=1,
    max_size=4,
)
product_records = st.lists(
    st.fixed_dictionaries(
        {"sku": st.sampled_from(SKUS)},
        optional={
            "category": st.sampled_from(["Games", "Books", "Toys", None]),
            "producer": st.sampled_from(["Acme", "Hasbro", None]),
        },
    ),
    min_size=1,
    max_size=4,
)
items = st.lists(
    st.fixed_dictionaries(
        {"sku": st.sampled_from(SKUS), "unit_price": money}, optional={"quantity": st.integers(1, 3)}
    ),
    max_size=3,
)
order_records = st.lists(
    st.fixed_dictionaries(
        {
            "external_id": st.sampled_from(ORDERS),
            "contact": st.sampled_from(CONTACTS),
            "ordered_at": moments,
            "items": items,
        },
        optional={"total": money},
    ),
    min_size=1,
    max_size=4,
)
event_records = st.lists(
    st.fixed_dictionaries(
        {"contact": st.sampled_from(CONTACTS), "type": st.sampled_from(EVENT_TYPES), "occurred_at": moments},
        optional={
            "device": st.sampled_from(["mobile", "desktop", "tablet", "other", None]),
            "event_id": st.sampled_from(EVENT_IDS),
        },
    ),
    min_size=1,
    max_size=6,
)
calls = st.lists(
    st.one_of(
        st.tuples(st.just(ingest_contacts), contact_records),
        st.tuples(st.just(ingest_products), product_records),
        st.tuples(st.just(ingest_orders), order_records),
        st.tuples(st.just(ingest_events), event_records),
    ),
    min_size=1,
    max_size=8,
)


def stored_figures(workspace: Workspace) -> dict[str, dict]:
    return {
        row.contact.external_id: {k: v for k, v in model_to_dict(row).items() if k not in IGNORED}
        for row in ContactStats.objects.filter(workspace=workspace).select_related("contact")
    }


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=calls)
def test_incremental_figures_equal_a_full_recompute(db, monkeypatch, sequence):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    workspace = Workspace.objects.create(name=f"consistency {next(_workspaces)}")
    for ingest, records in sequence:
        ingest(workspace=workspace, records=records)

    kept = stored_figures(workspace)
    assert set(kept) == set(Contact.objects.filter(workspace=workspace).values_list("external_id", flat=True))

    # The rebuild leaves rows alone that ingest refreshed after it started; these were refreshed before.
    ContactStats.objects.filter(workspace=workspace).update(computed_at=NOW - timedelta(days=1))
    recompute_workspace_stats(workspace_id=workspace.pk, now=NOW)
    assert not ContactStats.objects.filter(workspace=workspace, computed_at__lt=NOW).exists(), "rows not rebuilt"
    assert kept == stored_figures(workspace)
