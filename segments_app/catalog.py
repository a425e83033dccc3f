"""The field catalog: every field a segment can test, the single source of truth.

The validator, the compiler, the wizard's pickers and the API's JSON schema all
read it. A field has a key (what a definition names), a label, a category, a type
(which decides its operators and value shape), choices for choice fields, the
widget that edits its value, and where it is stored (`column`, an ORM path from
`Contact`, e.g. `stats__total_spent` for a computed figure).

Types and operators (contract, "attribute" table): text, number, datetime,
boolean and choice. Semantics every reader must agree on:

- Missing values: NULL; for text and choice also the empty string. Every operator
  is false on a missing value except `is_not_set`, `ne`, `not_in`, `not_contains`,
  `not_in_last` and `is_false`, which are true.
- Text: `eq`, `ne`, `in`, `not_in` compare exactly (case-sensitive, byte for byte).
  `contains`, `not_contains`, `starts_with`, `ends_with` ignore case: the upper-case
  letters of Latin, Greek and Cyrillic fold to lower case letter by letter, by one
  table applied identically in SQL and Python whatever the database or its locale
  (`segments_app.casefold`; `%`, `_` and `\\` in a value match themselves).
  "Kraków" contains "KRAKÓW", "Łódź" starts with "ŁÓ".
- `birth_date` is a date; it is compared as midnight UTC of that day.

Custom attributes (`attributes.<key>`, category "Contact details"):

- The type is the one declared in the workspace's `attribute_types` setting
  (`text`, `number`, `boolean`, `choice` or `datetime`); otherwise it is inferred
  from the values stored under the key across the workspace's contacts, ignoring
  missing ones (JSON null, the empty string): all numbers -> number, all booleans ->
  boolean, anything else (strings, mixed, lists, objects, or only missing values)
  -> text. Strings that look like dates stay text unless declared `datetime`.
- A key that no contact has and that is not declared is unknown (refused).
- Only values of the attribute's type count; everything else is missing: for
  number only JSON numbers, for boolean only JSON true/false, for text and choice
  only non-empty JSON strings, for datetime only strings in the ISO form of
  `segments_app.timespec` (date, or date and time with an optional offset).
  A declared `choice` attribute offers the strings seen in the data as its choices
  but accepts any string as a value (its choices are discovered, not declared).
- Keys containing `"` or `\\`, control characters, or longer than 100 characters are
  not offered (they cannot be named safely in a JSON path on both databases).

Event property filters (`properties.<key>` in an event condition) have no declared
type: string values (`eq`, `ne`, `in`, `not_in` with strings, and the `contains`
family) compare the property's value when it is a non-empty JSON string; number
values (`eq`, `ne`, `in`, `not_in` with numbers, `gt`, `gte`, `lt`, `lte`, `between`)
compare it when it is a JSON number. A property of another JSON type counts as
missing for that comparison. `is_set` is true when the key is present and neither
null nor the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import connection

from contacts.models import Contact, ContactStats, Event, EventType, Workspace

TEXT = "text"
NUMBER = "number"
DATETIME = "datetime"
BOOLEAN = "boolean"
CHOICE = "choice"
# Event properties: no declared type, text or number operators chosen by the value.
PROPERTY = "property"

TYPES: tuple[str, ...] = (TEXT, NUMBER, DATETIME, BOOLEAN, CHOICE)

OPERATORS: dict[str, tuple[str, ...]] = {
    TEXT: ("eq", "ne", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with", "is_set", "is_not_set"),
    NUMBER: ("eq", "ne", "gt", "gte", "lt", "lte", "between", "is_set", "is_not_set"),
    DATETIME: ("before", "after", "between", "in_last", "not_in_last", "is_set", "is_not_set"),
    BOOLEAN: ("is_true", "is_false"),
    CHOICE: ("eq", "ne", "in", "not_in", "is_set", "is_not_set"),
}
OPERATORS[PROPERTY] = tuple(dict.fromkeys(OPERATORS[TEXT] + OPERATORS[NUMBER]))

# Operators that take no value.
NO_VALUE_OPERATORS = frozenset({"is_set", "is_not_set", "is_true", "is_false"})
# Operators that hold for a missing value; all others are false on it.
TRUE_ON_MISSING = frozenset({"is_not_set", "ne", "not_in", "not_contains", "not_in_last", "is_false"})
# For each such operator, the operator it negates (true on missing = not (its partner)).
NEGATION_OF = {"ne": "eq", "not_in": "in", "not_contains": "contains", "is_not_set": "is_set", "is_false": "is_true"}

# The widget that edits a value, by type and operator (the wizard and the API schema use it).
_WIDGETS: dict[tuple[str, str], str] = {}
for _op in ("eq", "ne", "contains", "not_contains", "starts_with", "ends_with"):
    _WIDGETS[(TEXT, _op)] = "text"
for _op in ("in", "not_in"):
    _WIDGETS[(TEXT, _op)] = "text_list"
    _WIDGETS[(CHOICE, _op)] = "choice_list"
for _op in ("eq", "ne", "gt", "gte", "lt", "lte"):
    _WIDGETS[(NUMBER, _op)] = "number"
_WIDGETS[(NUMBER, "between")] = "number_range"
_WIDGETS[(CHOICE, "eq")] = _WIDGETS[(CHOICE, "ne")] = "choice"
_WIDGETS[(DATETIME, "before")] = _WIDGETS[(DATETIME, "after")] = "datetime"
_WIDGETS[(DATETIME, "between")] = "datetime_range"
_WIDGETS[(DATETIME, "in_last")] = _WIDGETS[(DATETIME, "not_in_last")] = "relative_span"
BASE_WIDGET = {
    TEXT: "text",
    NUMBER: "number",
    DATETIME: "datetime",
    BOOLEAN: "none",
    CHOICE: "select",
    PROPERTY: "text",
}


def value_widget(type_: str, op: str) -> str:
    """The widget for the value of `op` on a field of `type_`: "none" when the operator takes no value.

    >>> value_widget("number", "between")
    'number_range'
    """
    if op in NO_VALUE_OPERATORS:
        return "none"
    if type_ == PROPERTY:
        return _WIDGETS.get((TEXT, op)) or _WIDGETS.get((NUMBER, op), "text")
    return _WIDGETS.get((type_, op), BASE_WIDGET.get(type_, "text"))


CONTACT_DETAILS = "Contact details"
TAGS = "Tags"
PURCHASES = "Purchases"
BEHAVIOUR = "Behaviour"
COMPUTED = "Computed"
SEGMENTS = "Segments"
CATEGORIES: tuple[str, ...] = (CONTACT_DETAILS, TAGS, PURCHASES, BEHAVIOUR, COMPUTED, SEGMENTS)

# Where a field's value lives; the compiler dispatches on it.
SOURCE_CONTACT = "contact"  # a column of Contact
SOURCE_STATS = "stats"  # a column of ContactStats (the stored computed figures)
SOURCE_ATTRIBUTE = "attribute"  # a key of Contact.attributes
SOURCE_ORDER = "order"  # a column of Order (orders filters)
SOURCE_ITEM = "item"  # a column of OrderItem or its product (orders filters)
SOURCE_EVENT = "event"  # a column of Event (event filters)
SOURCE_PROPERTY = "property"  # a key of Event.properties (event filters)


@dataclass(frozen=True)
class Field:
    """One segmentable field.

    `column` is the ORM path from the model the field belongs to: from `Contact`
    for contact fields (`stats__total_spent` for a computed one), from `Order`,
    `OrderItem` or `Event` for filter fields. `json_key` names the key for custom
    attributes and event properties. `places` is how many decimal places a stored
    number has (0 for integer columns), None when unbounded (JSON numbers).
    """

    key: str
    label: str
    category: str
    type: str
    operators: tuple[str, ...]
    choices: tuple[str, ...] = ()
    widget: str = ""
    column: str = ""
    description: str = ""
    source: str = SOURCE_CONTACT
    places: int | None = None
    json_key: str | None = None
    is_date: bool = False
    # False for custom choice attributes: choices are suggestions seen in the data.
    strict_choices: bool = True

    def as_json(self) -> dict:
        """The field as the wizard and the API schema show it."""
        return {
            "key": self.key,
            "label": self.label,
            "category": self.category,
            "type": self.type,
            "operators": list(self.operators),
            "choices": list(self.choices),
            "widget": self.widget,
            "description": self.description,
        }


def _field(
    key: str, label: str, category: str, type_: str, *, column: str | None = None, source: str = SOURCE_CONTACT, **kw
) -> Field:
    return Field(
        key=key,
        label=label,
        category=category,
        type=type_,
        operators=OPERATORS[type_],
        widget=BASE_WIDGET[type_],
        column=column if column is not None else key,
        source=source,
        **kw,
    )


def _stats(key: str, label: str, type_: str, description: str, **kw) -> Field:
    return _field(
        key, label, COMPUTED, type_, column=f"stats__{key}", source=SOURCE_STATS, description=description, **kw
    )


def _choices(text_choices) -> tuple[str, ...]:
    return tuple(text_choices.values)


CONTACT_FIELDS: tuple[Field, ...] = (
    _field("email", "Email", CONTACT_DETAILS, TEXT),
    _field("first_name", "First name", CONTACT_DETAILS, TEXT),
    _field("last_name", "Last name", CONTACT_DETAILS, TEXT),
    _field("phone", "Phone", CONTACT_DETAILS, TEXT),
    _field("country", "Country", CONTACT_DETAILS, TEXT, description="ISO 3166 alpha-2 code, e.g. PL"),
    _field("city", "City", CONTACT_DETAILS, TEXT),
    _field("gender", "Gender", CONTACT_DETAILS, TEXT),
    _field("birth_date", "Birth date", CONTACT_DETAILS, DATETIME, is_date=True, description="compared as midnight UTC"),
    _field("created_at", "Created", CONTACT_DETAILS, DATETIME, description="when the contact was first seen"),
    _field("email_status", "Email status", CONTACT_DETAILS, CHOICE, choices=_choices(Contact.EmailStatus)),
    _field(
        "traffic_source",
        "Traffic source",
        CONTACT_DETAILS,
        CHOICE,
        choices=_choices(Contact.TrafficSource),
        description="first-touch source",
    ),
    _field("utm_campaign", "UTM campaign", CONTACT_DETAILS, TEXT),
)

COMPUTED_FIELDS: tuple[Field, ...] = (
    _stats("orders_count", "Orders", NUMBER, "number of orders", places=0),
    _stats("total_spent", "Total spent", NUMBER, "sum of order totals", places=2),
    _stats("avg_order_value", "Average order value", NUMBER, "total spent / orders; missing without orders", places=2),
    _stats("first_order_at", "First order", DATETIME, "time of the first order"),
    _stats("last_order_at", "Last order", DATETIME, "time of the latest order"),
    _stats("last_seen_at", "Last seen", DATETIME, "latest event of any type"),
    _stats("last_email_open_at", "Last email open", DATETIME, "latest email_open event"),
    _stats("last_email_click_at", "Last email click", DATETIME, "latest email_click event"),
    _stats("engagement_score", "Engagement score", NUMBER, "0 to 100, from recent opens, clicks and visits", places=0),
    _stats(
        "lifecycle_stage",
        "Lifecycle stage",
        CHOICE,
        "prospect, new, active, returning, inactive or churned",
        choices=_choices(ContactStats.Lifecycle),
    ),
    _stats("rfm_recency", "RFM recency", NUMBER, "1 to 5", places=0),
    _stats("rfm_frequency", "RFM frequency", NUMBER, "1 to 5", places=0),
    _stats("rfm_monetary", "RFM monetary", NUMBER, "1 to 5", places=0),
    _stats("rfm_segment", "RFM segment", CHOICE, "named RFM group", choices=_choices(ContactStats.RfmSegment)),
    _stats(
        "preferred_device", "Preferred device", CHOICE, "devices seen in events", choices=_choices(ContactStats.Device)
    ),
    _stats("top_category", "Top category", TEXT, "category most bought from"),
    _stats("top_producer", "Top producer", TEXT, "producer most bought from"),
    _stats("cart_open_since", "Cart open since", DATETIME, "first cart_add after the last order; missing if none"),
    _stats(
        "loyalty_tier",
        "Loyalty tier",
        CHOICE,
        "by total spent, thresholds set per workspace",
        choices=_choices(ContactStats.LoyaltyTier),
    ),
)

ORDER_FILTER_FIELDS: tuple[Field, ...] = (
    _field("source", "Order source", PURCHASES, TEXT, source=SOURCE_ORDER),
    _field("total", "Order total", PURCHASES, NUMBER, source=SOURCE_ORDER, places=2),
    _field("currency", "Currency", PURCHASES, TEXT, source=SOURCE_ORDER),
    _field("ordered_at", "Ordered at", PURCHASES, DATETIME, source=SOURCE_ORDER),
    _field("product.sku", "Product SKU", PURCHASES, TEXT, column="product__sku", source=SOURCE_ITEM),
    _field("product.name", "Product name", PURCHASES, TEXT, column="product__name", source=SOURCE_ITEM),
    _field("product.producer", "Producer", PURCHASES, TEXT, column="product__producer", source=SOURCE_ITEM),
    _field("product.category", "Product category", PURCHASES, TEXT, column="product__category", source=SOURCE_ITEM),
    _field("quantity", "Quantity", PURCHASES, NUMBER, source=SOURCE_ITEM, places=0),
    _field("unit_price", "Unit price", PURCHASES, NUMBER, source=SOURCE_ITEM, places=2),
)

EVENT_FILTER_FIELDS: tuple[Field, ...] = (
    _field("device", "Device", BEHAVIOUR, CHOICE, source=SOURCE_EVENT, choices=_choices(Event.Device)),
    _field("url", "URL", BEHAVIOUR, TEXT, source=SOURCE_EVENT),
    _field("campaign", "Campaign", BEHAVIOUR, TEXT, source=SOURCE_EVENT),
)

BUILTIN_EVENT_TYPES: tuple[str, ...] = (
    "email_sent",
    "email_open",
    "email_click",
    "email_bounce",
    "email_complaint",
    "unsubscribe",
    "page_view",
    "product_view",
    "cart_add",
    "checkout_start",
    "app_open",
)
ANY_EVENT = "any"

ORDER_MEASURES: dict[str, str] = {
    "count": NUMBER,
    "sum": NUMBER,
    "avg": NUMBER,
    "min": NUMBER,
    "max": NUMBER,
    "first_at": DATETIME,
    "last_at": DATETIME,
}
EVENT_MEASURES: dict[str, str] = {"count": NUMBER, "first_at": DATETIME, "last_at": DATETIME}
TAG_OPERATORS: tuple[str, ...] = ("has_any", "has_all", "has_none")
SEGMENT_OPERATORS: tuple[str, ...] = ("in", "not_in")


@dataclass(frozen=True)
class ConditionKind:
    """A condition type other than `attribute`, as the wizard offers it."""

    type: str
    label: str
    category: str
    operators: tuple[str, ...] = ()
    measures: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "type": self.type,
            "label": self.label,
            "category": self.category,
            "operators": list(self.operators),
            "measures": {name: {"type": t, "operators": list(OPERATORS[t])} for name, t in self.measures.items()},
        }


CONDITION_KINDS: tuple[ConditionKind, ...] = (
    ConditionKind("tag", "Has tags", TAGS, operators=TAG_OPERATORS),
    ConditionKind("orders", "Orders", PURCHASES, measures=ORDER_MEASURES),
    ConditionKind("event", "Events", BEHAVIOUR, measures=EVENT_MEASURES),
    ConditionKind("segment", "In segment", SEGMENTS, operators=SEGMENT_OPERATORS),
)

ATTRIBUTE_PREFIX = "attributes."
PROPERTY_PREFIX = "properties."
_SAFE_KEY = re.compile(r'[^"\\\x00-\x1f\x7f]{1,100}')
DECLARABLE_TYPES = frozenset(TYPES)


def is_safe_key(key: str) -> bool:
    """Whether a custom attribute or event property key can be named in a definition."""
    return bool(_SAFE_KEY.fullmatch(key))


def attribute_field(key: str, type_: str, choices: Iterable[str] = ()) -> Field:
    """The catalog entry of custom attribute `key` with the given type."""
    return Field(
        key=ATTRIBUTE_PREFIX + key,
        label=key.replace("_", " ").capitalize(),
        category=CONTACT_DETAILS,
        type=type_,
        operators=OPERATORS[type_],
        choices=tuple(choices),
        widget=BASE_WIDGET[type_],
        column="attributes",
        description="custom attribute",
        source=SOURCE_ATTRIBUTE,
        json_key=key,
        strict_choices=False,
    )


def property_field(key: str) -> Field:
    """The filter entry for event property `key` (operators of text and number, see the module doc)."""
    return Field(
        key=PROPERTY_PREFIX + key,
        label=f"Property {key}",
        category=BEHAVIOUR,
        type=PROPERTY,
        operators=OPERATORS[PROPERTY],
        widget=BASE_WIDGET[PROPERTY],
        column="properties",
        description="event property: strings compare as text, numbers as numbers",
        source=SOURCE_PROPERTY,
        json_key=key,
    )


def infer_attribute_type(kinds: Iterable[str]) -> str:
    """The type of an undeclared attribute from the JSON kinds of its stored values.

    Kinds: "string", "empty" (the empty string), "number", "boolean", "null",
    "object", "array". Missing values (null, empty) do not count.

    >>> infer_attribute_type(["number", "null", "empty"])
    'number'
    >>> infer_attribute_type(["number", "string"])
    'text'
    """
    present = set(kinds) - {"null", "empty"}
    if present == {"number"}:
        return NUMBER
    if present == {"boolean"}:
        return BOOLEAN
    return TEXT


class Catalog:
    """The fields of one workspace: the fixed catalog plus its custom attributes and event types.

    Build it with `build_catalog(workspace)`; construct it directly (no queries) when
    the attribute types and custom event types are already known.
    """

    def __init__(
        self,
        *,
        workspace_id: int | None,
        attribute_types: dict[str, str] | None = None,
        attribute_choices: dict[str, Iterable[str]] | None = None,
        custom_event_types: Iterable[str] = (),
        attribute_lookup: Callable[[str], str | None] | None = None,
    ) -> None:
        self.workspace_id = workspace_id
        # Types of attribute keys not listed above, looked up on first use (one query per key).
        self._attribute_lookup = attribute_lookup
        self._unknown_keys: set[str] = set()
        choices = attribute_choices or {}
        attributes = [
            attribute_field(key, type_, choices.get(key, ()))
            for key, type_ in sorted((attribute_types or {}).items())
            if is_safe_key(key) and type_ in DECLARABLE_TYPES
        ]
        self._fields: dict[str, Field] = {f.key: f for f in (*CONTACT_FIELDS, *COMPUTED_FIELDS, *attributes)}
        self._order_filters = {f.key: f for f in ORDER_FILTER_FIELDS}
        self._event_filters = {f.key: f for f in EVENT_FILTER_FIELDS}
        self._event_types = tuple(dict.fromkeys((*BUILTIN_EVENT_TYPES, *sorted(custom_event_types))))

    def field(self, key: str) -> Field | None:
        """The field a definition names as `field`, or None when there is no such field."""
        found = self._fields.get(key)
        if found is None and self._attribute_lookup is not None and key.startswith(ATTRIBUTE_PREFIX):
            name = key[len(ATTRIBUTE_PREFIX) :]
            if name not in self._unknown_keys and is_safe_key(name):
                type_ = self._attribute_lookup(name)
                if type_ is None:
                    self._unknown_keys.add(name)
                else:
                    found = self._fields[key] = attribute_field(name, type_)
        return found

    def fields(self) -> list[Field]:
        """Every field in catalog order: contact details, computed figures, custom attributes.

        A catalog built with `discover_attributes=False` lists only the declared custom
        attributes and those looked up so far.
        """
        return list(self._fields.values())

    def order_filter(self, key: str) -> Field | None:
        return self._order_filters.get(key)

    def order_filters(self) -> list[Field]:
        return list(self._order_filters.values())

    def event_filter(self, key: str) -> Field | None:
        """An event filter field: `device`, `url`, `campaign` or `properties.<key>`."""
        if key.startswith(PROPERTY_PREFIX):
            name = key[len(PROPERTY_PREFIX) :]
            return property_field(name) if is_safe_key(name) else None
        return self._event_filters.get(key)

    def event_filters(self) -> list[Field]:
        """The fixed event filter fields (`properties.<key>` is open-ended and not listed)."""
        return list(self._event_filters.values())

    def event_types(self) -> list[str]:
        """Built-in event types first, then the custom types the workspace has received."""
        return list(self._event_types)

    def is_event_type(self, name: str) -> bool:
        return name == ANY_EVENT or name in self._event_types

    def condition_kinds(self) -> list[ConditionKind]:
        return list(CONDITION_KINDS)

    def as_json(self) -> dict:
        """The whole catalog for the wizard and the API schema."""
        return {
            "fields": [f.as_json() for f in self.fields()],
            "order_filters": [f.as_json() for f in self.order_filters()],
            "event_filters": [f.as_json() for f in self.event_filters()],
            "event_types": self.event_types(),
            "conditions": [k.as_json() for k in self.condition_kinds()],
        }


def build_catalog(workspace: Workspace, *, discover_attributes: bool = True) -> Catalog:
    """The catalog of `workspace`; queries its event types and custom attribute keys.

    With `discover_attributes` (the wizard, the API schema) every attribute key of the
    workspace's contacts is found and typed at once, which reads every contact. Without
    it (validating and evaluating a definition) only declared keys are known up front
    and any other key is typed on first use, reading that one key.
    """
    declared = {k: v for k, v in (workspace.attribute_types or {}).items() if v in DECLARABLE_TYPES}
    types = dict(declared)
    lookup = None
    if discover_attributes:
        types = {key: infer_attribute_type(found) for key, found in attribute_kinds(workspace.pk).items()}
        types.update(declared)
    else:

        def lookup(key: str) -> str | None:
            found = attribute_key_kinds(workspace.pk, key)
            return infer_attribute_type(found) if found else None

    choice_keys = [key for key, type_ in types.items() if type_ == CHOICE and is_safe_key(key)]
    return Catalog(
        workspace_id=workspace.pk,
        attribute_types=types,
        attribute_choices=attribute_string_values(workspace.pk, choice_keys) if discover_attributes else None,
        custom_event_types=EventType.objects.filter(workspace=workspace).values_list("name", flat=True),
        attribute_lookup=lookup,
    )


_KINDS_SQL = {
    "postgresql": """
        SELECT DISTINCT e.key,
               CASE WHEN e.value = '""'::jsonb THEN 'empty' ELSE jsonb_typeof(e.value) END
        FROM contacts_contact c CROSS JOIN LATERAL jsonb_each(c.attributes) e
        WHERE c.workspace_id = %s AND jsonb_typeof(c.attributes) = 'object'
    """,
    "sqlite": """
        SELECT DISTINCT j.key,
               CASE WHEN j.type = 'text' AND j.atom = '' THEN 'empty'
                    WHEN j.type = 'text' THEN 'string'
                    WHEN j.type IN ('integer', 'real') THEN 'number'
                    WHEN j.type IN ('true', 'false') THEN 'boolean'
                    ELSE j.type END
        FROM contacts_contact c, json_each(c.attributes) j
        WHERE c.workspace_id = %s AND json_type(c.attributes) = 'object'
    """,
}


def attribute_kinds(workspace_id: int) -> dict[str, set[str]]:
    """Every custom attribute key of the workspace's contacts with the JSON kinds stored under it."""
    sql = _KINDS_SQL.get(connection.vendor)
    if sql is None:
        raise NotImplementedError(f"custom attributes are not supported on {connection.vendor}")
    found: dict[str, set[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace_id])
        for key, kind in cursor.fetchall():
            found.setdefault(key, set()).add(kind)
    return found


