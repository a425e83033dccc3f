"""The JSON Schema of a segment definition, generated from the field catalog.

One generator, two uses:

- `definition_components()` gives named schemas for the OpenAPI description (drf-spectacular registers
  them as components; `SegmentDefinition` is what the segment and preview request bodies refer to).
- `definition_json_schema(catalog)` gives a standalone JSON Schema document (draft 2020-12, the named
  schemas under `$defs`), e.g. for an editor or a client-side validator; with a workspace's catalog it
  lists that workspace's custom attributes and event types.

The schema says which fields, operators and values go together (an attribute condition on a number
field takes number operators and a number, `between` a pair, `is_set` no value at all). Rules that JSON
Schema cannot state are in the descriptions and enforced by the validator (`segments_app.definition`):
nesting depth at most 6, at most 100 conditions, `low <= high`, references to existing segments and no
cycles. Only OpenAPI 3.0 compatible keywords are used (no `const`, no type lists).
"""

from __future__ import annotations

from typing import Any

from . import catalog as cat
from .catalog import Catalog, Field
from .definition import MAX_CONDITIONS, MAX_DEPTH, MAX_LIST, MAX_NUMBER, MAX_TEXT
from .timespec import UNITS

OPENAPI_REF = "#/components/schemas/"
JSON_SCHEMA_REF = "#/$defs/"
ROOT = "SegmentDefinition"

# Operators grouped by the shape of their value, per field type.
_VALUE_GROUPS: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    cat.TEXT: (
        (("eq", "ne", "contains", "not_contains", "starts_with", "ends_with"), "text"),
        (("in", "not_in"), "text_list"),
        (("is_set", "is_not_set"), "none"),
    ),
    cat.NUMBER: (
        (("eq", "ne", "gt", "gte", "lt", "lte"), "number"),
        (("between",), "number_range"),
        (("is_set", "is_not_set"), "none"),
    ),
    cat.DATETIME: (
        (("before", "after"), "time"),
        (("between",), "time_range"),
        (("in_last", "not_in_last"), "span"),
        (("is_set", "is_not_set"), "none"),
    ),
    cat.BOOLEAN: ((("is_true", "is_false"), "none"),),
    cat.CHOICE: (
        (("eq", "ne"), "choice"),
        (("in", "not_in"), "choice_list"),
        (("is_set", "is_not_set"), "none"),
    ),
    cat.PROPERTY: (
        (("eq", "ne"), "text_or_number"),
        (("in", "not_in"), "text_or_number_list"),
        (("contains", "not_contains", "starts_with", "ends_with"), "text"),
        (("gt", "gte", "lt", "lte"), "number"),
        (("between",), "number_range"),
        (("is_set", "is_not_set"), "none"),
    ),
}

_TYPE_NAMES = {
    cat.TEXT: "Text",
    cat.NUMBER: "Number",
    cat.DATETIME: "Datetime",
    cat.BOOLEAN: "Boolean",
    cat.CHOICE: "Choice",
    cat.PROPERTY: "Property",
}


def _enum(*values: Any) -> dict:
    return {"enum": list(values)}


def _camel(key: str) -> str:
    return "".join(part.capitalize() for part in key.replace(".", "_").split("_") if part)


