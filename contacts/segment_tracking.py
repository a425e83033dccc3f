"""The Segment tracking spec mapped to this project's records (pure functions: no database, no HTTP).

Segment's and RudderStack's libraries send `identify`, `track`, `page`, `screen`, `alias` and `group`
messages. They become our ingest records like this:

- `identify` -> a contact record: `userId` is the `external_id`; known traits fill contact fields
  (`email`, `firstName`/`first_name`, `lastName`/`last_name`, `name` split in two when no first/last
  name is given, `phone`, `address.country`/`country` as an alpha-2 code or a country name,
  `address.city`/`city`, `gender`, `birthday`, `createdAt`, `email_status`, `traffic_source`,
  `utm_campaign`, `tags`); every other trait is a custom attribute (other `address` parts as
  `address_<part>`; a null trait removes the attribute).
- `track` with the e-commerce event `Order Completed` -> an order (`order_id`, `total` or else
  `revenue`, `currency`, `source`, `products[]` as items with `sku` or `product_id`, `price`, `quantity`)
  plus a product record per product (`name`, `brand` as producer, `category`) so the catalogue learns them.
- every other `track` -> an event. Event names are matched after normalising them to snake_case
  (lower case, every run of characters other than letters and digits becomes one "_"), so
  "Email Opened", "email opened" and "email_opened" are the same. Spec events map to the project's
  own types (see EVENT_TYPES); any other name becomes a custom type named by that same rule:
  "Video Played" -> "video_played".
- `page` and `screen` -> a `page_view` event (the screen's or page's `name` is kept in `properties.name`).
- `alias` and `group` are acknowledged and not stored: there is no identity merge and no account model.
- A message without `userId` (anonymous, only `anonymousId`) is acknowledged and not stored: contacts
  are the shop's known customers, and an anonymous visitor cannot be targeted until it is identified.

`messageId` makes a repeat a no-op: a message whose `messageId` the workspace has already processed (in an
earlier call or earlier in the same batch) is acknowledged and not applied again, whatever its type, so a
retried older identify or Order Completed cannot overwrite newer data. A track's `messageId` is also the
event's `event_id`. `context.device.type` or else `context.userAgent` gives `device`;
`properties.url` or else `context.page.url` gives `url`; `properties.campaign_id`, `campaign`,
`campaign_name` or else `context.campaign.name` gives `campaign`. The time is `timestamp`, else
`originalTimestamp`, else the time of receipt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pycountry

MESSAGE_TYPES = frozenset({"identify", "track", "page", "screen", "alias", "group"})
IGNORED_TYPES = frozenset({"alias", "group"})
ORDER_COMPLETED = "order_completed"

# Normalised Segment spec event name -> the project's event type.
EVENT_TYPES: dict[str, str] = {
    "product_added": "cart_add",
    "product_viewed": "product_view",
    "checkout_started": "checkout_start",
    "email_opened": "email_open",
    "email_link_clicked": "email_click",
    "email_bounced": "email_bounce",
    "unsubscribed": "unsubscribe",
    "email_delivered": "email_sent",
    "email_sent": "email_sent",
    "email_marked_as_spam": "email_complaint",
    "application_opened": "app_open",
    "page_viewed": "page_view",
}

# Trait name -> contact field. Anything not listed (and not `address`) becomes a custom attribute.
TRAIT_FIELDS: dict[str, str] = {
    "email": "email",
    "firstName": "first_name",
    "first_name": "first_name",
    "lastName": "last_name",
    "last_name": "last_name",
    "phone": "phone",
    "gender": "gender",
    "birthday": "birth_date",
    "birth_date": "birth_date",
    "createdAt": "created_at",
    "created_at": "created_at",
    "country": "country",
    "city": "city",
    "email_status": "email_status",
    "emailStatus": "email_status",
    "traffic_source": "traffic_source",
    "trafficSource": "traffic_source",
    "utm_campaign": "utm_campaign",
    "tags": "tags",
}
SKIPPED_TRAITS = frozenset({"id", "userId", "user_id", "anonymousId"})

_NOT_WORD = re.compile(r"[\W_]+")


def event_type_name(name: str) -> str:
    """The snake_case form used to match and name event types: "Email Link Clicked" -> "email_link_clicked"."""
    return _NOT_WORD.sub("_", name.strip().lower()).strip("_")


@dataclass
class MappedRecord:
    """One ingest record made from a message, with where each of its fields came from in that message."""

    kind: str  # "contacts" | "products" | "orders" | "events"
    values: dict
    sources: dict[str, str]  # record sub-path ("email", "items[0].sku") -> message sub-path ("traits.email")


@dataclass
class MappedMessage:
    path: str  # the message's path in the body: "batch[3]", or "" for a single-message call
    records: list[MappedRecord] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    message_id: str | None = None  # `messageId`: a repeat of an id the workspace has processed is a no-op

    def locate(self, sub_path: str) -> str:
        if not sub_path:
            return self.path
        return f"{self.path}.{sub_path}" if self.path else sub_path


def _identifier(value: Any) -> str | None:
    """Segment ids may be strings or numbers; blank means absent."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


