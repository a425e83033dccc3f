"""Bad input to every ingest endpoint: a 400 or 413 with located errors, never a 500, and nothing half-written.

Each case of the issue (malformed JSON, wrong types, unknown fields, oversized strings, unknown contacts,
dates in the wrong format, a body over the limit) is sent to each bulk endpoint and to the Segment API.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from contacts.models import Contact, ContactStats, ContactTag, Event, EventType, Order, OrderItem, Product, Tag
from tests.factories import make_contact

TABLES = (Contact, ContactStats, ContactTag, Tag, Product, Order, OrderItem, Event, EventType)

GOOD = {
    "contacts": {"external_id": "new", "email": "new@example.com"},
    "products": {"sku": "NEW", "name": "New"},
    "orders": {
        "external_id": "o-new",
        "contact": "known",
        "ordered_at": "2024-05-01T10:00:00Z",
        "items": [{"sku": "MUG", "quantity": 1, "unit_price": 5}],
    },
    "events": {"contact": "known", "type": "page_view", "occurred_at": "2024-05-01T10:00:00Z"},
}
KINDS = list(GOOD)


def url(kind: str) -> str:
    return f"/api/v1/{kind}/bulk/"


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in TABLES}


@pytest.fixture
def known(workspace):
    """One contact that events and orders may name; the baseline for "nothing written"."""
    return make_contact(workspace, external_id="known")


def assert_refused(response, status: int, baseline: dict[str, int]) -> list[dict]:
    assert response.status_code == status, response.content
    errors = response.json()["errors"]
    assert errors and all({"path", "message"} <= set(error) for error in errors)
    assert row_counts() == baseline, "a refused request wrote something"
    return errors


def post_raw(api, path: str, body: bytes | str, **extra):
    return api.generic("POST", path, body, content_type="application/json", **extra)


# --- whole-request problems: nothing stored ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "body",
    ['{"contacts": [', "{'single': 'quotes'}", '{"a": NaN}', "[" * 50_000, "\xff\xfe not utf-8", ""],
    ids=["truncated", "single-quotes", "nan", "absurdly-deep", "not-utf8", "empty"],
)
def test_malformed_json_is_a_400_that_stores_nothing(api, known, kind, body):
    baseline = row_counts()
    raw = body.encode("latin-1") if body.startswith("\xff") else body
    errors = assert_refused(post_raw(api, url(kind), raw), 400, baseline)
    assert errors[0]["path"] in ("", kind)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ([], "", "the body must be a JSON object"),
        ({}, "{kind}", "this field is required"),
        ({"{kind}": {"0": "x"}}, "{kind}", "must be a list"),
        ({"{kind}": [], "extra": 1}, "extra", "unknown field"),
    ],
    ids=["list-body", "missing-key", "not-a-list", "unknown-top-level-key"],
)
def test_a_body_of_the_wrong_shape_is_a_400_that_stores_nothing(api, known, kind, body, path, message):
    baseline = row_counts()
    body = json.loads(json.dumps(body).replace("{kind}", kind))
    errors = assert_refused(api.post(url(kind), body, format="json"), 400, baseline)
    assert any(e["path"] == path.format(kind=kind) and e["message"].startswith(message) for e in errors), errors


@pytest.mark.parametrize("kind", KINDS)
def test_more_than_1000_records_is_a_400_that_stores_nothing(api, known, kind):
    baseline = row_counts()
    errors = assert_refused(api.post(url(kind), {kind: [GOOD[kind]] * 1001}, format="json"), 400, baseline)
    assert errors == [{"path": kind, "message": "at most 1000 records per call (got 1001)"}]


@pytest.mark.parametrize("kind", KINDS)
def test_a_body_over_the_size_limit_is_a_413_that_stores_nothing(api, known, kind, settings):
    settings.API_MAX_BODY_BYTES = 2_000
    baseline = row_counts()
    body = json.dumps({kind: [GOOD[kind]] * 100})
    assert len(body) > 2_000
    assert_refused(post_raw(api, url(kind), body), 413, baseline)


@pytest.mark.parametrize("kind", KINDS)
def test_a_gzip_body_that_inflates_over_the_limit_is_a_413(api, known, kind, settings):
    settings.API_MAX_BODY_BYTES = 2_000
    baseline = row_counts()
    body = gzip.compress(json.dumps({kind: [GOOD[kind]] * 200}).encode())
    assert len(body) < 2_000
    assert_refused(post_raw(api, url(kind), body, HTTP_CONTENT_ENCODING="gzip"), 413, baseline)


@pytest.mark.parametrize("kind", KINDS)
def test_a_body_that_is_not_gzip_though_it_says_so_is_a_400(api, known, kind):
    baseline = row_counts()
    assert_refused(post_raw(api, url(kind), b'{"x": 1}', HTTP_CONTENT_ENCODING="gzip"), 400, baseline)


# --- record problems: located, and the record is not stored ------------------------------------------------------


def with_fields(kind: str, **changes) -> dict:
    record = {**GOOD[kind], **changes}
    return {name: value for name, value in record.items() if value is not ...}


LONG = "x" * 2_001
# Orders and events may be dated at most 5 minutes ahead of the server's clock (a local time sent as UTC).
LATER_TODAY = (datetime.now(UTC) + timedelta(hours=2, minutes=3)).isoformat()
RECORD_CASES = [
    # wrong types
    ("contacts", with_fields("contacts", external_id=123), "contacts[0].external_id", "must be a string"),
    ("contacts", with_fields("contacts", tags="vip"), "contacts[0].tags", "must be a list of tag names"),
    ("contacts", with_fields("contacts", attributes=["a"]), "contacts[0].attributes", "must be an object"),
    ("contacts", with_fields("contacts", email_status="maybe"), "contacts[0].email_status", None),
    ("contacts", with_fields("contacts", country="Poland"), "contacts[0].country", None),
    ("products", with_fields("products", price="cheap"), "products[0].price", "must be a number"),
    ("products", with_fields("products", price=True), "products[0].price", "must be a number"),
    ("orders", with_fields("orders", items={"sku": "MUG"}), "orders[0].items", "must be a list of items"),
    (
        "orders",
        with_fields("orders", items=[{"sku": "MUG", "quantity": "2", "unit_price": 5}]),
        "orders[0].items[0].quantity",
        "must be a whole number",
    ),
    ("orders", with_fields("orders", total=-1), "orders[0].total", "must not be negative"),
    ("orders", with_fields("orders", currency="EURO"), "orders[0].currency", None),
    ("events", with_fields("events", properties="x"), "events[0].properties", "must be an object"),
    ("events", with_fields("events", type=5), "events[0].type", "must be a string"),
    ("events", with_fields("events", device="fridge"), "events[0].device", None),
    ("events", with_fields("events", contact=None), "events[0].contact", "may not be null"),
    # unknown fields
    ("contacts", with_fields("contacts", nickname="Bo"), "contacts[0].nickname", "unknown field"),
    ("products", with_fields("products", colour="red"), "products[0].colour", "unknown field"),
    (
        "orders",
        with_fields("orders", items=[{"sku": "MUG", "unit_price": 5, "colour": "red"}]),
        "orders[0].items[0].colour",
        "unknown field",
    ),
    ("events", with_fields("events", user="known"), "events[0].user", "unknown field"),
    # oversized strings: refused, never truncated
    ("contacts", with_fields("contacts", first_name="x" * 151), "contacts[0].first_name", None),
    ("contacts", with_fields("contacts", tags=["x" * 101]), "contacts[0].tags[0]", None),
    ("products", with_fields("products", sku="x" * 101), "products[0].sku", None),
    ("orders", with_fields("orders", external_id="x" * 256), "orders[0].external_id", None),
    ("events", with_fields("events", url=LONG), "events[0].url", "must be at most 2000 characters (got 2001)"),
    # text the database cannot store
    ("contacts", with_fields("contacts", city="Kra\x00ków"), "contacts[0].city", "must not contain NUL characters"),
    ("events", with_fields("events", properties={"a": {"b": "\x00"}}), "events[0].properties.a.b", None),
    # unknown contacts (orders create them bare, see test_ingest_orders)
    ("events", with_fields("events", contact="stranger"), "events[0].contact", "no contact with this external_id"),
    # dates in the wrong format
    ("contacts", with_fields("contacts", created_at="01/02/2024"), "contacts[0].created_at", None),
    ("contacts", with_fields("contacts", birth_date="17.05.1990"), "contacts[0].birth_date", None),
    ("orders", with_fields("orders", ordered_at="yesterday"), "orders[0].ordered_at", None),
    ("orders", with_fields("orders", ordered_at=1714557600), "orders[0].ordered_at", None),
    ("events", with_fields("events", occurred_at="2024-13-01"), "events[0].occurred_at", None),
    # times that have not happened yet
    ("orders", with_fields("orders", ordered_at=LATER_TODAY), "orders[0].ordered_at", None),
    ("events", with_fields("events", occurred_at=LATER_TODAY), "events[0].occurred_at", None),
    # required fields
    ("orders", with_fields("orders", ordered_at=...), "orders[0].ordered_at", "this field is required"),
    ("events", with_fields("events", type=...), "events[0].type", "this field is required"),
]


@pytest.mark.parametrize(("kind", "record", "path", "message"), RECORD_CASES, ids=[c[2] for c in RECORD_CASES])
def test_a_bad_record_is_located_and_not_stored(api, known, kind, record, path, message):
    baseline = row_counts()
    response = api.post(url(kind), {kind: [record]}, format="json")
    errors = assert_refused(response, 400, baseline)
    assert [error["path"] for error in errors] == [path]
    assert errors[0]["index"] == 0
    if message is not None:
        assert errors[0]["message"] == message


@pytest.mark.parametrize("kind", KINDS)
def test_a_record_that_is_not_an_object_is_located_at_its_index(api, known, kind):
    response = api.post(url(kind), {kind: [GOOD[kind], "oops"]}, format="json")
    assert response.status_code == 200
    assert response.json()["errors"] == [{"index": 1, "path": f"{kind}[1]", "message": "must be an object"}]
    assert response.json()["created"] == 1


def test_json_nested_too_deep_inside_a_record_is_located(api, known):
    deep: dict = {}
    cursor = deep
    for _ in range(40):
        cursor["a"] = {}
        cursor = cursor["a"]
    response = api.post(url("events"), {"events": [with_fields("events", properties=deep)]}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"].startswith("events[0].properties.a.a")


def test_a_lone_surrogate_is_refused_rather_than_breaking_the_database(api, known):
    body = '{"contacts": [{"external_id": "x", "city": "\\ud800"}]}'
    response = post_raw(api, url("contacts"), body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "contacts[0].city"


# --- Segment API -----------------------------------------------------------------------------------------------

SEGMENT = "/v1/batch"


def segment_post(api, body, **extra):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return post_raw(api, SEGMENT, raw, **extra)


def track(**changes) -> dict:
    message = {
        "type": "track",
        "userId": "known",
        "event": "Product Viewed",
        "messageId": "m-1",
        "timestamp": "2024-05-01T10:00:00Z",
    }
    message.update(changes)
    return {name: value for name, value in message.items() if value is not ...}


@pytest.mark.parametrize(
    "body",
    ['{"batch": [', "not json", '{"batch": [{"type": "track", "userId": Infinity}]}', "[" * 50_000],
    ids=["truncated", "text", "infinity", "absurdly-deep"],
)
def test_segment_malformed_json_is_a_400_that_stores_nothing(api, known, body):
    baseline = row_counts()
    assert_refused(segment_post(api, body), 400, baseline)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([track()], ""),
        ({"messages": [track()]}, "batch"),
        ({"batch": track()}, "batch"),
        ({"batch": [track()], "context": "web"}, "context"),
        ({"batch": [track()] * 1001}, "batch"),
    ],
    ids=["list-body", "no-batch", "batch-not-a-list", "context-not-an-object", "too-many-messages"],
)
def test_segment_body_of_the_wrong_shape_is_a_400_that_stores_nothing(api, known, body, path):
    baseline = row_counts()
    errors = assert_refused(segment_post(api, body), 400, baseline)
    assert errors[0]["path"] == path


SEGMENT_CASES = [
    # wrong types
    (track(type="launch"), "batch[0].type"),
    (track(properties=["a"]), "batch[0].properties"),
    ({"type": "identify", "userId": "known", "traits": "vip"}, "batch[0].traits"),
    ({"type": "identify", "userId": "known", "traits": {"email": 5}}, "batch[0].traits.email"),
    (
        {"type": "identify", "userId": "known", "traits": {"address": {"country": "Atlantis"}}},
        "batch[0].traits.address.country",
    ),
    (track(event=7), "batch[0].event"),
    (
        track(event="Order Completed", properties={"order_id": "o-1", "products": [{"sku": "A", "price": "free"}]}),
        "batch[0].properties.products[0].price",
    ),
    (track(event="Order Completed", properties={"products": []}), "batch[0].properties.order_id"),
    # oversized strings
    (track(userId="u" * 256), "batch[0].userId"),
    (track(event="E" * 101), "batch[0].event"),
    ({"type": "identify", "userId": "known", "traits": {"firstName": "x" * 151}}, "batch[0].traits.firstName"),
    (track(properties={"url": "x" * 2001}), "batch[0].properties.url"),
    # dates in the wrong format
    (track(timestamp="yesterday"), "batch[0].timestamp"),
    (track(timestamp=LATER_TODAY), "batch[0].timestamp"),
    ({"type": "identify", "userId": "known", "traits": {"birthday": "May 17"}}, "batch[0].traits.birthday"),
    # neither a user nor an anonymous id
    (track(userId=...), "batch[0].userId"),
]


@pytest.mark.parametrize(("message", "path"), SEGMENT_CASES, ids=[c[1] + str(i) for i, c in enumerate(SEGMENT_CASES)])
def test_segment_bad_message_is_located_and_not_stored(api, known, message, path):
    baseline = row_counts()
    errors = assert_refused(segment_post(api, {"batch": [message]}), 400, baseline)
    assert [error["path"] for error in errors] == [path]


def test_segment_bad_message_is_refused_while_the_good_ones_are_stored(api, known):
    response = segment_post(api, {"batch": [track(timestamp="soon"), track(messageId="m-2")]})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert [error["path"] for error in body["errors"]] == ["batch[0].timestamp"]
    assert Event.objects.count() == 1


def test_segment_unknown_fields_are_ignored_as_segment_does(api, known):
    """Senders add fields of their own (RudderStack: rudderId, channel, ...): they must not refuse a message."""
    response = segment_post(api, {"batch": [track(rudderId="r-1", channel="web", extra={"a": 1})], "metadata": {}})
    assert response.json() == {"success": True}
    assert Event.objects.count() == 1


def test_segment_unknown_users_are_created_bare_because_track_may_come_before_identify(api, workspace):
    assert segment_post(api, {"batch": [track(userId="first-visit")]}).json() == {"success": True}
    assert Contact.objects.get(workspace=workspace, external_id="first-visit").email is None
    assert ContactStats.objects.get(contact__external_id="first-visit").last_seen_at is not None


def test_segment_body_over_the_size_limit_is_a_413(api, known, settings):
    settings.API_MAX_BODY_BYTES = 2_000
    baseline = row_counts()
    assert_refused(segment_post(api, {"batch": [track(messageId=f"m-{i}") for i in range(30)]}), 413, baseline)


def test_segment_gzip_body_that_inflates_over_the_limit_is_a_413(api, known, settings):
    settings.API_MAX_BODY_BYTES = 2_000
    baseline = row_counts()
    body = gzip.compress(json.dumps({"batch": [track(messageId=f"m-{i}") for i in range(100)]}).encode())
    assert len(body) < 2_000
    assert_refused(segment_post(api, body, HTTP_CONTENT_ENCODING="gzip"), 413, baseline)


@pytest.mark.parametrize("path", ["/v1/identify", "/v1/track", "/v1/page"])
def test_segment_single_message_calls_refuse_a_body_that_is_not_an_object(api, known, path):
    baseline = row_counts()
    assert_refused(post_raw(api, path, "[1, 2]"), 400, baseline)


@pytest.mark.parametrize(("ahead", "accepted"), [(timedelta(minutes=4), True), (timedelta(minutes=6), False)])
def test_an_order_may_be_dated_a_few_minutes_ahead_for_clock_differences_not_more(api, known, ahead, accepted):
    at = (datetime.now(UTC) + ahead).isoformat()
    before = datetime.now(UTC)
    response = api.post(url("orders"), {"orders": [with_fields("orders", ordered_at=at)]}, format="json")
    if accepted:
        assert response.json()["created"] == 1
        # Stored at the moment it was received: nothing stored lies after "now".
        assert before <= Order.objects.get().ordered_at <= datetime.now(UTC)
        return
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "index": 0,
            "path": "orders[0].ordered_at",
            "message": "lies 6 minutes in the future; orders and events may be dated at most 5 minutes ahead of "
            "the server's clock (a time without an offset is read as UTC)",
        }
    ]
    assert not Order.objects.exists()


def test_a_local_time_sent_without_its_offset_is_refused_with_how_far_ahead_it_lies(api, known):
    response = api.post(url("events"), {"events": [with_fields("events", occurred_at=LATER_TODAY)]}, format="json")
    assert response.json()["errors"][0]["message"].startswith("lies 2 h 03 min in the future;")


def test_a_repeat_of_an_order_dated_ahead_changes_nothing(api, known):
    record = with_fields("orders", ordered_at=(datetime.now(UTC) + timedelta(minutes=3)).isoformat())
    api.post(url("orders"), {"orders": [record]}, format="json")
    stored = Order.objects.get().ordered_at

    response = api.post(url("orders"), {"orders": [record]}, format="json")

    assert response.json() == {"created": 0, "updated": 1, "errors": []}
    assert Order.objects.get().ordered_at == stored


def test_an_event_dated_ahead_is_stored_at_receipt_and_a_repeat_is_stored_once(api, known):
    record = with_fields("events", occurred_at=(datetime.now(UTC) + timedelta(minutes=2)).isoformat())
    before = datetime.now(UTC)
    api.post(url("events"), {"events": [record]}, format="json")
    response = api.post(url("events"), {"events": [record]}, format="json")

    assert response.json() == {"created": 0, "updated": 1, "errors": []}
    assert before <= Event.objects.get().occurred_at <= datetime.now(UTC)
