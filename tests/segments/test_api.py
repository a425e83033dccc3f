"""The segments REST API: CRUD, preview, delete refused while in use, fields, templates, OpenAPI."""

from __future__ import annotations

import jsonschema
import pytest

from campaigns.models import Automation, Campaign, CampaignExclusion, CampaignTarget
from segments_app.models import Segment, SegmentSnapshot
from segments_app.webhooks import create_endpoint
from tests.factories import make_contact, make_order, make_product

from .support import ALL, attr

UP_SELL = {
    "match": "all",
    "conditions": [
        {
            "type": "orders",
            "filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}],
            "window": {"last": 6, "unit": "months"},
            "measure": "sum",
            "op": "gt",
            "value": 300,
        }
    ],
}
IN_POLAND = ALL(attr("country", "eq", "PL"))
SEGMENT_KEYS = {
    "id",
    "name",
    "description",
    "definition",
    "summary",
    "size",
    "computed_at",
    "refresh_minutes",
    "status",
    "last_error",
    "created_at",
    "updated_at",
}


def create(api, **body):
    body.setdefault("name", "Poland")
    body.setdefault("definition", IN_POLAND)
    return api.post("/api/v1/segments/", body, format="json")


def paths(response) -> list[str]:
    return [error["path"] for error in response.json()["errors"]]


# --- create and read ------------------------------------------------------------------------------------


def test_create_answers_the_segment_with_its_summary(api):
    response = create(api, name="Acme fans", description="for the up-sell", definition=UP_SELL)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == SEGMENT_KEYS
    assert body["name"] == "Acme fans"
    assert body["description"] == "for the up-sell"
    assert body["definition"] == UP_SELL
    assert body["summary"] == "Contacts who bought Acme products for over 300 EUR in the last 6 months"
    assert body["size"] is None and body["computed_at"] is None
    assert body["refresh_minutes"] == 60
    assert body["status"] == "new"
    assert api.get(f"/api/v1/segments/{body['id']}/").json() == body


def test_create_computes_the_membership_after_commit(api, workspace, django_capture_on_commit_callbacks):
    make_contact(workspace, external_id="warsaw", country="PL")
    make_contact(workspace, external_id="berlin", country="DE")

    with django_capture_on_commit_callbacks(execute=True):
        segment_id = create(api).json()["id"]

    body = api.get(f"/api/v1/segments/{segment_id}/").json()
    assert body["size"] == 1 and body["status"] == "fresh" and body["computed_at"] is not None
    snapshot = SegmentSnapshot.objects.get(segment_id=segment_id)
    assert snapshot.trigger == "definition_change"


def test_refresh_minutes_zero_means_on_demand_and_is_kept(api):
    assert create(api, refresh_minutes=0).json()["refresh_minutes"] == 0


def test_list_is_cursor_paginated_in_id_order(api):
    ids = [create(api, name=f"segment {n}").json()["id"] for n in range(3)]

    first = api.get("/api/v1/segments/?page_size=2").json()
    assert [s["id"] for s in first["results"]] == ids[:2]
    assert first["next_cursor"] is not None and first["next"].endswith(f"cursor={first['next_cursor']}&page_size=2")
    second = api.get(f"/api/v1/segments/?page_size=2&cursor={first['next_cursor']}").json()
    assert [s["id"] for s in second["results"]] == ids[2:]
    assert second["next"] is None and second["next_cursor"] is None


def test_list_refuses_a_bad_cursor(api):
    response = api.get("/api/v1/segments/?cursor=abc")
    assert response.status_code == 400 and paths(response) == ["cursor"]


def test_another_workspaces_segment_answers_404(api, other_api, other_workspace):
    make_contact(other_workspace, external_id="x")
    theirs = create(other_api).json()["id"]

    assert api.get(f"/api/v1/segments/{theirs}/").status_code == 404
    assert api.patch(f"/api/v1/segments/{theirs}/", {"name": "mine"}, format="json").status_code == 404
    assert api.delete(f"/api/v1/segments/{theirs}/").status_code == 404
    assert api.get(f"/api/v1/segments/{theirs}/explain/x/").status_code == 404
    assert api.get("/api/v1/segments/").json()["results"] == []
    assert Segment.objects.get(pk=theirs).name == "Poland"


