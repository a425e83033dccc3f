"""Writes of segments (create, update, delete) and the preview, shared by the API, the wizard and the admin.

Every input is checked before anything is written, and all problems are reported at once as located
errors (`SegmentInvalid`), each path from the root of the request: `name`, `refresh_minutes`,
`definition` (missing, or not an object), `definition.conditions[1].value`. A refused request changes
nothing. (The REST API shows definition errors from the definition's own root, as the definition
contract does: `conditions[1].value`.)


Names are required, at most 200 characters after trimming surrounding whitespace, and unique within a
workspace ignoring case ("VIP buyers" and "vip buyers" cannot both exist), so that a name identifies a
segment in summaries ("in segment "VIP buyers"") and in the wizard's pickers.

Creating a segment or changing its definition schedules a recompute of its stored membership (trigger
`definition_change`) after the commit. Deleting a segment that other segments or campaigns use is refused
with the list of users (`SegmentInUse`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone

from contacts.models import Contact, Workspace

from .catalog import Catalog, build_catalog
from .definition import (
    DefinitionError,
    Group,
    WorkspaceSegments,
    parse_definition,
)
from .guards import statement_timeout
from .models import Segment, SegmentSnapshot
from .selectors import Matching, matching_ids, reads_history, referenced_segment_ids, segment_names, segment_users
from .summary import summarize

NAME_MAX = 200
DESCRIPTION_MAX = 5000
REFRESH_MINUTES_DEFAULT = 60
REFRESH_MINUTES_MAX = 43_200  # 30 days
SAMPLE_SIZE = 10

_UNSET: Any = object()


class SegmentInvalid(Exception):
    """The request breaks a rule; `errors` lists every problem as `{"path", "message"}`."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['path'] or '(root)'}: {e['message']}" for e in errors[:5]))


class SegmentInUse(Exception):
    """Deleting the segment would break its users: `used_by` as `segment_users` answers it."""

    def __init__(self, segment: Segment, used_by: dict[str, list[dict[str, Any]]]) -> None:
        self.segment = segment
        self.used_by = used_by
        listed = ", ".join(_counted(len(entries), kind.replace("_", " ")) for kind, entries in used_by.items())
        super().__init__(
            f"segment {segment.name!r} is used by {listed}; remove it from their definitions or targets first"
        )


def _counted(count: int, plural: str) -> str:
    """'1 segment', '2 segments'."""
    return f"{count} {plural[:-1] if count == 1 and plural.endswith('s') else plural}"


@dataclass(frozen=True)
class ValidDefinition:
    """A definition that passed validation, with what was learnt on the way (for the summary and compile)."""

    raw: Any
    group: Group
    catalog: Catalog
    segments: WorkspaceSegments


@dataclass(frozen=True)
class PreviewResult:
    count: int
    sample: list[Contact]
    summary: str
    elapsed_ms: int  # validation, count and sample


# ---------------------------------------------------------------------------- validation


def check_definition(definition: Any, *, workspace: Workspace, segment_id: int | None = None) -> ValidDefinition:
    """Validate a definition for the workspace; raises `DefinitionError` with every located error.

    Paths are from the definition's root (`conditions[1].value`). `segment_id` is the segment being
    edited: a reference back to it, directly or through others, is a cycle. The catalog is built fresh
    without scanning every contact's attributes: a custom attribute is typed when a definition names it.
    """
    return _parse_with(
        build_catalog(workspace, discover_attributes=False), definition, workspace=workspace, segment_id=segment_id
    )


def _parse_with(catalog: Catalog, definition: Any, *, workspace: Workspace, segment_id: int | None) -> ValidDefinition:
    segments = WorkspaceSegments(workspace.pk)
    group = parse_definition(definition, catalog=catalog, segments=segments, segment_id=segment_id)
    return ValidDefinition(raw=definition, group=group, catalog=catalog, segments=segments)


def definition_errors(exc: DefinitionError) -> list[dict[str, str]]:
    """A definition's errors located from the request's root: `definition.conditions[1].value`."""
    return [
        {"path": f"definition.{e['path']}" if e["path"] else "definition", "message": e["message"]} for e in exc.errors
    ]


def _check_name(
    name: Any, *, workspace: Workspace, exclude_id: int | None, unique: bool, errors: list
) -> str | None:
    if name is None or (isinstance(name, str) and not name.strip()):
        errors.append({"path": "name", "message": "name is required"})
        return None
    if not isinstance(name, str):
        errors.append({"path": "name", "message": "name must be a string"})
        return None
    name = name.strip()
    if len(name) > NAME_MAX:
        errors.append({"path": "name", "message": f"name has at most {NAME_MAX} characters, got {len(name)}"})
        return None
    if "\x00" in name:
        errors.append({"path": "name", "message": "name cannot contain the NUL character"})
        return None
    if not unique:
        return name
    taken = Segment.objects.filter(workspace=workspace, name__iexact=name)
    if exclude_id is not None:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        errors.append({"path": "name", "message": f"a segment named {name!r} already exists in this workspace"})
        return None
    return name


