"""Why a contact is or is not in a segment, condition by condition.

>>> explain_contact(workspace=ws, segment=segment, contact=contact)["conditions"][0]  # doctest: +SKIP
{'path': 'conditions[0]', 'summary': 'who bought Acme products for over 300 EUR in the last 6 months',
 'holds': True, 'observed': 412.5, 'text': 'spent 412.50 EUR on Acme products in the last 6 months > 300: yes'}

Each condition is decided by the compiler itself: the single condition compiled and restricted to the
contact (one small query), so an explanation can never disagree with the segment's query. `observed` is
the value the condition looked at, read with a second small query over the same rows: a contact field or
computed figure, the contact's matching tags, an orders or events measure (count, amount, time) over the
condition's window and filters, or whether the contact matches a referenced segment's rule. Groups carry
their own `holds` (all / any / none of their nodes), and `member` is the whole definition compiled and
restricted to the contact, which is what the segment's recompute would decide now.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from contacts.models import Contact, ContactStats, Workspace

from . import catalog as cat
from .compiler import ISO_DATETIME_PATTERN, compile_definition, compile_node, measure_figures
from .definition import (
    AttributeCondition,
    EventCondition,
    Group,
    OrdersCondition,
    SegmentCondition,
    TagCondition,
)
from .models import Segment
from .services import ValidDefinition, check_definition
from .summary import Describer, amount_text, money_text, number_text, span_text, time_text, window_text
from .timespec import parse_iso

MISSING_TEXT = "missing"


def explain_contact(
    *, workspace: Workspace, segment: Segment, contact: Contact, now: datetime | None = None
) -> dict[str, Any]:
    """Explain the segment's stored definition for one contact of the workspace, evaluated at `now`.

    Raises `DefinitionError` when the stored definition no longer validates (e.g. it names a custom
    attribute that has disappeared from the data).
    """
    now = (now or timezone.now()).astimezone(UTC)
    valid = check_definition(segment.definition, workspace=workspace, segment_id=segment.pk)
    names = dict(Segment.objects.filter(workspace=workspace, pk__in=valid.segments.parsed).values_list("pk", "name"))
    explainer = _Explainer(valid, workspace=workspace, contact=contact, now=now, segment_names=names)
    nodes = [explainer.node(node, f"conditions[{i}]") for i, node in enumerate(valid.group.conditions)]
    holds = _combine(valid.group.match, [n["holds"] for n in nodes])
    return {
        "segment": {"id": segment.pk, "name": segment.name},
        "contact": {"external_id": contact.external_id, "email": contact.email},
        "member": explainer.holds(valid.group, top=True),
        "evaluated_at": now.isoformat().replace("+00:00", "Z"),
        "summary": explainer.describe.summary(valid.group),
        "match": valid.group.match,
        "holds": holds,
        "conditions": nodes,
    }


def _combine(match: str, holds: list[bool]) -> bool:
    if match == "all":
        return all(holds)
    if match == "any":
        return any(holds)
    return not any(holds)  # none


class _Explainer:
    def __init__(
        self,
        valid: ValidDefinition,
        *,
        workspace: Workspace,
        contact: Contact,
        now: datetime,
        segment_names: dict[int, str],
    ) -> None:
        self.valid = valid
        self.catalog = valid.catalog
        self.workspace = workspace
        self.contact = contact
        self.now = now
        self.describe = Describer(catalog=valid.catalog, currency=workspace.currency, segment_name=segment_names)
        self._stats: ContactStats | None = None

    # -- deciding

    def holds(self, node: Any, *, top: bool = False) -> bool:
        """The compiler's answer for this contact: the node compiled on its own and restricted to the contact.

        `top`: the whole definition (where an empty group means every contact).
        """
        compile_ = compile_definition if top else compile_node
        condition = compile_(node, catalog=self.catalog, now=self.now, resolve_segment=self.valid.segments.resolve)
        return Contact.objects.filter(pk=self.contact.pk, workspace=self.workspace).filter(condition).exists()

    def node(self, node: Any, path: str) -> dict[str, Any]:
        if isinstance(node, Group):
            children = [self.node(child, f"{path}.conditions[{i}]") for i, child in enumerate(node.conditions)]
            return {
                "path": path,
                "match": node.match,
                "summary": self.describe.node(node),
                "holds": _combine(node.match, [c["holds"] for c in children]),
                "conditions": children,
            }
        holds = self.holds(node)
        observed, text = self.observe(node)
        return {
            "path": path,
            "summary": self.describe.condition(node),
            "holds": holds,
            "observed": observed,
            "text": f"{text}: {'yes' if holds else 'no'}",
        }

    # -- observing

    def observe(self, node: Any) -> tuple[Any, str]:
        """(the value the condition looked at as JSON, the text before ": yes|no")."""
        if isinstance(node, AttributeCondition):
            return self.attribute(node)
        if isinstance(node, TagCondition):
            return self.tag(node)
        if isinstance(node, OrdersCondition):
            return self.orders(node)
        if isinstance(node, EventCondition):
            return self.event(node)
        if isinstance(node, SegmentCondition):
            return self.segment(node)
        raise ValueError(f"not a condition: {type(node).__name__}")

    def stats(self) -> ContactStats:
        if self._stats is None:
            found = ContactStats.objects.filter(contact_id=self.contact.pk).first()
            self._stats = found or ContactStats(contact_id=self.contact.pk, workspace_id=self.workspace.pk)
        return self._stats

    def attribute(self, cond: AttributeCondition) -> tuple[Any, str]:
        field = self.catalog.field(cond.field)
        if field.source == cat.SOURCE_STATS:
            raw = getattr(self.stats(), field.column.removeprefix("stats__"))
        elif field.source == cat.SOURCE_ATTRIBUTE:
            attributes = self.contact.attributes if isinstance(self.contact.attributes, dict) else {}
            raw = _typed_attribute(field.type, attributes.get(field.json_key))
        else:
            raw = getattr(self.contact, field.column)
        if field.type in (cat.TEXT, cat.CHOICE) and raw == "":
            raw = None  # the empty string is missing
        shown = self.shown(field.key, field.type, raw)
        return _json(raw), f"{self.describe.noun(field.key)} {shown} {self.op_text(field.key, field.type, cond)}"

    def shown(self, key: str | None, type_: str, raw: Any) -> str:
        if raw is None:
            return MISSING_TEXT
        if isinstance(raw, bool):
            return "true" if raw else "false"
        if isinstance(raw, datetime):
            return time_text(raw)
        if isinstance(raw, date):
            return raw.isoformat()
        if isinstance(raw, (int, float, Decimal)):
            if key in ("total_spent", "avg_order_value"):
                return money_text(raw, self.workspace.currency, cents=True)
            return number_text(raw)
        return f'"{raw}"' if type_ == cat.TEXT else str(raw)

    def op_text(self, key: str | None, type_: str, cond: Any) -> str:
        """The operator and value in symbols: "> 300", "= "PL"", "in the last 48 hours"."""
        op, value = cond.op, cond.value
        show = lambda v: self.describe.value_text(key, type_, v)  # noqa: E731 - a local shorthand
        symbols = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
        if op in symbols:
            return f"{symbols[op]} {show(value)}"
        if op in ("in", "not_in"):
            listed = ", ".join(show(v) for v in value)
            return f"in [{listed}]" if op == "in" else f"not in [{listed}]"
        if op == "between":
            return f"between {show(value[0])} and {show(value[1])}"
        if op == "in_last":
            return f"in {span_text(value)}"
        if op == "not_in_last":
            return f"more than {amount_text(value.amount, value.unit)} ago or missing"
        return self.describe.predicate(key, type_, op, value).removeprefix("is ")

    def tag(self, cond: TagCondition) -> tuple[Any, str]:
        wanted = set(cond.names)
        has = sorted(
            name
            for name in self.contact.tags.filter(workspace=self.workspace).values_list("name", flat=True)
            if name in wanted
        )
        listed = ", ".join(cond.names)
        words = {"has_any": "any of", "has_all": "all of", "has_none": "none of"}[cond.op]
        shown = ", ".join(has) if has else "none of them"
        return has, f"tags {listed}: has {shown}; needs {words} them"

    def figures(self, cond: OrdersCondition | EventCondition) -> dict[str, Any]:
        rows = measure_figures(cond, catalog=self.catalog, now=self.now)
        if rows is None:
            return {}
        found = list(rows.filter(contact_id=self.contact.pk))
        return found[0] if found else {}

    def orders(self, cond: OrdersCondition) -> tuple[Any, str]:
        figures = self.figures(cond)
        count = figures.get("count", 0)
        cents = {
            "sum": figures.get("amount") or 0,
            "min": figures.get("min_amount"),
            "max": figures.get("max_amount"),
        }
        order_filters, item_filters = self.describe.split_filters(cond.filters)
        window = window_text(cond.window)
        where = self.describe.order_filters_text(order_filters)
        items = self.describe.items_text(item_filters) if item_filters else ""
        op = self.op_text("amount", cat.NUMBER, cond) if cond.measure in ("sum", "avg", "min", "max") else ""
        if cond.measure == "count":
            orders = f"{count} order{'s' if count != 1 else ''}"
            op = self.op_text(None, cat.NUMBER, cond)
            if items:
                in_where = f" {where}" if where else ""
                return count, f"bought {items} in {orders}{in_where}{window} {op}"
            return count, f"placed {orders}{(' ' + where) if where else ''}{window} {op}"
        if cond.measure in ("sum", "min", "max", "avg"):
            if cond.measure == "avg":
                value = Decimal(cents["sum"]) / count / 100 if count else None
            else:
                value = Decimal(cents[cond.measure]) / 100 if cents[cond.measure] is not None else None
            shown = money_text(value, self.workspace.currency, cents=True) if value is not None else MISSING_TEXT
            of_items = f" of {items}" if items else ""
            in_orders = f" in orders {where}" if where else ""
            if cond.measure == "sum":
                on = f" on {items}" if items else (f" on orders {where}" if where else "")
                in_orders = f" in orders {where}" if items and where else ""
                return _json(value), f"spent {shown}{on}{in_orders}{window} {op}"
            noun = {"avg": "average order", "min": "smallest order", "max": "largest order"}[cond.measure]
            return _json(value), f"{noun}{of_items}{in_orders}{window} {shown} {op}"
        moment = figures.get(cond.measure)
        of_items = f" of {items}" if items else ""
        noun = "first order" if cond.measure == "first_at" else "last order"
        shown = time_text(moment) if moment is not None else MISSING_TEXT
        text = f"{noun}{of_items}{(' ' + where) if where else ''}{window} {shown} {self.time_op(cond)}"
        return _json(moment), text

    def event(self, cond: EventCondition) -> tuple[Any, str]:
        figures = self.figures(cond)
        past, _base, noun = self.describe.event_phrases(cond.event)
        where = self.describe.event_filters_text(cond.filters)
        window = window_text(cond.window)
        if cond.measure == "count":
            count = figures.get("count", 0)
            times = f"{count} time{'s' if count != 1 else ''}"
            return count, f"{past}{where} {times}{window} {self.op_text(None, cat.NUMBER, cond)}"
        moment = figures.get(cond.measure)
        which = "first" if cond.measure == "first_at" else "last"
        shown = time_text(moment) if moment is not None else MISSING_TEXT
        return _json(moment), f"{which} {noun}{where}{window} {shown} {self.time_op(cond)}"

    def time_op(self, cond: Any) -> str:
        return self.op_text(None, cat.DATETIME, cond)

    def segment(self, cond: SegmentCondition) -> tuple[Any, str]:
        inside = self.holds(SegmentCondition(op="in", segment=cond.segment))
        label = self.describe.segment_label(cond.segment)
        wanted = "in" if cond.op == "in" else "not in"
        return inside, f"{'in' if inside else 'not in'} {label} now (needs: {wanted})"


def _typed_attribute(type_: str, value: Any) -> Any:
    """A custom attribute's stored JSON value as its type sees it; anything else is missing (catalog rules)."""
    if type_ == cat.NUMBER:
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if type_ == cat.BOOLEAN:
        return value if isinstance(value, bool) else None
    if type_ in (cat.TEXT, cat.CHOICE):
        return value if isinstance(value, str) and value != "" else None
    if type_ == cat.DATETIME:
        if isinstance(value, str) and _ISO.match(value):
            try:
                return parse_iso(value)
            except ValueError:
                return None
        return None
    return value


_ISO = re.compile(ISO_DATETIME_PATTERN)


def _json(value: Any) -> Any:
    """A value as JSON: numbers as numbers, times in ISO 8601 UTC, dates as YYYY-MM-DD."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value