_KEY_KINDS_SQL = {
    "postgresql": """
        SELECT DISTINCT CASE WHEN c.attributes -> %(key)s = '""'::jsonb THEN 'empty'
                             ELSE jsonb_typeof(c.attributes -> %(key)s) END
        FROM contacts_contact c
        WHERE c.workspace_id = %(workspace)s AND jsonb_typeof(c.attributes) = 'object' AND c.attributes ? %(key)s
    """,
    "sqlite": """
        SELECT DISTINCT CASE json_type(c.attributes, %(path)s)
                 WHEN 'text' THEN CASE WHEN json_extract(c.attributes, %(path)s) = '' THEN 'empty' ELSE 'string' END
                 WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number'
                 WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean'
                 ELSE json_type(c.attributes, %(path)s) END
        FROM contacts_contact c
        WHERE c.workspace_id = %(workspace)s AND json_type(c.attributes) = 'object'
          AND json_type(c.attributes, %(path)s) IS NOT NULL
    """,
}


def attribute_key_kinds(workspace_id: int, key: str) -> set[str]:
    """The JSON kinds stored under one attribute key in the workspace (empty when no contact has it)."""
    sql = _KEY_KINDS_SQL.get(connection.vendor)
    if sql is None:
        raise NotImplementedError(f"custom attributes are not supported on {connection.vendor}")
    with connection.cursor() as cursor:
        cursor.execute(sql, {"key": key, "path": json_path(key), "workspace": workspace_id})
        return {row[0] for row in cursor.fetchall()}


