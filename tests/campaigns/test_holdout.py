"""The holdout: the same contact is always on the same side for a campaign; the control share matches."""

from __future__ import annotations

from decimal import Decimal

from django.db import connection

from campaigns.holdout import holdout_sql, in_holdout
from campaigns.selectors import AudienceSpec, audience_counts
from contacts.models import Contact
from tests.campaigns.support import make_segment, people


def control_ids_by_sql(campaign_id: int, percent) -> set[int]:
    condition, params = holdout_sql(campaign_id=campaign_id, percent=percent, contact_column="c.id")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT c.id FROM {Contact._meta.db_table} c WHERE {condition}", params)
        return {row[0] for row in cursor.fetchall()}


def test_sql_and_python_agree_contact_by_contact(workspace):
    people(workspace, 400)
    ids = set(Contact.objects.values_list("pk", flat=True))

    for campaign_id, percent in [(1, 10), (2, 10), (7, Decimal("33.5")), (8, 50)]:
        expected = {cid for cid in ids if in_holdout(campaign_id=campaign_id, contact_id=cid, percent=percent)}
        assert control_ids_by_sql(campaign_id, percent) == expected


def test_the_same_contact_stays_on_the_same_side_and_campaigns_draw_independently():
    sides = [in_holdout(campaign_id=42, contact_id=cid, percent=20) for cid in range(1, 2001)]
    assert sides == [in_holdout(campaign_id=42, contact_id=cid, percent=20) for cid in range(1, 2001)]
    other = [in_holdout(campaign_id=43, contact_id=cid, percent=20) for cid in range(1, 2001)]
    # Independent draws agree on about 0.8^2 + 0.2^2 = 68% of contacts, not on all of them.
    agreement = sum(a == b for a, b in zip(sides, other, strict=True)) / len(sides)
    assert 0.63 < agreement < 0.73


def test_the_control_share_is_the_holdout_percentage_within_sampling_noise():
    n = 20_000
    for percent in (5, 10, 25, 50):
        control = sum(in_holdout(campaign_id=9, contact_id=cid, percent=percent) for cid in range(1, n + 1))
        p = percent / 100
        tolerance = 4 * (p * (1 - p) / n) ** 0.5  # four standard errors
        assert abs(control / n - p) < tolerance, (percent, control / n)


def test_a_larger_holdout_keeps_everyone_the_smaller_one_had():
    small = {cid for cid in range(1, 3001) if in_holdout(campaign_id=5, contact_id=cid, percent=10)}
    large = {cid for cid in range(1, 3001) if in_holdout(campaign_id=5, contact_id=cid, percent=20)}
    assert small < large


def test_zero_and_a_hundred_percent(workspace):
    people(workspace, 30)
    ids = set(Contact.objects.values_list("pk", flat=True))
    assert control_ids_by_sql(3, 0) == set()
    assert control_ids_by_sql(3, 100) == ids
    assert not any(in_holdout(campaign_id=3, contact_id=cid, percent=0) for cid in ids)
    assert all(in_holdout(campaign_id=3, contact_id=cid, percent=100) for cid in ids)


def test_the_audience_control_count_is_the_hash_decision(workspace):
    people(workspace, 300, tags=["all"])
    segment = make_segment(workspace, "all")
    ids = Contact.objects.values_list("pk", flat=True)

    counts = audience_counts(AudienceSpec(targets=((segment.pk, 1),), holdout_percent=Decimal(15), campaign_id=77))

    assert counts.recipients == 300
    assert counts.control == sum(in_holdout(campaign_id=77, contact_id=cid, percent=15) for cid in ids)
