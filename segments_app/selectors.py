"""Read-side functions of the segment engine: who matches a definition now.

Every caller (preview, membership recompute, campaigns, explain) goes through
`segment_contacts`, so there is one way a definition becomes a query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from contacts.models import Contact, Workspace

from .catalog import build_catalog
from .compiler import compile_definition
from .definition import Group, WorkspaceSegments, parse_definition, resolve_references


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
    catalog = build_catalog(workspace)
    segments = WorkspaceSegments(workspace.pk)
    if isinstance(definition, Group):
        group = definition
        resolve_references(group, catalog=catalog, segments=segments, segment_id=segment_id)
    else:
        group = parse_definition(definition, catalog=catalog, segments=segments, segment_id=segment_id)
    condition = compile_definition(group, catalog=catalog, now=now or timezone.now(), resolve_segment=segments.resolve)
    return Contact.objects.filter(workspace=workspace).filter(condition)