MAX_DISCOVERED_CHOICES = 200


def attribute_string_values(workspace_id: int, keys: Iterable[str]) -> dict[str, list[str]]:
    """The distinct non-empty string values of some attribute keys (choices of custom choice attributes)."""
    result: dict[str, list[str]] = {}
    for key in keys:
        if connection.vendor == "postgresql":
            sql = (
                "SELECT DISTINCT c.attributes ->> %s FROM contacts_contact c WHERE c.workspace_id = %s"
                " AND jsonb_typeof(c.attributes -> %s) = 'string' AND c.attributes ->> %s <> '' ORDER BY 1 LIMIT %s"
            )
            params = [key, workspace_id, key, key, MAX_DISCOVERED_CHOICES]
        else:
            path = json_path(key)
            sql = (
                "SELECT DISTINCT json_extract(c.attributes, %s) FROM contacts_contact c WHERE c.workspace_id = %s"
                " AND json_type(c.attributes, %s) = 'text' AND json_extract(c.attributes, %s) <> ''"
                " ORDER BY 1 LIMIT %s"
            )
            params = [path, workspace_id, path, path, MAX_DISCOVERED_CHOICES]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            result[key] = [row[0] for row in cursor.fetchall()]
    return result


def json_path(key: str) -> str:
    """The SQLite JSON path of a top-level key, quoted so that dots and spaces are part of the key."""
    return f'$."{key}"'
