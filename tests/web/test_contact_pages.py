"""The contacts list and the contact page: details, figures, timeline, segments and the explanation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from contacts.stats import recompute_workspace_stats
from segments_app.membership import recompute_membership
from segments_app.models import Segment
from tests.factories import make_contact, make_event, make_order, make_product
from tests.web.conftest import htmx


def test_contacts_list_searches_and_links_to_each_contact(editor, workspace):
    ada = make_contact(workspace, email="ada@example.com", first_name="Ada")
    make_contact(workspace, email="bob@example.com")
    page = editor.get("/contacts/", {"q": "ada"}, **htmx("contact-table")).content.decode()
    assert f'href="/contacts/{ada.pk}/"' in page and "bob@" not in page
    assert "No contact matches" in editor.get("/contacts/", {"q": "zed"}).content.decode()


def test_an_empty_workspace_points_to_the_import(editor):
    page = editor.get("/contacts/").content.decode()
    assert "No contacts yet" in page and 'href="/contacts/import/"' in page


def test_contact_page_shows_details_figures_segments_and_a_paginated_timeline(editor, workspace, monkeypatch):
    now = timezone.now()
    ada = make_contact(workspace, email="ada@example.com", first_name="Ada", country="PL", attributes={"plan": "pro"},
                       tags=["vip"])
    mug = make_product(workspace, sku="SKU-1", name="Mug", producer="Acme")
    make_order(ada, items=[(mug, 2, Decimal("9.50"))], ordered_at=now - timedelta(days=3), external_id="ord-1")
    for hours in range(1, 4):
        make_event(ada, "email_open", occurred_at=now - timedelta(hours=hours), campaign=f"spring-{hours}")
    recompute_workspace_stats(workspace_id=workspace.pk)
    vips = Segment.objects.create(workspace=workspace, name="VIPs", definition={
        "match": "all", "conditions": [{"type": "tag", "op": "has_any", "value": ["vip"]}]})
    recompute_membership(segment_id=vips.pk, trigger="manual")

    page = editor.get(f"/contacts/{ada.pk}/").content.decode()

    assert "ada@example.com" in page and "plan" in page and "pro" in page and ">vip<" in page
    assert "Total spent" in page and "19.00" in page  # a computed figure
    assert f'href="/segments/{vips.pk}/">VIPs</a>' in page and "VIPs (member)" in page
    # Newest first: the three opens, then the order with its items.
    assert page.index("spring-1") < page.index("spring-3") < page.index("Order ord-1") < page.index("2 × Mug")

    monkeypatch.setattr("contacts.web_views.TIMELINE_PER_PAGE", 2)
    first = editor.get(f"/contacts/{ada.pk}/", **htmx("timeline")).content.decode()
    second = editor.get(f"/contacts/{ada.pk}/", {"page": 2}, **htmx("timeline")).content.decode()
    assert first.lstrip().startswith('<div id="timeline">')
    assert "spring-1" in first and "spring-2" in first and "Page 1 of 2" in first
    assert "spring-3" in second and "ord-1" in second


def test_the_explanation_says_condition_by_condition_why(editor, workspace):
    ada = make_contact(workspace, email="ada@example.com", country="PL", tags=["vip"])
    definition = {"match": "all", "conditions": [
        {"type": "attribute", "field": "country", "op": "eq", "value": "PL"},
        {"match": "any", "conditions": [
            {"type": "tag", "op": "has_any", "value": ["gold"]},
            {"type": "attribute", "field": "email", "op": "ends_with", "value": "@example.com"}]}]}
    segment = Segment.objects.create(workspace=workspace, name="Polish VIPs", definition=definition)

    page = editor.get(f"/contacts/{ada.pk}/explain/", {"segment": segment.pk}, **htmx("explanation")).content.decode()

    assert "In “Polish VIPs”" in page
    assert page.count('class="holds"') == 3 and page.count('class="fails"') == 1  # PL, group, email; not gold
    assert "yes" in page and "no" in page
    other = make_contact(workspace, country="DE")
    page = editor.get(f"/contacts/{other.pk}/explain/", {"segment": segment.pk}).content.decode()
    assert "Not in “Polish VIPs”" in page


def test_explaining_without_a_segment_or_with_a_foreign_one_asks_for_a_choice(editor, workspace, other_workspace):
    ada = make_contact(workspace)
    foreign = Segment.objects.create(workspace=other_workspace, name="Theirs", definition={"match": "all",
                                                                                           "conditions": []})
    for params in ({}, {"segment": foreign.pk}, {"segment": "x"}):
        page = editor.get(f"/contacts/{ada.pk}/explain/", params).content.decode()
        assert "Choose a segment" in page and "Theirs" not in page
