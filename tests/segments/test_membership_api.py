"""The ESP-sync API: members, snapshots, the change feed, refresh, webhooks; another workspace's ids are 404."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from contacts.models import Contact
from segments_app.membership import recompute_membership
from segments_app.models import Segment, SegmentChange, WebhookDelivery, WebhookEndpoint
from tests.factories import make_contact

POLISH = {"match": "all", "conditions": [{"type": "attribute", "field": "country", "op": "eq", "value": "PL"}]}


@pytest.fixture
def poles(workspace) -> Segment:
    return Segment.objects.create(workspace=workspace, name="Poles", definition=POLISH)


def add_poles(workspace, names) -> None:
    for name in names:
        make_contact(workspace, external_id=name, country="PL", email=f"{name}@example.com")


# --- members ----------------------------------------------------------------------------------------


def test_members_are_the_stored_ones_cursor_paginated(api, workspace, poles):
    add_poles(workspace, [f"p{n}" for n in range(5)])
    recompute_membership(segment_id=poles.pk, trigger="manual")
    add_poles(workspace, ["not-yet-computed"])

    seen, cursor, pages = [], None, 0
    while True:
        params = {"page_size": 2, **({"cursor": cursor} if cursor else {})}
        body = api.get(f"/api/v1/segments/{poles.pk}/members/", params).json()
        seen += body["results"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            assert body["next"] is None
            break
        assert f"cursor={cursor}" in body["next"]

    assert pages == 3
    assert [m["external_id"] for m in seen] == [f"p{n}" for n in range(5)]
    assert seen[0]["email"] == "p0@example.com"


def test_members_page_size_is_capped_at_1000_and_must_be_a_number(api, poles):
    response = api.get(f"/api/v1/segments/{poles.pk}/members/", {"page_size": 5000})
    assert response.status_code == 200
    for bad in ("0", "-1", "ten"):
        response = api.get(f"/api/v1/segments/{poles.pk}/members/", {"page_size": bad})
        assert response.status_code == 400
        assert response.json()["errors"][0]["path"] == "page_size"
    response = api.get(f"/api/v1/segments/{poles.pk}/members/", {"cursor": "garbage"})
    assert (response.status_code, response.json()["errors"][0]["path"]) == (400, "cursor")


def test_members_follow_the_next_link(api, workspace, poles):
    add_poles(workspace, ["a", "b", "c"])
    recompute_membership(segment_id=poles.pk, trigger="manual")

    first = api.get(f"/api/v1/segments/{poles.pk}/members/?page_size=2").json()
    second = api.get(first["next"]).json()

    assert [m["external_id"] for m in first["results"] + second["results"]] == ["a", "b", "c"]


# --- snapshots and changes --------------------------------------------------------------------------


def test_snapshots_newest_first(api, workspace, poles):
    add_poles(workspace, ["a"])
    recompute_membership(segment_id=poles.pk, trigger="manual")
    add_poles(workspace, ["b", "c"])
    recompute_membership(segment_id=poles.pk, trigger="schedule")

    body = api.get(f"/api/v1/segments/{poles.pk}/snapshots/").json()

    assert [(s["size"], s["entered"], s["exited"], s["trigger"]) for s in body["results"]] == [
        (3, 2, 0, "schedule"), (1, 1, 0, "manual")
    ]
    assert set(body["results"][0]) >= {"computed_at", "duration_ms"}
    older = api.get(f"/api/v1/segments/{poles.pk}/snapshots/", {"page_size": 1}).json()
    assert api.get(older["next"]).json()["results"][0]["trigger"] == "manual"


def test_change_feed_in_order_after_a_cursor(api, workspace, poles):
    add_poles(workspace, ["a", "b"])
    recompute_membership(segment_id=poles.pk, trigger="manual")
    first = api.get(f"/api/v1/segments/{poles.pk}/changes/").json()
    Contact.objects.filter(external_id="a").update(country="DE")
    add_poles(workspace, ["c"])
    recompute_membership(segment_id=poles.pk, trigger="manual")

    then = api.get(f"/api/v1/segments/{poles.pk}/changes/", {"after": first["next_cursor"]}).json()

    assert sorted((c["contact"], c["change"]) for c in first["results"]) == [("a", "entered"), ("b", "entered")]
    assert sorted((c["contact"], c["change"]) for c in then["results"]) == [("a", "exited"), ("c", "entered")]
    cursors = [c["cursor"] for c in first["results"] + then["results"]]
    assert cursors == [str(pk) for pk in SegmentChange.objects.order_by("pk").values_list("pk", flat=True)]
    assert all(isinstance(c, str) for c in cursors)
    assert set(then["results"][0]) == {"cursor", "contact", "change", "at"}
    assert then["has_more"] is False


def test_polling_with_nothing_new_keeps_the_cursor(api, workspace, poles):
    add_poles(workspace, ["a"])
    recompute_membership(segment_id=poles.pk, trigger="manual")
    last = api.get(f"/api/v1/segments/{poles.pk}/changes/").json()["next_cursor"]

    body = api.get(f"/api/v1/segments/{poles.pk}/changes/", {"after": last}).json()

    assert (body["results"], body["next_cursor"]) == ([], last)
    assert api.get(f"/api/v1/segments/{poles.pk}/changes/", {"after": "x1"}).status_code == 400


def test_change_feed_pages(api, workspace, poles):
    add_poles(workspace, ["a", "b", "c"])
    recompute_membership(segment_id=poles.pk, trigger="manual")

    page = api.get(f"/api/v1/segments/{poles.pk}/changes/", {"page_size": 2}).json()
    rest = api.get(f"/api/v1/segments/{poles.pk}/changes/", {"after": page["next_cursor"], "page_size": 2}).json()

    assert (len(page["results"]), page["has_more"], len(rest["results"]), rest["has_more"]) == (2, True, 1, False)


# --- refresh --------------------------------------------------------------------------------------


def test_refresh_recomputes_now_and_answers_the_snapshot(api, workspace, poles):
    add_poles(workspace, ["a", "b"])

    response = api.post(f"/api/v1/segments/{poles.pk}/refresh/")

    assert response.status_code == 200
    body = response.json()
    assert (body["size"], body["entered"], body["exited"], body["trigger"]) == (2, 2, 0, "manual")
    assert set(body) >= {"size", "entered", "exited", "computed_at", "duration_ms"}
    poles.refresh_from_db()
    assert poles.size == 2
    again = api.post(f"/api/v1/segments/{poles.pk}/refresh/").json()
    assert (again["entered"], again["exited"]) == (0, 0)


def test_refresh_of_a_definition_that_no_longer_compiles_is_a_400_recorded_on_the_segment(api, workspace):
    target = Segment.objects.create(workspace=workspace, name="target", definition=POLISH)
    broken = Segment.objects.create(
        workspace=workspace, name="broken",
        definition={"match": "all", "conditions": [{"type": "segment", "op": "in", "segment": target.pk}]},
    )
    target.delete()

    response = api.post(f"/api/v1/segments/{broken.pk}/refresh/")

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"].startswith("definition")
    broken.refresh_from_db()
    assert (broken.status, broken.error_count) == ("failed", 1)


# --- isolation and auth ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", "members/"), ("get", "snapshots/"), ("get", "changes/"), ("post", "refresh/")],
)
def test_another_workspaces_segment_is_404(other_api, poles, method, suffix):
    response = getattr(other_api, method)(f"/api/v1/segments/{poles.pk}/{suffix}")
    assert response.status_code == 404
    assert "errors" in response.json()


@pytest.mark.parametrize("suffix", ["members/", "snapshots/", "changes/", "refresh/"])
def test_no_key_is_401(db, poles, suffix):
    assert APIClient().get(f"/api/v1/segments/{poles.pk}/{suffix}").status_code == 401


# --- webhooks -------------------------------------------------------------------------------------


def test_webhook_crud(api, workspace, poles):
    created = api.post("/api/v1/webhooks/", {"url": "https://esp.example.com/hook", "segments": [poles.pk]},
                       format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_")  # generated, shown once
    assert body["segments"] == [poles.pk] and body["active"] is True

    listed = api.get("/api/v1/webhooks/").json()["results"]
    assert [e["id"] for e in listed] == [body["id"]]
    assert "secret" not in listed[0]

    patched = api.patch(f"/api/v1/webhooks/{body['id']}/", {"active": False, "segments": []}, format="json")
    assert patched.status_code == 200
    assert (patched.json()["active"], patched.json()["segments"]) == (False, [])

    assert api.delete(f"/api/v1/webhooks/{body['id']}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_webhook_with_a_chosen_secret(api):
    body = api.post("/api/v1/webhooks/", {"url": "https://esp.example.com/hook", "secret": "a-secret-of-16-chars"},
                    format="json").json()
    assert WebhookEndpoint.objects.get(pk=body["id"]).secret == "a-secret-of-16-chars"


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"url": "not a url"}, "url"),
        ({"url": "ftp://esp.example.com/"}, "url"),
        ({}, "url"),
        ({"url": "https://esp.example.com/", "secret": "short"}, "secret"),
        ({"url": "https://esp.example.com/", "segments": [987654]}, "segments[0]"),
        ({"url": "https://esp.example.com/", "colour": "red"}, "colour"),
    ],
)
def test_webhook_bad_input_is_a_located_400(api, payload, path):
    response = api.post("/api/v1/webhooks/", payload, format="json")
    assert response.status_code == 400
    assert path in [e["path"] for e in response.json()["errors"]]


def test_webhook_cannot_name_another_workspaces_segment(other_api, poles):
    response = other_api.post("/api/v1/webhooks/", {"url": "https://x.example/", "segments": [poles.pk]},
                              format="json")
    assert (response.status_code, response.json()["errors"][0]["path"]) == (400, "segments[0]")


def test_another_workspaces_webhook_is_404(api, other_api):
    endpoint_id = api.post("/api/v1/webhooks/", {"url": "https://esp.example.com/hook"}, format="json").json()["id"]
    assert other_api.get(f"/api/v1/webhooks/{endpoint_id}/").status_code == 404
    assert other_api.patch(f"/api/v1/webhooks/{endpoint_id}/", {"active": False}, format="json").status_code == 404
    assert other_api.delete(f"/api/v1/webhooks/{endpoint_id}/").status_code == 404
    assert other_api.get(f"/api/v1/webhooks/{endpoint_id}/deliveries/").status_code == 404
    assert other_api.get("/api/v1/webhooks/").json()["results"] == []


def test_delivery_log(api, workspace, poles):
    endpoint_id = api.post("/api/v1/webhooks/", {"url": "https://esp.example.com/hook"}, format="json").json()["id"]
    WebhookDelivery.objects.create(
        endpoint_id=endpoint_id, segment=poles, status="failed", first_change_id=1, last_change_id=4, change_count=4,
        attempts=2, response_code=503, error="HTTP 503",
    )

    body = api.get(f"/api/v1/webhooks/{endpoint_id}/deliveries/").json()

    assert [(d["status"], d["attempts"], d["response_code"], d["change_count"]) for d in body["results"]] == [
        ("failed", 2, 503, 4)
    ]


def test_the_schema_documents_the_sync_endpoints(api):
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    for path in ("members", "snapshots", "changes", "refresh"):
        assert f"/api/v1/segments/{{segment_id}}/{path}/" in paths
    assert "/api/v1/webhooks/" in paths
    assert "X-Segments-Signature" in paths["/api/v1/webhooks/"]["post"]["description"]
