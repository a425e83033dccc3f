"""Put a generated world into the database (inside the caller's transaction)."""

from __future__ import annotations

import itertools

from contacts.models import (
    Contact,
    ContactStats,
    ContactTag,
    Event,
    EventType,
    Order,
    OrderItem,
    Product,
    Tag,
    Workspace,
)
from segments_app.models import Segment

from .strategies import GeneratedWorld, with_segment_ids

_names = itertools.count(1)


def load(world: GeneratedWorld) -> tuple[Workspace, dict[int, int]]:
    """Create the world's rows; returns the workspace and the saved segments' ids by 1-based position."""
    workspace = Workspace.objects.create(name=f"world {next(_names)}", attribute_types=world.declared)
    products = {
        id(p): Product.objects.create(
            workspace=workspace, sku=p.sku, name=p.name, producer=p.producer, category=p.category
        )
        for p in world.products
    }
    tags: dict[str, Tag] = {}
    order_number = itertools.count(1)
    for contact in world.contacts:
        row = Contact.objects.create(
            workspace=workspace, external_id=contact.key, attributes=contact.attributes, **contact.fields
        )
        ContactStats.objects.create(contact=row, workspace=workspace, **contact.stats)
        for name in contact.tags:
            if name not in tags:
                tags[name] = Tag.objects.create(workspace=workspace, name=name)
            ContactTag.objects.create(workspace=workspace, contact=row, tag=tags[name])
        for order in contact.orders:
            order_row = Order.objects.create(
                workspace=workspace,
                contact=row,
                external_id=f"o{next(order_number)}",
                ordered_at=order.ordered_at,
                source=order.source,
                currency=order.currency,
                total=order.total,
            )
            OrderItem.objects.bulk_create(
                OrderItem(
                    workspace=workspace,
                    order=order_row,
                    contact=row,
                    ordered_at=order_row.ordered_at,
                    product=products[id(item.product)],
                    quantity=item.quantity,
                    unit_price=item.unit_price,
                )
                for item in order.items
            )
        Event.objects.bulk_create(
            Event(
                workspace=workspace,
                contact=row,
                type=event.type,
                occurred_at=event.occurred_at,
                device=event.device,
                url=event.url,
                campaign=event.campaign,
                properties=event.properties,
            )
            for event in contact.events
        )
    EventType.objects.bulk_create(EventType(workspace=workspace, name=name) for name in world.custom_event_types)
    segment_ids: dict[int, int] = {}
    for position, definition in enumerate(world.segments, start=1):
        saved = Segment.objects.create(
            workspace=workspace, name=f"segment {position}", definition=with_segment_ids(definition, segment_ids)
        )
        segment_ids[position] = saved.pk
    return workspace, segment_ids
