"""Sending: recompute, freeze, deliver in batches with retries; never twice, whatever runs twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, connections
from django.utils import timezone

from campaigns import delivery, services, tasks
from campaigns.holdout import in_holdout
from campaigns.models import Campaign, CampaignRecipient, DeliveryStatus
from campaigns.services import request_send
from segments_app.models import SegmentSnapshot
from segments_app.webhooks import verify_signature
from tests.campaigns.support import email_campaign, make_segment, people
from tests.factories import make_contact


def statuses(campaign) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in CampaignRecipient.objects.filter(campaign=campaign).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def test_send_freezes_the_audience_and_mails_each_recipient_its_variant(workspace):
    people(workspace, 4, tags=["vip"], prefix="vip", first_name="Ann")
    people(workspace, 3, tags=["vip", "new"], prefix="both")
    people(workspace, 2, tags=["new"], prefix="new")
    make_contact(workspace, external_id="gone", email="gone@x.io", email_status="unsubscribed", tags=["vip"])
    vip, new = make_segment(workspace, "vip"), make_segment(workspace, "new")
    campaign = email_campaign(
        workspace, [new, vip], variants=[{"segment": new.pk, "subject": "Welcome {{ first_name|default:'aboard' }}"}]
    )

    assert request_send(campaign=campaign) is True

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert campaign.audience == {
        "targeted": 10,
        "excluded": 0,
        "unsubscribed": 1,
        "bounced": 0,
        "complained": 0,
        "no_email": 0,
        "recipients": 9,
        "control": 0,
        "will_receive": 9,
    }
    subjects = {message.to[0]: message.subject for message in mail.outbox}
    assert len(mail.outbox) == 9
    assert subjects["vip0@example.com"] == "Hello Ann"
    assert subjects["both0@example.com"] == "Welcome aboard"  # "new" has priority 1: its variant
    assert subjects["new1@example.com"] == "Welcome aboard"
    assert "gone@x.io" not in subjects
    assert statuses(campaign) == {"sent": 9}
    assert all(r.sent_at is not None and r.attempts == 1 for r in CampaignRecipient.objects.filter(campaign=campaign))


def test_a_second_send_request_sends_nothing(workspace):
    people(workspace, 3, tags=["vip"])
    campaign = email_campaign(workspace, [make_segment(workspace, "vip")])

    assert request_send(campaign=campaign) is True
    assert request_send(campaign=campaign) is False
    tasks.send_campaign_task.apply(args=[campaign.pk])  # and the task delivered once more

    assert len(mail.outbox) == 3
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 3


def test_target_and_exclusion_segments_are_recomputed_at_send_time(workspace):
    people(workspace, 2, tags=["vip"])
    vip, staff = make_segment(workspace, "vip"), make_segment(workspace, "staff")
    make_contact(workspace, external_id="late", email="late@x.io", tags=["vip"])  # after the last computation
    make_contact(workspace, external_id="boss", email="boss@x.io", tags=["vip", "staff"])
    campaign = email_campaign(workspace, [vip], exclude_segments=[staff.pk])

    request_send(campaign=campaign)

    assert sorted(m.to[0] for m in mail.outbox) == ["late@x.io", "p0@example.com", "p1@example.com"]
    triggers = SegmentSnapshot.objects.filter(trigger="campaign").values_list("segment_id", flat=True)
    assert sorted(triggers) == sorted([vip.pk, staff.pk])
    campaign.refresh_from_db()
    assert (campaign.audience["excluded"], campaign.audience["recipients"]) == (1, 3)


def test_the_holdout_is_frozen_as_control_rows_and_never_mailed(workspace):
    people(workspace, 200, tags=["all"])
    campaign = email_campaign(workspace, [make_segment(workspace, "all")], holdout_percent=25)

    request_send(campaign=campaign)

    control = set(
        CampaignRecipient.objects.filter(campaign=campaign, is_control=True).values_list("contact_id", flat=True)
    )
    expected = {
        r.contact_id
        for r in CampaignRecipient.objects.filter(campaign=campaign)
        if in_holdout(campaign_id=campaign.pk, contact_id=r.contact_id, percent=25)
    }
    assert control == expected and 20 < len(control) < 80
    assert statuses(campaign) == {"sent": 200 - len(control), "control": len(control)}
    assert len(mail.outbox) == 200 - len(control)
    mailed = {m.to[0] for m in mail.outbox}
    assert not mailed & set(CampaignRecipient.objects.filter(is_control=True).values_list("contact__email", flat=True))


def test_delivery_goes_in_batches_through_a_real_smtp_server(workspace, smtp, settings):
    settings.CAMPAIGN_BATCH_SIZE = 4
    people(workspace, 10, tags=["vip"], first_name="Bo")
    campaign = email_campaign(workspace, [make_segment(workspace, "vip")])

    request_send(campaign=campaign)

    assert smtp.recipients() == sorted(f"p{i}@example.com" for i in range(10))
    message = smtp.messages[0]
    assert message["Subject"] == "Hello Bo"
    assert message["X-Segments-Campaign"] == f"campaign-{campaign.pk}"
    assert message.is_multipart()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT and campaign.finished_at is not None


def test_a_refused_address_fails_for_good_and_the_others_go_out(workspace, smtp):
    people(workspace, 3, tags=["vip"])
    smtp.refuse = {"p1@example.com"}
    campaign = email_campaign(workspace, [make_segment(workspace, "vip")])

    request_send(campaign=campaign)

    assert smtp.recipients() == ["p0@example.com", "p2@example.com"]
    failed = CampaignRecipient.objects.get(campaign=campaign, status=DeliveryStatus.FAILED)
    assert failed.contact.email == "p1@example.com" and "550" in failed.last_error
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert "550" in campaign.last_error


def test_a_mail_server_outage_is_retried_later_without_duplicates(workspace, smtp, settings):
    people(workspace, 3, tags=["vip"])
    campaign = email_campaign(workspace, [make_segment(workspace, "vip")])
    live_port = settings.EMAIL_PORT
    settings.EMAIL_PORT = 1  # nothing listens there

    request_send(campaign=campaign)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING
    assert "could not connect to the mail server" in campaign.last_error
    waiting = list(CampaignRecipient.objects.filter(campaign=campaign))
    assert {(r.status, r.sent_at, r.attempts) for r in waiting} == {(DeliveryStatus.PENDING, None, 1)}
    assert all(r.next_attempt_at > timezone.now() for r in waiting)
    # Nothing happens before the retry time, even when the dispatcher looks.
    services.resume_stalled_campaigns()
    assert smtp.messages == []

    settings.EMAIL_PORT = live_port
    CampaignRecipient.objects.filter(campaign=campaign).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    Campaign.objects.filter(pk=campaign.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert services.resume_stalled_campaigns() == [campaign.pk]

    assert smtp.recipients() == ["p0@example.com", "p1@example.com", "p2@example.com"]
    assert statuses(campaign) == {"sent": 3}
    assert set(CampaignRecipient.objects.values_list("attempts", flat=True)) == {2}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT


def test_after_the_last_attempt_a_message_fails_with_the_reason(workspace, settings):
    settings.CAMPAIGN_MAX_ATTEMPTS = 2
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    people(workspace, 1, tags=["vip"])
    campaign = email_campaign(workspace, [make_segment(workspace, "vip")])

    request_send(campaign=campaign)
    CampaignRecipient.objects.update(next_attempt_at=timezone.now())
    delivery.deliver_campaign(campaign_id=campaign.pk)

    recipient = CampaignRecipient.objects.get(campaign=campaign)
    assert (recipient.status, recipient.attempts) == (DeliveryStatus.FAILED, 2)
    assert recipient.last_error.endswith("(gave up after 2 attempts)")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT


def test_a_message_claimed_by_a_vanished_worker_is_failed_not_resent(workspace, settings):
    people(workspace, 2, tags=["vip"])
    campaign = email_campaign(workspace, [make_segment(workspace, "vip")])
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.QUEUED)
    services.prepare_send(campaign_id=campaign.pk)
    # A worker claimed both, sent who knows what, and died.
    claimed = delivery.claim(CampaignRecipient, scope="campaign_id", scope_id=campaign.pk, limit=10)
    assert len(claimed) == 2
    assert delivery.claim(CampaignRecipient, scope="campaign_id", scope_id=campaign.pk, limit=10) == []

    later = timezone.now() + timedelta(minutes=settings.CAMPAIGN_STALE_CLAIM_MINUTES + 1)
    services.resume_stalled_campaigns(now=later)

    assert mail.outbox == []
    assert statuses(campaign) == {"failed": 2}
    assert "not sent again" in CampaignRecipient.objects.first().last_error
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT


def test_the_webhook_channel_posts_signed_batches_and_retries_a_failed_one(workspace, receiver, settings):
    settings.CAMPAIGN_BATCH_SIZE = 2
    settings.CAMPAIGN_RETRY_BASE_S = 0
    receiver.codes = [200, 503]
    people(workspace, 3, tags=["vip"], first_name="Cy")
    make_contact(workspace, external_id="no-email", email=None, tags=["vip"])
    campaign = services.create_campaign(
        workspace=workspace,
        data={
            "name": "To the ESP",
            "channel": "webhook",
            "webhook_url": receiver.url,
            "subject": "Hi {{ first_name }}",
            "body": "<p>{{ first_name }}</p>",
            "segments": [make_segment(workspace, "vip").pk],
        },
    )

    request_send(campaign=campaign)  # batch 1 accepted, batch 2 answered 503
    assert statuses(campaign) == {"sent": 2, "pending": 2}
    Campaign.objects.filter(pk=campaign.pk).update(heartbeat_at=None)
    services.resume_stalled_campaigns()

    assert statuses(campaign) == {"sent": 4}
    headers, raw = receiver.requests[0]
    assert verify_signature(campaign.webhook_secret, raw, headers["X-Segments-Signature"])
    bodies = receiver.bodies()
    assert [len(b["recipients"]) for b in bodies] == [2, 2, 2]
    assert bodies[1]["recipients"] == bodies[2]["recipients"]  # the failed batch, sent again as it was
    first = bodies[0]["recipients"][0]
    assert bodies[0]["campaign"] == {"id": campaign.pk, "name": "To the ESP", "tracking_key": f"campaign-{campaign.pk}"}
    assert (first["contact"], first["subject"], first["body"]) == ("p0", "Hi Cy", "<p>Cy</p>")
    assert {r["contact"] for b in bodies for r in b["recipients"]} == {"p0", "p1", "p2", "no-email"}


def test_a_scheduled_campaign_goes_out_when_due_and_not_before(workspace):
    people(workspace, 2, tags=["vip"])
    when = timezone.now() + timedelta(hours=2)
    campaign = email_campaign(workspace, [make_segment(workspace, "vip")], scheduled_at=when)
    assert campaign.status == Campaign.Status.SCHEDULED

    assert services.start_due_campaigns(now=when - timedelta(minutes=1)) == []
    assert services.start_due_campaigns(now=when) == [campaign.pk]
    assert services.start_due_campaigns(now=when) == []

    assert len(mail.outbox) == 2
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT


def test_a_segment_that_no_longer_compiles_fails_the_campaign_which_can_be_sent_again(workspace):
    people(workspace, 2, tags=["vip"])
    vip = make_segment(workspace, "vip")
    campaign = email_campaign(workspace, [vip])
    good = vip.definition
    type(vip).objects.filter(pk=vip.pk).update(definition={"match": "all", "conditions": [{"type": "nope"}]})

    request_send(campaign=campaign)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FAILED
    assert f"segment {vip.pk} (Vip) could not be recomputed" in campaign.last_error
    assert not CampaignRecipient.objects.exists() and mail.outbox == []

    type(vip).objects.filter(pk=vip.pk).update(definition=good)
    assert request_send(campaign=campaign) is True
    assert len(mail.outbox) == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks and parallel writers: PostgreSQL")
def test_two_send_tasks_running_at_once_send_each_message_once(workspace, smtp, settings):
    settings.CAMPAIGN_BATCH_SIZE = 5
    people(workspace, 60, tags=["vip"])
    campaign = email_campaign(workspace, [make_segment(workspace, "vip")])
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.QUEUED)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            tasks.send_campaign_task.apply(args=[campaign.pk], throw=True)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert smtp.recipients() == sorted(f"p{i}@example.com" for i in range(60))
    assert statuses(campaign) == {"sent": 60}
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 60
    assert connection.vendor == "postgresql"
