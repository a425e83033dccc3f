"""Delivery: hand messages over in batches, each at most once, retrying what surely failed.

Both campaign recipients and automation sends are `Outbound` rows and go through the same steps:

1. claim a batch: one conditional UPDATE sets `status = sending, sent_at = now` on pending rows whose
   `sent_at` is still NULL (PostgreSQL picks them FOR UPDATE SKIP LOCKED, so parallel workers take
   different rows) and returns their ids. A row is claimed by exactly one worker, even when the same
   task runs twice at once.
2. hand the batch over: email through Django's email backend, one message per contact on one
   connection; or one signed POST of the whole batch to a webhook (`segments_app.webhooks` signing).
3. record: sent; failed for good (a refused address, an HTTP 4xx, CAMPAIGN_MAX_ATTEMPTS reached); or
   back to pending with `sent_at` cleared and `next_attempt_at` after a growing delay when the hand-over
   surely did not happen (connection refused, timeout before sending, HTTP 5xx).

A worker that dies between 1 and 3 leaves its rows "sending": it is unknown whether they went out, so
they are never sent again; after CAMPAIGN_STALE_CLAIM_MINUTES the dispatcher marks them failed with a
message saying so. That is the price of "never twice".

Webhook channel request (signed like segment webhooks, see segments_app.webhooks):

    POST <webhook_url>
    X-Segments-Delivery: campaign-<id>-<first recipient id>   (automation-<id>-... for automations)
    X-Segments-Timestamp, X-Segments-Signature: sha256=<HMAC-SHA256 of the body with the secret>

    {"campaign": {"id": 3, "name": "Spring sale", "tracking_key": "campaign-3"}, "sent_at": "...",
     "recipients": [{"recipient": 41, "contact": "c-17", "email": "a@example.com", "first_name": "Ann",
                     "last_name": null, "segment": 7, "subject": "...", "body": "<p>...</p>", "body_text": "..."}]}

An automation posts `{"automation": {...}, "segment": {...}, "trigger": "entered", "recipients": [...]}`
with the same recipient objects (and `change_at`).
"""

from __future__ import annotations

import json
import logging
import smtplib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection
from django.utils import timezone

from campaigns.models import (
    Automation,
    AutomationSend,
    Campaign,
    CampaignRecipient,
    CampaignTarget,
    Channel,
    DeliveryStatus,
    Outbound,
)
from campaigns.templating import contact_context, render, render_subject, render_text_from_html
from contacts.models import Contact
from segments_app import webhooks

logger = logging.getLogger(__name__)

# Batches one run hands over at most before it yields the worker (it enqueues the next run itself).
MAX_BATCHES_PER_RUN = 25


@dataclass(frozen=True)
class Content:
    subject: str
    body: str
    body_text: str


@dataclass
class BatchResult:
    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # for good
    retry: dict[int, str] = field(default_factory=dict)  # surely not handed over: try again later


@dataclass(frozen=True)
class DeliveryOutcome:
    sent: int = 0
    failed: int = 0
    retry_in: timedelta | None = None  # a failure asked for a later attempt
    more: bool = False  # stopped after MAX_BATCHES_PER_RUN with rows still due


# --- the state machine ------------------------------------------------------------------------------


def claim(model: type[Outbound], *, scope: str, scope_id: int, limit: int, now: datetime | None = None) -> list[int]:
    """Mark up to `limit` due pending rows of the scope (e.g. campaign_id=3) as being sent; their ids."""
    now = now or timezone.now()
    table = connection.ops.quote_name(model._meta.db_table)
    moment = connection.ops.adapt_datetimefield_value(now)
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    sql = f"""
        UPDATE {table} SET status = %s, sent_at = %s, attempts = attempts + 1
        WHERE id IN (
            SELECT id FROM {table}
            WHERE {scope} = %s AND status = %s AND sent_at IS NULL
              AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
            ORDER BY id LIMIT %s{skip_locked}
        ) AND status = %s AND sent_at IS NULL
        RETURNING id
    """
    params = [DeliveryStatus.SENDING, moment, scope_id, DeliveryStatus.PENDING, moment, limit, DeliveryStatus.PENDING]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted(row[0] for row in cursor.fetchall())


def retry_delay(attempts: int) -> timedelta:
    """CAMPAIGN_RETRY_BASE_S after the first attempt, doubled per attempt, at most a day."""
    return timedelta(seconds=min(settings.CAMPAIGN_RETRY_BASE_S * 2 ** max(attempts - 1, 0), 86400))


