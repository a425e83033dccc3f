"""POST /api/v1/events/bulk/: events of known contacts, stored once, with their figures and types kept."""

from __future__ import annotations

from datetime import UTC, datetime

from contacts.models import ContactStats, Event, EventType
from tests.factories import make_contact

URL = "/api/v1/events/bulk/"


def event(contact="u1", type="email_open", at="2024-05-01T10:00:00Z", **fields):
    return {"contact": contact, "type": type, "occurred_at": at, **fields}


def post(api, records):
    return api.post(URL, {"events": records}, format="json")


def test_events_are_stored_with_their_fields_and_types_recorded(api, workspace):
    make_contact(workspace, external_id="u1")
    response = post(
        api,
        [
            event(device="mobile", url="https://shop.example/p/1", campaign="spring", properties={"subject": "Hi"}),
            event(type="wishlist_add", at="2024-05-02"),
        ],
    )
    assert response.json() == {"created": 2, "updated": 0, "errors": []}
    opened = Event.objects.get(type="email_open")
    assert (opened.device, opened.url, opened.campaign) == ("mobile", "https://shop.example/p/1", "spring")
    assert opened.properties == {"subject": "Hi"}
    assert opened.occurred_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert set(EventType.objects.filter(workspace=workspace).values_list("name", flat=True)) == {
        "email_open",
        "wishlist_add",
    }


def test_the_contacts_figures_follow_the_events(api, workspace):
    make_contact(workspace, external_id="u1")
    post(api, [event(), event(type="page_view", at="2024-05-03T08:00:00Z", device="desktop")])
    row = ContactStats.objects.get(contact__external_id="u1")
    assert row.last_email_open_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert row.last_seen_at == datetime(2024, 5, 3, 8, tzinfo=UTC)
    assert row.preferred_device == "desktop_only"


def test_a_repeated_event_id_is_stored_once_within_a_call_and_across_calls(api, workspace):
    make_contact(workspace, external_id="u1")
    first = post(api, [event(event_id="esp-1"), event(event_id="esp-1", at="2024-06-01")])
    again = post(api, [event(event_id="esp-1")])
    assert first.json() == {"created": 1, "updated": 1, "errors": []}
    assert again.json() == {"created": 0, "updated": 1, "errors": []}
    assert Event.objects.count() == 1


def test_events_without_an_event_id_are_idempotent_by_content(api, workspace):
    make_contact(workspace, external_id="u1")
    records = [event(), event(at="2024-05-01T10:00:01Z"), event(campaign="other")]
    assert post(api, records).json() == {"created": 3, "updated": 0, "errors": []}
    assert post(api, records).json() == {"created": 0, "updated": 3, "errors": []}
    assert Event.objects.count() == 3


def test_an_unknown_contact_is_an_error_of_that_record_only(api, workspace):
    make_contact(workspace, external_id="u1")
    response = post(api, [event(contact="nobody"), event()])
    assert response.status_code == 200
    assert response.json() == {
        "created": 1,
        "updated": 0,
        "errors": [{"index": 0, "path": "events[0].contact", "message": "no contact with this external_id"}],
    }
    assert Event.objects.count() == 1


def test_a_contact_of_another_workspace_is_unknown_here(api, other_workspace):
    make_contact(other_workspace, external_id="u1")
    response = post(api, [event()])
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "events[0].contact"
    assert not Event.objects.exists()