def test_without_a_key_the_api_answers_401(client):
    assert client.get("/api/v1/segments/").status_code == 401
    assert client.post("/api/v1/segments/preview/", {}, content_type="application/json").status_code == 401


# --- validation of the request ---------------------------------------------------------------------------


def test_unknown_keys_in_the_body_are_errors_and_nothing_is_saved(api):
    response = create(api, colour="red", size=12)

    assert response.status_code == 400
    assert sorted(paths(response)) == ["colour", "size"]
    assert not Segment.objects.exists()


@pytest.mark.parametrize(
    "body, path",
    [
        ({"name": None}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 12}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"description": 5}, "description"),
        ({"refresh_minutes": -1}, "refresh_minutes"),
        ({"refresh_minutes": 1.5}, "refresh_minutes"),
        ({"refresh_minutes": "60"}, "refresh_minutes"),
        ({"refresh_minutes": True}, "refresh_minutes"),
        ({"refresh_minutes": 43_201}, "refresh_minutes"),
        ({"definition": None}, "definition"),
        ({"definition": []}, "definition"),
        ({"definition": {"match": "all"}}, "conditions"),
    ],
)
def test_each_bad_field_is_located(api, body, path):
    response = create(api, **body)
    assert response.status_code == 400
    assert paths(response) == [path]
    assert not Segment.objects.exists()


def test_a_missing_name_and_definition_are_both_reported(api):
    response = api.post("/api/v1/segments/", {}, format="json")
    assert response.status_code == 400
    assert sorted(paths(response)) == ["definition", "name"]


def test_names_are_trimmed_and_may_repeat(api):
    """api.md sets no uniqueness rule on names (the wizard refuses a taken name, see tests/web)."""
    first = create(api, name="  VIP buyers ")
    assert first.json()["name"] == "VIP buyers"

    second = create(api, name="VIP buyers")

    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    renamed = api.patch(f"/api/v1/segments/{first.json()['id']}/", {"name": "vip BUYERS"}, format="json")
    assert (renamed.status_code, renamed.json()["name"]) == (200, "vip BUYERS")


def test_the_same_name_in_another_workspace_is_fine(api, other_api):
    assert create(api, name="VIP").status_code == 201
    assert create(other_api, name="VIP").status_code == 201


def test_definition_errors_are_located_from_the_definitions_root(api):
    definition = ALL(
        attr("country", "eq", "PL"), {"type": "orders", "measure": "sum", "op": "between", "value": [5, 1]}
    )

    response = create(api, definition=definition)

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "conditions[1].value", "message": "between needs [low, high] with low <= high"}
    ]


def test_all_problems_are_reported_at_once(api):
    definition = ALL(attr("country", "eq", 5), attr("nope", "eq", "x"))
    response = create(api, name="", refresh_minutes=-5, definition=definition)
    assert sorted(paths(response)) == ["conditions[0].value", "conditions[1].field", "name", "refresh_minutes"]


def test_the_body_must_be_an_object(api):
    response = api.post("/api/v1/segments/", [1, 2], format="json")
    assert response.status_code == 400 and paths(response) == [""]


# --- update ---------------------------------------------------------------------------------------------