def record(model: type[Outbound], result: BatchResult, *, now: datetime | None = None) -> None:
    """Write what a batch's hand-over did; only rows still "sending" change."""
    now = now or timezone.now()
    claimed = model.objects.filter(status=DeliveryStatus.SENDING)
    if result.sent:
        claimed.filter(pk__in=result.sent).update(status=DeliveryStatus.SENT, next_attempt_at=None, last_error="")
    for pk, error in result.failed.items():
        claimed.filter(pk=pk).update(status=DeliveryStatus.FAILED, next_attempt_at=None, last_error=error[:2000])
    for pk, error in result.retry.items():
        row = claimed.filter(pk=pk).only("attempts").first()
        if row is None:
            continue
        if row.attempts >= settings.CAMPAIGN_MAX_ATTEMPTS:
            message = f"{error} (gave up after {row.attempts} attempts)"
            claimed.filter(pk=pk).update(status=DeliveryStatus.FAILED, next_attempt_at=None, last_error=message[:2000])
        else:
            claimed.filter(pk=pk).update(
                status=DeliveryStatus.PENDING,
                sent_at=None,
                next_attempt_at=now + retry_delay(row.attempts),
                last_error=error[:2000],
            )


def fail_stale_claims(model: type[Outbound], *, now: datetime | None = None) -> int:
    """Rows claimed longer than CAMPAIGN_STALE_CLAIM_MINUTES ago by a worker that vanished: failed, not resent."""
    now = now or timezone.now()
    limit = now - timedelta(minutes=settings.CAMPAIGN_STALE_CLAIM_MINUTES)
    return model.objects.filter(status=DeliveryStatus.SENDING, sent_at__lt=limit).update(
        status=DeliveryStatus.FAILED,
        last_error="interrupted while being sent (the worker stopped); not sent again so that nobody gets it twice",
    )


def next_due(model: type[Outbound], *, scope: str, scope_id: int) -> datetime | None:
    """When the next pending row of the scope may be tried (None: nothing pending)."""
    rows = model.objects.filter(**{scope: scope_id, "status": DeliveryStatus.PENDING})
    if rows.filter(next_attempt_at__isnull=True).exists():
        return timezone.now()
    return rows.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()


def _run(
    model: type[Outbound],
    *,
    scope: str,
    scope_id: int,
    hand_over: Callable[[list], BatchResult],
    rows_of: Callable[[list[int]], list],
    on_batch: Callable[[BatchResult], None],
) -> DeliveryOutcome:
    sent = failed = 0
    retry_in: timedelta | None = None
    for _ in range(MAX_BATCHES_PER_RUN):
        ids = claim(model, scope=scope, scope_id=scope_id, limit=settings.CAMPAIGN_BATCH_SIZE)
        if not ids:
            return DeliveryOutcome(sent=sent, failed=failed, retry_in=retry_in)
        try:
            result = hand_over(rows_of(ids))
        except Exception as exc:  # noqa: BLE001 - a bug or an outage must leave the rows retryable, not "sending"
            logger.exception("%s %s: hand-over of %s rows failed", scope, scope_id, len(ids))
            result = BatchResult(retry=dict.fromkeys(ids, f"{exc.__class__.__name__}: {exc}"))
        record(model, result)
        on_batch(result)
        sent += len(result.sent)
        failed += len(result.failed)
        if result.retry:
            # The channel is failing: stop hammering it, come back after the delay.
            wait = next_due(model, scope=scope, scope_id=scope_id)
            retry_in = max((wait - timezone.now()) if wait else timedelta(0), timedelta(seconds=1))
            return DeliveryOutcome(sent=sent, failed=failed, retry_in=retry_in)
    return DeliveryOutcome(sent=sent, failed=failed, more=True)


# --- campaigns --------------------------------------------------------------------------------------


def own_content(campaign: Campaign) -> Content:
    """The campaign's own content. Without a subject its name is the subject, and without any body the
    subject is the text: api.md creates a campaign from its name, segments and holdout alone (a client
    that freezes an audience and writes the email elsewhere), and such a campaign must still send."""
    subject = campaign.subject or campaign.name
    body_text = campaign.body_text if (campaign.body or campaign.body_text) else subject
    return Content(subject=subject, body=campaign.body, body_text=body_text)


def campaign_contents(campaign: Campaign) -> dict[int | None, Content]:
    """Content per target segment (its variant over the campaign's own); key None: the campaign's own."""
    own = own_content(campaign)
    contents: dict[int | None, Content] = {None: own}
    for target in CampaignTarget.objects.filter(campaign=campaign):
        contents[target.segment_id] = variant_content(own, target)
    return contents


def variant_content(own: Content, target: CampaignTarget) -> Content:
    if not target.has_variant:
        return own
    body, body_text = (
        (target.body, target.body_text) if (target.body or target.body_text) else (own.body, own.body_text)
    )
    return Content(subject=target.subject or own.subject, body=body, body_text=body_text)


