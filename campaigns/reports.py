"""Campaign reports and segment health warnings.

Events belong to a campaign through its tracking key: an event whose `campaign` equals
`campaign-<id>` (`Campaign.tracking_key`; every email carries it in the `X-Segments-Campaign` header
and the webhook channel in `campaign.tracking_key`, so the ESP can send it back with the events through
ingest). Automation messages carry `automation-<id>` instead and do not count here.

Per campaign and per target segment (the segment whose variant the recipient got), over the frozen
recipients; each count is of distinct recipients:

- recipients: the treated group (not in the holdout); control: the holdout.
- sent: handed over to the mail server or the webhook; failed: given up.
- bounces / complaints / opens / clicks / unsubscribes: recipients with at least one `email_bounce` /
  `email_complaint` / `email_open` / `email_click` / `unsubscribe` event of the campaign.
- delivered: sent minus bounced. Rates: open, click, unsubscribe and complaint rates over delivered;
  bounce rate over sent.
- conversions: contacts with an order placed from the moment the audience was frozen (`started_at`)
  up to `conversion_window_days` later, counted in both groups over everyone in the group, whether
  the message reached them or not (intention to treat: the comparison stays randomised).
- lift: treated conversion rate minus control conversion rate (p1 - p0), with a 95% confidence interval
  by the normal approximation of the difference of two proportions:
  (p1 - p0) +- 1.96 * sqrt(p1 (1 - p1) / n1 + p0 (1 - p0) / n0); `relative_lift` = (p1 - p0) / p0.
  None when a group is empty (no holdout: no comparison).

Segment health (`segment_health`): a segment gets a warning when
- its open-or-click rate (recipients who opened or clicked / delivered) is under 15% across the last
  three campaigns that reached recipients through it;
- its bounce or complaint rate (over sent) is over 2% across the campaigns frozen in the last 30 days;
- it has fewer than 100 members (stored size).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns.models import Campaign, CampaignRecipient, DeliveryStatus, tracking_key
from contacts.models import Event, Order, Workspace
from segments_app.models import Segment

Z_95 = 1.959963984540054
EVENT_COUNTS = {
    "opens": "email_open",
    "clicks": "email_click",
    "unsubscribes": "unsubscribe",
    "bounces": "email_bounce",
    "complaints": "email_complaint",
}
ENGAGEMENT_FLOOR = 0.15
BOUNCE_CEILING = 0.02
MIN_MEMBERS = 100
HEALTH_CAMPAIGNS = 3
HEALTH_WINDOW = timedelta(days=30)


def _event(key: str, event_type: str) -> Exists:
    return Exists(Event.objects.filter(contact_id=OuterRef("contact_id"), type=event_type, campaign=key))


def _counts(recipients, *, key: str, window: tuple[datetime, datetime] | None) -> list[dict[str, Any]]:
    """Per (segment, control) group: sizes, statuses, distinct recipients with each event, conversions."""
    sent = Q(status=DeliveryStatus.SENT)
    annotations: dict[str, Any] = {
        "size": Count("pk"),
        "sent": Count("pk", filter=sent),
        "failed": Count("pk", filter=Q(status=DeliveryStatus.FAILED)),
        "delivered": Count("pk", filter=sent & ~Q(_event(key, "email_bounce"))),
        "engaged": Count("pk", filter=sent & (Q(_event(key, "email_open")) | Q(_event(key, "email_click")))),
    }
    for name, event_type in EVENT_COUNTS.items():
        annotations[name] = Count("pk", filter=Q(_event(key, event_type)))
    if window is not None:
        orders = Order.objects.filter(
            contact_id=OuterRef("contact_id"), ordered_at__gte=window[0], ordered_at__lte=window[1]
        )
        annotations["conversions"] = Count("pk", filter=Q(Exists(orders)))
    return list(
        recipients.values("segment_id", "is_control").annotate(**annotations).order_by("segment_id", "is_control")
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def lift(*, treated: int, treated_conversions: int, control: int, control_conversions: int) -> dict[str, Any]:
    """Conversion rates of both groups, their difference and its 95% confidence interval (see module doc)."""
    p1 = treated_conversions / treated if treated else None
    p0 = control_conversions / control if control else None
    out: dict[str, Any] = {
        "treated": treated,
        "treated_conversions": treated_conversions,
        "treated_rate": None if p1 is None else round(p1, 6),
        "control": control,
        "control_conversions": control_conversions,
        "control_rate": None if p0 is None else round(p0, 6),
        "lift": None,
        "relative_lift": None,
        "ci95": None,
    }
    if p1 is None or p0 is None:
        return out
    diff = p1 - p0
    margin = Z_95 * math.sqrt(p1 * (1 - p1) / treated + p0 * (1 - p0) / control)
    out["lift"] = round(diff, 6)
    out["relative_lift"] = round(diff / p0, 6) if p0 else None
    out["ci95"] = [round(diff - margin, 6), round(diff + margin, 6)]
    return out


def _group_report(treated: dict[str, int], control: dict[str, int], *, with_conversions: bool) -> dict[str, Any]:
    sent, delivered = treated.get("sent", 0), treated.get("delivered", 0)
    report = {
        "recipients": treated.get("size", 0),
        "control": control.get("size", 0),
        "sent": sent,
        "failed": treated.get("failed", 0),
        "delivered": delivered,
        **{name: treated.get(name, 0) for name in EVENT_COUNTS},
        "open_rate": _rate(treated.get("opens", 0), delivered),
        "click_rate": _rate(treated.get("clicks", 0), delivered),
        "unsubscribe_rate": _rate(treated.get("unsubscribes", 0), delivered),
        "complaint_rate": _rate(treated.get("complaints", 0), delivered),
        "bounce_rate": _rate(treated.get("bounces", 0), sent),
    }
    if with_conversions:
        report["conversions"] = lift(
            treated=treated.get("size", 0),
            treated_conversions=treated.get("conversions", 0),
            control=control.get("size", 0),
            control_conversions=control.get("conversions", 0),
        )
    else:
        report["conversions"] = None
    return report


def _sum(rows: list[dict[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for row in rows:
        for name, value in row.items():
            if name not in {"segment_id", "is_control"}:
                total[name] = total.get(name, 0) + value
    return total


def campaign_report(*, campaign: Campaign, now: datetime | None = None) -> dict[str, Any]:
    """The campaign's report: totals and one entry per target segment, plus its segments' health."""
    now = now or timezone.now()
    window = None
    if campaign.started_at is not None:
        window = (campaign.started_at, campaign.started_at + timedelta(days=campaign.conversion_window_days))
    rows = _counts(CampaignRecipient.objects.filter(campaign=campaign), key=campaign.tracking_key, window=window)
    treated_rows = [r for r in rows if not r["is_control"]]
    control_rows = [r for r in rows if r["is_control"]]
    targets = list(campaign.targets.select_related("segment").order_by("priority", "segment_id"))
    health = segment_health(workspace=campaign.workspace, segment_ids=[t.segment_id for t in targets], now=now)
    segments = []
    for target in targets:
        treated = _sum([r for r in treated_rows if r["segment_id"] == target.segment_id])
        control = _sum([r for r in control_rows if r["segment_id"] == target.segment_id])
        segments.append(
            {
                "segment": target.segment_id,
                "name": target.segment.name,
                "priority": target.priority,
                **_group_report(treated, control, with_conversions=window is not None),
                "warnings": health.get(target.segment_id, []),
            }
        )
    return {
        "campaign": campaign.pk,
        "tracking_key": campaign.tracking_key,
        "status": campaign.status,
        "started_at": campaign.started_at,
        "finished_at": campaign.finished_at,
        "conversion_window_days": campaign.conversion_window_days,
        "conversion_window_ends_at": window[1] if window else None,
        "audience": campaign.audience or None,  # empty until the audience is frozen
        "totals": _group_report(_sum(treated_rows), _sum(control_rows), with_conversions=window is not None),
        "revenue": _revenue(
            campaign, treated=_sum(treated_rows).get("size", 0), control=_sum(control_rows).get("size", 0)
        ),
        "segments": segments,
    }


def segment_health(
    *, workspace: Workspace, segment_ids: list[int], now: datetime | None = None
) -> dict[int, list[str]]:
    """Warnings per segment (see module doc); segments without any have an empty list."""
    now = now or timezone.now()
    warnings: dict[int, list[str]] = {segment_id: [] for segment_id in segment_ids}
    sizes = dict(Segment.objects.filter(workspace=workspace, pk__in=segment_ids).values_list("pk", "size"))
    for segment_id in segment_ids:
        recent = list(
            Campaign.objects.filter(
                workspace=workspace,
                started_at__isnull=False,
                recipients__segment_id=segment_id,
                recipients__is_control=False,
            )
            .distinct()
            .order_by("-started_at", "-pk")
            .values_list("pk", "started_at")[:HEALTH_CAMPAIGNS]
        )
        engaged = delivered = 0
        for campaign_id, _ in recent:
            row = _segment_totals(campaign_id, segment_id)
            engaged += row.get("engaged", 0)
            delivered += row.get("delivered", 0)
        if delivered and engaged / delivered < ENGAGEMENT_FLOOR:
            warnings[segment_id].append(
                f"open-or-click rate {engaged / delivered:.1%} across the last {len(recent)} campaign(s), "
                f"under {ENGAGEMENT_FLOOR:.0%}"
            )
        month = (
            Campaign.objects.filter(
                workspace=workspace, started_at__gte=now - HEALTH_WINDOW, recipients__segment_id=segment_id
            )
            .distinct()
            .values_list("pk", flat=True)
        )
        sent = bounces = complaints = 0
        for campaign_id in month:
            row = _segment_totals(campaign_id, segment_id)
            sent += row.get("sent", 0)
            bounces += row.get("bounces", 0)
            complaints += row.get("complaints", 0)
        for label, count in (("bounce", bounces), ("complaint", complaints)):
            if sent and count / sent > BOUNCE_CEILING:
                warnings[segment_id].append(
                    f"{label} rate {count / sent:.1%} over the last 30 days, over {BOUNCE_CEILING:.0%}"
                )
        size = sizes.get(segment_id)
        if size is not None and size < MIN_MEMBERS:
            warnings[segment_id].append(f"only {size} member{'' if size == 1 else 's'} (fewer than {MIN_MEMBERS})")
    return warnings


def _segment_totals(campaign_id: int, segment_id: int) -> dict[str, int]:
    rows = _counts(
        CampaignRecipient.objects.filter(campaign_id=campaign_id, segment_id=segment_id, is_control=False),
        key=tracking_key(campaign_id),
        window=None,
    )
    return _sum(rows)


def _revenue(campaign: Campaign, *, treated: int, control: int) -> dict[str, Any] | None:
    """Order revenue of each group within the conversion window, in total and per member of the group."""
    if campaign.started_at is None:
        return None
    cent = Decimal("0.01")
    treated_total = revenue_in_window(campaign=campaign, control=False).quantize(cent)
    control_total = revenue_in_window(campaign=campaign, control=True).quantize(cent)
    return {
        "treated": str(treated_total),
        "control": str(control_total),
        "per_treated": str((treated_total / treated).quantize(cent)) if treated else None,
        "per_control": str((control_total / control).quantize(cent)) if control else None,
    }


def revenue_in_window(*, campaign: Campaign, control: bool) -> Decimal:
    """Revenue of the group's orders within the conversion window."""
    end = campaign.started_at + timedelta(days=campaign.conversion_window_days)
    contacts = CampaignRecipient.objects.filter(campaign=campaign, is_control=control).values("contact_id")
    return Order.objects.filter(
        contact_id__in=contacts, ordered_at__gte=campaign.started_at, ordered_at__lte=end
    ).aggregate(total=Coalesce(Sum("total"), Decimal("0")))["total"]
