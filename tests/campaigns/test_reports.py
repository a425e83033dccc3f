"""Reports on a hand-made campaign: every count, rate, the lift and its interval; segment health warnings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from campaigns.models import Campaign, CampaignRecipient, CampaignTarget
from campaigns.reports import campaign_report, lift, segment_health
from segments_app.models import Segment
from tests.factories import make_contact, make_event, make_order

STARTED = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
NOW = STARTED + timedelta(days=10)


def segment(workspace, name: str, size: int) -> Segment:
    return Segment.objects.create(
        workspace=workspace, name=name, definition={"match": "all", "conditions": []}, size=size
    )


def recipient(campaign, seg, external_id: str, *, control=False, status="sent"):
    contact = make_contact(campaign.workspace, external_id=external_id, email=f"{external_id}@x.io")
    CampaignRecipient.objects.create(
        campaign=campaign,
        contact=contact,
        segment=seg,
        is_control=control,
        status="control" if control else status,
        sent_at=None if control else STARTED,
    )
    return contact


@pytest.fixture
def hand_made(workspace):
    a, b = segment(workspace, "A", 40), segment(workspace, "B", 500)
    campaign = Campaign.objects.create(
        workspace=workspace,
        name="June",
        status="sent",
        started_at=STARTED,
        finished_at=STARTED + timedelta(minutes=5),
        conversion_window_days=7,
    )
    CampaignTarget.objects.create(campaign=campaign, segment=a, priority=1)
    CampaignTarget.objects.create(campaign=campaign, segment=b, priority=2)
    key = campaign.tracking_key
    c = {name: recipient(campaign, a, name) for name in ["a1", "a2", "a3", "a4", "a5"]}
    c["a6"] = recipient(campaign, a, "a6", status="failed")
    c.update({name: recipient(campaign, a, name, control=True) for name in ["ac1", "ac2", "ac3", "ac4"]})
    c.update({name: recipient(campaign, b, name) for name in ["b1", "b2", "b3", "b4"]})
    c.update({name: recipient(campaign, b, name, control=True) for name in ["bc1", "bc2"]})
    for name, event_type, campaign_key in [
        ("a1", "email_open", key),
        ("a1", "email_open", key),
        ("a1", "email_click", key),
        ("a2", "email_open", key),
        ("a3", "email_bounce", key),
        ("a4", "unsubscribe", key),
        ("a4", "email_open", key),
        ("a5", "email_complaint", key),
        ("b1", "email_open", key),
        ("b1", "email_click", key),
        ("b2", "email_open", "campaign-999"),  # another campaign's open
        ("b3", "email_open", None),
    ]:
        make_event(c[name], event_type, occurred_at=STARTED + timedelta(hours=1), campaign=campaign_key)
    for name, days, total in [
        ("a1", 1, "50"),
        ("a2", 8, "70"),  # after the window
        ("a3", -1, "20"),  # before the send
        ("b1", 2, "30"),
        ("b1", 3, "10"),  # two orders, one converted contact
        ("ac1", 3, "40"),
        ("ac2", 6.99, "60"),
    ]:
        make_order(c[name], ordered_at=STARTED + timedelta(days=days), total=total)
    return campaign, a, b


def test_per_segment_counts_rates_and_conversions_against_the_control_group(hand_made):
    campaign, a, b = hand_made

    report = campaign_report(campaign=campaign, now=NOW)

    by_segment = {entry["segment"]: entry for entry in report["segments"]}
    assert by_segment[a.pk] == {
        "segment": a.pk,
        "name": "A",
        "priority": 1,
        "recipients": 6,
        "control": 4,
        "sent": 5,
        "failed": 1,
        "delivered": 4,
        "opens": 3,
        "clicks": 1,
        "unsubscribes": 1,
        "bounces": 1,
        "complaints": 1,
        "open_rate": 0.75,
        "click_rate": 0.25,
        "unsubscribe_rate": 0.25,
        "complaint_rate": 0.25,
        "bounce_rate": 0.2,
        "conversions": {
            "treated": 6,
            "treated_conversions": 1,
            "treated_rate": 0.166667,
            "control": 4,
            "control_conversions": 2,
            "control_rate": 0.5,
            "lift": -0.333333,
            "relative_lift": -0.666667,
            "ci95": [-0.906931, 0.240264],
        },
        "warnings": [
            "bounce rate 20.0% over the last 30 days, over 2%",
            "complaint rate 20.0% over the last 30 days, over 2%",
            "only 40 members (fewer than 100)",
        ],
    }
    assert by_segment[b.pk]["conversions"] == {
        "treated": 4,
        "treated_conversions": 1,
        "treated_rate": 0.25,
        "control": 2,
        "control_conversions": 0,
        "control_rate": 0.0,
        "lift": 0.25,
        "relative_lift": None,
        "ci95": [-0.174345, 0.674345],
    }
    assert (by_segment[b.pk]["opens"], by_segment[b.pk]["clicks"], by_segment[b.pk]["warnings"]) == (1, 1, [])
    totals = report["totals"]
    assert {
        k: totals[k]
        for k in [
            "recipients",
            "control",
            "sent",
            "failed",
            "delivered",
            "opens",
            "clicks",
            "unsubscribes",
            "bounces",
            "complaints",
        ]
    } == {
        "recipients": 10,
        "control": 6,
        "sent": 9,
        "failed": 1,
        "delivered": 8,
        "opens": 4,
        "clicks": 2,
        "unsubscribes": 1,
        "bounces": 1,
        "complaints": 1,
    }
    assert (totals["open_rate"], totals["bounce_rate"]) == (0.5, 0.1111)
    assert totals["conversions"]["lift"] == -0.133333
    assert totals["conversions"]["ci95"] == [-0.584709, 0.318042]
    assert report["revenue"] == {"treated": "90.00", "control": "100.00", "per_treated": "9.00", "per_control": "16.67"}
    assert report["conversion_window_ends_at"] == STARTED + timedelta(days=7)


def test_without_a_holdout_there_is_no_lift():
    assert lift(treated=100, treated_conversions=5, control=0, control_conversions=0)["lift"] is None
    result = lift(treated=1000, treated_conversions=120, control=1000, control_conversions=100)
    assert (result["lift"], result["relative_lift"]) == (0.02, 0.2)
    low, high = result["ci95"]
    assert low < 0.02 < high and round(high - 0.02, 6) == round(0.02 - low, 6)


def test_low_engagement_across_the_last_three_campaigns_warns(workspace):
    seg = segment(workspace, "Sleepy", 1000)
    for index, (opened, days_ago) in enumerate([(9, 40), (1, 30), (1, 20), (0, 10)]):
        campaign = Campaign.objects.create(
            workspace=workspace, name=f"c{index}", status="sent", started_at=NOW - timedelta(days=days_ago)
        )
        for n in range(10):
            contact = recipient(campaign, seg, f"c{index}-{n}")
            if n < opened:
                make_event(contact, "email_open", campaign=campaign.tracking_key)

    warnings = segment_health(workspace=workspace, segment_ids=[seg.pk], now=NOW)[seg.pk]

    # The oldest campaign (90% opened) is not among the last three: 2 of 30.
    assert warnings == ["open-or-click rate 6.7% across the last 3 campaign(s), under 15%"]


def test_a_healthy_segment_has_no_warning(workspace):
    seg = segment(workspace, "Fine", 150)
    campaign = Campaign.objects.create(workspace=workspace, name="c", status="sent", started_at=NOW - timedelta(days=3))
    for n in range(10):
        contact = recipient(campaign, seg, f"fine{n}")
        if n < 5:
            make_event(contact, "email_click", campaign=campaign.tracking_key)
    assert segment_health(workspace=workspace, segment_ids=[seg.pk], now=NOW) == {seg.pk: []}