def _timestamp(message: dict, received_at: datetime) -> tuple[Any, str]:
    for key in ("timestamp", "originalTimestamp"):
        if message.get(key) not in (None, ""):
            return message[key], key
    return received_at.isoformat(), "timestamp"


def _country(value: Any) -> Any:
    """Alpha-2 codes pass through; a country name or alpha-3 code is looked up; anything else is left to fail."""
    if isinstance(value, str) and len(value.strip()) > 2:
        try:
            return pycountry.countries.lookup(value.strip()).alpha_2
        except LookupError:
            return value
    return value


def device_from_context(context: dict) -> tuple[str | None, str]:
    """`context.device.type`, else a guess from `context.userAgent`; returns (device, source path)."""
    device = context.get("device")
    kind = device.get("type") if isinstance(device, dict) else None
    if isinstance(kind, str) and kind.strip():
        kind = kind.strip().lower()
        if kind in {"ios", "android", "mobile", "phone", "smartphone"}:
            return "mobile", "context.device.type"
        if kind in {"tablet", "ipad"}:
            return "tablet", "context.device.type"
        if kind in {"desktop", "computer", "pc", "mac", "windows", "linux", "macos"}:
            return "desktop", "context.device.type"
        return "other", "context.device.type"
    agent = context.get("userAgent")
    if isinstance(agent, str) and agent.strip():
        if "iPad" in agent or "Tablet" in agent or ("Android" in agent and "Mobile" not in agent):
            return "tablet", "context.userAgent"
        if "Mobi" in agent or "iPhone" in agent or "Android" in agent:
            return "mobile", "context.userAgent"
        if any(marker in agent for marker in ("Windows", "Macintosh", "X11", "Linux", "CrOS")):
            return "desktop", "context.userAgent"
        return "other", "context.userAgent"
    return None, ""


def _campaign(properties: dict, context: dict) -> tuple[Any, str]:
    for key in ("campaign_id", "campaign", "campaign_name"):
        value = properties.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value), f"properties.{key}"
        if isinstance(value, str) and value.strip():
            return value, f"properties.{key}"
    campaign = context.get("campaign")
    if isinstance(campaign, dict) and campaign.get("name") not in (None, ""):
        return campaign["name"], "context.campaign.name"
    return None, ""


def _object(message: dict, key: str, mapped: MappedMessage) -> dict | None:
    value = message.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        mapped.errors.append({"path": mapped.locate(key), "message": "must be an object"})
        return None
    return value


