"""Workspace-wide figures and upkeep: RFM, the clock refresh, bulk recompute, the task and the command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.utils import timezone

from contacts import stats as stats_module
from contacts.models import Contact, ContactStats, Workspace
from contacts.stats import (
    recompute_workspace_stats,
    refresh_contact_stats,
    refresh_rfm,
    refresh_scheduled_stats,
    refresh_time_dependent_stats,
)
from contacts.tasks import refresh_all_workspaces_stats_task
from tests.factories import make_contact, make_event, make_order, make_product

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def stats_of(contact: Contact) -> ContactStats:
    return ContactStats.objects.get(contact=contact)


def customer(workspace, *, orders: int = 1, total: str = "10", days_ago: float = 1) -> Contact:
    contact = make_contact(workspace)
    for _ in range(orders):
        make_order(contact, ordered_at=NOW - timedelta(days=days_ago), total=total)
    return contact


def rfm_of(contact: Contact) -> tuple:
    row = stats_of(contact)
    return row.rfm_recency, row.rfm_frequency, row.rfm_monetary, row.rfm_segment


def snapshot(workspace) -> dict[int, dict]:
    """Every figure of every stats row of the workspace, by contact id (computed_at is the wall clock)."""
    rows = {}
    for row in ContactStats.objects.filter(workspace=workspace).values():
        row.pop("computed_at")
        rows[row.pop("contact_id")] = row
    return rows


# --- RFM --------------------------------------------------------------------------------------------------------


def test_rfm_scores_are_quintiles_over_the_customers(workspace):
    # Ten customers, each better than the previous on recency, frequency and money.
    contacts = [customer(workspace, orders=n, total=str(n * 10), days_ago=100 - n) for n in range(1, 11)]
    prospect = make_contact(workspace)
    recompute_workspace_stats(workspace_id=workspace.pk, now=NOW)
    scores = [rfm_of(c)[:3] for c in contacts]
    assert scores == [(s, s, s) for s in (1, 1, 2, 2, 3, 3, 4, 4, 5, 5)]
    assert rfm_of(prospect) == (None, None, None, None)


def test_equal_values_share_the_lower_score(workspace):
    once = [customer(workspace, orders=1, days_ago=5) for _ in range(4)]
    twice = customer(workspace, orders=2, days_ago=5)
    recompute_workspace_stats(workspace_id=workspace.pk, now=NOW)
    assert {rfm_of(c)[1] for c in once} == {1}
    assert rfm_of(twice)[1] == 5  # rank 5 of 5
    assert {rfm_of(c)[0] for c in [*once, twice]} == {1}  # all ordered at the same time


@pytest.mark.parametrize(
    ("r", "f", "segment"),
    [
        (5, 1, "new_customers"),
        (5, 3, "potential_loyalist"),
        (5, 5, "champions"),
        (4, 1, "promising"),
        (4, 4, "loyal"),
        (3, 2, "need_attention"),
        (3, 5, "loyal"),
        (2, 2, "hibernating"),
        (2, 3, "at_risk"),
        (1, 5, "cant_lose"),
        (1, 1, "lost"),
    ],
)
def test_rfm_segment_from_the_recency_frequency_grid(workspace, r, f, segment):
    # Five contacts per recency and per frequency value, set directly: each score then equals its value.
    contacts = {}
    for recency in range(1, 6):
        for frequency in range(1, 6):
            contact = contacts[recency, frequency] = make_contact(workspace)
            ContactStats.objects.filter(contact=contact).update(
                last_order_at=NOW - timedelta(days=6 - recency), orders_count=frequency, total_spent=10
            )
    refresh_rfm(workspace_id=workspace.pk)
    row = stats_of(contacts[r, f])
    assert (row.rfm_recency, row.rfm_frequency, row.rfm_segment) == (r, f, segment)


def test_a_contact_left_without_orders_loses_its_rfm_at_once(workspace):
    contact = customer(workspace)
    recompute_workspace_stats(workspace_id=workspace.pk, now=NOW)
    assert rfm_of(contact)[0] == 1
    contact.orders.all().delete()
    refresh_contact_stats(workspace_id=workspace.pk, contact_ids=[contact.pk], kinds=("orders",), now=NOW)
    assert rfm_of(contact) == (None, None, None, None)


def test_a_new_customer_has_no_rfm_until_the_next_bulk_refresh(workspace):
    contact = make_contact(workspace)
    make_order(contact, ordered_at=NOW - DAY, total="10")
    refresh_contact_stats(workspace_id=workspace.pk, contact_ids=[contact.pk], now=NOW)
    assert rfm_of(contact) == (None, None, None, None)
    refresh_rfm(workspace_id=workspace.pk)
    assert rfm_of(contact) == (1, 1, 1, "lost")  # the only customer: rank 1 of 1


def test_rfm_is_per_workspace(workspace, other_workspace):
    mine = customer(workspace, orders=1)
    theirs = [customer(other_workspace, orders=n) for n in (5, 6)]
    recompute_workspace_stats(workspace_id=workspace.pk, now=NOW)
    assert rfm_of(mine)[1] == 1
    assert [rfm_of(c) for c in theirs] == [(None, None, None, None)] * 2


# --- the clock refresh ------------------------------------------------------------------------------------------


def test_time_passing_moves_lifecycle_and_engagement(workspace):
    contact = customer(workspace, days_ago=1)
    make_event(contact, "email_click", occurred_at=NOW - DAY)
    recompute_workspace_stats(workspace_id=workspace.pk, now=NOW)
    assert (stats_of(contact).lifecycle_stage, stats_of(contact).engagement_score) == ("new", 5)

    later = NOW + 60 * DAY
    changed = refresh_time_dependent_stats(workspace_id=workspace.pk, now=later)
    assert changed == 1  # one contact: its score and its stage
    assert (stats_of(contact).lifecycle_stage, stats_of(contact).engagement_score) == ("active", 0)
    assert refresh_time_dependent_stats(workspace_id=workspace.pk, now=later) == 0


def test_the_clock_refresh_equals_a_full_recompute_at_that_time(workspace):
    for days in (1, 20, 40, 100, 400):
        contact = customer(workspace, days_ago=days)
        make_event(contact, "page_view", occurred_at=NOW - days * DAY)
    make_contact(workspace)
    recompute_workspace_stats(workspace_id=workspace.pk, now=NOW)
    later = NOW + 45 * DAY
    refresh_time_dependent_stats(workspace_id=workspace.pk, now=later)
    refreshed = snapshot(workspace)
    recompute_workspace_stats(workspace_id=workspace.pk, now=later)
    assert snapshot(workspace) == refreshed


def test_the_clock_refresh_applies_new_loyalty_thresholds(workspace):
    contact = customer(workspace, total="600")
    recompute_workspace_stats(workspace_id=workspace.pk, now=NOW)
    assert stats_of(contact).loyalty_tier == "silver"
    Workspace.objects.filter(pk=workspace.pk).update(loyalty_gold_threshold=Decimal("600"))
    refresh_time_dependent_stats(workspace_id=workspace.pk, now=NOW)
    assert stats_of(contact).loyalty_tier == "gold"


# --- bulk recompute ---------------------------------------------------------------------------------------------


def test_recompute_creates_missing_rows_and_counts_contacts(workspace, other_workspace):
    rowless = Contact.objects.create(workspace=workspace, external_id="rowless")
    make_order(rowless, ordered_at=NOW - DAY, total="10")
    make_contact(workspace)
    make_contact(other_workspace)
    assert recompute_workspace_stats(workspace_id=workspace.pk, now=NOW) == 2
    assert stats_of(rowless).orders_count == 1
    assert ContactStats.objects.filter(workspace=workspace).count() == 2


def test_recompute_in_small_chunks_gives_the_same_rows(workspace, monkeypatch):
    product = make_product(workspace, category="Shoes", producer="Acme")
    for n in range(7):
        contact = make_contact(workspace)
        for k in range(n):
            make_order(contact, ordered_at=NOW - (10 * k + n) * DAY, items=[(product, k + 1, "3.50")])
            make_event(contact, "cart_add", occurred_at=NOW - (5 * k + n) * DAY, device="mobile")
    recompute_workspace_stats(workspace_id=workspace.pk, now=NOW)
    whole = snapshot(workspace)
    ContactStats.objects.filter(workspace=workspace).delete()
    monkeypatch.setattr(stats_module, "RECOMPUTE_CHUNK", 2)
    assert recompute_workspace_stats(workspace_id=workspace.pk, now=NOW) == 7
    assert snapshot(workspace) == whole


def test_recompute_leaves_rows_that_ingest_refreshed_after_it_started(workspace):
    contact = customer(workspace, total="10")
    refresh_contact_stats(workspace_id=workspace.pk, contact_ids=[contact.pk], now=NOW)
    # As if ingest had refreshed the row while the rebuild was running: newer than the rebuild's start.
    fresher = timezone.now() + timedelta(minutes=5)
    ContactStats.objects.filter(contact=contact).update(orders_count=2, computed_at=fresher)
    recompute_workspace_stats(workspace_id=workspace.pk, now=NOW)
    row = stats_of(contact)
    assert (row.orders_count, row.computed_at) == (2, fresher)


def test_partial_kinds_give_the_same_rows_as_a_full_refresh(workspace):
    contact = make_contact(workspace)
    product = make_product(workspace, category="Shoes")
    make_order(contact, ordered_at=NOW - 20 * DAY, items=[(product, 1, "10")])
    make_event(contact, "cart_add", occurred_at=NOW - 10 * DAY, device="desktop")
    refresh_contact_stats(workspace_id=workspace.pk, contact_ids=[contact.pk], now=NOW)

    make_event(contact, "email_open", occurred_at=NOW - DAY, device="mobile")
    refresh_contact_stats(workspace_id=workspace.pk, contact_ids=[contact.pk], kinds=("events",), now=NOW)
    make_order(contact, ordered_at=NOW - 5 * DAY, items=[(product, 2, "10")])
    refresh_contact_stats(workspace_id=workspace.pk, contact_ids=[contact.pk], kinds=("orders",), now=NOW)
    refresh_contact_stats(workspace_id=workspace.pk, contact_ids=[contact.pk], kinds=("contact",), now=NOW + DAY)
    partial = snapshot(workspace)
    refresh_contact_stats(workspace_id=workspace.pk, contact_ids=[contact.pk], now=NOW + DAY)
    assert snapshot(workspace) == partial


# --- task and command -------------------------------------------------------------------------------------------


def test_the_scheduled_task_refreshes_every_workspace_and_records_it(workspace, other_workspace):
    contacts = [customer(workspace), customer(other_workspace)]
    for contact in contacts:  # as ingest does
        refresh_contact_stats(workspace_id=contact.workspace_id, contact_ids=[contact.pk], now=NOW)
    refresh_all_workspaces_stats_task.delay()  # eager in tests
    assert [rfm_of(c)[3] for c in contacts] == ["lost", "lost"]
    for ws in Workspace.objects.all():
        assert ws.stats_refreshed_at is not None
        assert ws.stats_refresh_error == ""


def test_a_failing_scheduled_refresh_is_recorded_on_the_workspace(workspace, monkeypatch):
    def fail(**kwargs):
        raise OperationalError("database went away")

    monkeypatch.setattr(stats_module, "refresh_rfm", fail)
    with pytest.raises(OperationalError):
        refresh_scheduled_stats(workspace_id=workspace.pk, now=NOW)
    workspace.refresh_from_db()
    assert workspace.stats_refresh_error == "OperationalError: database went away"
    assert workspace.stats_refreshed_at is None


def test_recompute_stats_command_reports_contacts_and_time(workspace, other_workspace):
    customer(workspace)
    customer(other_workspace)
    out = StringIO()
    call_command("recompute_stats", "--workspace", workspace.name, stdout=out)
    assert out.getvalue().startswith("Acme Shop: 1 contacts in ")
    assert "Recomputed 1 contacts in " in out.getvalue()
    out = StringIO()
    call_command("recompute_stats", stdout=out)
    assert "Recomputed 2 contacts in " in out.getvalue()


def test_recompute_stats_command_refuses_an_unknown_workspace(db):
    with pytest.raises(CommandError, match="no workspace named 'Nope'"):
        call_command("recompute_stats", "--workspace", "Nope")
