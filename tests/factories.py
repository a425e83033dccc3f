"""Small helpers that create rows for tests, with sensible defaults."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from contacts.models import Contact, ContactStats, Event, Order, OrderItem, Product, Tag, Workspace
from contacts.stats import refresh_contact_stats

_sequence = itertools.count(1)


def make_contact(workspace: Workspace, **fields) -> Contact:
    n = next(_sequence)
    fields.setdefault("external_id", f"c-{n}")
    tags = fields.pop("tags", [])
    contact = Contact.objects.create(workspace=workspace, **fields)
    ContactStats.objects.get_or_create(contact=contact, defaults={"workspace": workspace})
    for name in tags:
        tag, _ = Tag.objects.get_or_create(workspace=workspace, name=name)
        contact.tags.add(tag, through_defaults={"workspace": workspace})
    return contact


def make_product(workspace: Workspace, **fields) -> Product:
    n = next(_sequence)
    fields.setdefault("sku", f"SKU-{n}")
    return Product.objects.create(workspace=workspace, **fields)


def make_order(
    contact: Contact,
    *,
    items: list[tuple[Product, int, str | Decimal]] = (),
    ordered_at: datetime | None = None,
    total: Decimal | str | None = None,
    **fields,
) -> Order:
    n = next(_sequence)
    fields.setdefault("external_id", f"o-{n}")
    fields.setdefault("currency", contact.workspace.currency)
    if total is None:
        total = sum((Decimal(str(price)) * quantity for _, quantity, price in items), Decimal("0"))
    order = Order.objects.create(
        workspace=contact.workspace,
        contact=contact,
        ordered_at=ordered_at or timezone.now(),
        total=Decimal(str(total)),
        **fields,
    )
    for product, quantity, price in items:
        OrderItem.objects.create(order=order, product=product, quantity=quantity, unit_price=Decimal(str(price)))
    # As ingest does: the figures follow the history (segment conditions on orders read them).
    refresh_contact_stats(workspace_id=contact.workspace_id, contact_ids=[contact.pk], kinds=("orders",))
    return order


def make_event(contact: Contact, type: str, *, occurred_at: datetime | None = None, **fields) -> Event:
    event = Event.objects.create(
        workspace=contact.workspace, contact=contact, type=type, occurred_at=occurred_at or timezone.now(), **fields
    )
    refresh_contact_stats(workspace_id=contact.workspace_id, contact_ids=[contact.pk], kinds=("events",))
    return event