def deliver_campaign(*, campaign_id: int) -> DeliveryOutcome:
    """Hand over the campaign's due recipients batch after batch; marks the campaign sent when none is left."""
    campaign = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).first()
    if campaign is None:
        return DeliveryOutcome()
    contents = campaign_contents(campaign)

    def rows_of(ids: list[int]) -> list[CampaignRecipient]:
        return list(CampaignRecipient.objects.filter(pk__in=ids).select_related("contact").order_by("pk"))

    def hand_over(rows: list[CampaignRecipient]) -> BatchResult:
        messages = [(row.pk, row.contact, contents.get(row.segment_id, contents[None]), row.segment_id) for row in rows]
        if campaign.channel == Channel.WEBHOOK:
            payload = {"campaign": {"id": campaign.pk, "name": campaign.name, "tracking_key": campaign.tracking_key}}
            return post_batch(
                url=campaign.webhook_url,
                secret=campaign.webhook_secret,
                payload=payload,
                messages=messages,
                delivery_id=f"{campaign.tracking_key}-{rows[0].pk}",
            )
        return email_batch(messages, from_email=campaign.from_email, tracking_key=campaign.tracking_key)

    def on_batch(result: BatchResult) -> None:
        now = timezone.now()
        errors = list(result.failed.values()) + list(result.retry.values())
        if errors:
            Campaign.objects.filter(pk=campaign_id).update(
                heartbeat_at=now, last_error=errors[-1][:2000], last_error_at=now
            )
        else:
            Campaign.objects.filter(pk=campaign_id).update(heartbeat_at=now)

    Campaign.objects.filter(pk=campaign_id).update(heartbeat_at=timezone.now())
    outcome = _run(
        CampaignRecipient,
        scope="campaign_id",
        scope_id=campaign_id,
        hand_over=hand_over,
        rows_of=rows_of,
        on_batch=on_batch,
    )
    finish_if_done(campaign_id=campaign_id)
    return outcome


def finish_if_done(*, campaign_id: int) -> bool:
    """Mark a sending campaign sent once no recipient is pending or being sent."""
    busy = CampaignRecipient.objects.filter(
        campaign_id=campaign_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING]
    )
    if busy.exists():
        return False
    return bool(
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.SENT, finished_at=timezone.now()
        )
    )


# --- automations ------------------------------------------------------------------------------------


def deliver_automation(*, automation_id: int) -> DeliveryOutcome:
    """Hand over the automation's due sends (the campaign's message, or a POST to its webhook)."""
    automation = Automation.objects.select_related("campaign", "segment").filter(pk=automation_id).first()
    if automation is None:
        return DeliveryOutcome()
    campaign = automation.campaign
    content = Content("", "", "")
    if campaign is not None:
        contents = campaign_contents(campaign)
        content = contents.get(automation.segment_id, contents[None])

    def rows_of(ids: list[int]) -> list[AutomationSend]:
        return list(AutomationSend.objects.filter(pk__in=ids).select_related("contact").order_by("pk"))

    def hand_over(rows: list[AutomationSend]) -> BatchResult:
        messages = [(row.pk, row.contact, content, automation.segment_id) for row in rows]
        extra = {row.pk: {"change_at": _iso(row.triggered_at)} for row in rows}
        head = {
            "automation": {"id": automation.pk, "name": automation.name, "tracking_key": automation.tracking_key},
            "segment": {"id": automation.segment_id, "name": automation.segment.name},
            "trigger": automation.trigger,
        }
        if automation.action == Automation.Action.WEBHOOK:
            return post_batch(
                url=automation.webhook_url,
                secret=automation.webhook_secret,
                payload=head,
                messages=messages,
                delivery_id=f"{automation.tracking_key}-{rows[0].pk}",
                extra=extra,
            )
        if campaign.channel == Channel.WEBHOOK:
            return post_batch(
                url=campaign.webhook_url,
                secret=campaign.webhook_secret,
                payload=head,
                messages=messages,
                delivery_id=f"{automation.tracking_key}-{rows[0].pk}",
                extra=extra,
            )
        return email_batch(messages, from_email=campaign.from_email, tracking_key=automation.tracking_key)

    def on_batch(result: BatchResult) -> None:
        errors = list(result.failed.values()) + list(result.retry.values())
        if errors:
            Automation.objects.filter(pk=automation_id).update(
                last_error=errors[-1][:2000], last_error_at=timezone.now()
            )

    return _run(
        AutomationSend,
        scope="automation_id",
        scope_id=automation_id,
        hand_over=hand_over,
        rows_of=rows_of,
        on_batch=on_batch,
    )


# --- channels ---------------------------------------------------------------------------------------

Message = tuple[int, Contact, Content, "int | None"]  # (row id, contact, content, segment id)

# SMTP answers that mean "this address, not the connection": the message fails for good.
_PERMANENT_SMTP = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPNotSupportedError)


