"""One walk through docs/api.md as an ESP would make it: ingest, segment, sync, campaign.

Each step checks the paths and field names the contract names, so a rename anywhere shows here first.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_the_contract_flow_end_to_end(api, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    contacts = [
        {"external_id": "ann", "email": "ann@example.com", "country": "PL", "email_status": "subscribed",
         "tags": ["vip"], "attributes": {"plan": "pro"}},
        {"external_id": "bob", "email": "bob@example.com", "country": "DE", "email_status": "subscribed"},
    ]
    answer = api.post("/api/v1/contacts/bulk/", {"contacts": contacts}, format="json")
    assert answer.status_code == 200 and answer.json() == {"created": 2, "updated": 0, "errors": []}
    again = api.post("/api/v1/contacts/bulk/", {"contacts": contacts}, format="json").json()
    assert again["created"] == 0 and again["errors"] == []

    products = {"products": [{"sku": "SKU-1", "name": "Trail Runner", "producer": "Acme", "category": "Shoes",
                              "price": 206.25}]}
    assert api.post("/api/v1/products/bulk/", products, format="json").json()["created"] == 1
    order = {"external_id": "o-1", "contact": "ann", "ordered_at": "2026-11-01T10:00:00Z", "source": "email",
             "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": 206.25}]}
    assert api.post("/api/v1/orders/bulk/", {"orders": [order]}, format="json").json()["created"] == 1
    event = {"contact": "ann", "type": "email_open", "occurred_at": "2026-11-20T08:00:00Z", "device": "mobile",
             "event_id": "e-1"}
    assert api.post("/api/v1/events/bulk/", {"events": [event, event]}, format="json").json()["created"] == 1

    bad = api.post("/api/v1/contacts/bulk/", {"contacts": [{"external_id": "x", "country": "Poland"}]}, format="json")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["index"] == 0 and "country" in bad.json()["errors"][0]["path"]

    detail = api.get("/api/v1/contacts/ann/").json()
    assert detail["orders_count"] == 1 and float(detail["total_spent"]) == 412.5
    assert api.get("/api/v1/contacts/", {"country": "PL"}).json()["results"][0]["external_id"] == "ann"

    definition = {"match": "all", "conditions": [
        {"type": "orders", "filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}],
         "measure": "sum", "op": "gt", "value": 300}]}
    preview = api.post("/api/v1/segments/preview/", {"definition": definition}, format="json").json()
    assert preview["count"] == 1 and preview["sample"][0]["external_id"] == "ann"

    created = api.post("/api/v1/segments/", {"name": "Acme fans", "description": "", "definition": definition,
                                             "refresh_minutes": 15}, format="json")
    assert created.status_code == 201
    segment = created.json()
    assert {"id", "name", "description", "definition", "size", "computed_at", "refresh_minutes"} <= set(segment)
    segment_id = segment["id"]

    refreshed = api.post(f"/api/v1/segments/{segment_id}/refresh/").json()
    assert {"size", "entered", "exited", "computed_at", "duration_ms"} <= set(refreshed)
    assert refreshed["size"] == 1
    members = api.get(f"/api/v1/segments/{segment_id}/members/", {"page_size": 1000}).json()
    assert [(m["external_id"], m["email"]) for m in members["results"]] == [("ann", "ann@example.com")]
    assert api.get(f"/api/v1/segments/{segment_id}/snapshots/").json()["results"][0]["size"] == 1
    changes = api.get(f"/api/v1/segments/{segment_id}/changes/").json()["results"]
    assert [(c["contact"], c["change"]) for c in changes] == [("ann", "entered")]
    assert {"cursor", "contact", "change", "at"} <= set(changes[0])
    after = api.get(f"/api/v1/segments/{segment_id}/changes/", {"after": changes[-1]["cursor"]}).json()
    assert after["results"] == []

    explained = api.get(f"/api/v1/segments/{segment_id}/explain/ann/").json()
    assert explained["member"] is True

    campaign = api.post("/api/v1/campaigns/", {
        "name": "Acme news", "channel": "email", "subject": "Hi {{ first_name }}", "body": "<p>News</p>",
        "segments": [segment_id], "exclude_segments": [], "holdout_percent": 0, "scheduled_at": None,
    }, format="json")
    assert campaign.status_code == 201, campaign.content
    campaign_id = campaign.json()["id"]
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send/").status_code in (200, 202)
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send/").json()["started"] is False
    recipients = api.get(f"/api/v1/campaigns/{campaign_id}/recipients/").json()["results"]
    assert len(recipients) == 1
    assert api.get(f"/api/v1/campaigns/{campaign_id}/report/").status_code == 200

    in_use = api.delete(f"/api/v1/segments/{segment_id}/")
    assert in_use.status_code == 409 and in_use.json()["used_by"]["campaigns"][0]["id"] == campaign_id

    assert api.delete("/api/v1/contacts/bob/").status_code == 204
    assert api.get("/api/v1/contacts/bob/").status_code == 404
