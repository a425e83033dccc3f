"""Webhooks: entries and exits POSTed to an ESP's endpoint in signed batches, driven by the change log.

Each (endpoint, segment) pair has a cursor (`WebhookCursor.last_change_id`). A delivery takes the next
changes after the cursor (at most WEBHOOK_BATCH_SIZE, in change-log order), records them as a
`WebhookDelivery` (its change id range) and POSTs them. Only a 2xx answer moves the cursor past the
batch; otherwise the same batch (same delivery id, same range) is sent again after a growing delay
(WEBHOOK_RETRY_BASE_S doubled per failure in a row, at most WEBHOOK_RETRY_MAX_S). So a receiver that is
down for a while loses nothing, and a worker that restarts finds the cursor where the last confirmed
batch left it. The cursor row is locked while a batch is in flight, so two workers never send the same
pair at once; a receiver may still see a batch twice if it answered 2xx and the worker died before
recording it: deduplicate on `X-Segments-Delivery` (or the changes' `cursor`).

Request (see README, "Living segments"):

    POST <url>
    Content-Type: application/json
    X-Segments-Delivery: <delivery id>
    X-Segments-Timestamp: <unix seconds when sent>
    X-Segments-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the endpoint's secret>

    {"delivery_id": 12, "segment": {"id": 7, "name": "VIP"}, "sent_at": "2026-01-05T10:00:00Z",
     "changes": [{"cursor": "1042", "contact": "c-17", "email": "a@example.com",
                  "change": "entered", "at": "2026-01-05T09:59:58Z"}]}

An erased contact (DELETE /api/v1/contacts/{external_id}/) leaves its segments with an ordinary "exited"
change whose `email` is null (`membership.record_erasure_exits`).

`sent_at` repeats the timestamp inside the signed body, so a receiver can refuse replays of old requests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from contacts.models import Workspace
from segments_app.models import Segment, SegmentChange, WebhookCursor, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Segments-Signature"
TIMESTAMP_HEADER = "X-Segments-Timestamp"
DELIVERY_HEADER = "X-Segments-Delivery"
# Celery retries of one delivery task; past them the minute sweep keeps trying on the same backoff.
MAX_TASK_RETRIES = 8
# Batches one task run sends at most before giving the worker to others.
MAX_BATCHES_PER_RUN = 20


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one `deliver_pending` call did: changes delivered, and when to try again after a failure."""

    delivered: int = 0
    retry_in: timedelta | None = None


# --- signing ----------------------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The signature header value: `sha256=` + hex HMAC-SHA256 of the body keyed with the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header_value: str) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    return hmac.compare_digest(sign(secret, body), header_value or "")


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# --- endpoints (services) ---------------------------------------------------------------------------


@transaction.atomic
def create_endpoint(
    *, workspace: Workspace, url: str, secret: str = "", segments: Iterable[Segment] = (), active: bool = True,
    description: str = "",
) -> WebhookEndpoint:
    """Register an endpoint; it receives the changes recorded from now on (none of the past)."""
    start = SegmentChange.objects.aggregate(last=Max("pk"))["last"] or 0
    endpoint = WebhookEndpoint.objects.create(
        workspace=workspace, url=url, secret=secret or new_secret(), active=active, description=description,
        start_after_change_id=start,
    )
    endpoint.segments.set(list(segments))
    return endpoint


@transaction.atomic
def update_endpoint(
    *, endpoint: WebhookEndpoint, segments: Iterable[Segment] | None = None, **fields
) -> WebhookEndpoint:
    """Change an endpoint's url, secret, active flag, description and/or segments."""
    for name, value in fields.items():
        if name not in {"url", "secret", "active", "description"}:
            raise TypeError(f"unknown endpoint field {name!r}")
        setattr(endpoint, name, value)
    endpoint.save()
    if segments is not None:
        endpoint.segments.set(list(segments))
    return endpoint


def endpoints_for_segment(*, segment_id: int) -> QuerySet[WebhookEndpoint]:
    """Active endpoints of the segment's workspace that want it (selected, or no segment selected = all)."""
    workspace_id = Segment.objects.filter(pk=segment_id).values("workspace_id")
    return (
        WebhookEndpoint.objects.filter(workspace_id__in=workspace_id, active=True)
        .filter(Q(segments__isnull=True) | Q(segments=segment_id))
        .distinct()
        .order_by("pk")
    )