def build_email(
    content: Content, contact: Contact, *, from_email: str, tracking_key: str, row_id: int
) -> EmailMultiAlternatives:
    """One contact's message: subject and bodies rendered with its merge fields, HTML with a text part."""
    context = contact_context(contact)
    html_body = render(content.body, context, html_body=True)
    if content.body_text:
        text_body = render(content.body_text, context, html_body=False)
    else:
        text_body = render_text_from_html(html_body)
    message = EmailMultiAlternatives(
        subject=render_subject(content.subject, context),
        body=text_body,
        from_email=from_email or settings.DEFAULT_FROM_EMAIL,
        to=[contact.email],
        # The ESP or the mail server's feedback loop reports opens/bounces with these.
        headers={"X-Segments-Campaign": tracking_key, "X-Segments-Message": f"{tracking_key}-{row_id}"},
    )
    if content.body:
        message.attach_alternative(html_body, "text/html")
    return message


def email_batch(messages: Sequence[Message], *, from_email: str, tracking_key: str) -> BatchResult:
    """Send each message on one backend connection; sort the outcome into sent / failed / retry."""
    result = BatchResult()
    pending = list(messages)
    try:
        backend = get_connection(fail_silently=False)
        backend.open()
    except (OSError, smtplib.SMTPException) as exc:
        result.retry = {row_id: f"could not connect to the mail server: {exc}" for row_id, *_ in pending}
        return result
    try:
        while pending:
            row_id, contact, content, _ = pending.pop(0)
            if not contact.email:
                result.failed[row_id] = "no email address"
                continue
            try:
                email = build_email(content, contact, from_email=from_email, tracking_key=tracking_key, row_id=row_id)
                backend.send_messages([email])
            except _PERMANENT_SMTP as exc:
                result.failed[row_id] = f"refused by the mail server: {exc}"
            except smtplib.SMTPResponseException as exc:
                if 500 <= exc.smtp_code < 600:
                    result.failed[row_id] = f"refused by the mail server: {exc.smtp_code} {exc.smtp_error!r}"
                else:
                    result.retry[row_id] = f"mail server: {exc.smtp_code} {exc.smtp_error!r}"
            except (OSError, smtplib.SMTPException) as exc:
                # The connection is gone: this message and the rest of the batch wait for the next attempt.
                result.retry[row_id] = f"mail server connection: {exc.__class__.__name__}: {exc}"
                for later_id, *_ in pending:
                    result.retry[later_id] = "not attempted: the mail server connection failed"
                pending = []
            except ValueError as exc:  # e.g. a header or address Django refuses
                result.failed[row_id] = f"invalid message: {exc}"
            else:
                result.sent.append(row_id)
    finally:
        try:
            backend.close()
        except (OSError, smtplib.SMTPException):
            logger.warning("closing the mail connection failed", exc_info=True)
    return result


def post_batch(
    *,
    url: str,
    secret: str,
    payload: dict,
    messages: Sequence[Message],
    delivery_id: str,
    extra: dict[int, dict] | None = None,
) -> BatchResult:
    """One signed POST with every message of the batch: 2xx sent, 4xx failed, anything else retried."""
    recipients = []
    for row_id, contact, content, segment_id in messages:
        context = contact_context(contact)
        html_body = render(content.body, context, html_body=True)
        recipients.append(
            {
                "recipient": row_id,
                "contact": contact.external_id,
                "email": contact.email,
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "segment": segment_id,
                "subject": render_subject(content.subject, context),
                "body": html_body,
                "body_text": render(content.body_text, context, html_body=False) or render_text_from_html(html_body),
                **(extra or {}).get(row_id, {}),
            }
        )
    sent_at = timezone.now().replace(microsecond=0)
    body = json.dumps({**payload, "sent_at": _iso(sent_at), "recipients": recipients}, separators=(",", ":")).encode()
    code, error = webhooks.post_signed(
        SimpleNamespace(url=url, secret=secret), SimpleNamespace(pk=delivery_id), body, sent_at
    )
    ids = [row_id for row_id, *_ in messages]
    if not error:
        return BatchResult(sent=ids)
    if code is not None and 400 <= code < 500 and code not in (408, 429):
        return BatchResult(failed=dict.fromkeys(ids, f"webhook answered {error}"))
    return BatchResult(retry=dict.fromkeys(ids, f"webhook: {error}"))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def undelivered_reason(contact: Contact, *, channel: str) -> str | None:
    """Why a contact cannot receive on this channel (the audience query's rule, for one contact)."""
    if contact.email_status in {
        Contact.EmailStatus.UNSUBSCRIBED,
        Contact.EmailStatus.BOUNCED,
        Contact.EmailStatus.COMPLAINED,
    }:
        return str(contact.email_status)
    if channel == Channel.EMAIL and not contact.email:
        return "no_email"
    return None