def _check_description(description: Any, errors: list) -> str | None:
    if description is None:
        return ""
    if not isinstance(description, str):
        errors.append({"path": "description", "message": "description must be a string"})
        return None
    if len(description) > DESCRIPTION_MAX:
        errors.append({"path": "description", "message": f"description has at most {DESCRIPTION_MAX} characters"})
        return None
    if "\x00" in description:
        errors.append({"path": "description", "message": "description cannot contain the NUL character"})
        return None
    return description


def _check_refresh_minutes(value: Any, errors: list) -> int | None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= REFRESH_MINUTES_MAX:
        errors.append(
            {
                "path": "refresh_minutes",
                "message": f"refresh_minutes must be a whole number from 0 (only on demand) to {REFRESH_MINUTES_MAX}",
            }
        )
        return None
    return value


def _check_definition_into(
    definition: Any, *, workspace: Workspace, segment_id: int | None, errors: list
) -> ValidDefinition | None:
    if definition is None:
        errors.append({"path": "definition", "message": "definition is required"})
        return None
    try:
        return check_definition(definition, workspace=workspace, segment_id=segment_id)
    except DefinitionError as exc:
        errors.extend(definition_errors(exc))
        return None


def _lock_referenced(definition: Any, workspace: Workspace) -> None:
    """Hold the referenced segments until commit, so a concurrent delete cannot slip between check and save."""
    ids = referenced_segment_ids(definition)
    if ids:
        list(Segment.objects.select_for_update().filter(workspace=workspace, pk__in=ids).values_list("pk", flat=True))


def _schedule_recompute(segment_id: int) -> None:
    # Imported here: membership imports the models and the task module, and we only need it on writes.
    from .membership import schedule_recompute

    schedule_recompute(segment_id=segment_id, trigger=SegmentSnapshot.Trigger.DEFINITION_CHANGE)


# ---------------------------------------------------------------------------- writes


@transaction.atomic
def create_segment(
    *,
    workspace: Workspace,
    name: Any,
    definition: Any,
    description: Any = "",
    refresh_minutes: Any = REFRESH_MINUTES_DEFAULT,
    created_by=None,
    unique_name: bool = False,
) -> Segment:
    """Create a segment after checking every field; schedules its first membership computation.

    Names may repeat (the API contract has no such rule); `unique_name` refuses a name another segment
    of the workspace has, ignoring case, as the wizard does so that its segment pickers stay unambiguous.
    Raises `SegmentInvalid` with every located error (nothing is saved).
    """
    _lock_workspace(workspace)
    _lock_referenced(definition, workspace)
    errors: list[dict[str, str]] = []
    clean_name = _check_name(name, workspace=workspace, exclude_id=None, unique=unique_name, errors=errors)
    clean_description = _check_description(description, errors)
    clean_refresh = _check_refresh_minutes(refresh_minutes, errors)
    valid = _check_definition_into(definition, workspace=workspace, segment_id=None, errors=errors)
    if errors:
        raise SegmentInvalid(errors)
    segment = Segment.objects.create(
        workspace=workspace,
        name=clean_name,
        description=clean_description,
        definition=valid.raw,
        refresh_minutes=clean_refresh,
        created_by=created_by,
    )
    _schedule_recompute(segment.pk)
    return segment


@transaction.atomic
def update_segment(
    *,
    segment: Segment,
    name: Any = _UNSET,
    description: Any = _UNSET,
    definition: Any = _UNSET,
    refresh_minutes: Any = _UNSET,
    unique_name: bool = False,
) -> Segment:
    """Change some fields of a segment, checked exactly as on create; omitted fields stay as they are.

    A changed definition schedules a recompute. Raises `SegmentInvalid` (nothing is saved).
    """
    workspace = segment.workspace
    _lock_workspace(workspace)
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    errors: list[dict[str, str]] = []
    changes: dict[str, Any] = {}
    if name is not _UNSET:
        changes["name"] = _check_name(
            name, workspace=workspace, exclude_id=segment.pk, unique=unique_name, errors=errors
        )
    if description is not _UNSET:
        changes["description"] = _check_description(description, errors)
    if refresh_minutes is not _UNSET:
        changes["refresh_minutes"] = _check_refresh_minutes(refresh_minutes, errors)
    definition_changed = definition is not _UNSET and definition != segment.definition
    if definition is not _UNSET:
        _lock_referenced(definition, workspace)
        valid = _check_definition_into(definition, workspace=workspace, segment_id=segment.pk, errors=errors)
        if valid is not None:
            changes["definition"] = valid.raw
    if errors:
        raise SegmentInvalid(errors)
    for field, value in changes.items():
        setattr(segment, field, value)
    if changes:
        segment.save(update_fields=[*changes, "updated_at"])
    if definition_changed:
        _schedule_recompute(segment.pk)
    return segment