def map_message(
    message: Any, *, path: str, received_at: datetime, forced_type: str | None = None, batch_context: dict | None = None
) -> MappedMessage | None:
    """Map one Segment message to ingest records; None when it is acknowledged but not stored.

    >>> map_message({"type": "track", "userId": "u1", "event": "Email Opened", "messageId": "m-1",
    ...              "timestamp": "2024-05-01T10:00:00Z", "properties": {"campaign_id": "spring"}},
    ...             path="batch[0]", received_at=now).records[0].values
    {'contact': 'u1', 'type': 'email_open', 'occurred_at': '2024-05-01T10:00:00Z', 'event_id': 'm-1',
     'properties': {'campaign_id': 'spring'}, 'campaign': 'spring'}
    """
    mapped = MappedMessage(path=path)
    if not isinstance(message, dict):
        mapped.errors.append({"path": mapped.locate(""), "message": "must be an object"})
        return mapped
    mapped.message_id = _identifier(message.get("messageId"))
    message_type = forced_type or message.get("type")
    if not isinstance(message_type, str) or message_type not in MESSAGE_TYPES:
        allowed = ", ".join(sorted(MESSAGE_TYPES))
        error = "this field is required" if message_type is None else f"must be one of: {allowed}"
        mapped.errors.append({"path": mapped.locate("type"), "message": error})
        return mapped
    context = _object(message, "context", mapped)
    if context is None:
        return mapped
    if batch_context:
        context = {**batch_context, **context}
    if message_type in IGNORED_TYPES:
        return None
    user_id = _identifier(message.get("userId"))
    if user_id is None:
        if _identifier(message.get("anonymousId")) is None:
            mapped.errors.append({"path": mapped.locate("userId"), "message": "userId or anonymousId is required"})
            return mapped
        return None
    if message_type == "identify":
        traits = _object(message, "traits", mapped)
        if traits is not None:
            mapped.records.append(_identify(user_id, traits))
        return mapped
    properties = _object(message, "properties", mapped)
    if properties is None:
        return mapped
    occurred_at, time_source = _timestamp(message, received_at)
    if message_type == "track":
        name = message.get("event")
        if not isinstance(name, str) or not event_type_name(name):
            mapped.errors.append({"path": mapped.locate("event"), "message": "must be a non-empty event name"})
            return mapped
        normalised = event_type_name(name)
        if normalised == ORDER_COMPLETED:
            _order_completed(mapped, user_id, properties, occurred_at, time_source)
            return mapped
        event_type = EVENT_TYPES.get(normalised, normalised)
        type_source = "event"
    else:
        event_type, type_source = "page_view", "type"
        page_name = message.get("name")
        if isinstance(page_name, str) and page_name and "name" not in properties:
            properties = {**properties, "name": page_name}
    mapped.records.append(
        _event(message, user_id, event_type, type_source, properties, context, occurred_at, time_source)
    )
    return mapped


def _identify(user_id: str, traits: dict) -> MappedRecord:
    values: dict[str, Any] = {"external_id": user_id}
    sources = {"external_id": "userId"}
    attributes: dict[str, Any] = {}
    for key, value in traits.items():
        if key in SKIPPED_TRAITS:
            continue
        if key == "address" and isinstance(value, dict):
            for part, part_value in value.items():
                if part in ("country", "city"):
                    values[part] = _country(part_value) if part == "country" else part_value
                    sources[part] = f"traits.address.{part}"
                else:
                    attributes[f"address_{part}"] = part_value
                    sources[f"attributes.address_{part}"] = f"traits.address.{part}"
            continue
        target = TRAIT_FIELDS.get(key)
        if target is None:
            attributes[key] = value
            sources[f"attributes.{key}"] = f"traits.{key}"
        elif target not in values:  # an address part or an earlier spelling wins
            values[target] = _country(value) if target == "country" else value
            sources[target] = f"traits.{key}"
    name = traits.get("name")
    if isinstance(name, str) and name.strip() and "first_name" not in values and "last_name" not in values:
        first, _, last = name.strip().partition(" ")
        values["first_name"] = first
        sources["first_name"] = "traits.name"
        if last.strip():
            values["last_name"] = last.strip()
            sources["last_name"] = "traits.name"
        attributes.pop("name", None)
        sources.pop("attributes.name", None)
    if attributes:
        values["attributes"] = attributes
        sources["attributes"] = "traits"
    return MappedRecord(kind="contacts", values=values, sources=sources)


