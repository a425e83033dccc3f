"""Automations fire once per entry (or exit), from the change log, and never repeat after a restart."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from campaigns import automations, tasks
from campaigns.errors import CampaignInvalid
from campaigns.models import AutomationSend, DeliveryStatus
from contacts.models import Contact, ContactTag, Tag
from segments_app.membership import recompute_membership
from segments_app.models import SegmentChange
from segments_app.webhooks import verify_signature
from tests.campaigns.support import email_campaign, make_segment
from tests.factories import make_contact


def tag(contact: Contact, name: str) -> None:
    found, _ = Tag.objects.get_or_create(workspace=contact.workspace, name=name)
    contact.tags.add(found, through_defaults={"workspace": contact.workspace})


def untag(contact: Contact, name: str) -> None:
    ContactTag.objects.filter(contact=contact, tag__name=name).delete()


def recompute(segment) -> None:
    recompute_membership(segment_id=segment.pk, trigger="schedule")


@pytest.fixture
def vip(workspace):
    make_contact(workspace, external_id="before", email="before@x.io", tags=["vip"])
    return make_segment(workspace, "vip")


@pytest.fixture
def welcome(workspace, vip):
    return email_campaign(workspace, [vip], name="Welcome", subject="Welcome {{ first_name }}")


def test_a_contact_entering_gets_the_message_once_and_history_is_not_replayed(workspace, vip, welcome):
    automation = automations.create_automation(
        workspace=workspace, data={"name": "Welcome VIPs", "segment": vip.pk, "campaign": welcome.pk}
    )
    ann = make_contact(workspace, external_id="ann", email="ann@x.io", first_name="Ann", tags=["vip"])
    recompute(vip)

    tasks.run_automation_task.apply(args=[automation.pk])
    tasks.run_automation_task.apply(args=[automation.pk])  # a restart, a duplicate message: nothing new

    assert [(m.to, m.subject) for m in mail.outbox] == [(["ann@x.io"], "Welcome Ann")]
    assert mail.outbox[0].extra_headers["X-Segments-Campaign"] == f"automation-{automation.pk}"
    send = AutomationSend.objects.get()
    assert (send.contact_id, send.status) == (ann.pk, DeliveryStatus.SENT)
    automation.refresh_from_db()
    assert automation.last_change_id == SegmentChange.objects.filter(segment=vip).latest("pk").pk


def test_once_means_once_per_contact_even_when_it_enters_again(workspace, vip, welcome):
    automation = automations.create_automation(
        workspace=workspace, data={"name": "W", "segment": vip.pk, "campaign": welcome.pk, "frequency": "once"}
    )
    ann = make_contact(workspace, external_id="ann", email="ann@x.io", tags=["vip"])
    recompute(vip)
    untag(ann, "vip")
    recompute(vip)
    tag(ann, "vip")
    recompute(vip)

    automations.run_automation(automation_id=automation.pk)

    assert len(mail.outbox) == 1
    assert AutomationSend.objects.count() == 1


def test_a_cooldown_allows_a_new_send_only_after_it_has_passed(workspace, vip, welcome):
    automation = automations.create_automation(
        workspace=workspace,
        data={"name": "W", "segment": vip.pk, "campaign": welcome.pk, "frequency": "cooldown", "cooldown_hours": 24},
    )
    ann = make_contact(workspace, external_id="ann", email="ann@x.io", tags=["vip"])
    start = timezone.now()
    for hours, member in [(0, True), (1, False), (2, True), (30, False), (31, True)]:
        (tag if member else untag)(ann, "vip")
        recompute_membership(segment_id=vip.pk, trigger="schedule", now=start + timedelta(hours=hours))

    automations.run_automation(automation_id=automation.pk)

    fired_at = sorted(AutomationSend.objects.values_list("triggered_at", flat=True))
    assert fired_at == [start, start + timedelta(hours=31)]  # the entry at +2h fell inside the cool-down
    assert len(mail.outbox) == 2


def test_an_exit_automation_calls_a_webhook_with_the_contacts(workspace, vip, receiver):
    automation = automations.create_automation(
        workspace=workspace,
        data={
            "name": "Lost VIPs",
            "segment": vip.pk,
            "trigger": "exited",
            "action": "webhook",
            "webhook_url": receiver.url,
        },
    )
    before = Contact.objects.get(external_id="before")
    untag(before, "vip")
    make_contact(workspace, external_id="new", email="new@x.io", tags=["vip"])  # enters: not this automation's kind
    recompute(vip)

    automations.run_automation(automation_id=automation.pk)

    ((headers, raw),) = receiver.requests
    assert verify_signature(automation.webhook_secret, raw, headers["X-Segments-Signature"])
    body = receiver.bodies()[0]
    assert body["trigger"] == "exited"
    assert body["segment"] == {"id": vip.pk, "name": "Vip"}
    assert [r["contact"] for r in body["recipients"]] == ["before"]


def test_a_failing_webhook_is_retried_and_the_change_is_not_lost(workspace, vip, receiver, settings):
    settings.CAMPAIGN_RETRY_BASE_S = 0
    receiver.codes = [500]
    automation = automations.create_automation(
        workspace=workspace, data={"name": "Hook", "segment": vip.pk, "action": "webhook", "webhook_url": receiver.url}
    )
    make_contact(workspace, external_id="ann", email="ann@x.io", tags=["vip"])
    recompute(vip)

    automations.run_automation(automation_id=automation.pk)
    assert AutomationSend.objects.get().status == DeliveryStatus.PENDING
    assert automations.due_automations() == [automation.pk]
    automations.run_automation(automation_id=automation.pk)

    assert AutomationSend.objects.get().status == DeliveryStatus.SENT
    assert [len(b["recipients"]) for b in receiver.bodies()] == [1, 1]
    assert automations.due_automations() == []


def test_contacts_who_cannot_receive_are_skipped_with_the_reason(workspace, vip, welcome):
    automation = automations.create_automation(
        workspace=workspace, data={"name": "W", "segment": vip.pk, "campaign": welcome.pk}
    )
    make_contact(workspace, external_id="unsub", email="u@x.io", email_status="unsubscribed", tags=["vip"])
    make_contact(workspace, external_id="no-mail", email=None, tags=["vip"])
    recompute(vip)

    automations.run_automation(automation_id=automation.pk)

    assert mail.outbox == []
    assert sorted(AutomationSend.objects.values_list("status", "last_error")) == [
        ("skipped", "cannot receive: no_email"),
        ("skipped", "cannot receive: unsubscribed"),
    ]


def test_a_worker_dying_before_commit_leaves_the_changes_for_the_next_run(workspace, vip, welcome, monkeypatch):
    automation = automations.create_automation(
        workspace=workspace, data={"name": "W", "segment": vip.pk, "campaign": welcome.pk}
    )
    make_contact(workspace, external_id="ann", email="ann@x.io", tags=["vip"])
    recompute(vip)

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(AutomationSend.objects, "bulk_create", crash)
    with pytest.raises(RuntimeError):
        automations.process_changes(automation_id=automation.pk)
    monkeypatch.undo()
    automation.refresh_from_db()
    assert automation.last_change_id < SegmentChange.objects.latest("pk").pk

    automations.run_automation(automation_id=automation.pk)
    assert len(mail.outbox) == 1


def test_bad_automation_input_is_refused_with_located_errors(workspace, other_workspace, vip):
    foreign = make_segment(other_workspace, "vip")
    with pytest.raises(CampaignInvalid) as refused:
        automations.create_automation(
            workspace=workspace,
            data={"name": "x", "segment": foreign.pk, "action": "webhook", "frequency": "cooldown"},
        )
    assert refused.value.errors == [
        {"path": "segment", "message": f"no segment {foreign.pk} in this workspace"},
        {"path": "webhook_url", "message": "required when the action is webhook"},
        {"path": "cooldown_hours", "message": "a cool-down of at least 1 hour is required"},
    ]
