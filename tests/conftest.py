from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from contacts.models import ApiKey, Workspace


@pytest.fixture(autouse=True)
def empty_cache():
    """Rate-limit counters and cached catalogs live in the cache; a rolled-back test can leave ids to be reused."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def workspace(db) -> Workspace:
    return Workspace.objects.create(name="Acme Shop")


@pytest.fixture
def other_workspace(db) -> Workspace:
    return Workspace.objects.create(name="Other Shop")


def make_api_client(workspace: Workspace) -> APIClient:
    api_key = ApiKey(workspace=workspace, name="test")
    raw = api_key.set_new_key()
    api_key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.raw_key = raw
    return client


@pytest.fixture
def api(workspace) -> APIClient:
    """An API client authenticated with a key of `workspace`."""
    return make_api_client(workspace)


@pytest.fixture
def other_api(other_workspace) -> APIClient:
    return make_api_client(other_workspace)
