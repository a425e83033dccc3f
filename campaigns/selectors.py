"""Read side of campaigns: the audience query (preview and freeze share it), overlap, lists and progress.

The audience of a campaign, over the stored membership of its segments:

    every contact in at least one target segment, once, with the target segment of highest priority
    (lowest `priority` number; ties: lowest segment id)      -> ROW_NUMBER() OVER (PARTITION BY contact)
    reason it is left out, first that applies: in an exclusion segment ("excluded"), email_status
    "unsubscribed" / "bounced" / "complained", no email address on the email channel ("no_email")
    is_control: the holdout hash (campaigns.holdout)

`audience_sql` is that query; `audience_counts` groups it for previews, and the send freezes its rows
without a reason with one INSERT ... SELECT (`services.freeze_audience`). Priority is resolved in SQL:
contact ids never travel to Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Count, QuerySet

from campaigns.errors import CampaignInvalid
from campaigns.holdout import holdout_sql
from campaigns.models import Automation, AutomationSend, Campaign, CampaignRecipient, Channel, DeliveryStatus
from contacts.models import Contact, Workspace
from segments_app.models import Segment, SegmentMember

REASONS: tuple[str, ...] = ("excluded", "unsubscribed", "bounced", "complained", "no_email")
UNREACHABLE_STATUSES: tuple[str, ...] = (
    Contact.EmailStatus.UNSUBSCRIBED,
    Contact.EmailStatus.BOUNCED,
    Contact.EmailStatus.COMPLAINED,
)


@dataclass(frozen=True)
class AudienceSpec:
    """What decides an audience: targets as (segment id, priority), exclusions, channel, holdout."""

    targets: tuple[tuple[int, int], ...]
    exclusions: tuple[int, ...] = ()
    channel: str = Channel.EMAIL
    holdout_percent: Decimal = Decimal("0")
    # The holdout hash is keyed by the campaign id; a campaign not saved yet previews with 0.
    campaign_id: int = 0

    @classmethod
    def of(cls, campaign: Campaign) -> AudienceSpec:
        targets = tuple(campaign.targets.order_by("priority", "segment_id").values_list("segment_id", "priority"))
        exclusions = tuple(campaign.exclusions.order_by("segment_id").values_list("segment_id", flat=True))
        return cls(
            targets=targets,
            exclusions=exclusions,
            channel=campaign.channel,
            holdout_percent=campaign.holdout_percent,
            campaign_id=campaign.pk,
        )


@dataclass
class AudienceCounts:
    """How many contacts the targets reach and what becomes of them."""

    targeted: int = 0
    left_out: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    recipients: int = 0  # reachable contacts: treated + control
    control: int = 0
    by_segment: dict[int, dict[str, int]] = field(default_factory=dict)  # segment -> {"recipients", "control"}

    @property
    def will_receive(self) -> int:
        return self.recipients - self.control

    def as_json(self) -> dict:
        return {
            "targeted": self.targeted,
            **self.left_out,
            "recipients": self.recipients,
            "control": self.control,
            "will_receive": self.will_receive,
        }


def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "member": quote(SegmentMember._meta.db_table),
        "contact": quote(Contact._meta.db_table),
        "recipient": quote(CampaignRecipient._meta.db_table),
    }


def _placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def audience_sql(spec: AudienceSpec) -> tuple[str, list]:
    """SELECT contact_id, segment_id, reason (NULL: reachable), is_control over the stored memberships."""
    if not spec.targets:
        raise ValueError("an audience needs at least one target segment")
    t = _tables()
    target_ids = [segment_id for segment_id, _ in spec.targets]
    priority_case = " ".join("WHEN %s THEN %s" for _ in spec.targets)
    priority_params = [value for target in spec.targets for value in target]
    if spec.exclusions:
        excluded_sql = (
            f"EXISTS (SELECT 1 FROM {t['member']} x WHERE x.contact_id = ranked.contact_id "
            f"AND x.segment_id IN ({_placeholders(spec.exclusions)}))"
        )
        excluded_params = list(spec.exclusions)
    else:
        excluded_sql, excluded_params = "(1 = 0)", []
    no_email = "(c.email IS NULL OR c.email = '')" if spec.channel == Channel.EMAIL else "(1 = 0)"
    control_sql, control_params = holdout_sql(
        campaign_id=spec.campaign_id, percent=spec.holdout_percent, contact_column="ranked.contact_id"
    )
    sql = f"""
        SELECT ranked.contact_id AS contact_id, ranked.segment_id AS segment_id,
               CASE WHEN {excluded_sql} THEN 'excluded'
                    WHEN c.email_status = %s THEN %s
                    WHEN c.email_status = %s THEN %s
                    WHEN c.email_status = %s THEN %s
                    WHEN {no_email} THEN 'no_email'
               END AS reason,
               {control_sql} AS is_control
        FROM (
            SELECT m.contact_id, m.segment_id,
                   ROW_NUMBER() OVER (
                       PARTITION BY m.contact_id
                       ORDER BY CASE m.segment_id {priority_case} END, m.segment_id
                   ) AS position
            FROM {t["member"]} m
            WHERE m.segment_id IN ({_placeholders(target_ids)})
        ) ranked
        JOIN {t["contact"]} c ON c.id = ranked.contact_id
        WHERE ranked.position = 1
    """
    statuses = [value for status in UNREACHABLE_STATUSES for value in (str(status), str(status))]
    params = [*excluded_params, *statuses, *control_params, *priority_params, *target_ids]
    return sql, params


def audience_counts(spec: AudienceSpec) -> AudienceCounts:
    """The audience as it would be frozen now from the stored memberships (no write)."""
    counts = AudienceCounts()
    if not spec.targets:
        return counts
    sql, params = audience_sql(spec)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT a.segment_id, a.reason, a.is_control, COUNT(*) FROM ({sql}) a "
            "GROUP BY a.segment_id, a.reason, a.is_control",
            params,
        )
        rows = cursor.fetchall()
    for segment_id, reason, is_control, n in rows:
        counts.targeted += n
        if reason is not None:
            counts.left_out[reason] += n
            continue
        per_segment = counts.by_segment.setdefault(segment_id, {"recipients": 0, "control": 0})
        per_segment["recipients"] += n
        counts.recipients += n
        if is_control:
            per_segment["control"] += n
            counts.control += n
    return counts


def segment_overlap(segment_ids: Sequence[int]) -> dict[tuple[int, int], int]:
    """Contacts in both segments, for every pair of the given segments (stored membership)."""
    ids = sorted(set(segment_ids))
    if len(ids) < 2:
        return {}
    t = _tables()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT a.segment_id, b.segment_id, COUNT(*) FROM {t['member']} a "
            f"JOIN {t['member']} b ON b.contact_id = a.contact_id AND b.segment_id > a.segment_id "
            f"WHERE a.segment_id IN ({_placeholders(ids)}) AND b.segment_id IN ({_placeholders(ids)}) "
            "GROUP BY a.segment_id, b.segment_id",
            [*ids, *ids],
        )
        found = {(a, b): n for a, b, n in cursor.fetchall()}
    return {(a, b): found.get((a, b), 0) for i, a in enumerate(ids) for b in ids[i + 1 :]}


def audience_preview(*, workspace: Workspace, data: dict, campaign_id: int = 0) -> dict:
    """Counts and overlap for parsed preview input (`segments`, `exclude_segments`, `channel`, `holdout_percent`).

    Segment ids outside the workspace are CampaignInvalid with located errors. Priority follows the order
    of `segments`. The holdout hash is keyed by `campaign_id`: a campaign not saved yet (0) gets a control
    group of the same expected size, not the same contacts.
    """
    targets = list(data.get("segments", []))
    exclusions = list(data.get("exclude_segments", []))
    known = set(Segment.objects.filter(workspace=workspace, pk__in=targets + exclusions).values_list("pk", flat=True))
    errors = [
        {"path": f"{key}[{index}]", "message": f"no segment {segment_id} in this workspace"}
        for key, ids in (("segments", targets), ("exclude_segments", exclusions))
        for index, segment_id in enumerate(ids)
        if segment_id not in known
    ]
    if errors:
        raise CampaignInvalid(errors)
    ordered = list(dict.fromkeys(targets))
    spec = AudienceSpec(
        targets=tuple((segment_id, position) for position, segment_id in enumerate(ordered, start=1)),
        exclusions=tuple(sorted(set(exclusions))),
        channel=data.get("channel") or Channel.EMAIL,
        holdout_percent=data.get("holdout_percent") or Decimal("0"),
        campaign_id=campaign_id,
    )
    counts = audience_counts(spec)
    return {
        **counts.as_json(),
        "by_segment": {str(segment_id): values for segment_id, values in counts.by_segment.items()},
        "overlap": [{"a": a, "b": b, "contacts": n} for (a, b), n in segment_overlap(ordered).items()],
    }


# --- lists and details ------------------------------------------------------------------------------


def campaign_list(*, workspace: Workspace) -> QuerySet[Campaign]:
    return Campaign.objects.filter(workspace=workspace).prefetch_related("targets", "exclusions").order_by("-pk")


def get_campaign(*, workspace: Workspace, campaign_id: int) -> Campaign | None:
    return campaign_list(workspace=workspace).filter(pk=campaign_id).first()


def workspace_segments(*, workspace: Workspace) -> QuerySet[Segment]:
    return Segment.objects.filter(workspace=workspace).order_by("name", "pk")


def delivery_progress(*, campaign: Campaign) -> dict[str, int]:
    """Recipients by delivery status: pending, sending, sent, failed, control (all keys present)."""
    counts = dict.fromkeys(
        [
            DeliveryStatus.PENDING,
            DeliveryStatus.SENDING,
            DeliveryStatus.SENT,
            DeliveryStatus.FAILED,
            DeliveryStatus.CONTROL,
        ],
        0,
    )
    rows = CampaignRecipient.objects.filter(campaign=campaign).values("status").annotate(n=Count("pk")).order_by()
    for row in rows:
        counts[row["status"]] = row["n"]
    return {str(key): value for key, value in counts.items()}


def campaign_recipients(*, campaign: Campaign) -> QuerySet[CampaignRecipient]:
    return (
        CampaignRecipient.objects.filter(campaign=campaign)
        .select_related("contact")
        .only(
            "pk",
            "status",
            "is_control",
            "segment_id",
            "sent_at",
            "attempts",
            "last_error",
            "next_attempt_at",
            "contact__external_id",
            "contact__email",
        )
    )


def automation_list(*, workspace: Workspace) -> QuerySet[Automation]:
    return Automation.objects.filter(workspace=workspace).select_related("segment", "campaign").order_by("-pk")


def automation_sends(*, automation: Automation) -> QuerySet[AutomationSend]:
    return AutomationSend.objects.filter(automation=automation).select_related("contact")


def automation_progress(*, automation: Automation) -> dict[str, int]:
    rows = AutomationSend.objects.filter(automation=automation).values("status").annotate(n=Count("pk")).order_by()
    return {row["status"]: row["n"] for row in rows}