def test_patch_changes_only_the_given_fields(api):
    segment = create(api, description="old").json()

    response = api.patch(f"/api/v1/segments/{segment['id']}/", {"description": "new"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "new"
    assert {k: body[k] for k in ("name", "definition", "refresh_minutes")} == {
        k: segment[k] for k in ("name", "definition", "refresh_minutes")
    }


def test_patch_validates_like_post_and_a_refused_patch_changes_nothing(api):
    segment = create(api).json()
    bad = {"name": "Renamed", "refresh_minutes": 5, "definition": ALL(attr("country", "gt", 3))}

    response = api.patch(f"/api/v1/segments/{segment['id']}/", bad, format="json")

    assert response.status_code == 400
    assert paths(response) == ["conditions[0].op"]
    stored = Segment.objects.get(pk=segment["id"])
    assert (stored.name, stored.refresh_minutes, stored.definition) == ("Poland", 60, IN_POLAND)


def test_patch_refuses_unknown_keys_and_read_only_fields(api):
    segment = create(api).json()
    response = api.patch(f"/api/v1/segments/{segment['id']}/", {"status": "fresh", "name": "x"}, format="json")
    assert response.status_code == 400 and paths(response) == ["status"]
    assert Segment.objects.get(pk=segment["id"]).name == "Poland"


def test_a_changed_definition_is_recomputed_a_rename_is_not(api, django_capture_on_commit_callbacks):
    segment = create(api).json()
    url = f"/api/v1/segments/{segment['id']}/"

    with django_capture_on_commit_callbacks() as renamed:
        api.patch(url, {"name": "Renamed"}, format="json")
    with django_capture_on_commit_callbacks() as same:
        api.patch(url, {"definition": IN_POLAND}, format="json")
    with django_capture_on_commit_callbacks() as changed:
        api.patch(url, {"definition": ALL(attr("country", "eq", "DE"))}, format="json")

    assert (len(renamed), len(same), len(changed)) == (0, 0, 1)


def test_a_definition_may_not_refer_to_its_own_segment(api):
    first = create(api, name="First").json()
    second = create(api, name="Second", definition=ALL({"type": "segment", "op": "in", "segment": first["id"]})).json()

    loop = ALL({"type": "segment", "op": "not_in", "segment": second["id"]})
    response = api.patch(f"/api/v1/segments/{first['id']}/", {"definition": loop}, format="json")

    assert response.status_code == 400 and paths(response) == ["conditions[0].segment"]
    assert "cycle" in response.json()["errors"][0]["message"]


# --- delete ---------------------------------------------------------------------------------------------


def test_an_unused_segment_is_deleted(api):
    segment = create(api).json()
    assert api.delete(f"/api/v1/segments/{segment['id']}/").status_code == 204
    assert not Segment.objects.filter(pk=segment["id"]).exists()


def test_delete_is_refused_while_other_segments_refer_to_it(api):
    base = create(api, name="Base").json()
    nested = ALL({"match": "any", "conditions": [{"type": "segment", "op": "in", "segment": base["id"]}]})
    user = create(api, name="User", definition=nested).json()

    response = api.delete(f"/api/v1/segments/{base['id']}/")

    assert response.status_code == 409
    body = response.json()
    assert body["errors"][0]["path"] == ""
    assert body["used_by"] == {"segments": [{"id": user["id"], "name": "User"}], "campaigns": []}
    assert Segment.objects.filter(pk=base["id"]).exists()


def test_delete_is_refused_while_campaigns_target_or_exclude_it(api, workspace):
    target = Segment.objects.get(pk=create(api, name="Target").json()["id"])
    excluded = Segment.objects.get(pk=create(api, name="Excluded").json()["id"])
    spring = Campaign.objects.create(workspace=workspace, name="Spring sale")
    CampaignTarget.objects.create(campaign=spring, segment=target)
    CampaignExclusion.objects.create(campaign=spring, segment=excluded)

    for segment in (target, excluded):
        response = api.delete(f"/api/v1/segments/{segment.pk}/")
        assert response.status_code == 409
        assert response.json()["used_by"] == {"segments": [], "campaigns": [{"id": spring.pk, "name": "Spring sale"}]}
    assert Segment.objects.filter(pk__in=[target.pk, excluded.pk]).count() == 2


def test_other_users_are_listed_under_their_own_kind(api, workspace):
    segment = Segment.objects.get(pk=create(api).json()["id"])
    automation = Automation.objects.create(workspace=workspace, name="Welcome", segment=segment)
    endpoint = create_endpoint(workspace=workspace, url="https://esp.example/hook", segments=[segment])

    used_by = api.delete(f"/api/v1/segments/{segment.pk}/").json()["used_by"]

    assert used_by["automations"] == [{"id": automation.pk, "name": "Welcome"}]
    assert used_by["webhook_endpoints"] == [{"id": endpoint.pk, "name": "https://esp.example/hook"}]


def test_its_own_membership_and_history_do_not_block_deletion(api, workspace, django_capture_on_commit_callbacks):
    make_contact(workspace, country="PL")
    with django_capture_on_commit_callbacks(execute=True):
        segment_id = create(api).json()["id"]
    assert SegmentSnapshot.objects.filter(segment_id=segment_id).exists()

    assert api.delete(f"/api/v1/segments/{segment_id}/").status_code == 204


# --- preview --------------------------------------------------------------------------------------------


def test_preview_counts_samples_ten_and_saves_nothing(api, workspace):
    for n in range(12):
        make_contact(workspace, external_id=f"pl-{n:02}", country="PL", email=f"p{n}@example.com", first_name="Ola")
    make_contact(workspace, external_id="de", country="DE")

    response = api.post("/api/v1/segments/preview/", {"definition": IN_POLAND}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 12
    assert [c["external_id"] for c in body["sample"]] == [f"pl-{n:02}" for n in range(10)]
    assert {"external_id", "email", "first_name", "last_name", "country"} <= set(body["sample"][0])
    assert body["sample"][0]["email"] == "p0@example.com"
    assert body["summary"] == 'Contacts whose country is "PL"'
    assert not Segment.objects.exists() and not SegmentSnapshot.objects.exists()


def test_preview_of_the_up_selling_example(api, workspace):
    acme = make_product(workspace, producer="Acme")
    buyer = make_contact(workspace, external_id="buyer")
    make_order(buyer, items=[(acme, 2, "206.25")])
    make_contact(workspace, external_id="other")

    body = api.post("/api/v1/segments/preview/", {"definition": UP_SELL}, format="json").json()

    assert body["count"] == 1 and [c["external_id"] for c in body["sample"]] == ["buyer"]


def test_preview_of_an_aggregate_counts_all_and_samples_the_first_ten_by_id(api, workspace):
    buyers = []
    for n in range(13):
        contact = make_contact(workspace, external_id=f"b-{n:02}")
        make_order(contact, total="50.00")
        make_order(contact, total="60.00")
        buyers.append(contact)
    one_order = make_contact(workspace, external_id="once")
    make_order(one_order, total="500.00")
    definition = {"match": "all", "conditions": [{"type": "orders", "measure": "count", "op": "gte", "value": 2}]}

    body = api.post("/api/v1/segments/preview/", {"definition": definition}, format="json").json()

    assert body["count"] == 13
    assert [c["external_id"] for c in body["sample"]] == [f"b-{n:02}" for n in range(10)]


def test_preview_of_an_aggregate_matching_nobody(api, workspace):
    make_contact(workspace, external_id="no-orders")
    definition = {"match": "all", "conditions": [{"type": "orders", "measure": "sum", "op": "gt", "value": 1}]}

    body = api.post("/api/v1/segments/preview/", {"definition": definition}, format="json").json()

    assert (body["count"], body["sample"]) == (0, [])


def test_preview_of_an_empty_definition_is_every_contact(api, workspace):
    make_contact(workspace)
    make_contact(workspace)
    body = api.post("/api/v1/segments/preview/", {"definition": ALL()}, format="json").json()
    assert body["count"] == 2 and body["summary"] == "All contacts"


def test_preview_refuses_unknown_keys_and_a_missing_definition(api):
    response = api.post("/api/v1/segments/preview/", {"definition": IN_POLAND, "limit": 5}, format="json")
    assert response.status_code == 400 and paths(response) == ["limit"]
    response = api.post("/api/v1/segments/preview/", {}, format="json")
    assert response.status_code == 400 and paths(response) == ["definition"]


def test_preview_of_an_edited_segment_may_refer_to_others_but_not_itself(api):
    base = create(api, name="Base").json()
    edited = create(api, name="Edited").json()

    refer_to_base = ALL({"type": "segment", "op": "in", "segment": base["id"]})
    ok = api.post("/api/v1/segments/preview/", {"definition": refer_to_base, "segment_id": edited["id"]}, format="json")
    assert ok.status_code == 200 and ok.json()["summary"] == 'Contacts who are in segment "Base"'

    refer_to_itself = ALL({"type": "segment", "op": "in", "segment": edited["id"]})
    body = {"definition": refer_to_itself, "segment_id": edited["id"]}
    refused = api.post("/api/v1/segments/preview/", body, format="json")
    assert refused.status_code == 400 and paths(refused) == ["conditions[0].segment"]


def test_preview_segment_id_must_be_one_of_the_workspaces_segments(api, other_api):
    theirs = create(other_api).json()["id"]
    for segment_id in (theirs, "7", True):
        body = {"definition": IN_POLAND, "segment_id": segment_id}
        response = api.post("/api/v1/segments/preview/", body, format="json")
        assert response.status_code == 400 and paths(response) == ["segment_id"]


def test_preview_may_not_use_another_workspaces_segment(api, other_api):
    theirs = create(other_api).json()["id"]
    definition = ALL({"type": "segment", "op": "in", "segment": theirs})
    response = api.post("/api/v1/segments/preview/", {"definition": definition}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "conditions[0].segment", "message": f"segment {theirs} does not exist"}
    ]


# --- fields, templates, schema --------------------------------------------------------------------------


def test_fields_serve_the_workspaces_catalog(api, workspace):
    make_contact(workspace, attributes={"shoe_size": 42, "plan": "pro"})

    catalog = api.get("/api/v1/segments/fields/").json()

    fields = {f["key"]: f for f in catalog["fields"]}
    assert {"email", "country", "total_spent", "lifecycle_stage", "attributes.shoe_size", "attributes.plan"} <= set(
        fields
    )
    for field in fields.values():
        assert {"key", "label", "category", "type", "operators", "choices", "widget"} <= set(field)
    assert fields["total_spent"]["category"] == "Computed" and fields["total_spent"]["type"] == "number"
    assert fields["attributes.shoe_size"]["type"] == "number"
    assert "subscribed" in fields["email_status"]["choices"]
    assert {f["key"] for f in catalog["order_filters"]} >= {"product.producer", "source", "ordered_at"}
    assert "email_open" in catalog["event_types"]


def test_templates_are_served(api):
    templates = api.get("/api/v1/segments/templates/").json()
    assert len(templates) >= 20
    assert all(set(t) == {"key", "name", "description", "category", "definition"} for t in templates)


def test_the_openapi_description_documents_every_endpoint_with_the_definition_schema(api):
    document = api.get("/api/v1/schema/?format=json").json()

    for path in (
        "/api/v1/segments/",
        "/api/v1/segments/{segment_id}/",
        "/api/v1/segments/preview/",
        "/api/v1/segments/{segment_id}/explain/{external_id}/",
        "/api/v1/segments/templates/",
        "/api/v1/segments/fields/",
    ):
        assert path in document["paths"]
    schemas = document["components"]["schemas"]
    assert "SegmentDefinition" in schemas
    for request_body in ("SegmentInRequest", "SegmentPreviewInRequest", "PatchedSegmentPatchInRequest"):
        assert "SegmentDefinition" in str(schemas[request_body]["properties"]["definition"])

    # The component is a real JSON Schema of the format: the contract's example passes, a wrong operator fails.
    validator = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/SegmentDefinition", "components": {"schemas": schemas}}
    )
    assert list(validator.iter_errors(UP_SELL)) == []
    assert list(validator.iter_errors(ALL(attr("total_spent", "contains", "3"))))


def test_the_workspaces_definition_schema_lists_its_custom_attributes(api, workspace):
    make_contact(workspace, attributes={"plan": "pro"})
    schema = api.get("/api/v1/segments/definition-schema/").json()
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(ALL(attr("attributes.plan", "eq", "pro")))) == []
    assert list(validator.iter_errors(ALL(attr("attributes.unknown", "eq", "pro"))))


def test_nulls_for_optional_parts_work_through_preview_create_and_explain(api, workspace):
    buyer = make_contact(workspace, external_id="buyer")
    make_order(buyer, total="10")
    definition = {"match": "all", "conditions": [
        {"type": "orders", "measure": "count", "op": "gte", "value": 1, "window": None, "filters": None},
        {"type": "attribute", "field": "country", "op": "is_not_set", "value": None},
        {"type": "orders", "measure": "count", "op": "gte", "value": 1,
         "filters": [{"field": "source", "op": "is_not_set", "value": None}]},
    ]}  # fmt: skip

    preview = api.post("/api/v1/segments/preview/", {"definition": definition}, format="json")
    created = create(api, name="Buyers", definition=definition)
    explained = api.get(f"/api/v1/segments/{created.json()['id']}/explain/buyer/")

    assert (preview.status_code, preview.json()["count"]) == (200, 1)
    assert created.status_code == 201 and created.json()["definition"] == definition
    assert explained.status_code == 200 and explained.json()["member"] is True
