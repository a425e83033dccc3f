"""Operators can open, search and filter every model in the admin."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User

from tests.factories import make_contact, make_event, make_order, make_product

PROJECT_APPS = {"contacts", "segments_app", "campaigns"}


@pytest.fixture
def operator_client(client, db):
    client.force_login(User.objects.create_superuser("operator", "op@example.com", "pw-123-secret"))
    return client


@pytest.fixture
def some_data(workspace):
    contact = make_contact(workspace, email="ann@example.com", country="PL", tags=["vip"])
    product = make_product(workspace, producer="Acme", category="Shoes")
    make_order(contact, items=[(product, 2, "10.00")], source="email")
    make_event(contact, "email_open", device="mobile")
    return contact


def test_every_project_model_is_registered():
    models = [m for m in apps.get_models() if m._meta.app_label in PROJECT_APPS]
    missing = [m.__name__ for m in models if m not in admin.site._registry]
    assert missing == []


@pytest.mark.parametrize(
    "model",
    [m for m in admin.site._registry if m._meta.app_label in PROJECT_APPS],
    ids=lambda m: m.__name__,
)
def test_changelist_opens_and_searches(operator_client, some_data, model):
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    assert operator_client.get(url).status_code == 200
    model_admin = admin.site._registry[model]
    if model_admin.search_fields:
        assert operator_client.get(url, {"q": "ann"}).status_code == 200


def test_contact_page_shows_its_computed_figures_read_only(operator_client, some_data):
    response = operator_client.get(f"/admin/contacts/contact/{some_data.pk}/change/")
    assert response.status_code == 200
    assert "Orders count" in response.content.decode()