class _Builder:
    def __init__(self, catalog: Catalog | None, ref_prefix: str) -> None:
        self.catalog = catalog or Catalog(workspace_id=None)
        self.workspace_specific = catalog is not None and catalog.workspace_id is not None
        self.prefix = ref_prefix
        self.schemas: dict[str, dict] = {}

    def ref(self, name: str) -> dict:
        return {"$ref": self.prefix + name}

    # -- values

    def value_schemas(self) -> None:
        text = {"type": "string", "maxLength": MAX_TEXT}
        number = {
            "type": "number",
            "minimum": -int(MAX_NUMBER),
            "maximum": int(MAX_NUMBER),
            "description": "At most 6 decimal places.",
        }
        self.schemas["SegmentText"] = text
        self.schemas["SegmentTextList"] = {
            "type": "array",
            "items": self.ref("SegmentText"),
            "minItems": 1,
            "maxItems": MAX_LIST,
        }
        self.schemas["SegmentNumber"] = number
        self.schemas["SegmentNumberRange"] = {
            "type": "array",
            "items": self.ref("SegmentNumber"),
            "minItems": 2,
            "maxItems": 2,
            "description": "[low, high], both included; low <= high.",
        }
        self.schemas["SegmentIsoTime"] = {
            "type": "string",
            "pattern": r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|z|[+-]\d{2}:\d{2})?)?$",
            "description": "ISO 8601 date (midnight UTC) or datetime; without an offset it is UTC.",
            "example": "2024-05-01T10:30:00Z",
        }
        self.schemas["SegmentTimeUnit"] = {"type": "string", "enum": list(UNITS)}
        self.schemas["SegmentAgo"] = self.amount_object("ago", "Now minus N units (months are calendar months).")
        self.schemas["SegmentSpan"] = self.amount_object("last", "From now minus N units up to now, both included.")
        self.schemas["SegmentTime"] = {
            "anyOf": [self.ref("SegmentIsoTime"), self.ref("SegmentAgo")],
            "description": 'An ISO 8601 date or datetime, or {"ago": N, "unit": U}.',
        }
        self.schemas["SegmentTimeRange"] = {
            "type": "array",
            "items": self.ref("SegmentTime"),
            "minItems": 2,
            "maxItems": 2,
            "description": "[earlier, later], both included.",
        }
        self.schemas["SegmentFixedWindow"] = {
            "type": "object",
            "properties": {"from": self.ref("SegmentIsoTime"), "to": self.ref("SegmentIsoTime")},
            "required": ["from"],
            "additionalProperties": False,
            "description": "A fixed span, bounds included; without `to` it has no end.",
        }
        self.schemas["SegmentWindow"] = {
            "anyOf": [self.ref("SegmentSpan"), self.ref("SegmentFixedWindow")],
            "description": "The span the rows must lie in; default all time.",
        }

    def amount_object(self, key: str, description: str) -> dict:
        return {
            "type": "object",
            "properties": {key: {"type": "integer", "minimum": 1}, "unit": self.ref("SegmentTimeUnit")},
            "required": [key, "unit"],
            "additionalProperties": False,
            "description": description,
        }

    def value(self, shape: str, choices: tuple[str, ...] = ()) -> dict | None:
        if shape == "none":
            return None
        if shape == "choice":
            return {"type": "string", "enum": list(choices)} if choices else self.ref("SegmentText")
        if shape == "choice_list":
            item = {"type": "string", "enum": list(choices)} if choices else self.ref("SegmentText")
            return {"type": "array", "items": item, "minItems": 1, "maxItems": MAX_LIST}
        if shape == "text_or_number":
            return {"anyOf": [self.ref("SegmentText"), self.ref("SegmentNumber")]}
        if shape == "text_or_number_list":
            return {
                "anyOf": [
                    self.ref("SegmentTextList"),
                    {"type": "array", "items": self.ref("SegmentNumber"), "minItems": 1, "maxItems": MAX_LIST},
                ]
            }
        names = {
            "text": "SegmentText",
            "text_list": "SegmentTextList",
            "number": "SegmentNumber",
            "number_range": "SegmentNumberRange",
            "time": "SegmentTime",
            "time_range": "SegmentTimeRange",
            "span": "SegmentSpan",
        }
        return self.ref(names[shape])

    # -- op/value pairs

    def variants(self, base: dict, required: list[str], type_: str, choices: tuple[str, ...] = ()) -> list[dict]:
        """One object schema per group of operators sharing a value shape, all with the `base` properties."""
        result = []
        for ops, shape in _VALUE_GROUPS[type_]:
            properties = {**base, "op": _enum(*ops)}
            needed = [*required, "op"]
            value = self.value(shape, choices)
            if value is not None:
                properties["value"] = value
                needed.append("value")
            result.append(
                {"type": "object", "properties": properties, "required": needed, "additionalProperties": False}
            )
        return result

    # -- attribute conditions

    def attribute_conditions(self) -> list[dict]:
        refs = []
        by_type: dict[str, list[str]] = {}
        for field in self.catalog.fields():
            if field.type == cat.CHOICE and field.strict_choices:
                name = f"SegmentAttribute{_camel(field.key)}"
                self.schemas[name] = self.attribute_schema([field.key], cat.CHOICE, field.choices, field)
                refs.append(self.ref(name))
            else:
                by_type.setdefault(field.type, []).append(field.key)
        for type_ in cat.TYPES:
            keys = by_type.get(type_, [])
            if not keys and self.workspace_specific:
                continue
            name = f"SegmentAttribute{_TYPE_NAMES[type_]}"
            self.schemas[name] = self.attribute_schema(keys, type_, (), None)
            refs.append(self.ref(name))
        return refs

    def attribute_schema(self, keys: list[str], type_: str, choices: tuple[str, ...], field: Field | None) -> dict:
        field_schema: dict = {"type": "string", "enum": keys} if keys else None
        if not self.workspace_specific:
            custom = {
                "type": "string",
                "pattern": r"^attributes\..+$",
                "description": f"A custom attribute of type {type_}, attributes.<key> (GET /api/v1/segments/fields/).",
            }
            field_schema = {"anyOf": [field_schema, custom]} if field_schema else custom
        base = {"type": _enum("attribute"), "field": field_schema}
        if field is not None:
            description = f"{field.label} ({field.key}): {field.type}, one of the field's choices."
        else:
            description = f"An attribute condition on a {type_} field."
        return {"description": description, "anyOf": self.variants(base, ["type", "field"], type_, choices)}

    # -- filters

    def filter_schema(self, name: str, fields: list[Field], extra_property: bool = False) -> None:
        variants: list[dict] = []
        by_type: dict[str, list[str]] = {}
        for field in fields:
            if field.type == cat.CHOICE:
                variants += self.variants({"field": _enum(field.key)}, ["field"], cat.CHOICE, field.choices)
            else:
                by_type.setdefault(field.type, []).append(field.key)
        for type_, keys in by_type.items():
            variants += self.variants({"field": {"type": "string", "enum": keys}}, ["field"], type_)
        if extra_property:
            prop = {"type": "string", "pattern": r"^properties\..+$", "description": "An event property."}
            variants += self.variants({"field": prop}, ["field"], cat.PROPERTY)
        self.schemas[name] = {
            "anyOf": variants,
            "description": "A filter on the rows: a field, an operator of its type and a value.",
        }

    # -- measured conditions

    def measured(self, name: str, base: dict, required: list[str], measures: dict[str, str], description: str) -> None:
        variants = []
        for type_ in (cat.NUMBER, cat.DATETIME):
            names = [m for m, t in measures.items() if t == type_]
            if names:
                variants += self.variants({**base, "measure": _enum(*names)}, [*required, "measure"], type_)
        self.schemas[name] = {"description": description, "anyOf": variants}

    # -- the tree

    def build(self) -> dict[str, dict]:
        self.value_schemas()
        attribute_refs = self.attribute_conditions()
        self.schemas["SegmentAttributeCondition"] = {
            "anyOf": attribute_refs,
            "description": 'A field of the contact: {"type": "attribute", "field", "op", "value"}. A missing value '
            "fails every operator except is_not_set, ne, not_in, not_contains, not_in_last and is_false.",
        }
        self.schemas["SegmentTagCondition"] = {
            "type": "object",
            "properties": {
                "type": _enum("tag"),
                "op": _enum(*cat.TAG_OPERATORS),
                "value": self.ref("SegmentTextList"),
            },
            "required": ["type", "op", "value"],
            "additionalProperties": False,
            "description": "Tag names the contact has (any / all) or has none of.",
        }
        self.filter_schema("SegmentOrdersFilter", self.catalog.order_filters())
        self.filter_schema("SegmentEventFilter", self.catalog.event_filters(), extra_property=True)
        orders_base = {
            "type": _enum("orders"),
            "filters": {"type": "array", "items": self.ref("SegmentOrdersFilter"), "maxItems": MAX_LIST},
            "window": self.ref("SegmentWindow"),
        }
        self.measured(
            "SegmentOrdersCondition",
            orders_base,
            ["type"],
            cat.ORDER_MEASURES,
            "What the contact bought. The measure is taken over the orders in the window that pass the order "
            "filters; with item filters only matching items count (amount = their quantity * unit_price per "
            "order). Over no orders count and sum are 0, the other measures missing.",
        )
        if self.workspace_specific:
            event_name: dict = {"type": "string", "enum": [cat.ANY_EVENT, *self.catalog.event_types()]}
        else:
            event_name = {
                "type": "string",
                "minLength": 1,
                "description": '"any", a built-in type (' + ", ".join(cat.BUILTIN_EVENT_TYPES) + ") or a custom "
                "type the workspace has received.",
            }
        event_base = {
            "type": _enum("event"),
            "event": event_name,
            "filters": {"type": "array", "items": self.ref("SegmentEventFilter"), "maxItems": MAX_LIST},
            "window": self.ref("SegmentWindow"),
        }
        self.measured(
            "SegmentEventCondition",
            event_base,
            ["type", "event"],
            cat.EVENT_MEASURES,
            'What the contact did. "Did not" is count eq 0.',
        )
        self.schemas["SegmentSegmentCondition"] = {
            "type": "object",
            "properties": {
                "type": _enum("segment"),
                "op": _enum(*cat.SEGMENT_OPERATORS),
                "segment": {"type": "integer", "minimum": 1, "description": "Id of a segment of the workspace."},
            },
            "required": ["type", "op", "segment"],
            "additionalProperties": False,
            "description": "Membership of another segment, its rule evaluated now; cycles are refused.",
        }
        self.schemas["SegmentCondition"] = {
            "anyOf": [
                self.ref("SegmentAttributeCondition"),
                self.ref("SegmentTagCondition"),
                self.ref("SegmentOrdersCondition"),
                self.ref("SegmentEventCondition"),
                self.ref("SegmentSegmentCondition"),
            ]
        }
        self.schemas["SegmentNode"] = {"anyOf": [self.ref("SegmentGroup"), self.ref("SegmentCondition")]}
        match = {"type": "string", "enum": ["all", "any", "none"], "description": "AND, OR, NOT OR."}
        self.schemas["SegmentGroup"] = {
            "type": "object",
            "properties": {
                "match": match,
                "conditions": {"type": "array", "items": self.ref("SegmentNode"), "minItems": 1},
            },
            "required": ["match", "conditions"],
            "additionalProperties": False,
            "description": "A nested group: at least one node.",
        }
        self.schemas[ROOT] = {
            "type": "object",
            "properties": {
                "match": match,
                "conditions": {"type": "array", "items": self.ref("SegmentNode"), "maxItems": MAX_CONDITIONS},
            },
            "required": ["match", "conditions"],
            "additionalProperties": False,
            "description": (
                "A segment definition (format version 1): a group of conditions on contacts, orders, events, tags "
                "and other segments. An empty top-level `conditions` means every contact. Limits: groups nest "
                f"at most {MAX_DEPTH} deep, at most {MAX_CONDITIONS} conditions in all, text values at most "
                f"{MAX_TEXT} characters, lists at most {MAX_LIST} items. Unknown keys are errors."
            ),
            "example": {
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
            },
        }
        return self.schemas


