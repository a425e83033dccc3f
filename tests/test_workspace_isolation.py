"""Each workspace sees only its own data: every API route with an object in its path answers 404 to a key of
another workspace, for every method, and changes nothing.

The routes are enumerated from the URL configuration, so a new route is walked without editing this file;
a route whose path parameter this file cannot fill fails loudly (add it to OBJECT_IDS).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import make_contact

API_PREFIXES = ("api/v1/", "v1/")
MUTATING = ("post", "put", "patch", "delete")


def walk(patterns, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry


def api_routes_with_objects() -> list[tuple[str, URLPattern]]:
    routes = []
    for route, pattern in walk(get_resolver().url_patterns):
        if route.startswith(API_PREFIXES) and pattern.pattern.converters:
            routes.append((route, pattern))
    return routes


def make_segment(workspace):
    from segments_app.models import Segment

    return Segment.objects.create(
        workspace=workspace,
        name="Everyone",
        definition={"match": "all", "conditions": []},
    ).pk


def make_campaign(workspace):
    from campaigns.models import Campaign

    return Campaign.objects.create(workspace=workspace, name="Spring sale").pk


def make_webhook(workspace):
    from segments_app.models import WebhookEndpoint

    return WebhookEndpoint.objects.create(workspace=workspace, url="https://example.com/hook", secret="s3cret").pk


def make_automation(workspace):
    from campaigns.models import Automation

    segment_id = make_segment(workspace)
    campaign_id = make_campaign(workspace)
    fields = {f.name for f in Automation._meta.get_fields()}
    kwargs = {"workspace": workspace, "segment_id": segment_id}
    if "campaign" in fields:
        kwargs["campaign_id"] = campaign_id
    if "name" in fields:
        kwargs["name"] = "Welcome"
    return Automation.objects.create(**kwargs).pk


# Path parameter name -> a function making an object of the given workspace and returning the path value.
OBJECT_IDS: dict[str, Callable] = {
    "external_id": lambda workspace: make_contact(workspace, email="owner@example.com").external_id,
    "segment_id": make_segment,
    "campaign_id": make_campaign,
    "endpoint_id": make_webhook,
    "automation_id": make_automation,
}


def allowed_methods(pattern: URLPattern) -> list[str]:
    view_class = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
    assert view_class is not None, f"{pattern} is not a class-based view"
    return [m for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m)]


ROUTES = api_routes_with_objects()


def test_there_are_routes_to_walk():
    names = {route for route, _ in ROUTES}
    assert any("contacts/" in r for r in names) and any("segments/" in r for r in names)


@pytest.mark.parametrize("route,pattern", ROUTES, ids=[route for route, _ in ROUTES])
def test_a_foreign_key_gets_404_on_every_method(route, pattern, workspace, api, other_api):
    values = {}
    for name in pattern.pattern.converters:
        assert name in OBJECT_IDS, f"{route}: teach this test to make a {name!r}"
        values[name] = OBJECT_IDS[name](workspace)
    # Fill the other named parameters (e.g. explain's external_id) with the owner's objects too.
    path = "/" + route
    for name, value in values.items():
        path = path.replace(f"<int:{name}>", str(value)).replace(f"<path:{name}>", str(value))
        path = path.replace(f"<str:{name}>", str(value)).replace(f"<{name}>", str(value))
    assert "<" not in path, path

    from contacts.models import Contact, Event, Order

    before = (Contact.objects.count(), Order.objects.count(), Event.objects.count())
    for method in allowed_methods(pattern):
        response = getattr(other_api, method)(path, {}, format="json")
        assert response.status_code == 404, f"{method.upper()} {path}: {response.status_code} {response.content!r}"
        assert "errors" in response.json()
        owner_response = getattr(api, method)  # the owner's key still sees it (sanity for GET)
        if method == "get":
            assert owner_response(path).status_code == 200, f"GET {path} by its owner"
    assert (Contact.objects.count(), Order.objects.count(), Event.objects.count()) == before
