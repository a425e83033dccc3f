"""Who may call the API: Bearer keys of one workspace, hashed at rest, revocable, rate limited."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.test import APIClient

from contacts.auth import ApiKeyRateThrottle
from contacts.models import ApiKey, Workspace, hash_api_key

ANY_ENDPOINT = "/api/v1/contacts/"


def test_create_api_key_creates_the_workspace_and_prints_the_key_last(db):
    out = StringIO()
    call_command("create_api_key", "--workspace", "Brand New Shop", stdout=out)
    raw_key = out.getvalue().strip().splitlines()[-1]
    workspace = Workspace.objects.get(name="Brand New Shop")
    stored = ApiKey.objects.get(workspace=workspace)
    assert stored.key_hash == hash_api_key(raw_key)
    assert raw_key not in {stored.key_hash, stored.prefix}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert client.get(ANY_ENDPOINT).status_code == 200


def test_create_api_key_reuses_an_existing_workspace(workspace):
    call_command("create_api_key", "--workspace", workspace.name, stdout=StringIO())
    call_command("create_api_key", "--workspace", workspace.name, stdout=StringIO())
    assert Workspace.objects.filter(name=workspace.name).count() == 1
    assert workspace.api_keys.count() == 2


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ", "Bearer ds_not-a-real-key", "Token whatever", "Basic !!!notbase64"],
)
def test_missing_or_wrong_keys_answer_401_in_the_error_shape(db, authorization):
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    response = client.get(ANY_ENDPOINT)
    assert response.status_code == 401
    assert response.json()["errors"][0]["path"] == ""


def test_a_revoked_key_answers_401(api, workspace):
    assert api.get(ANY_ENDPOINT).status_code == 200
    call_revoke = ApiKey.objects.get(workspace=workspace)
    from contacts.api_keys import revoke_api_key

    revoke_api_key(api_key=call_revoke)
    assert api.get(ANY_ENDPOINT).status_code == 401


def test_using_a_key_records_when_it_was_last_used(api, workspace):
    api.get(ANY_ENDPOINT)
    assert ApiKey.objects.get(workspace=workspace).last_used_at is not None


def test_over_the_rate_limit_answers_429_with_retry_after(api, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    statuses = [api.get(ANY_ENDPOINT).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = api.get(ANY_ENDPOINT)
    assert int(limited["Retry-After"]) > 0
    assert "errors" in limited.json()


def test_the_rate_limit_is_per_key(api, other_api, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    for _ in range(3):
        api.get(ANY_ENDPOINT)
    assert api.get(ANY_ENDPOINT).status_code == 429
    assert other_api.get(ANY_ENDPOINT).status_code == 200


def test_the_admin_shows_a_new_key_once_and_stores_only_its_hash(client, workspace):
    operator = User.objects.create_superuser("operator", "op@example.com", "pw-123-secret")
    client.force_login(operator)
    response = client.post(
        "/admin/contacts/apikey/add/", {"workspace": workspace.pk, "name": "ESP"}, follow=True
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"] if "The new API key is" in str(m)]
    assert len(shown) == 1
    raw_key = next(word for word in shown[0].split() if word.startswith("ds_"))
    stored = ApiKey.objects.get(workspace=workspace, name="ESP")
    assert stored.key_hash == hash_api_key(raw_key)
    again = client.get(f"/admin/contacts/apikey/{stored.pk}/change/")
    assert raw_key not in again.content.decode()


def test_the_admin_revokes_keys(client, api, workspace):
    operator = User.objects.create_superuser("operator", "op@example.com", "pw-123-secret")
    client.force_login(operator)
    key = ApiKey.objects.get(workspace=workspace)
    client.post(
        "/admin/contacts/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk]}, follow=True
    )
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api.get(ANY_ENDPOINT).status_code == 401