def definition_components(catalog: Catalog | None = None) -> dict[str, dict]:
    """Named schemas of the definition format for OpenAPI components (refs `#/components/schemas/<name>`).

    `SegmentDefinition` is the root. Without a catalog: the fields every workspace has, custom
    attributes as `attributes.<key>` of any type.
    """
    return _Builder(catalog, OPENAPI_REF).build()


def definition_json_schema(catalog: Catalog | None = None) -> dict:
    """A standalone JSON Schema (draft 2020-12) of a definition; with a workspace's catalog, its fields.

    >>> schema = definition_json_schema()
    >>> schema["$ref"]
    '#/$defs/SegmentDefinition'
    """
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Segment definition",
        "$ref": JSON_SCHEMA_REF + ROOT,
        "$defs": _Builder(catalog, JSON_SCHEMA_REF).build(),
    }


def add_definition_components(result: dict, generator: Any = None, request: Any = None, public: Any = None) -> dict:
    """drf-spectacular post-processing hook: add the definition's components to the OpenAPI document.

    Runs after the enum extraction hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]), so the
    definition's small inline enums are not turned into dozens of shared enum components.
    `segments_app.serializers.DefinitionField` refers to the root, `SegmentDefinition`.
    """
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in definition_components().items():
        schemas.setdefault(name, schema)
    return result
