"""GET/DELETE /api/v1/contacts/...: filtered cursor pages, the full contact with its figures, and erasure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contacts.ingest import ingest_events, ingest_orders
from contacts.models import Contact, ContactStats, ContactTag, Event, Order, OrderItem, Product
from segments_app.models import Segment, SegmentChange, SegmentMember, SegmentSnapshot
from tests.factories import make_contact

LIST = "/api/v1/contacts/"


def ids_of(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["external_id"] for row in response.json()["results"]]


def segment_with(workspace, *contacts, name="VIP") -> Segment:
    segment = Segment.objects.create(workspace=workspace, name=name, definition={"match": "all", "conditions": []})
    for member in contacts:
        SegmentMember.objects.create(segment=segment, contact=member)
    return segment


# --- list ------------------------------------------------------------------------------------------------------


def test_the_list_is_cursor_paginated_in_id_order(api, workspace):
    for n in range(5):
        make_contact(workspace, external_id=f"c{n}")
    first = api.get(LIST, {"page_size": 2})
    assert ids_of(first) == ["c0", "c1"]
    second = api.get(first.json()["next"])
    assert ids_of(second) == ["c2", "c3"]
    assert ids_of(api.get(second.json()["next"])) == ["c4"]


def test_a_list_row_carries_the_contact_fields_tags_and_attributes(api, workspace):
    make_contact(workspace, external_id="u1", email="a@example.com", tags=["vip", "b2b"], attributes={"plan": "pro"})
    row = api.get(LIST).json()["results"][0]
    assert (row["email"], row["tags"], row["attributes"]) == ("a@example.com", ["b2b", "vip"], {"plan": "pro"})


def test_the_list_shows_only_the_keys_workspace(api, workspace, other_workspace):
    make_contact(workspace, external_id="mine")
    make_contact(other_workspace, external_id="theirs")
    assert ids_of(api.get(LIST)) == ["mine"]


def test_filters_by_email_country_tag_and_email_status(api, workspace):
    make_contact(workspace, external_id="ann", email="Ann@Example.com", country="PL", email_status="subscribed")
    make_contact(workspace, external_id="bo", email="bo@example.com", country="DE", tags=["vip"])
    make_contact(workspace, external_id="cy", country="PL", tags=["vip"], email_status="bounced")
    assert ids_of(api.get(LIST, {"email": "ann@example.com"})) == ["ann"]
    assert ids_of(api.get(LIST, {"country": "pl"})) == ["ann", "cy"]
    assert ids_of(api.get(LIST, {"tag": "vip"})) == ["bo", "cy"]
    assert ids_of(api.get(LIST, {"email_status": "bounced"})) == ["cy"]
    assert ids_of(api.get(LIST, {"country": "PL", "tag": "vip"})) == ["cy"]


def test_filters_by_creation_time_with_dates_or_datetimes(api, workspace):
    make_contact(workspace, external_id="old", created_at=datetime(2023, 12, 31, 23, 59, tzinfo=UTC))
    make_contact(workspace, external_id="new", created_at=datetime(2024, 1, 1, tzinfo=UTC))
    assert ids_of(api.get(LIST, {"created_after": "2024-01-01"})) == ["new"]
    assert ids_of(api.get(LIST, {"created_before": "2024-01-01"})) == ["old"]
    assert ids_of(api.get(LIST, {"created_after": "2024-01-01T00:59:30+01:00"})) == ["new"]


def test_filters_by_stored_segment_membership(api, workspace):
    ann = make_contact(workspace, external_id="ann")
    make_contact(workspace, external_id="bo")
    segment = segment_with(workspace, ann)
    assert ids_of(api.get(LIST, {"segment": segment.pk})) == ["ann"]


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"country": "Poland"}, "country"),
        ({"email_status": "maybe"}, "email_status"),
        ({"created_after": "last tuesday"}, "created_after"),
        ({"created_before": "2024-02-30"}, "created_before"),
        ({"segment": "abc"}, "segment"),
        ({"segment": "99999999999999999999999"}, "segment"),
        ({"email": "a\x00b"}, "email"),
        ({"page_size": "lots"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_filter_values_are_a_400_naming_the_parameter(api, workspace, params, path):
    response = api.get(LIST, params)
    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == [path]


def test_another_workspaces_segment_is_not_found(api, other_workspace):
    segment = segment_with(other_workspace, make_contact(other_workspace))
    response = api.get(LIST, {"segment": segment.pk})
    assert response.status_code == 404
    assert response.json()["errors"] == [{"path": "segment", "message": "no segment with this id in the workspace"}]


def test_page_size_is_capped_at_1000(api, workspace):
    Contact.objects.bulk_create([Contact(workspace=workspace, external_id=f"c{n}") for n in range(1001)])
    assert len(ids_of(api.get(LIST, {"page_size": 5000}))) == 1000


# --- detail ----------------------------------------------------------------------------------------------------


def test_the_detail_shows_fields_figures_flat_and_under_computed_and_segments(api, workspace):
    ann = make_contact(workspace, external_id="ann", email="ann@example.com", tags=["vip"], attributes={"plan": "pro"})
    ingest_orders(
        workspace=workspace,
        records=[
            {"external_id": "o1", "contact": "ann", "ordered_at": "2024-05-01", "total": "10.25"},
            {"external_id": "o2", "contact": "ann", "ordered_at": "2024-05-03", "total": "20.00"},
        ],
    )
    ingest_events(
        workspace=workspace, records=[{"contact": "ann", "type": "email_open", "occurred_at": "2024-05-04T09:00:00Z"}]
    )
    segment = segment_with(workspace, ann, name="Buyers")
    body = api.get("/api/v1/contacts/ann/").json()
    assert (body["external_id"], body["email"], body["tags"], body["attributes"]) == (
        "ann",
        "ann@example.com",
        ["vip"],
        {"plan": "pro"},
    )
    assert body["orders_count"] == 2
    assert body["total_spent"] == 30.25  # a JSON number, not a string
    assert body["avg_order_value"] == 15.13
    assert body["last_order_at"] == "2024-05-03T00:00:00Z"
    assert body["last_email_open_at"] == "2024-05-04T09:00:00Z"
    computed = body["computed"]
    assert set(computed) >= {"orders_count", "total_spent", "lifecycle_stage", "rfm_segment", "loyalty_tier"}
    assert all(body[name] == value for name, value in computed.items())
    assert body["segments"] == [{"id": segment.pk, "name": "Buyers"}]


def test_the_detail_of_a_contact_without_data_shows_the_figures_of_no_data(api, workspace):
    Contact.objects.create(workspace=workspace, external_id="bare")  # no stats row: not made by ingest
    body = api.get("/api/v1/contacts/bare/").json()
    assert (body["orders_count"], body["total_spent"], body["lifecycle_stage"]) == (0, 0, "prospect")
    assert body["segments"] == []


def test_external_ids_with_slashes_and_spaces_are_addressable(api, workspace):
    make_contact(workspace, external_id="shop/42 a")
    assert api.get("/api/v1/contacts/shop/42%20a/").json()["external_id"] == "shop/42 a"


def test_another_workspaces_contact_is_a_404(api, other_workspace):
    make_contact(other_workspace, external_id="theirs")
    assert api.get("/api/v1/contacts/theirs/").status_code == 404
    assert api.delete("/api/v1/contacts/theirs/").status_code == 404
    assert Contact.objects.filter(external_id="theirs").exists()


# --- erasure ---------------------------------------------------------------------------------------------------


def test_delete_erases_the_contact_and_everything_about_it(api, workspace):
    ann = make_contact(workspace, external_id="ann", tags=["vip"])
    keep = make_contact(workspace, external_id="keep")
    ingest_orders(
        workspace=workspace,
        records=[
            {
                "external_id": "o1",
                "contact": "ann",
                "ordered_at": "2024-05-01",
                "items": [{"sku": "A", "unit_price": 1}],
            }
        ],
    )
    ingest_events(workspace=workspace, records=[{"contact": "ann", "type": "page_view", "occurred_at": "2024-05-02"}])
    segment = segment_with(workspace, ann, keep)
    snapshot = SegmentSnapshot.objects.create(
        segment=segment, size=2, entered=2, exited=0, duration_ms=1, trigger="manual"
    )
    SegmentChange.objects.create(segment=segment, snapshot=snapshot, contact=ann, change="entered")

    response = api.delete("/api/v1/contacts/ann/")

    assert response.status_code == 204
    assert not Contact.objects.filter(pk=ann.pk).exists()
    assert not Order.objects.exists() and not OrderItem.objects.exists() and not Event.objects.exists()
    assert not ContactTag.objects.filter(contact_id=ann.pk).exists()
    assert not ContactStats.objects.filter(contact_id=ann.pk).exists()
    assert list(SegmentMember.objects.values_list("contact_id", flat=True)) == [keep.pk]
    assert not SegmentChange.objects.filter(contact_id=ann.pk).exists()
    assert Product.objects.filter(sku="A").exists()  # the catalogue stays
    assert api.get("/api/v1/contacts/ann/").status_code == 404


def test_deleting_an_unknown_contact_is_a_404(api, workspace):
    assert api.delete("/api/v1/contacts/nobody/").status_code == 404


def test_the_schema_describes_the_contacts_and_ingest_endpoints(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    for path in (
        "/api/v1/contacts/",
        "/api/v1/contacts/{external_id}/",
        "/api/v1/contacts/bulk/",
        "/api/v1/products/bulk/",
        "/api/v1/orders/bulk/",
        "/api/v1/events/bulk/",
        "/v1/batch",
        "/v1/identify",
        "/v1/track",
    ):
        assert path in schema["paths"], path
    detail = schema["components"]["schemas"]["ContactDetailOut"]["properties"]
    assert {"total_spent", "computed", "segments"} <= set(detail)
    assert detail["total_spent"]["type"] == "number"
