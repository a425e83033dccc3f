"""Reads for the segment pages: the list with its trend lines, the size history, overlap, stored members.

Each function is one query (or a fixed few), whatever the number of segments or members.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from contacts.models import Workspace
from segments_app import membership
from segments_app.models import Segment, SegmentMember, SegmentSnapshot

from .charts import Sparkline, sparkline

SPARKLINE_POINTS = 30

SORTS: dict[str, tuple[str, ...]] = {
    "name": ("name", "pk"),
    "-name": ("-name", "-pk"),
    "size": (F("size").asc(nulls_first=True), "pk"),
    "-size": (F("size").desc(nulls_last=True), "-pk"),
    "computed": (F("computed_at").asc(nulls_first=True), "pk"),
    "-computed": (F("computed_at").desc(nulls_last=True), "-pk"),
    "-updated": ("-updated_at", "-pk"),
}
DEFAULT_SORT = "name"
SORT_LABELS = [
    ("name", "Name (A–Z)"),
    ("-name", "Name (Z–A)"),
    ("-size", "Largest first"),
    ("size", "Smallest first"),
    ("-computed", "Recently computed"),
    ("computed", "Longest since computed"),
    ("-updated", "Recently edited"),
]


@dataclass
class SegmentRow:
    segment: Segment
    trend: Sparkline | None
    summary: str = ""  # filled by the view from the summaries of all rows at once


def segment_rows(*, workspace: Workspace, search: str = "", sort: str = DEFAULT_SORT) -> list[SegmentRow]:
    """The workspace's segments matching `search` (name or description), sorted, each with its size trend."""
    segments = Segment.objects.filter(workspace=workspace)
    if search:
        segments = segments.filter(Q(name__icontains=search) | Q(description__icontains=search))
    rows = list(segments.order_by(*SORTS.get(sort, SORTS[DEFAULT_SORT])))
    trends = recent_sizes(segment_ids=[segment.pk for segment in rows])
    return [SegmentRow(segment, sparkline(trends.get(segment.pk, []))) for segment in rows]


def recent_sizes(*, segment_ids: list[int], points: int = SPARKLINE_POINTS) -> dict[int, list[int]]:
    """The sizes of each segment's last `points` snapshots, oldest first, in one query (a window function)."""
    if not segment_ids:
        return {}
    ranked = (
        SegmentSnapshot.objects.filter(segment_id__in=segment_ids)
        .annotate(rank=Window(RowNumber(), partition_by=[F("segment_id")], order_by=[F("computed_at").desc(),
                                                                                       F("pk").desc()]))
        .filter(rank__lte=points)
        .values_list("segment_id", "size", "rank")
    )
    sizes: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for segment_id, size, rank in ranked:
        sizes[segment_id].append((rank, size))
    return {segment_id: [size for _, size in sorted(pairs, reverse=True)] for segment_id, pairs in sizes.items()}


def size_history(*, segment: Segment, limit: int = 200) -> list[SegmentSnapshot]:
    """The segment's last `limit` snapshots, oldest first (the history chart and its table)."""
    latest = SegmentSnapshot.objects.filter(segment=segment).order_by("-computed_at", "-pk")[:limit]
    return list(reversed(latest))


@dataclass(frozen=True)
class Overlap:
    segment_id: int
    name: str
    size: int | None
    shared: int
    share_of_this: float
    share_of_other: float


def overlap(*, segment: Segment) -> list[Overlap]:
    """How many stored members the segment shares with each other segment of its workspace (one query).

    Segments sharing nobody are left out; the largest overlap comes first.
    """
    members = SegmentMember.objects.filter(segment=segment).values("contact_id")
    rows = (
        SegmentMember.objects.filter(segment__workspace_id=segment.workspace_id, contact_id__in=members)
        .exclude(segment=segment)
        .values("segment_id", "segment__name", "segment__size")
        .annotate(shared=Count("pk"))
        .order_by("-shared", "segment__name")
    )
    own = segment.size or 0
    return [
        Overlap(
            segment_id=row["segment_id"],
            name=row["segment__name"],
            size=row["segment__size"],
            shared=row["shared"],
            share_of_this=row["shared"] / own if own else 0.0,
            share_of_other=row["shared"] / row["segment__size"] if row["segment__size"] else 0.0,
        )
        for row in rows
    ]


def stored_members(*, segment: Segment) -> QuerySet[SegmentMember]:
    """The segment's stored members with their contact and figures, newest entries first."""
    # membership's reader trims the columns for the API; the page shows more of each contact.
    return (
        membership.stored_members(segment=segment)
        .defer(None)
        .select_related("contact", "contact__stats")
        .order_by("-since", "-contact_id")
    )


def other_segments(*, workspace: Workspace, exclude_id: int | None = None) -> list[tuple[int, str]]:
    """(id, name) of the workspace's segments, except the one being edited (for segment conditions)."""
    segments = Segment.objects.filter(workspace=workspace).order_by("name", "pk")
    if exclude_id is not None:
        segments = segments.exclude(pk=exclude_id)
    return list(segments.values_list("pk", "name"))
