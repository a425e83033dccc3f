"""API paths and error shapes for machines: optional trailing slash, JSON 404s, 400 for a body that is not JSON."""

from __future__ import annotations

import pytest

from contacts.models import Contact


@pytest.mark.parametrize("debug", [True, False])
def test_a_post_without_the_trailing_slash_is_served_as_with_it(api, workspace, settings, debug):
    settings.DEBUG = debug

    response = api.post("/api/v1/contacts/bulk", {"contacts": [{"external_id": "u1"}]}, format="json")

    assert response.status_code == 200, response.content[:200]
    assert response.json()["created"] == 1
    assert Contact.objects.filter(workspace=workspace, external_id="u1").exists()


def test_a_preview_and_a_get_without_the_slash_work_too(api):
    preview = api.post("/api/v1/segments/preview", {"definition": {"match": "all", "conditions": []}}, format="json")
    listing = api.get("/api/v1/segments")

    assert (preview.status_code, listing.status_code) == (200, 200)


@pytest.mark.parametrize("path", ["/api/v1/segments/abc/", "/api/v1/no-such-thing/", "/api/v2/contacts/"])
def test_a_path_that_names_nothing_is_a_json_404(api, path):
    response = api.get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    [error] = response.json()["errors"]
    assert error["path"] == "" and path in error["message"]


def test_a_missing_record_says_what_was_not_found(api):
    response = api.get("/api/v1/contacts/nobody/")

    assert response.status_code == 404
    [error] = response.json()["errors"]
    assert "/api/v1/contacts/nobody/" in error["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_a_400_saying_what_to_send(api, workspace, content_type):
    response = api.generic("POST", "/api/v1/contacts/bulk/", '{"contacts": [{"external_id": "u1"}]}', content_type)

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert "application/json" in error["message"] and content_type in error["message"]
    assert not Contact.objects.filter(workspace=workspace).exists()


def test_pages_for_people_still_get_the_slash_by_redirect(client, db):
    response = client.get("/segments")

    assert response.status_code == 301 and response["Location"] == "/segments/"