def endpoint_segment_ids(endpoint: WebhookEndpoint) -> list[int]:
    selected = list(endpoint.segments.order_by("pk").values_list("pk", flat=True))
    if selected:
        return selected
    return list(Segment.objects.filter(workspace_id=endpoint.workspace_id).order_by("pk").values_list("pk", flat=True))


# --- scheduling -------------------------------------------------------------------------------------


def schedule_webhook_delivery(*, segment_id: int) -> None:
    """After the current commit, enqueue a delivery for every endpoint that wants this segment's changes."""
    endpoint_ids = list(endpoints_for_segment(segment_id=segment_id).values_list("pk", flat=True))
    if not endpoint_ids:
        return

    def enqueue() -> None:
        from segments_app.tasks import deliver_segment_webhooks_task

        for endpoint_id in endpoint_ids:
            deliver_segment_webhooks_task.delay(endpoint_id, segment_id)

    transaction.on_commit(enqueue, robust=True)


def enqueue_due_deliveries(*, now: datetime | None = None) -> list[tuple[int, int]]:
    """The minute sweep: every (endpoint, segment) with undelivered changes and no backoff pending."""
    from segments_app.tasks import deliver_segment_webhooks_task

    now = now or timezone.now()
    due: list[tuple[int, int]] = []
    for endpoint in WebhookEndpoint.objects.filter(active=True).order_by("pk"):
        cursors = {c.segment_id: c for c in WebhookCursor.objects.filter(endpoint=endpoint)}
        for segment_id in endpoint_segment_ids(endpoint):
            cursor = cursors.get(segment_id)
            if cursor is not None and cursor.next_attempt_at is not None and cursor.next_attempt_at > now:
                continue
            after = max(cursor.last_change_id if cursor else 0, endpoint.start_after_change_id)
            if SegmentChange.objects.filter(segment_id=segment_id, pk__gt=after).exists():
                due.append((endpoint.pk, segment_id))
    for endpoint_id, segment_id in due:
        deliver_segment_webhooks_task.delay(endpoint_id, segment_id)
    return due


# --- delivery ---------------------------------------------------------------------------------------


def retry_delay(failures: int) -> timedelta:
    """WEBHOOK_RETRY_BASE_S, doubled per failure in a row, at most WEBHOOK_RETRY_MAX_S."""
    seconds = settings.WEBHOOK_RETRY_BASE_S * 2 ** max(failures - 1, 0)
    return timedelta(seconds=min(seconds, settings.WEBHOOK_RETRY_MAX_S))


def deliver_pending(*, endpoint_id: int, segment_id: int, now: datetime | None = None) -> DeliveryOutcome:
    """Send the segment's undelivered changes to the endpoint, batch after batch, until done or failing.

    `retry_in` is set only when this call's attempt failed; a pair that is busy (another worker holds
    its cursor) or waiting out its backoff returns without sending.
    """
    delivered = 0
    for _ in range(MAX_BATCHES_PER_RUN):
        sent, retry_in, more = _deliver_one_batch(endpoint_id=endpoint_id, segment_id=segment_id, now=now)
        delivered += sent
        if retry_in is not None:
            return DeliveryOutcome(delivered=delivered, retry_in=retry_in)
        if not more:
            break
    return DeliveryOutcome(delivered=delivered)


