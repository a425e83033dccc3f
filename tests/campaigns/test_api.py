"""The campaigns API of api.md: paths, shapes, bad input (400, located, nothing written), other workspaces (404)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from campaigns.models import Automation, Campaign, CampaignRecipient
from segments_app.membership import recompute_membership
from tests.campaigns.support import make_segment, people
from tests.factories import make_contact


@pytest.fixture
def vip(workspace):
    people(workspace, 5, tags=["vip"], first_name="Ann")
    return make_segment(workspace, "vip")


@pytest.fixture
def staff(workspace):
    make_contact(workspace, external_id="boss", email="boss@x.io", tags=["vip", "staff"])
    return make_segment(workspace, "staff")


def body(vip, **extra) -> dict:
    return {"name": "Spring", "subject": "Hi {{ first_name }}", "body": "<p>Sale</p>", "segments": [vip.pk], **extra}


def test_create_read_list_and_patch(api, vip, staff):
    created = api.post("/api/v1/campaigns/", body(vip, exclude_segments=[staff.pk], holdout_percent=10), format="json")

    assert created.status_code == 201, created.json()
    data = created.json()
    assert {
        k: data[k]
        for k in [
            "name",
            "status",
            "channel",
            "segments",
            "exclude_segments",
            "holdout_percent",
            "scheduled_at",
            "audience",
            "progress",
        ]
    } == {
        "name": "Spring",
        "status": "draft",
        "channel": "email",
        "segments": [vip.pk],
        "exclude_segments": [staff.pk],
        "holdout_percent": 10.0,
        "scheduled_at": None,
        "audience": None,
        "progress": None,
    }
    assert data["tracking_key"] == f"campaign-{data['id']}"
    assert api.get(f"/api/v1/campaigns/{data['id']}/").json()["name"] == "Spring"
    assert [c["id"] for c in api.get("/api/v1/campaigns/").json()["results"]] == [data["id"]]

    when = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    patched = api.patch(
        f"/api/v1/campaigns/{data['id']}/", {"name": "Spring!", "scheduled_at": when.isoformat()}, format="json"
    )
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["name"], patched.json()["status"]) == ("Spring!", "scheduled")
    assert patched.json()["exclude_segments"] == [staff.pk]
    unscheduled = api.patch(f"/api/v1/campaigns/{data['id']}/", {"scheduled_at": None}, format="json")
    assert unscheduled.json()["status"] == "draft"


def test_variants_and_priorities_round_trip(api, vip, staff):
    response = api.post(
        "/api/v1/campaigns/",
        body(vip, segments=[vip.pk, staff.pk], variants=[{"segment": vip.pk, "priority": 5, "subject": "VIP!"}]),
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["segments"] == [staff.pk, vip.pk]  # highest priority (lowest number) first
    assert response.json()["variants"] == [
        {"segment": staff.pk, "priority": 2, "subject": "", "body": "", "body_text": ""},
        {"segment": vip.pk, "priority": 5, "subject": "VIP!", "body": "", "body_text": ""},
    ]


def test_send_recipients_and_report(api, vip, staff):
    campaign_id = api.post("/api/v1/campaigns/", body(vip, exclude_segments=[staff.pk]), format="json").json()["id"]

    first = api.post(f"/api/v1/campaigns/{campaign_id}/send/")
    second = api.post(f"/api/v1/campaigns/{campaign_id}/send/")

    assert first.status_code == 200, first.json()
    assert (first.json()["started"], first.json()["campaign"]["status"]) == (True, "sent")
    assert (second.status_code, second.json()["started"]) == (200, False)
    assert len(mail.outbox) == 5
    campaign = first.json()["campaign"]
    assert campaign["audience"]["excluded"] == 1 and campaign["audience"]["recipients"] == 5
    assert campaign["progress"] == {"pending": 0, "sending": 0, "sent": 5, "failed": 0, "control": 0}

    page = api.get(f"/api/v1/campaigns/{campaign_id}/recipients/?page_size=2").json()
    assert [r["contact"] for r in page["results"]] == ["p0", "p1"]
    assert page["results"][0] | {"id": 0, "sent_at": None} == {
        "id": 0,
        "contact": "p0",
        "email": "p0@example.com",
        "segment": vip.pk,
        "is_control": False,
        "status": "sent",
        "sent_at": None,
        "attempts": 1,
        "last_error": "",
    }
    rest = api.get(f"/api/v1/campaigns/{campaign_id}/recipients/?page_size=10&cursor={page['next_cursor']}").json()
    assert [r["contact"] for r in rest["results"]] == ["p2", "p3", "p4"] and rest["next_cursor"] is None
    assert api.get(f"/api/v1/campaigns/{campaign_id}/recipients/?status=failed").json()["results"] == []

    report = api.get(f"/api/v1/campaigns/{campaign_id}/report/").json()
    assert report["totals"]["recipients"] == 5 and report["totals"]["sent"] == 5
    assert [s["segment"] for s in report["segments"]] == [vip.pk]
    assert report["tracking_key"] == f"campaign-{campaign_id}"

    locked = api.patch(f"/api/v1/campaigns/{campaign_id}/", {"name": "again"}, format="json")
    assert locked.status_code == 409


def test_a_campaign_of_only_the_contracts_fields_sends_with_its_name_as_content(api, vip, staff):
    created = api.post("/api/v1/campaigns/", {
        "name": "Min", "segments": [vip.pk], "exclude_segments": [staff.pk], "holdout_percent": 0,
        "scheduled_at": None,
    }, format="json")  # fmt: skip
    assert created.status_code == 201, created.json()

    sent = api.post(f"/api/v1/campaigns/{created.json()['id']}/send/")

    assert sent.status_code == 200, sent.json()
    assert sent.json()["campaign"]["audience"]["recipients"] == 5
    assert len(mail.outbox) == 5
    assert {(message.subject, message.body) for message in mail.outbox} == {("Min", "Min")}


def test_sending_an_incomplete_campaign_is_a_located_400(api, vip):
    campaign_id = api.post("/api/v1/campaigns/", {"name": "Empty"}, format="json").json()["id"]
    response = api.post(f"/api/v1/campaigns/{campaign_id}/send/")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "segments", "message": "choose at least one target segment"}]
    assert Campaign.objects.get(pk=campaign_id).status == "draft"


@pytest.mark.parametrize(
    "change, errors",
    [
        ({"segmnts": [1]}, [{"path": "segmnts", "message": "unknown field"}]),
        (
            {"holdout_percent": 101},
            [{"path": "holdout_percent", "message": "Ensure this value is less than or equal to 100."}],
        ),
        (
            {"holdout_percent": -1},
            [{"path": "holdout_percent", "message": "Ensure this value is greater than or equal to 0."}],
        ),
        ({"scheduled_at": "next tuesday"}, None),
        ({"scheduled_at": "2020-01-01T00:00:00Z"}, [{"path": "scheduled_at", "message": "must not be in the past"}]),
        ({"segments": ["x"]}, [{"path": "segments[0]", "message": "A valid integer is required."}]),
        ({"variants": [{"segment": 1, "colour": "red"}]}, [{"path": "variants[0].colour", "message": "unknown field"}]),
        ({"subject": "Hi {{ frist_name }}"}, None),
        (
            {"body": "{% include 'x.html' %}"},
            [{"path": "body", "message": "tags not allowed in a message: IncludeNode"}],
        ),
        ({"channel": "sms"}, [{"path": "channel", "message": '"sms" is not a valid choice.'}]),
    ],
)
def test_bad_input_is_a_located_400_and_writes_nothing(api, vip, change, errors):
    response = api.post("/api/v1/campaigns/", body(vip, **change), format="json")

    assert response.status_code == 400
    found = response.json()["errors"]
    if errors is None:
        assert [e["path"] for e in found] == list(change)
    else:
        assert found == errors
    assert Campaign.objects.count() == 0


def test_segments_of_another_workspace_are_refused_by_position(api, vip, other_workspace):
    foreign = make_segment(other_workspace, "vip")
    response = api.post(
        "/api/v1/campaigns/", body(vip, segments=[vip.pk, foreign.pk], exclude_segments=[foreign.pk]), format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "segments[1]", "message": f"no segment {foreign.pk} in this workspace"},
        {"path": "exclude_segments[0]", "message": f"no segment {foreign.pk} in this workspace"},
    ]
    assert Campaign.objects.count() == 0


def test_a_patch_with_bad_input_changes_nothing(api, vip, staff):
    campaign_id = api.post("/api/v1/campaigns/", body(vip), format="json").json()["id"]
    response = api.patch(
        f"/api/v1/campaigns/{campaign_id}/",
        {"name": "Renamed", "exclude_segments": [vip.pk], "holdout_percent": 5},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "exclude_segments[0]", "message": "a segment cannot be targeted and excluded"}
    ]
    campaign = Campaign.objects.get(pk=campaign_id)
    assert (campaign.name, campaign.holdout_percent, campaign.exclusions.count()) == ("Spring", 0, 0)


def test_another_workspaces_campaign_is_404_everywhere(api, other_api, vip):
    campaign_id = api.post("/api/v1/campaigns/", body(vip), format="json").json()["id"]
    for method, path in [
        ("get", f"/api/v1/campaigns/{campaign_id}/"),
        ("patch", f"/api/v1/campaigns/{campaign_id}/"),
        ("post", f"/api/v1/campaigns/{campaign_id}/send/"),
        ("get", f"/api/v1/campaigns/{campaign_id}/recipients/"),
        ("get", f"/api/v1/campaigns/{campaign_id}/report/"),
    ]:
        response = getattr(other_api, method)(path, {}, format="json")
        assert response.status_code == 404, (method, path)
        assert response.json()["errors"][0]["path"] == ""
    assert other_api.get("/api/v1/campaigns/").json()["results"] == []
    assert not CampaignRecipient.objects.exists() and mail.outbox == []


def test_no_key_is_401(client):
    assert client.get("/api/v1/campaigns/").status_code == 401


def test_preview_counts_without_saving(api, vip, staff):
    recompute_membership(segment_id=vip.pk, trigger="manual")  # the preview reads the stored membership
    response = api.post(
        "/api/v1/campaigns/preview/", {"segments": [vip.pk], "exclude_segments": [staff.pk]}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["targeted"], response.json()["excluded"], response.json()["will_receive"]) == (6, 1, 5)
    assert Campaign.objects.count() == 0


def test_automations_api(api, other_api, vip):
    campaign_id = api.post("/api/v1/campaigns/", body(vip), format="json").json()["id"]
    created = api.post(
        "/api/v1/automations/", {"name": "Welcome", "segment": vip.pk, "campaign": campaign_id}, format="json"
    )
    assert created.status_code == 201, created.json()
    automation_id = created.json()["id"]
    assert created.json()["trigger"] == "entered" and created.json()["frequency"] == "once"
    patched = api.patch(f"/api/v1/automations/{automation_id}/", {"active": False}, format="json")
    assert patched.json()["active"] is False
    assert api.get(f"/api/v1/automations/{automation_id}/sends/").json()["results"] == []
    assert other_api.get(f"/api/v1/automations/{automation_id}/").status_code == 404
    bad = api.post("/api/v1/automations/", {"name": "x", "segment": vip.pk, "trigger": "left"}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "trigger"
    assert Automation.objects.count() == 1


def test_the_schema_documents_the_campaign_paths(api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in [
        "/api/v1/campaigns/",
        "/api/v1/campaigns/{campaign_id}/",
        "/api/v1/campaigns/{campaign_id}/send/",
        "/api/v1/campaigns/{campaign_id}/recipients/",
        "/api/v1/campaigns/{campaign_id}/report/",
    ]:
        assert path in schema


def test_the_report_of_a_campaign_not_sent_yet_is_empty_not_an_error(api, vip):
    campaign_id = api.post("/api/v1/campaigns/", body(vip), format="json").json()["id"]
    report = api.get(f"/api/v1/campaigns/{campaign_id}/report/")
    assert report.status_code == 200
    assert (report.json()["audience"], report.json()["totals"]["recipients"], report.json()["revenue"]) == (
        None,
        0,
        None,
    )
