"""Benchmark of a campaign send on PostgreSQL: preview, recompute + freeze, delivery, report.

    DATABASE_URL=postgres://... python -m bench.campaigns [--contacts 100000] [--keep]

Generates a workspace of contacts (3% unsubscribed, 1% bounced, 1% without email) and three overlapping
segments (two targets, one exclusion) over their country and city, then times, on one campaign with a
10% holdout:

- audience_counts: the preview of the audience from the stored memberships (priority, exclusions,
  suppression and holdout in SQL);
- prepare_send: recompute of the three segments (trigger "campaign") and the freeze (INSERT ... SELECT);
- deliver_campaign: claim, render and hand over every message through Django's dummy email backend
  (the rendering and the bookkeeping, not an SMTP server's speed), in CAMPAIGN_BATCH_SIZE batches;
- campaign_report: the per-segment report with events and conversions (no events: the query's cost).

Prints a markdown table and writes bench/results/campaigns.json. The workspace is removed at the end
unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from campaigns import delivery, reports, services  # noqa: E402
from campaigns.models import Campaign, CampaignRecipient  # noqa: E402
from campaigns.selectors import AudienceSpec, audience_counts  # noqa: E402
from contacts.models import Workspace  # noqa: E402
from segments_app.membership import recompute_membership  # noqa: E402
from segments_app.models import Segment  # noqa: E402

WORKSPACE_NAME = "bench-campaigns"
RESULTS = Path(__file__).resolve().parent / "results" / "campaigns.json"


def attr(field: str, op: str, value) -> dict:  # noqa: ANN001
    return {"type": "attribute", "field": field, "op": op, "value": value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated workspace")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("bench.campaigns measures PostgreSQL: set DATABASE_URL=postgres://...")
    settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the send is driven step by step below

    drop_workspace()
    workspace = Workspace.objects.create(name=WORKSPACE_NAME)
    started = time.perf_counter()
    generate(workspace.pk, args.contacts)
    generate_s = time.perf_counter() - started
    europe = Segment.objects.create(
        workspace=workspace,
        name="Europe",
        definition={"match": "all", "conditions": [attr("country", "in", ["PL", "DE", "FR"])]},
    )
    poland = Segment.objects.create(
        workspace=workspace, name="Poland", definition={"match": "all", "conditions": [attr("country", "eq", "PL")]}
    )
    warsaw = Segment.objects.create(
        workspace=workspace, name="Warsaw", definition={"match": "all", "conditions": [attr("city", "eq", "Warsaw")]}
    )
    for segment in (europe, poland, warsaw):
        recompute_membership(segment_id=segment.pk, trigger="manual")
    campaign = services.create_campaign(
        workspace=workspace,
        data={
            "name": "Bench",
            "subject": "Hi {{ first_name|default:'there' }}",
            "body": "<p>Hello {{ first_name }} from {{ city }}</p><p>Our offer for {{ country }}.</p>",
            "segments": [poland.pk, europe.pk],
            "exclude_segments": [warsaw.pk],
            "holdout_percent": 10,
            "variants": [{"segment": poland.pk, "subject": "Cześć {{ first_name }}"}],
        },
    )
    connection.cursor().execute("ANALYZE")
    rows = []

    spec = AudienceSpec.of(campaign)
    counts, seconds = timed(lambda: audience_counts(spec))
    rows.append(row("audience_counts (preview: priority, exclusions, suppression, holdout)", seconds, counts.targeted))

    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.QUEUED)
    _, seconds = timed(lambda: services.prepare_send(campaign_id=campaign.pk))
    frozen = CampaignRecipient.objects.filter(campaign=campaign).count()
    rows.append(row("prepare_send (recompute 3 segments + freeze INSERT ... SELECT)", seconds, frozen))

    def deliver_all() -> int:
        sent = 0
        while True:
            outcome = delivery.deliver_campaign(campaign_id=campaign.pk)
            sent += outcome.sent
            if not outcome.more:
                return sent

    sent, seconds = timed(deliver_all)
    rows.append(
        row(
            f"deliver_campaign (claim, render, hand over; batches of {settings.CAMPAIGN_BATCH_SIZE})",
            seconds,
            sent,
            unit="messages",
        )
    )

    campaign.refresh_from_db()
    _, seconds = timed(lambda: reports.campaign_report(campaign=campaign))
    rows.append(row("campaign_report (per segment, events, conversions, health)", seconds, frozen))

    audience = campaign.audience
    report(rows, args.contacts, generate_s, audience)
    if not args.keep:
        drop_workspace()


def generate(workspace_id: int, contacts: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO contacts_contact (workspace_id, external_id, email, first_name, country, city, created_at,
                                          email_status, attributes, updated_at)
            SELECT %(ws)s, 'bench-' || g,
                   CASE WHEN g %% 100 = 7 THEN NULL ELSE 'bench' || g || '@example.com' END,
                   CASE WHEN g %% 5 = 0 THEN NULL ELSE 'Name' || (g %% 977) END,
                   (ARRAY['PL', 'DE', 'FR', 'US', 'GB'])[1 + g %% 5],
                   (ARRAY['Warsaw', 'Krakow', 'Berlin', 'Paris', 'Boston', 'Leeds', 'Gdansk'])[1 + (g / 5) %% 7],
                   now(),
                   CASE WHEN g %% 100 < 3 THEN 'unsubscribed' WHEN g %% 100 = 3 THEN 'bounced' ELSE 'subscribed' END,
                   '{}'::jsonb, now()
            FROM generate_series(1, %(n)s) g
            """,
            {"ws": workspace_id, "n": contacts},
        )
        cursor.execute(
            "INSERT INTO contacts_contactstats (contact_id, workspace_id, orders_count, total_spent, engagement_score, "
            "lifecycle_stage, preferred_device, loyalty_tier, computed_at) "
            "SELECT id, workspace_id, 0, 0, 0, 'prospect', 'unknown', 'none', now() FROM contacts_contact "
            "WHERE workspace_id = %s",
            [workspace_id],
        )