def _deliver_one_batch(
    *, endpoint_id: int, segment_id: int, now: datetime | None
) -> tuple[int, timedelta | None, bool]:
    """One batch under the pair's cursor lock: (changes delivered, retry delay after a failure, more to send)."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, active=True).first()
        segment = Segment.objects.filter(pk=segment_id).only("pk", "name", "workspace_id").first()
        if endpoint is None or segment is None or segment.workspace_id != endpoint.workspace_id:
            return 0, None, False
        WebhookCursor.objects.get_or_create(endpoint=endpoint, segment=segment)
        cursor = (
            WebhookCursor.objects.select_for_update(skip_locked=True).filter(endpoint=endpoint, segment=segment).first()
        )
        if cursor is None:
            return 0, None, False  # another worker is sending this pair right now
        moment = now or timezone.now()
        if cursor.next_attempt_at is not None and cursor.next_attempt_at > moment:
            return 0, None, False
        delivery = _open_delivery(endpoint, segment, cursor)
        if delivery is None:
            return 0, None, False
        changes = _changes_payload(delivery)
        body, sent_at = _body(delivery, segment, changes)
        code, error = post_signed(endpoint, delivery, body, sent_at)
        delivery.attempts += 1
        delivery.last_attempt_at = timezone.now()
        delivery.response_code = code
        delivery.error = error
        if error:
            delivery.status = WebhookDelivery.Status.FAILED
            cursor.failures += 1
            delay = retry_delay(cursor.failures)
            cursor.next_attempt_at = timezone.now() + delay
            delivery.save()
            cursor.save()
            logger.warning("webhook delivery %s to %s failed: %s", delivery.pk, endpoint.url, error)
            return 0, delay, False
        delivery.status = WebhookDelivery.Status.SUCCEEDED
        delivery.delivered_at = delivery.last_attempt_at
        cursor.last_change_id = delivery.last_change_id
        cursor.failures = 0
        cursor.next_attempt_at = None
        delivery.save()
        cursor.save()
        more = SegmentChange.objects.filter(segment=segment, pk__gt=cursor.last_change_id).exists()
        return delivery.change_count, None, more


def _open_delivery(endpoint: WebhookEndpoint, segment: Segment, cursor: WebhookCursor) -> WebhookDelivery | None:
    """The batch to send: the one that failed last time (same range), or the next changes after the cursor."""
    unfinished = (
        WebhookDelivery.objects.filter(endpoint=endpoint, segment=segment, first_change_id__gt=cursor.last_change_id)
        .exclude(status=WebhookDelivery.Status.SUCCEEDED)
        .order_by("pk")
        .first()
    )
    if unfinished is not None:
        return unfinished
    after = max(cursor.last_change_id, endpoint.start_after_change_id)
    ids = list(
        SegmentChange.objects.filter(segment=segment, pk__gt=after)
        .order_by("pk")
        .values_list("pk", flat=True)[: settings.WEBHOOK_BATCH_SIZE]
    )
    if not ids:
        return None
    return WebhookDelivery.objects.create(
        endpoint=endpoint, segment=segment, first_change_id=ids[0], last_change_id=ids[-1], change_count=len(ids)
    )


def _changes_payload(delivery: WebhookDelivery) -> list[dict]:
    rows = (
        SegmentChange.objects.filter(
            segment_id=delivery.segment_id, pk__gte=delivery.first_change_id, pk__lte=delivery.last_change_id
        )
        .order_by("pk")
        .values_list("pk", "contact__external_id", "external_id", "contact__email", "change", "at")
    )
    # An erased contact's exit has no contact: its stored external_id, and no email (the person is gone).
    return [
        {"cursor": str(pk), "contact": external_id or erased_id, "email": email, "change": change, "at": _iso(at)}
        for pk, external_id, erased_id, email, change, at in rows
    ]


def _body(delivery: WebhookDelivery, segment: Segment, changes: list[dict]) -> tuple[bytes, datetime]:
    sent_at = timezone.now().replace(microsecond=0)
    payload = {
        "delivery_id": delivery.pk,
        "segment": {"id": segment.pk, "name": segment.name},
        "sent_at": _iso(sent_at),
        "changes": changes,
    }
    return json.dumps(payload, separators=(",", ":")).encode(), sent_at


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        return None  # a redirect is an answer we do not follow: the receiver must answer 2xx itself


_opener = urllib.request.build_opener(_NoRedirect)


def post_signed(
    endpoint: WebhookEndpoint, delivery: WebhookDelivery, body: bytes, sent_at: datetime
) -> tuple[int | None, str]:
    """POST the body; returns (HTTP status or None, error text; empty error means delivered)."""
    request = urllib.request.Request(
        endpoint.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "DynamicSegments-Webhooks/1",
            DELIVERY_HEADER: str(delivery.pk),
            TIMESTAMP_HEADER: str(int(sent_at.timestamp())),
            SIGNATURE_HEADER: sign(endpoint.secret, body),
        },
    )
    try:
        with _opener.open(request, timeout=settings.WEBHOOK_TIMEOUT_S) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, f"{exc.__class__.__name__}: {exc}"[:2000]
    if 200 <= code < 300:
        return code, ""
    return code, f"HTTP {code}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
