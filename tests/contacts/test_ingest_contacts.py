"""POST /api/v1/contacts/bulk/ and ingest_contacts: upsert by external_id, located errors, idempotence."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.db import OperationalError

from contacts.ingest import ingest_contacts
from contacts.ingest.common import in_one_transaction
from contacts.models import Contact, ContactStats, Tag

URL = "/api/v1/contacts/bulk/"


def post(api, records):
    return api.post(URL, {"contacts": records}, format="json")


def contact(workspace, external_id) -> Contact:
    return Contact.objects.get(workspace=workspace, external_id=external_id)


def tag_names(row: Contact) -> set[str]:
    return set(row.tags.values_list("name", flat=True))


FULL = {
    "external_id": "u1",
    "email": "ann@example.com",
    "first_name": "Ann",
    "last_name": "Nowak",
    "phone": "+48 600 100 200",
    "country": "pl",
    "city": "Kraków",
    "gender": "female",
    "birth_date": "1990-05-17",
    "created_at": "2023-01-02T03:04:05+02:00",
    "email_status": "subscribed",
    "traffic_source": "organic",
    "utm_campaign": "spring",
    "tags": ["vip", "newsletter"],
    "attributes": {"plan": "pro", "score": 7},
}


def test_creates_a_contact_with_every_field_and_a_stats_row(api, workspace):
    response = post(api, [FULL])
    assert response.status_code == 200
    assert response.json() == {"created": 1, "updated": 0, "errors": []}
    row = contact(workspace, "u1")
    assert (row.email, row.first_name, row.last_name, row.city) == ("ann@example.com", "Ann", "Nowak", "Kraków")
    assert row.country == "PL"
    assert row.birth_date == date(1990, 5, 17)
    assert row.created_at == datetime(2023, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert (row.email_status, row.traffic_source, row.utm_campaign) == ("subscribed", "organic", "spring")
    assert tag_names(row) == {"vip", "newsletter"}
    assert row.attributes == {"plan": "pro", "score": 7}
    assert ContactStats.objects.filter(contact=row, workspace=workspace).exists()


def test_sending_the_same_contacts_again_changes_nothing_and_counts_them_updated(api, workspace):
    post(api, [FULL, {"external_id": "u2"}])
    columns = ("external_id", "email", "attributes", "created_at", "updated_at")
    before = list(Contact.objects.values(*columns).order_by("id"))
    response = post(api, [FULL, {"external_id": "u2"}])
    assert response.json() == {"created": 0, "updated": 2, "errors": []}
    assert list(Contact.objects.values(*columns).order_by("id")) == before  # updated_at too: nothing was written
    assert Tag.objects.filter(workspace=workspace).count() == 2


def test_an_update_changes_only_the_fields_it_names(api, workspace):
    post(api, [FULL])
    first_written = contact(workspace, "u1").updated_at
    post(api, [{"external_id": "u1", "city": "Gdańsk"}])
    row = contact(workspace, "u1")
    assert row.city == "Gdańsk" and row.updated_at > first_written
    assert (row.email, row.country, row.first_name) == ("ann@example.com", "PL", "Ann")
    assert tag_names(row) == {"vip", "newsletter"}
    assert row.created_at == datetime(2023, 1, 2, 1, 4, 5, tzinfo=UTC)


def test_tags_replace_the_contacts_tags_and_an_empty_list_removes_them(api, workspace):
    post(api, [FULL])
    post(api, [{"external_id": "u1", "tags": ["vip", "churn-risk"]}])
    assert tag_names(contact(workspace, "u1")) == {"vip", "churn-risk"}
    post(api, [{"external_id": "u1", "tags": []}])
    assert tag_names(contact(workspace, "u1")) == set()


def test_attributes_are_merged_and_a_null_value_removes_a_key(api, workspace):
    post(api, [FULL])
    post(api, [{"external_id": "u1", "attributes": {"score": 9, "plan": None, "team": "blue"}}])
    assert contact(workspace, "u1").attributes == {"score": 9, "team": "blue"}


def test_empty_strings_of_optional_fields_are_stored_as_missing_values(api, workspace):
    post(api, [FULL])
    post(api, [{"external_id": "u1", "email": "", "country": "", "phone": "  ", "email_status": ""}])
    row = contact(workspace, "u1")
    assert (row.email, row.country, row.phone, row.email_status) == (None, None, None, None)


def test_a_bare_date_is_midnight_utc_and_no_offset_means_utc(api, workspace):
    post(
        api, [{"external_id": "a", "created_at": "2024-03-01"}, {"external_id": "b", "created_at": "2024-03-01T10:30"}]
    )
    assert contact(workspace, "a").created_at == datetime(2024, 3, 1, tzinfo=UTC)
    assert contact(workspace, "b").created_at == datetime(2024, 3, 1, 10, 30, tzinfo=UTC)


def test_a_repeat_within_one_call_is_one_contact_and_the_last_value_wins(api, workspace):
    response = post(api, [{"external_id": "u1", "city": "Łódź"}, {"external_id": "u1", "city": "Poznań"}])
    assert response.json() == {"created": 1, "updated": 1, "errors": []}
    assert Contact.objects.filter(workspace=workspace).count() == 1
    assert contact(workspace, "u1").city == "Poznań"


def test_good_records_are_stored_and_bad_ones_reported_by_index_and_path(api, workspace):
    response = post(
        api,
        [
            {"external_id": "ok-1"},
            {"external_id": "bad", "country": "XX"},
            {"external_id": "ok-2", "email": "b@example.com"},
            {"email": "no-id@example.com"},
        ],
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"]) == (2, 0)
    assert [(e["index"], e["path"]) for e in body["errors"]] == [
        (1, "contacts[1].country"),
        (3, "contacts[3].external_id"),
    ]
    assert set(Contact.objects.values_list("external_id", flat=True)) == {"ok-1", "ok-2"}


def test_a_call_whose_every_record_is_refused_is_a_400_and_stores_nothing(api, workspace):
    response = post(api, [{"external_id": "x", "email": "not-an-email"}])
    assert response.status_code == 400
    assert response.json() == {
        "created": 0,
        "updated": 0,
        "errors": [{"index": 0, "path": "contacts[0].email", "message": "must be a valid email address"}],
    }
    assert not Contact.objects.exists()


def test_contacts_of_another_workspace_with_the_same_external_id_are_separate(api, other_api, workspace):
    post(api, [{"external_id": "u1", "city": "Berlin"}])
    other_api.post(URL, {"contacts": [{"external_id": "u1", "city": "Paris"}]}, format="json")
    assert contact(workspace, "u1").city == "Berlin"
    assert Contact.objects.filter(external_id="u1").count() == 2


def test_the_service_works_without_http_and_names_the_contacts_it_touched(workspace):
    result = ingest_contacts(workspace=workspace, records=[{"external_id": "u1"}, {"external_id": "u2"}])
    assert (result.created, result.updated, result.errors) == (2, 0, [])
    assert sorted(result.contact_ids) == sorted(Contact.objects.values_list("id", flat=True))


@pytest.mark.django_db(transaction=True)
def test_segments_hear_about_the_change_after_commit(workspace, monkeypatch):
    calls = []
    monkeypatch.setattr("contacts.ingest.common.on_contacts_changed", lambda **kwargs: calls.append(kwargs))
    result = ingest_contacts(workspace=workspace, records=[{"external_id": "u1", "tags": ["vip"]}])
    assert calls == [
        {"workspace_id": workspace.pk, "contact_ids": result.contact_ids, "data_kinds": {"contact", "tags"}}
    ]


class _Deadlock(Exception):
    sqlstate = "40P01"


@pytest.mark.django_db(transaction=True)
def test_a_write_that_hits_a_deadlock_is_retried_in_a_fresh_transaction():
    attempts = []

    def write():
        attempts.append(len(attempts))
        if len(attempts) == 1:
            raise OperationalError("deadlock detected") from _Deadlock()
        return "written"

    assert in_one_transaction(write) == "written"
    assert attempts == [0, 1]


def test_inside_a_callers_transaction_a_deadlock_is_not_retried(db):
    def write():
        raise OperationalError("deadlock detected") from _Deadlock()

    with pytest.raises(OperationalError):
        in_one_transaction(write)