def _event(
    message: dict,
    user_id: str,
    event_type: str,
    type_source: str,
    properties: dict,
    context: dict,
    occurred_at: Any,
    time_source: str,
) -> MappedRecord:
    values: dict[str, Any] = {"contact": user_id, "type": event_type, "occurred_at": occurred_at}
    sources = {"contact": "userId", "type": type_source, "occurred_at": time_source}
    message_id = _identifier(message.get("messageId"))
    if message_id is not None:
        values["event_id"] = message_id
        sources["event_id"] = "messageId"
    if properties:
        values["properties"] = properties
        sources["properties"] = "properties"
    device, device_source = device_from_context(context)
    if device is not None:
        values["device"] = device
        sources["device"] = device_source
    page = context.get("page")
    if properties.get("url") not in (None, ""):
        values["url"], sources["url"] = properties["url"], "properties.url"
    elif isinstance(page, dict) and page.get("url") not in (None, ""):
        values["url"], sources["url"] = page["url"], "context.page.url"
    campaign, campaign_source = _campaign(properties, context)
    if campaign is not None:
        values["campaign"], sources["campaign"] = campaign, campaign_source
    return MappedRecord(kind="events", values=values, sources=sources)


def _order_completed(mapped: MappedMessage, user_id: str, properties: dict, occurred_at: Any, time_source: str) -> None:
    order_id = _identifier(properties.get("order_id"))
    if order_id is None:
        mapped.errors.append({"path": mapped.locate("properties.order_id"), "message": "this field is required"})
        return
    values: dict[str, Any] = {"external_id": order_id, "contact": user_id, "ordered_at": occurred_at}
    sources = {"external_id": "properties.order_id", "contact": "userId", "ordered_at": time_source}
    for key in ("total", "revenue"):
        if properties.get(key) is not None:
            values["total"], sources["total"] = properties[key], f"properties.{key}"
            break
    for key in ("currency", "source"):
        if properties.get(key) is not None:
            values[key], sources[key] = properties[key], f"properties.{key}"
    products = properties.get("products")
    if products is None:
        products = []
    if not isinstance(products, list):
        mapped.errors.append({"path": mapped.locate("properties.products"), "message": "must be a list"})
        return
    items: list[dict] = []
    product_records: list[MappedRecord] = []
    for index, product in enumerate(products):
        where = f"properties.products[{index}]"
        if not isinstance(product, dict):
            mapped.errors.append({"path": mapped.locate(where), "message": "must be an object"})
            continue
        sku_key = "sku" if _identifier(product.get("sku")) is not None else "product_id"
        sku = _identifier(product.get(sku_key))
        if sku is None:
            mapped.errors.append({"path": mapped.locate(f"{where}.sku"), "message": "sku or product_id is required"})
            continue
        item_index = len(items)
        item = {"sku": sku, "unit_price": product.get("price")}
        sources[f"items[{item_index}].sku"] = f"{where}.{sku_key}"
        sources[f"items[{item_index}].unit_price"] = f"{where}.price"
        sources[f"items[{item_index}]"] = where
        if product.get("quantity") is not None:
            item["quantity"] = product["quantity"]
            sources[f"items[{item_index}].quantity"] = f"{where}.quantity"
        items.append(item)
        catalogue = {"sku": sku}
        catalogue_sources = {"sku": f"{where}.{sku_key}"}
        for source_key, target in (("name", "name"), ("brand", "producer"), ("category", "category")):
            if product.get(source_key) not in (None, ""):
                catalogue[target] = product[source_key]
                catalogue_sources[target] = f"{where}.{source_key}"
        product_records.append(MappedRecord(kind="products", values=catalogue, sources=catalogue_sources))
    if mapped.errors:
        return
    values["items"] = items
    sources["items"] = "properties.products"
    mapped.records.extend(product_records)
    mapped.records.append(MappedRecord(kind="orders", values=values, sources=sources))


def translate_path(mapped: MappedMessage, record: MappedRecord, sub_path: str) -> str:
    """Turn an error path inside a record ("items[1].unit_price") into one inside the message."""
    best = ""
    for candidate in record.sources:
        if (sub_path == candidate or sub_path.startswith((candidate + ".", candidate + "["))) and len(candidate) > len(
            best
        ):
            best = candidate
    if not best:
        return mapped.locate("")
    return mapped.locate(record.sources[best] + sub_path[len(best) :])


def now_utc() -> datetime:
    return datetime.now(UTC)
