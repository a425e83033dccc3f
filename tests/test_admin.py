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


# --- history edited by hand: the figures follow, as after ingest -------------------------------------------------


def _post_form(operator_client, url: str, data: dict):
    response = operator_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return response


def test_an_order_added_moved_and_deleted_by_hand_keeps_both_contacts_figures(operator_client, workspace):
    from contacts.models import ContactStats, Order

    ann, bob = make_contact(workspace, external_id="ann"), make_contact(workspace, external_id="bob")
    form = {
        "workspace": workspace.pk, "contact": ann.pk, "external_id": "o-1", "ordered_at_0": "2024-05-01",
        "ordered_at_1": "10:00:00", "source": "", "currency": "EUR", "total": "120.00",
        "items-TOTAL_FORMS": "0", "items-INITIAL_FORMS": "0",
    }  # fmt: skip
    _post_form(operator_client, "/admin/contacts/order/add/", form)
    assert ContactStats.objects.get(contact=ann).orders_count == 1
    assert str(ContactStats.objects.get(contact=ann).total_spent) == "120.00"

    order = Order.objects.get(external_id="o-1")
    _post_form(operator_client, f"/admin/contacts/order/{order.pk}/change/", {**form, "contact": bob.pk})
    assert (ContactStats.objects.get(contact=ann).orders_count, ContactStats.objects.get(contact=bob).orders_count) == (
        0,
        1,
    )

    _post_form(operator_client, f"/admin/contacts/order/{order.pk}/delete/", {"post": "yes"})
    assert ContactStats.objects.get(contact=bob).orders_count == 0


def test_an_event_deleted_by_hand_takes_the_last_activity_with_it(operator_client, workspace):
    from contacts.models import ContactStats

    ann = make_contact(workspace, external_id="ann")
    opened = make_event(ann, "email_open")
    assert ContactStats.objects.get(contact=ann).last_email_open_at is not None

    _post_form(operator_client, f"/admin/contacts/event/{opened.pk}/delete/", {"post": "yes"})
    stats = ContactStats.objects.get(contact=ann)
    assert (stats.last_email_open_at, stats.last_seen_at) == (None, None)


def test_a_contact_added_by_hand_gets_its_figures_row(operator_client, workspace):
    from contacts.models import Contact, ContactStats

    form = {
        "workspace": workspace.pk, "external_id": "hand-made", "created_at_0": "2024-05-01", "created_at_1": "10:00",
        "attributes": "{}", "contact_tags-TOTAL_FORMS": "0", "contact_tags-INITIAL_FORMS": "0",
        "stats-TOTAL_FORMS": "0", "stats-INITIAL_FORMS": "0",
    }  # fmt: skip
    _post_form(operator_client, "/admin/contacts/contact/add/", form)
    contact = Contact.objects.get(external_id="hand-made")
    assert ContactStats.objects.get(contact=contact).orders_count == 0


def test_computed_figures_cannot_be_edited_by_hand(operator_client, some_data):
    from contacts.models import ContactStats

    stats = ContactStats.objects.get(contact=some_data)
    assert operator_client.get("/admin/contacts/contactstats/add/").status_code == 403
    url = f"/admin/contacts/contactstats/{stats.pk}/change/"
    assert operator_client.get(url).status_code == 200  # shown, read only
    assert operator_client.post(url, {"orders_count": 99}).status_code == 403
    assert ContactStats.objects.get(contact=some_data).orders_count == 1


def test_an_order_or_event_dated_in_the_future_is_refused_by_hand_too(operator_client, workspace):
    from contacts.models import Order

    ann = make_contact(workspace, external_id="ann")
    form = {
        "workspace": workspace.pk, "contact": ann.pk, "external_id": "o-9", "ordered_at_0": "2999-01-01",
        "ordered_at_1": "10:00:00", "source": "", "currency": "EUR", "total": "1.00",
        "items-TOTAL_FORMS": "0", "items-INITIAL_FORMS": "0",
    }  # fmt: skip
    response = operator_client.post("/admin/contacts/order/add/", form)
    assert response.status_code == 200 and "may not lie in the future" in response.content.decode()
    assert not Order.objects.exists()
