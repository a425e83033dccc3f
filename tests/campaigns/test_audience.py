"""The audience: one row per contact, the variant of its highest-priority segment, who is left out and why."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from campaigns.errors import CampaignInvalid
from campaigns.models import Channel
from campaigns.selectors import AudienceSpec, audience_counts, audience_preview, audience_sql, segment_overlap
from tests.campaigns.support import make_segment
from tests.factories import make_contact


def rows(spec: AudienceSpec) -> dict[str, tuple]:
    sql, params = audience_sql(spec)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.external_id, a.segment_id, a.reason FROM ({sql}) a "
            "JOIN contacts_contact c ON c.id = a.contact_id",
            params,
        )
        return {external_id: (segment_id, reason) for external_id, segment_id, reason in cursor.fetchall()}


def test_a_contact_in_several_segments_gets_the_variant_of_the_highest_priority_one(workspace):
    make_contact(workspace, external_id="vip-and-new", email="a@x.io", tags=["vip", "new"])
    make_contact(workspace, external_id="vip-only", email="b@x.io", tags=["vip"])
    make_contact(workspace, external_id="new-only", email="c@x.io", tags=["new"])
    make_contact(workspace, external_id="neither", email="d@x.io", tags=["other"])
    vip, new = make_segment(workspace, "vip"), make_segment(workspace, "new")

    vip_first = rows(AudienceSpec(targets=((vip.pk, 1), (new.pk, 2))))
    new_first = rows(AudienceSpec(targets=((vip.pk, 2), (new.pk, 1))))

    assert vip_first == {"vip-and-new": (vip.pk, None), "vip-only": (vip.pk, None), "new-only": (new.pk, None)}
    assert new_first == {"vip-and-new": (new.pk, None), "vip-only": (vip.pk, None), "new-only": (new.pk, None)}


def test_equal_priorities_fall_back_to_the_lower_segment_id(workspace):
    make_contact(workspace, external_id="both", email="a@x.io", tags=["a", "b"])
    a, b = make_segment(workspace, "a"), make_segment(workspace, "b")
    assert rows(AudienceSpec(targets=((b.pk, 1), (a.pk, 1))))["both"] == (min(a.pk, b.pk), None)


def test_left_out_contacts_are_counted_per_reason_and_exclusion_comes_first(workspace):
    for external_id, fields in {
        "ok": {"email": "ok@x.io", "email_status": "subscribed"},
        "never": {"email": "never@x.io", "email_status": "never_subscribed"},
        "unknown-status": {"email": "u@x.io", "email_status": None},
        "unsub": {"email": "unsub@x.io", "email_status": "unsubscribed"},
        "bounced": {"email": "b@x.io", "email_status": "bounced"},
        "complained": {"email": "c@x.io", "email_status": "complained"},
        "no-email": {"email": None},
        "empty-email": {"email": ""},
        "excluded-and-unsub": {"email": "e@x.io", "email_status": "unsubscribed", "tags": ["customers", "staff"]},
    }.items():
        fields.setdefault("tags", ["customers"])
        make_contact(workspace, external_id=external_id, **fields)
    customers, staff = make_segment(workspace, "customers"), make_segment(workspace, "staff")
    spec = AudienceSpec(targets=((customers.pk, 1),), exclusions=(staff.pk,))

    counts = audience_counts(spec)

    assert counts.as_json() == {
        "targeted": 9,
        "excluded": 1,
        "unsubscribed": 1,
        "bounced": 1,
        "complained": 1,
        "no_email": 2,
        "recipients": 3,
        "control": 0,
        "will_receive": 3,
    }
    assert {k for k, (_, reason) in rows(spec).items() if reason is None} == {"ok", "never", "unknown-status"}


def test_the_webhook_channel_does_not_need_an_email_address(workspace):
    make_contact(workspace, external_id="no-email", email=None, tags=["t"])
    make_contact(workspace, external_id="unsub", email=None, email_status="unsubscribed", tags=["t"])
    segment = make_segment(workspace, "t")

    counts = audience_counts(AudienceSpec(targets=((segment.pk, 1),), channel=Channel.WEBHOOK))

    assert (counts.recipients, counts.left_out["no_email"], counts.left_out["unsubscribed"]) == (1, 0, 1)


def test_preview_gives_per_segment_counts_overlap_and_refuses_foreign_segments(workspace, other_workspace):
    for i in range(3):
        make_contact(workspace, external_id=f"both{i}", email=f"b{i}@x.io", tags=["a", "b"])
    make_contact(workspace, external_id="a-only", email="a@x.io", tags=["a"])
    a, b = make_segment(workspace, "a"), make_segment(workspace, "b")
    foreign = make_segment(other_workspace, "a")

    preview = audience_preview(workspace=workspace, data={"segments": [b.pk, a.pk], "holdout_percent": Decimal(0)})

    assert preview["recipients"] == 4
    assert preview["by_segment"] == {
        str(b.pk): {"recipients": 3, "control": 0},
        str(a.pk): {"recipients": 1, "control": 0},
    }
    assert preview["overlap"] == [{"a": min(a.pk, b.pk), "b": max(a.pk, b.pk), "contacts": 3}]
    assert segment_overlap([a.pk]) == {}
    with pytest.raises(CampaignInvalid) as refused:
        audience_preview(workspace=workspace, data={"segments": [a.pk, foreign.pk]})
    assert refused.value.errors == [{"path": "segments[1]", "message": f"no segment {foreign.pk} in this workspace"}]