def drop_workspace() -> None:
    """Delete the benchmark's rows with set-based statements (the ORM's cascade would load them all)."""
    workspace = Workspace.objects.filter(name=WORKSPACE_NAME).first()
    if workspace is None:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM campaigns_campaignrecipient WHERE campaign_id IN "
            "(SELECT id FROM campaigns_campaign WHERE workspace_id = %s)",
            [workspace.pk],
        )
        for table in ("campaigns_campaigntarget", "campaigns_campaignexclusion"):
            cursor.execute(
                f"DELETE FROM {table} WHERE campaign_id IN (SELECT id FROM campaigns_campaign WHERE workspace_id = %s)",
                [workspace.pk],
            )
        cursor.execute("DELETE FROM campaigns_campaign WHERE workspace_id = %s", [workspace.pk])
        for table in ("segments_app_segmentchange", "segments_app_segmentmember", "segments_app_segmentsnapshot"):
            cursor.execute(
                f"DELETE FROM {table} WHERE segment_id IN "
                "(SELECT id FROM segments_app_segment WHERE workspace_id = %s)",
                [workspace.pk],
            )
        for table in ("contacts_contactstats", "contacts_contact"):
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace.pk])
        workspace.delete()


def timed(action):  # noqa: ANN001, ANN201
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def row(name: str, seconds: float, count: int, unit: str = "contacts") -> dict:
    return {
        "name": name,
        "ms": round(seconds * 1000, 1),
        "count": count,
        "unit": unit,
        "per_s": round(count / seconds) if seconds else None,
    }


def report(rows: list[dict], contacts: int, generate_s: float, audience: dict) -> None:
    print(
        f"Data: {contacts:,} contacts (generated in {generate_s:.1f} s); audience {audience}. "
        f"PostgreSQL {connection.pg_version}."
    )
    print()
    print("| Operation | ms | Rows | Rows/s |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['ms']:,} | {r['count']:,} {r['unit']} | {r['per_s']:,} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"contacts": contacts, "generate_s": generate_s, "audience": audience, "rows": rows}, indent=2)
    )
    print(f"\nWritten to {RESULTS}")


if __name__ == "__main__":
    main()
