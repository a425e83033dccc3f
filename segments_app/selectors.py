"""Read-side functions of the segment engine: who matches a definition now.

Every caller (preview, membership recompute, campaigns, explain) goes through
`segment_contacts`, so there is one way a definition becomes a query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import PROTECT, RESTRICT, QuerySet
from django.utils import timezone

from contacts.models import Contact, Workspace

from .catalog import Catalog, build_catalog
from .compiler import answered_by_figures, compile_definition, compile_matching, direct_ids, union_parts
from .definition import (
    DefinitionError,
    EventCondition,
    Group,
    OrdersCondition,
    SegmentCondition,
    WorkspaceSegments,
    parse_definition,
    resolve_references,
)
from .models import Segment


def segment_contacts(
    *,
    workspace: Workspace,
    definition: dict[str, Any] | Group,
    now: datetime | None = None,
    segment_id: int | None = None,
) -> QuerySet[Contact]:
    """Contacts of the workspace matching the definition right now (validates first; raises DefinitionError).

    `definition` is the JSON document or an already parsed `Group`; segments it refers
    to are read from the workspace and inlined (their rules evaluated at `now`).
    `segment_id` is the segment the definition belongs to, if any, so that a reference
    back to it is refused as a cycle.

    >>> segment_contacts(workspace=ws, definition={"match": "all", "conditions": [  # doctest: +SKIP
    ...     {"type": "tag", "op": "has_any", "value": ["vip"]}]}).count()
    42
    """
    catalog = build_catalog(workspace, discover_attributes=False)
    segments = WorkspaceSegments(workspace.pk)
    if isinstance(definition, Group):
        group = definition
        resolve_references(group, catalog=catalog, segments=segments, segment_id=segment_id)
    else:
        group = parse_definition(definition, catalog=catalog, segments=segments, segment_id=segment_id)
    condition = compile_definition(group, catalog=catalog, now=now or timezone.now(), resolve_segment=segments.resolve)
    return Contact.objects.filter(workspace=workspace).filter(condition)


# ---------------------------------------------------------------------------- added for the segments API


@dataclass(frozen=True)
class Matching:
    """The contacts a definition matches now, for counting them and listing their ids.

    `rows` is a queryset whose primary keys are the matching contacts' ids (ContactStats or Contact rows;
    narrow it with `.filter(pk__in=...)` to re-evaluate a few contacts). `direct` (SQL and params), when the
    definition is conditions on orders, items, events or tags joined by AND, selects the contact ids straight
    from those rows, which counts fastest (`compiler.direct_ids`); or, for "missing or older than N" on a
    figure, adds up the two index ranges (`compiler.union_parts`).
    """

    rows: QuerySet
    direct: tuple[str, tuple] | None = None

    def sql(self) -> tuple[str, tuple]:
        """SQL and params selecting the ids (one column), to embed in hand-written SQL."""
        if self.direct is not None:
            return self.direct
        return contact_ids_sql(self.rows)

    def count(self) -> int:
        sql, params = self.sql()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM ({sql}) matching", params)
            return cursor.fetchone()[0]

    def first_ids(self, limit: int) -> list[int]:
        sql, params = self.sql()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM ({sql}) matching ORDER BY 1 LIMIT %s", (*params, limit))
            return [row[0] for row in cursor.fetchall()]


def matching_ids(
    *, workspace: Workspace, group: Group, catalog: Catalog, segments: WorkspaceSegments, now: datetime
) -> Matching:
    """The contacts matching a parsed definition, for counting them and listing their ids (previews,
    recomputes). Rooted on the computed figures when the definition reads them (`compiler.compile_matching`),
    so counts need no join with every contact."""
    model, condition = compile_matching(group, catalog=catalog, now=now, resolve_segment=segments.resolve)
    of_workspace = model.objects.filter(workspace_id=workspace.pk)
    direct = direct_ids(condition)
    parts = union_parts(condition) if direct is None else None
    if parts:
        # "Missing or older than 30 days": the two index ranges added up (UNION ALL: they share no row).
        first, second = (of_workspace.filter(part).values("pk") for part in parts)
        direct = contact_ids_sql(first.union(second, all=True))
    return Matching(rows=of_workspace.filter(condition), direct=direct)


def reads_history(group: Group, *, segments: WorkspaceSegments, catalog: Catalog, now: datetime) -> bool:
    """Whether a parsed definition, the segments it refers to included, reads orders, items or events that
    no stored figure answers (`compiler.answered_by_figures`): the expensive kind of condition."""
    for node in group.conditions:
        if isinstance(node, Group):
            if reads_history(node, segments=segments, catalog=catalog, now=now):
                return True
        elif isinstance(node, SegmentCondition):
            if reads_history(segments.resolve(node.segment), segments=segments, catalog=catalog, now=now):
                return True
        elif isinstance(node, OrdersCondition | EventCondition) and not answered_by_figures(
            node, catalog=catalog, now=now
        ):
            return True
    return False


def contact_ids_sql(contacts: QuerySet) -> tuple[str, tuple]:
    """SQL and params selecting the ids of `contacts` (or of `matching_ids` rows), to embed in hand-written SQL.

    A definition that can never match (e.g. "orders count is not set") compiles to an empty `pk IN ()`,
    which Django refuses to render; that becomes a query of no rows rather than an error.
    """
    try:
        return contacts.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:
        table = Contact._meta.db_table
        return f'SELECT "{table}"."id" FROM "{table}" WHERE 1 = 0', ()


def workspace_segments(*, workspace: Workspace) -> QuerySet[Segment]:
    """The workspace's segments in id order (the API list)."""
    return Segment.objects.filter(workspace=workspace).order_by("pk")


