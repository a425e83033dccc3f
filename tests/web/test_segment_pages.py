"""The segments list, the builder's views (structural edits, live preview, save) and the segment page."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from segments_app.membership import recompute_membership
from segments_app.models import Segment, SegmentMember, SegmentSnapshot
from tests.factories import make_contact, make_order, make_product
from tests.web.conftest import htmx

ALL_CONTACTS = {"match": "all", "conditions": []}


def tag_vip():
    return {"match": "all", "conditions": [{"type": "tag", "op": "has_any", "value": ["vip"]}]}


def computed(segment: Segment) -> Segment:
    recompute_membership(segment_id=segment.pk, trigger="manual")
    segment.refresh_from_db()
    return segment


# ------------------------------------------------------------------------------------------ list


def test_list_shows_name_summary_size_trend_time_and_status(editor, workspace):
    for n in range(3):
        make_contact(workspace, tags=["vip"] if n else [])
    vips = computed(Segment.objects.create(workspace=workspace, name="VIPs", definition=tag_vip()))
    make_contact(workspace, tags=["vip"])
    computed(vips)  # a second snapshot: the trend line needs two points
    Segment.objects.create(workspace=workspace, name="Broken", definition=ALL_CONTACTS, status="failed",
                           last_error="statement timeout after 600 s")
    Segment.objects.create(workspace=workspace, name="Busy", definition=ALL_CONTACTS, status="computing")

    page = editor.get("/").content.decode()

    assert "VIPs" in page and "who are tagged vip" in page.lower()
    assert ">3<" in page  # the size at the last computation
    assert '<svg class="sparkline trend-up"' in page and 'aria-label="Size went from 2 to 3' in page
    assert "status-fresh" in page and "status-computing" in page
    assert "status-failed" in page and "statement timeout after 600 s" in page
    assert 'hx-trigger="every 3s"' in page  # a computing segment keeps the table polling


def test_list_search_and_sort(editor, workspace):
    for name, size in [("Alpha", 5), ("Beta buyers", 50), ("Gamma", None)]:
        Segment.objects.create(workspace=workspace, name=name, definition=ALL_CONTACTS, size=size)

    def names(**params) -> list[str]:
        """The segment names the table shows, in the order it shows them."""
        page = editor.get("/", params, **htmx("segment-table")).content.decode()
        return sorted((name for name in ("Alpha", "Beta buyers", "Gamma") if name in page), key=page.index)

    assert names(sort="-size") == ["Beta buyers", "Alpha", "Gamma"]
    assert names(sort="-name") == ["Gamma", "Beta buyers", "Alpha"]
    assert names(q="buyers") == ["Beta buyers"]
    assert names(q="nothing like it") == []
    fragment = editor.get("/", {"q": "alp"}, **htmx("segment-table")).content.decode()
    assert fragment.lstrip().startswith('<div id="segment-table"') and "<html" not in fragment


def test_list_reads_the_trend_lines_in_one_query_whatever_the_number_of_segments(
    editor, workspace, django_assert_max_num_queries
):
    for n in range(12):
        segment = Segment.objects.create(workspace=workspace, name=f"S{n}", definition=ALL_CONTACTS)
        SegmentSnapshot.objects.bulk_create([
            SegmentSnapshot(segment=segment, size=s, entered=s, exited=0, duration_ms=1, trigger="manual",
                            computed_at=timezone.now() - timedelta(minutes=60 - s)) for s in range(40)
        ])
    editor.get("/")  # warm the per-process catalog cache
    with django_assert_max_num_queries(12):
        page = editor.get("/").content.decode()
    assert page.count('<svg class="sparkline') == 12


def test_an_empty_workspace_says_what_to_do(editor, viewer):
    assert "Build your first segment" in editor.get("/").content.decode()
    assert "ask an editor" in viewer.get("/").content.decode()


# ------------------------------------------------------------------------------------------ builder


def test_builder_starts_blank_from_a_template_or_from_a_segment(editor, workspace):
    blank = editor.get("/segments/new/builder/").content.decode()
    assert "No conditions yet, so every contact matches" in blank
    gallery = editor.get("/segments/new/").content.decode()
    assert "Start from blank" in gallery and "Cart abandoners" in gallery
    from_template = editor.get("/segments/new/builder/", {"template": "cart_abandoners_48h"})
    assert from_template.status_code == 200
    assert 'value="cart_open_since" selected' in from_template.content.decode()
    assert editor.get("/segments/new/builder/", {"template": "no-such"}).status_code == 404
    segment = Segment.objects.create(workspace=workspace, name="VIPs", definition=tag_vip(), refresh_minutes=15)
    edit = editor.get(f"/segments/{segment.pk}/edit/").content.decode()
    assert 'name="conditions[0].value[0]" value="vip"' in edit and 'value="15" selected' in edit
    assert f'name="segment_id" value="{segment.pk}"' in edit


def test_a_structural_edit_returns_the_builder_with_errors_in_place_and_asks_for_a_new_count(editor, workspace):
    response = editor.post("/segments/builder/action/", {"match": "all", "action": "add||attribute:country"},
                           **htmx("builder"))
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="builder"')
    assert 'name="conditions[0].field"' in page and 'value="country" selected' in page
    # The new condition has no value yet: the validator's error is shown on it.
    error_slot = page[page.index('id="err-conditions-0"'):]
    assert "eq needs a value" in error_slot[: error_slot.index("</div>")]
    assert response["HX-Trigger-After-Settle"] == "refresh-preview"  # the count follows in its own request


def test_the_preview_counts_what_the_form_says_and_places_errors_on_their_conditions(editor, workspace):
    make_contact(workspace, country="PL", tags=["vip"])
    make_contact(workspace, country="PL")
    make_contact(workspace, country="DE", tags=["vip"])
    form = {
        "match": "all",
        "conditions[0].type": "attribute", "conditions[0].field": "country", "conditions[0].op": "eq",
        "conditions[0].value": "PL",
        "conditions[1].match": "any",
        "conditions[1].conditions[0].type": "tag", "conditions[1].conditions[0].op": "has_any",
        "conditions[1].conditions[0].value[0]": "vip",
    }
    page = editor.post("/segments/builder/preview/", form, **htmx("preview")).content.decode()
    assert 'data-count="1"' in page
    assert "who are tagged vip" in page.lower()
    # Every condition's error slot is refreshed (emptied here), so fixed errors disappear.
    for slot in ("err-root", "err-conditions-0", "err-conditions-1", "err-conditions-1-conditions-0"):
        assert f'id="{slot}" hx-swap-oob="innerHTML"' in page

    form["conditions[1].conditions[0].op"] = "has_everything"
    form["conditions[0].op"] = "gte"
    page = editor.post("/segments/builder/preview/", form, **htmx("preview")).content.decode()
    assert 'data-count=""' in page and "Fix the 2 problems" in page
    slot = page[page.index('id="err-conditions-1-conditions-0"'):]
    assert "unknown tag operator" in slot[: slot.index("</div>")]
    slot = page[page.index('id="err-conditions-0"'):]
    assert "Operator: operator &#x27;gte&#x27; is not allowed" in slot[: slot.index("</div>")]


def test_a_custom_attribute_that_just_appeared_is_offered_and_understood(editor, workspace):
    editor.get("/segments/new/builder/")  # the catalog is now cached, without "shoe_size"
    make_contact(workspace, attributes={"shoe_size": 42})
    make_contact(workspace, attributes={"shoe_size": 38})
    page = editor.post("/segments/builder/preview/", {
        "match": "all", "conditions[0].type": "attribute", "conditions[0].field": "attributes.shoe_size",
        "conditions[0].op": "gte", "conditions[0].value": "40",
    }, **htmx("preview")).content.decode()
    assert 'data-count="1"' in page
    assert 'value="add||attribute:attributes.shoe_size"' in editor.get("/segments/new/builder/").content.decode()


def test_the_preview_asks_for_examples_once_the_count_is_shown(editor, workspace):
    ada = make_contact(workspace, email="ada@example.com", country="PL")
    make_contact(workspace, email="bob@example.com", country="DE")
    form = {"match": "all", "conditions[0].type": "attribute", "conditions[0].field": "country",
            "conditions[0].op": "eq", "conditions[0].value": "PL"}
    page = editor.post("/segments/builder/preview/", form, **htmx("preview")).content.decode()
    assert 'hx-post="/segments/builder/sample/" hx-trigger="load"' in page and "ada@" not in page
    sample = editor.post("/segments/builder/sample/", form, **htmx("preview-sample")).content.decode()
    assert f'href="/contacts/{ada.pk}/">ada@example.com</a>' in sample and "bob@" not in sample
    form["conditions[0].value"] = "FR"
    page = editor.post("/segments/builder/preview/", form, **htmx("preview")).content.decode()
    assert "Nobody matches yet" in page and "/segments/builder/sample/" not in page
    form["conditions[0].op"] = "nope"
    assert "<li>" not in editor.post("/segments/builder/sample/", form).content.decode()


def test_an_action_that_does_not_fit_the_form_is_a_clear_400(editor):
    response = editor.post("/segments/builder/action/", {"match": "all", "action": "remove|conditions[3]"})
    assert response.status_code == 400
    assert "could not be made" in response.content.decode()


def test_save_creates_the_segment_through_the_service_and_computes_it(
    editor, workspace, django_capture_on_commit_callbacks
):
    make_contact(workspace, tags=["vip"])
    make_contact(workspace)
    with django_capture_on_commit_callbacks(execute=True):
        response = editor.post("/segments/new/builder/", {
            "name": "VIPs", "description": "tagged", "refresh_minutes": "15", "match": "all",
            "conditions[0].type": "tag", "conditions[0].op": "has_any", "conditions[0].value[0]": "vip",
        })
    segment = Segment.objects.get(workspace=workspace, name="VIPs")
    assert response.status_code == 302 and response["Location"] == f"/segments/{segment.pk}/"
    assert segment.definition == tag_vip() and segment.refresh_minutes == 15 and segment.created_by == editor.user
    # No broker in tests: the recompute scheduled by the service ran at commit.
    assert segment.members.count() == 1


def test_save_refuses_bad_input_with_errors_in_place_and_saves_nothing(editor, workspace):
    Segment.objects.create(workspace=workspace, name="Taken", definition=ALL_CONTACTS)
    response = editor.post("/segments/new/builder/", {
        "name": "taken", "refresh_minutes": "60", "match": "all",
        "conditions[0].type": "attribute", "conditions[0].field": "total_spent", "conditions[0].op": "gte",
        "conditions[0].value": "",
    })
    page = response.content.decode()
    assert response.status_code == 400
    assert "already exists" in page
    assert "gte needs a value" in page[page.index('id="err-conditions-0"'):]
    assert Segment.objects.filter(workspace=workspace).count() == 1


def test_edit_changes_the_definition_and_keeps_the_rest(editor, workspace):
    segment = Segment.objects.create(workspace=workspace, name="VIPs", definition=tag_vip(), refresh_minutes=15)
    editor.post(f"/segments/{segment.pk}/edit/", {
        "name": "VIPs and friends", "refresh_minutes": "15", "segment_id": segment.pk, "match": "any",
        "conditions[0].type": "tag", "conditions[0].op": "has_any", "conditions[0].value[0]": "vip",
        "conditions[0].value[1]": "friend",
    })
    segment.refresh_from_db()
    assert segment.name == "VIPs and friends"
    assert segment.definition == {"match": "any", "conditions": [
        {"type": "tag", "op": "has_any", "value": ["vip", "friend"]}]}


# ------------------------------------------------------------------------------------------ segment page


@pytest.fixture
def buyers(workspace):
    """Five buyers of Acme (spending 100..500) and a non-buyer; the segment: spent over 250 on Acme."""
    acme = make_product(workspace, producer="Acme", name="Anvil")
    people = []
    for n in range(1, 6):
        contact = make_contact(workspace, email=f"buyer{n}@example.com", country="PL" if n % 2 else "DE",
                               email_status="subscribed")
        make_order(contact, items=[(acme, 1, Decimal(100 * n))])
        people.append(contact)
    make_contact(workspace, email="never@example.com")
    definition = {"match": "all", "conditions": [
        {"type": "orders", "filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}],
         "measure": "sum", "op": "gt", "value": 250}]}
    segment = computed(Segment.objects.create(workspace=workspace, name="Acme fans", definition=definition))
    return segment, people


def test_segment_page_shows_summary_status_history_members_and_overlap(editor, workspace, buyers):
    segment, people = buyers
    poles = computed(Segment.objects.create(workspace=workspace, name="Poles", definition={
        "match": "all", "conditions": [{"type": "attribute", "field": "country", "op": "eq", "value": "PL"}]}))
    page = editor.get(f"/segments/{segment.pk}/").content.decode()
    assert "Contacts who bought Acme products for over 250" in page
    assert 'data-size="3"' in page and "status-fresh" in page
    chart = json.loads(page[page.index('id="history-data"'):].split(">", 1)[1].split("</script>")[0])
    assert chart["size"] == [3] and chart["entered"] == [3] and chart["exited"] == [0]
    for n in (3, 4, 5):
        assert f"buyer{n}@example.com" in page
    assert "buyer2@example.com" not in page
    # Overlap: buyers 3 and 5 are Poles; 2 of this segment's 3, 2 of the Poles' 3.
    overlap = page[page.index('id="overlap"'):]
    assert "Poles" in overlap and ">2<" in overlap and "67%" in overlap
    assert poles.size == 3


def test_members_filters_pagination_and_fragment(editor, workspace, buyers, monkeypatch):
    segment, people = buyers
    page = editor.get(f"/segments/{segment.pk}/", {"country": "pl"}, **htmx("members")).content.decode()
    assert page.lstrip().startswith('<div id="members">')
    assert "buyer3@" in page and "buyer5@" in page and "buyer4@" not in page
    monkeypatch.setattr("segments_app.web.views.MEMBERS_PER_PAGE", 2)
    first = editor.get(f"/segments/{segment.pk}/", **htmx("members")).content.decode()
    second = editor.get(f"/segments/{segment.pk}/", {"page": 2}, **htmx("members")).content.decode()
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    shown = [f"buyer{n}@" for n in (3, 4, 5)]
    assert sorted(e for e in shown if e in first + second) == shown
    assert editor.get(f"/segments/{segment.pk}/", {"entered_after": "not a date"}).status_code == 200


def test_csv_export_streams_the_filtered_members(editor, workspace, buyers):
    segment, people = buyers
    people[2].first_name = "=HYPERLINK(1)"
    people[2].save()
    response = editor.get(f"/segments/{segment.pk}/members.csv", {"country": "PL"})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["email"] for row in rows} == {"buyer3@example.com", "buyer5@example.com"}
    assert {row["first_name"] for row in rows} == {"", "'=HYPERLINK(1)"}  # no formula runs in a spreadsheet


def test_refresh_now_marks_computing_polls_and_then_shows_the_new_snapshot_with_the_page_parts(
    editor, workspace, buyers, django_capture_on_commit_callbacks
):
    segment, people = buyers
    last = segment.snapshots.get().pk
    acme = people[0].orders.first().items.first().product
    make_order(people[0], items=[(acme, 3, Decimal("100"))])  # buyer1 now spent 400
    with django_capture_on_commit_callbacks(execute=True):  # the enqueued recompute runs after the answer
        page = editor.post(f"/segments/{segment.pk}/refresh/", **htmx("status")).content.decode()
    assert f'hx-get="/segments/{segment.pk}/status/?after={last}" hx-trigger="every 1s"' in page
    assert "Computing the members" in page

    page = editor.get(f"/segments/{segment.pk}/status/", {"after": last}, **htmx("status")).content.decode()
    assert "Done: 4 members, 1 entered and 0 left" in page and 'hx-trigger="every 1s"' not in page
    assert 'id="history" aria-labelledby="history-title" hx-swap-oob="true"' in page
    assert 'id="members" hx-swap-oob="outerHTML"' in page and "buyer1@example.com" in page
    assert segment.snapshots.count() == 2 and SegmentMember.objects.filter(segment=segment).count() == 4


def test_while_computing_the_status_polls_and_then_reports(editor, workspace, buyers):
    segment, _ = buyers
    last = segment.snapshots.get().pk
    Segment.objects.filter(pk=segment.pk).update(status="computing", computing_since=timezone.now())
    page = editor.get(f"/segments/{segment.pk}/status/", {"after": last}, **htmx("status")).content.decode()
    assert 'hx-trigger="every 1s"' in page and "Computing the members" in page
    recompute_membership(segment_id=segment.pk, trigger="schedule")
    page = editor.get(f"/segments/{segment.pk}/status/", {"after": last}, **htmx("status")).content.decode()
    assert 'hx-trigger="every 1s"' not in page and "Done: 3 members" in page


def test_a_failed_recompute_shows_its_error(editor, workspace):
    segment = Segment.objects.create(workspace=workspace, name="Broken", definition=ALL_CONTACTS, status="failed",
                                     last_error="DefinitionError: segment 99 does not exist", error_count=3)
    page = editor.get(f"/segments/{segment.pk}/").content.decode()
    assert "The last computation failed (3 times in a row)" in page and "segment 99 does not exist" in page


def test_delete_refuses_a_segment_others_use(editor, workspace):
    used = Segment.objects.create(workspace=workspace, name="Base", definition=ALL_CONTACTS)
    Segment.objects.create(workspace=workspace, name="Derived", definition={
        "match": "all", "conditions": [{"type": "segment", "op": "in", "segment": used.pk}]})
    response = editor.post(f"/segments/{used.pk}/delete/", follow=True)
    assert "cannot be deleted while it is used by: Derived" in response.content.decode()
    assert Segment.objects.filter(pk=used.pk).exists()
    lonely = Segment.objects.create(workspace=workspace, name="Lonely", definition=ALL_CONTACTS)
    response = editor.post(f"/segments/{lonely.pk}/delete/")
    assert response.status_code == 302 and not Segment.objects.filter(pk=lonely.pk).exists()


# ------------------------------------------------------------------------------------------ suggestions


def test_suggestions_for_tags_products_and_countries(editor, workspace):
    make_contact(workspace, tags=["vip", "newsletter"])
    make_contact(workspace, tags=["vip"])
    make_product(workspace, sku="SKU-1", name="Mug", producer="Acme")
    make_product(workspace, sku="SKU-2", name="Plate", producer="Bolt")
    tags = editor.get("/segments/suggest/", {"kind": "tag"}).content.decode()
    assert tags.index('value="vip"') < tags.index('value="newsletter"')  # the most used first
    assert 'label="2 contacts"' in tags
    assert editor.get("/segments/suggest/", {"kind": "product.sku", "q": "mug"}).content.decode().strip() == (
        '<option value="SKU-1" label="Mug"></option>')

    def suggested(kind: str, query: str) -> str:
        return editor.get("/segments/suggest/", {"kind": kind, "q": query}).content.decode()

    assert 'value="Acme"' in suggested("product.producer", "ac")
    assert 'value="PL" label="Poland"' in suggested("country", "pol")
    assert editor.get("/segments/suggest/", {"kind": "passwords"}).status_code == 404


def test_a_segment_saved_with_nulls_for_optional_parts_opens_in_the_builder(editor, workspace):
    definition = {"match": "all", "conditions": [
        {"type": "orders", "measure": "count", "op": "gte", "value": 1, "window": None, "filters": None},
        {"type": "attribute", "field": "country", "op": "is_not_set", "value": None},
        {"type": "event", "event": "page_view", "measure": "count", "op": "gte", "value": 1,
         "filters": [{"field": "url", "op": "is_set", "value": None}]},
    ]}  # fmt: skip
    segment = Segment.objects.create(workspace=workspace, name="From the API", definition=definition)

    detail = editor.get(f"/segments/{segment.pk}/")
    edit = editor.get(f"/segments/{segment.pk}/edit/")

    assert (detail.status_code, edit.status_code) == (200, 200)