@transaction.atomic
def delete_segment(*, segment: Segment) -> None:
    """Delete a segment with its stored membership and history; raises `SegmentInUse` while others use it."""
    locked = Segment.objects.select_for_update().filter(pk=segment.pk).first()
    if locked is None:
        return
    used_by = segment_users(segment=locked)
    if used_by:
        raise SegmentInUse(locked, used_by)
    try:
        locked.delete()
    except (ProtectedError, RestrictedError) as exc:  # a relation added after the check above
        raise SegmentInUse(locked, segment_users(segment=locked) or {"other": []}) from exc


def _lock_workspace(workspace: Workspace) -> None:
    """Serialise segment writes of one workspace, so two requests cannot both take the same free name."""
    list(Workspace.objects.select_for_update().filter(pk=workspace.pk).values_list("pk", flat=True))


# ---------------------------------------------------------------------------- preview


def preview_segment(
    *,
    workspace: Workspace,
    definition: Any,
    segment_id: int | None = None,
    now: datetime | None = None,
    sample_size: int = SAMPLE_SIZE,
) -> PreviewResult:
    """Evaluate a definition now without saving anything: how many contacts match, a few of them, a summary.

    Count and sample run in one transaction under the preview statement timeout
    (`segments_app.guards`); raises `SegmentInvalid` for a bad definition or `segment_id` and
    `PreviewTimeout` when the database takes too long. `segment_id` is the segment being edited, if any:
    the definition may refer to other segments but not, directly or through them, to this one.

    >>> preview_segment(workspace=ws, definition={"match": "all", "conditions": [  # doctest: +SKIP
    ...     {"type": "tag", "op": "has_any", "value": ["vip"]}]}).count
    42
    """
    started = time.monotonic()
    now = now or timezone.now()
    errors: list[dict[str, str]] = []
    if segment_id is not None and not Segment.objects.filter(workspace=workspace, pk=segment_id).exists():
        errors.append({"path": "segment_id", "message": f"no segment {segment_id} in this workspace"})
    valid = _check_definition_into(definition, workspace=workspace, segment_id=segment_id, errors=errors)
    if errors:
        raise SegmentInvalid(errors)
    with statement_timeout():
        matching = matching_ids(
            workspace=workspace, group=valid.group, catalog=valid.catalog, segments=valid.segments, now=now
        )
        one_pass = reads_history(valid.group, segments=valid.segments, catalog=valid.catalog, now=now)
        count, sample = _count_and_sample(matching, sample_size=sample_size, one_pass=one_pass)
    summary = definition_summary(valid, workspace=workspace)
    elapsed_ms = int(round((time.monotonic() - started) * 1000))
    return PreviewResult(count=count, sample=sample, summary=summary, elapsed_ms=elapsed_ms)


def _count_and_sample(matching: Matching, *, sample_size: int, one_pass: bool) -> tuple[int, list[Contact]]:
    """How many contacts match, and the first `sample_size` of them by id.

    Counting and then fetching a sample evaluates the definition twice. For conditions on contact fields and
    computed figures that is cheap and the count alone can be an index-only scan; for conditions that read
    orders or events (`one_pass`: no stored figure answers them) each evaluation costs the whole aggregate,
    so on PostgreSQL the matching ids are materialised once and counted and sampled from there.
    """
    if not sample_size:
        return matching.count(), []
    if not one_pass or connection.vendor != "postgresql":
        count = matching.count()
        # The first ids in id order: the planner may walk the ids in order and stop at the tenth match.
        first = list(matching.rows.order_by("pk").values_list("pk", flat=True)[:sample_size]) if count else []
        return count, list(Contact.objects.filter(pk__in=first).order_by("pk"))
    sql, params = matching.sql()
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH matching(id) AS MATERIALIZED ({sql}) "
            "SELECT (SELECT count(*) FROM matching), ARRAY(SELECT id FROM matching ORDER BY id LIMIT %s)",
            (*params, sample_size),
        )
        count, ids = cursor.fetchone()
    return count, list(Contact.objects.filter(pk__in=ids).order_by("pk"))


def definition_summary(valid: ValidDefinition, *, workspace: Workspace) -> str:
    """The plain-language summary of a checked definition, naming the segments it refers to."""
    names = segment_names(workspace=workspace, ids=valid.segments.parsed)
    return summarize(valid.group, catalog=valid.catalog, currency=workspace.currency, segment_names=names)