def segment_names(*, workspace: Workspace, ids: Iterable[int]) -> dict[int, str]:
    """Names of some of the workspace's segments by id (for summaries of definitions that refer to them)."""
    wanted = set(ids)
    if not wanted:
        return {}
    return dict(Segment.objects.filter(workspace=workspace, pk__in=wanted).values_list("pk", "name"))


def referenced_segment_ids(definition: Any) -> set[int]:
    """Every segment id a raw (possibly invalid) definition refers to, at any depth.

    >>> sorted(referenced_segment_ids({"match": "all", "conditions": [{"type": "segment", "op": "in", "segment": 7},
    ...     {"match": "any", "conditions": [{"type": "segment", "op": "not_in", "segment": 3}]}]}))
    [3, 7]
    """
    found: set[int] = set()
    stack = [definition]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("segment")
            if node.get("type") == "segment" and isinstance(ref, int) and not isinstance(ref, bool):
                found.add(ref)
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(node)
    return found


def segment_users(*, segment: Segment) -> dict[str, list[dict[str, Any]]]:
    """Who uses a segment, so that deleting it would break or silently widen them; `{}` when nobody does.

    Answers `{"segments": [{"id", "name"}], "campaigns": [...], ...}`:

    - `segments`: segments of the workspace whose definition refers to it (directly; a definition
      referring to one of those is broken through them and blocks their deletion in turn);
    - every other model whose rows choose the segment: many-to-many relations (a campaign's targets
      and exclusions, a webhook endpoint's segments, where losing the segment would silently widen the
      endpoint to every segment) and foreign keys that forbid the deletion (PROTECT, RESTRICT: an
      automation's segment), keyed by the model's plural name (`campaigns`, `automations`,
      `webhook_endpoints`). Rows deleted with the segment (CASCADE: its members, snapshots, change log)
      or detached from it (SET_NULL: a sent campaign's recipients) are not users. This is read from
      `Segment._meta.related_objects`, so a new model counts without this function knowing it.
    """
    used_by: dict[str, list[dict[str, Any]]] = {}
    referring = [
        {"id": pk, "name": name}
        for pk, name, definition in Segment.objects.filter(workspace_id=segment.workspace_id)
        .exclude(pk=segment.pk)
        .order_by("pk")
        .values_list("pk", "name", "definition")
        if segment.pk in referenced_segment_ids(definition)
    ]
    if referring:
        used_by["segments"] = referring
    through_models = {
        rel.through for rel in Segment._meta.related_objects if rel.many_to_many and getattr(rel, "through", None)
    }
    for rel in Segment._meta.related_objects:
        if rel.many_to_many:
            owners = rel.related_model._default_manager.filter(**{rel.field.name: segment}).distinct()
        elif rel.related_model in through_models or rel.on_delete not in (PROTECT, RESTRICT):
            continue
        else:
            owners = rel.related_model._default_manager.filter(**{rel.field.name: segment})
        entries = [{"id": obj.pk, "name": _display_name(obj)} for obj in owners.order_by("pk")[:USERS_SHOWN]]
        if entries:
            key = str(rel.related_model._meta.verbose_name_plural).replace(" ", "_")
            known = {entry["id"] for entry in used_by.get(key, [])}
            used_by.setdefault(key, []).extend(e for e in entries if e["id"] not in known)
    return used_by


# At most this many users of each kind are listed (enough to act on; the message gives the totals).
USERS_SHOWN = 100


def _display_name(obj: Any) -> str:
    name = getattr(obj, "name", None)
    return name if isinstance(name, str) and name else str(obj)


def field_catalog(*, workspace: Workspace) -> dict[str, Any]:
    """The workspace's field catalog as the wizard and `GET /api/v1/segments/fields/` show it."""
    return build_catalog(workspace).as_json()


def segment_summaries(
    *, workspace: Workspace, segments: Iterable[Segment], catalog: Catalog | None = None
) -> dict[int, str]:
    """The plain-language summary of each segment's stored definition, by segment id.

    One catalog and one name query for all of them. A stored definition that no longer validates (e.g.
    a custom attribute it names has disappeared from the data) is described by its first error instead.
    """
    from .summary import summarize

    segments = list(segments)
    if not segments:
        return {}
    catalog = catalog or build_catalog(workspace, discover_attributes=False)
    resolver = WorkspaceSegments(workspace.pk)
    parsed: dict[int, Group | DefinitionError] = {}
    for segment in segments:
        try:
            parsed[segment.pk] = parse_definition(
                segment.definition, catalog=catalog, segments=resolver, segment_id=segment.pk
            )
        except DefinitionError as exc:
            parsed[segment.pk] = exc
    names = segment_names(workspace=workspace, ids=resolver.parsed)
    result = {}
    for segment_id, group in parsed.items():
        if isinstance(group, DefinitionError):
            first = group.errors[0]
            where = f" at {first['path']}" if first["path"] else ""
            result[segment_id] = f"(invalid definition{where}: {first['message']})"
        else:
            result[segment_id] = summarize(group, catalog=catalog, currency=workspace.currency, segment_names=names)
    return result
