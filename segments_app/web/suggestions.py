"""Values the builder suggests while a marketer types (tags, products, producers, countries, ...).

Each kind is one small query over the workspace, capped, so a suggestion list arrives while typing.
Kinds: the values of `segments_app.builder.SUGGESTIONS`, "tag", and "attribute:<key>" for custom
attributes.
"""

from __future__ import annotations

import pycountry
from django.db.models import Count, Q

from contacts.models import Contact, Event, Order, Product, Tag, Workspace
from segments_app.catalog import attribute_string_values, is_safe_key

LIMIT = 50
# Orders and events are the big tables: their values are suggested from the latest rows only (by id).
RECENT_ROWS = 5000

Suggestion = tuple[str, str]  # (value, label shown next to it; may be empty)

COUNTRIES: list[Suggestion] = sorted((country.alpha_2, country.name) for country in pycountry.countries)


def suggest(*, workspace: Workspace, kind: str, query: str = "") -> list[Suggestion] | None:
    """Up to LIMIT (value, label) pairs of `kind` containing `query` (any case); None for an unknown kind."""
    query = query.strip()[:100].replace("\x00", "")
    if kind.startswith("attribute:"):
        key = kind.split(":", 1)[1]
        if not is_safe_key(key):
            return None
        values = attribute_string_values(workspace.pk, [key]).get(key, [])
        return [(value, "") for value in values if query.lower() in value.lower()][:LIMIT]
    reader = _READERS.get(kind)
    return None if reader is None else reader(workspace, query)[:LIMIT]


def _distinct(queryset, column: str, query: str) -> list[Suggestion]:
    rows = queryset.exclude(**{f"{column}__isnull": True}).exclude(**{column: ""})
    if query:
        rows = rows.filter(**{f"{column}__icontains": query})
    return [(value, "") for value in rows.order_by(column).values_list(column, flat=True).distinct()[:LIMIT]]


def _recent_distinct(queryset, order: str, column: str, query: str) -> list[Suggestion]:
    values = {value for value in queryset.order_by(order).values_list(column, flat=True)[:RECENT_ROWS] if value}
    return sorted((value, "") for value in values if query.lower() in value.lower())


def _tags(workspace: Workspace, query: str) -> list[Suggestion]:
    tags = Tag.objects.filter(workspace=workspace)
    if query:
        tags = tags.filter(name__icontains=query)
    rows = tags.annotate(used_by=Count("contact_tags")).order_by("-used_by", "name")[:LIMIT]
    return [(tag.name, f"{tag.used_by} contacts") for tag in rows]


def _countries(workspace: Workspace, query: str) -> list[Suggestion]:
    lowered = query.lower()
    return [(code, name) for code, name in COUNTRIES if lowered in code.lower() or lowered in name.lower()]


def _skus(workspace: Workspace, query: str) -> list[Suggestion]:
    products = Product.objects.filter(workspace=workspace)
    if query:
        products = products.filter(Q(sku__icontains=query) | Q(name__icontains=query))
    return [(sku, name or "") for sku, name in products.order_by("sku").values_list("sku", "name")[:LIMIT]]


_READERS = {
    "tag": _tags,
    "country": _countries,
    "city": lambda ws, q: _distinct(Contact.objects.filter(workspace=ws), "city", q),
    "utm_campaign": lambda ws, q: _distinct(Contact.objects.filter(workspace=ws), "utm_campaign", q),
    "product.sku": _skus,
    "product.name": lambda ws, q: _distinct(Product.objects.filter(workspace=ws), "name", q),
    "product.producer": lambda ws, q: _distinct(Product.objects.filter(workspace=ws), "producer", q),
    "product.category": lambda ws, q: _distinct(Product.objects.filter(workspace=ws), "category", q),
    "order.source": lambda ws, q: _recent_distinct(Order.objects.filter(workspace=ws), "-pk", "source", q),
    "currency": lambda ws, q: _recent_distinct(Order.objects.filter(workspace=ws), "-pk", "currency", q),
    "event.campaign": lambda ws, q: _recent_distinct(
        Event.objects.filter(workspace=ws), "-pk", "campaign", q
    ),
}
