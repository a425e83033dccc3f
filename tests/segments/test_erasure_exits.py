"""Erasing a contact (the right to be forgotten) makes it leave its segments like any other exit.

The feed and the webhooks show one "exited" change per segment (with only the external_id), the stored
size drops, a snapshot records it, and automations never act on the erased person.
"""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection, connections, transaction

from campaigns import automations
from campaigns.models import AutomationSend
from contacts.models import Contact
from contacts.services import erase_contact
from segments_app import tasks, webhooks
from segments_app.membership import recompute_membership, record_erasure_exits
from segments_app.models import Segment, SegmentChange, SegmentMember, SegmentSnapshot
from tests.factories import make_contact

POLISH = {"match": "all", "conditions": [{"type": "attribute", "field": "country", "op": "eq", "value": "PL"}]}
EVERYONE = {"match": "all", "conditions": []}


class FakeReceiver:
    """Stands in for the webhook's HTTP call (as in test_webhooks): answers 200 and keeps the bodies."""

    def __init__(self, monkeypatch):
        self.bodies: list[dict] = []
        monkeypatch.setattr(webhooks, "post_signed", self.post)

    def post(self, endpoint, delivery, body, sent_at):
        self.bodies.append(json.loads(body))
        return 200, ""

    def changes(self) -> list[dict]:
        return [change for body in self.bodies for change in body["changes"]]


def make_segment(workspace, name="Poles", definition=POLISH) -> Segment:
    segment = Segment.objects.create(workspace=workspace, name=name, definition=definition)
    recompute_membership(segment_id=segment.pk, trigger="manual")
    return segment


def poles(workspace, *names) -> list[Contact]:
    return [make_contact(workspace, external_id=n, country="PL", email=f"{n}@example.com") for n in names]


def feed(api, segment, after=None) -> dict:
    params = {} if after is None else {"after": after}
    response = api.get(f"/api/v1/segments/{segment.pk}/changes/", params)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def no_celery(monkeypatch) -> list[tuple]:
    """Webhook deliveries enqueued after commit, captured instead of sent to a worker."""
    sent: list[tuple] = []
    monkeypatch.setattr(tasks.deliver_segment_webhooks_task, "delay", lambda *args: sent.append(args))
    return sent


def test_erasing_a_member_adds_an_exit_to_the_feed_after_earlier_cursors(api, workspace):
    poles(workspace, "ann", "bob")
    segment = make_segment(workspace)
    before = feed(api, segment)
    assert [(c["contact"], c["change"]) for c in before["results"]] == [("ann", "entered"), ("bob", "entered")]

    assert api.delete("/api/v1/contacts/ann/").status_code == 204

    after = feed(api, segment, after=before["next_cursor"])
    ((exit_,),) = [after["results"]]
    assert (exit_["contact"], exit_["change"]) == ("ann", "exited")
    assert int(exit_["cursor"]) > int(before["next_cursor"])
    # The full feed: ann's own entry went with her, bob's stays, the exit is last and carries no person.
    assert [(c["contact"], c["change"]) for c in feed(api, segment)["results"]] == [
        ("bob", "entered"),
        ("ann", "exited"),
    ]
    row = SegmentChange.objects.get(pk=int(exit_["cursor"]))
    assert (row.contact_id, row.external_id, row.change) == (None, "ann", "exited")
    assert not Contact.objects.filter(external_id="ann").exists()
    assert feed(api, segment, after=after["next_cursor"])["results"] == []


def test_the_size_drops_and_a_snapshot_records_the_exit(api, workspace):
    poles(workspace, "ann", "bob", "cid")
    segment = make_segment(workspace)
    other = make_segment(workspace, name="Everyone", definition=EVERYONE)

    assert erase_contact(workspace=workspace, external_id="bob") is True

    for seg in (segment, other):
        seg.refresh_from_db()
        assert seg.size == 2
        assert SegmentMember.objects.filter(segment=seg).count() == 2
        latest = SegmentSnapshot.objects.filter(segment=seg).order_by("-pk").first()
        assert (latest.size, latest.entered, latest.exited, latest.trigger) == (2, 0, 1, "real_time")
        assert SegmentChange.objects.filter(segment=seg, change="exited").get().snapshot_id == latest.pk
    body = api.get(f"/api/v1/segments/{segment.pk}/").json()
    assert body["size"] == 2
    assert api.get(f"/api/v1/segments/{segment.pk}/snapshots/").json()["results"][0]["exited"] == 1


def test_the_next_recompute_reports_no_further_exit(workspace):
    poles(workspace, "ann", "bob")
    segment = make_segment(workspace)
    erase_contact(workspace=workspace, external_id="ann")
    exits = SegmentChange.objects.filter(segment=segment, change="exited").count()

    snapshot = recompute_membership(segment_id=segment.pk, trigger="manual")

    assert (snapshot.size, snapshot.entered, snapshot.exited) == (1, 0, 0)
    assert SegmentChange.objects.filter(segment=segment, change="exited").count() == exits == 1


def test_the_segment_webhooks_get_the_exit(workspace, monkeypatch, no_celery, django_capture_on_commit_callbacks):
    poles(workspace, "ann", "bob")
    segment = make_segment(workspace)
    unrelated = make_segment(workspace, name="Germans", definition={
        "match": "all", "conditions": [{"type": "attribute", "field": "country", "op": "eq", "value": "DE"}]
    })
    endpoint = webhooks.create_endpoint(workspace=workspace, url="http://receiver.test/hook")
    receiver = FakeReceiver(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        erase_contact(workspace=workspace, external_id="ann")

    assert no_celery == [(endpoint.pk, segment.pk)]  # queued after commit, for the segment she left only
    assert webhooks.deliver_pending(endpoint_id=endpoint.pk, segment_id=segment.pk).delivered == 1
    assert webhooks.deliver_pending(endpoint_id=endpoint.pk, segment_id=unrelated.pk).delivered == 0
    ((change,),) = [receiver.changes()]
    exit_row = SegmentChange.objects.get(segment=segment, change="exited")
    assert change == {
        "cursor": str(exit_row.pk),
        "contact": "ann",
        "email": None,  # nothing of the person but the external_id
        "change": "exited",
        "at": change["at"],
    }
    assert receiver.bodies[0]["segment"] == {"id": segment.pk, "name": "Poles"}


def test_a_contact_in_no_segment_produces_no_change(api, workspace, no_celery, django_capture_on_commit_callbacks):
    poles(workspace, "ann")
    segment = make_segment(workspace)
    make_contact(workspace, external_id="dan", country="DE")
    changes = list(SegmentChange.objects.values_list("pk", flat=True))
    snapshots = SegmentSnapshot.objects.count()
    webhooks.create_endpoint(workspace=workspace, url="http://receiver.test/hook")

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete("/api/v1/contacts/dan/").status_code == 204

    assert list(SegmentChange.objects.values_list("pk", flat=True)) == changes
    assert SegmentSnapshot.objects.count() == snapshots
    assert no_celery == []
    segment.refresh_from_db()
    assert segment.size == 1


def test_another_workspace_is_untouched(api, workspace, other_workspace):
    poles(workspace, "ann")
    poles(other_workspace, "ann")  # the same external_id elsewhere
    mine = make_segment(workspace)
    theirs = make_segment(other_workspace)
    their_changes = list(SegmentChange.objects.filter(segment=theirs).values_list("pk", "contact_id", "change"))

    assert api.delete("/api/v1/contacts/ann/").status_code == 204

    theirs.refresh_from_db()
    assert theirs.size == 1
    assert list(SegmentChange.objects.filter(segment=theirs).values_list("pk", "contact_id", "change")) == (
        their_changes
    )
    assert SegmentMember.objects.filter(segment=theirs, contact__external_id="ann").exists()
    assert Contact.objects.filter(workspace=other_workspace, external_id="ann").exists()
    mine.refresh_from_db()
    assert mine.size == 0
    assert list(SegmentChange.objects.filter(segment=mine).values_list("external_id", "change")) == [
        ("ann", "exited")
    ]


def test_an_exit_the_esp_may_not_have_seen_yet_is_kept_not_deleted(api, workspace):
    (ann,) = poles(workspace, "ann")
    segment = make_segment(workspace)
    Contact.objects.filter(pk=ann.pk).update(country="DE")
    recompute_membership(segment_id=segment.pk, trigger="manual")  # ann left before being erased
    last_exit = SegmentChange.objects.get(segment=segment, change="exited")

    assert record_erasure_exits(contact_id=ann.pk, external_id="ann") == []
    Contact.objects.filter(pk=ann.pk).delete()

    # Her entry goes with her; the exit stays (same cursor), so a poller that had not reached it learns it.
    assert [(c["cursor"], c["contact"], c["change"]) for c in feed(api, segment)["results"]] == [
        (str(last_exit.pk), "ann", "exited")
    ]
    assert SegmentChange.objects.get().contact_id is None


def test_an_exit_automation_does_not_act_on_the_erased_contact(workspace):
    poles(workspace, "ann", "bob")
    segment = make_segment(workspace)
    automation = automations.create_automation(
        workspace=workspace,
        data={
            "name": "Lost Poles", "segment": segment.pk, "trigger": "exited", "action": "webhook",
            "webhook_url": "http://receiver.test/hook",
        },
    )
    erase_contact(workspace=workspace, external_id="ann")
    Contact.objects.filter(external_id="bob").update(country="DE")
    recompute_membership(segment_id=segment.pk, trigger="manual")

    outcome = automations.process_changes(automation_id=automation.pk)

    assert outcome.changes_read == 2
    assert list(AutomationSend.objects.values_list("contact__external_id", flat=True)) == ["bob"]


def test_erasing_an_unknown_contact_changes_nothing(workspace):
    poles(workspace, "ann")
    segment = make_segment(workspace)

    assert erase_contact(workspace=workspace, external_id="nobody") is False
    segment.refresh_from_db()
    assert segment.size == 1
    assert SegmentChange.objects.filter(segment=segment).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_erasure_waits_for_a_running_recompute_and_does_not_exit_twice(workspace):
    """The recompute that removes the contact holds the segment's lock: the erasure waits, then finds her gone."""
    if connection.vendor != "postgresql":
        pytest.skip("the segment lock is PostgreSQL's; SQLite serialises writers itself")
    (ann,) = poles(workspace, "ann")
    poles(workspace, "bob")
    segment = make_segment(workspace)
    Contact.objects.filter(pk=ann.pk).update(country="DE")
    locked, release = threading.Event(), threading.Event()

    def recompute_holding_the_lock() -> None:
        try:
            with transaction.atomic():
                recompute_membership(segment_id=segment.pk, trigger="manual")  # ann exits, not yet committed
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    worker = threading.Thread(target=recompute_holding_the_lock)
    worker.start()
    assert locked.wait(10)
    threading.Timer(0.5, release.set).start()
    try:
        erase_contact(workspace=workspace, external_id="ann")  # blocks on the segment's lock until the commit
    finally:
        release.set()
        worker.join(10)

    segment.refresh_from_db()
    assert segment.size == 1
    rows = list(SegmentChange.objects.filter(segment=segment).order_by("pk").values_list("external_id", "change"))
    assert rows == [(None, "entered"), ("ann", "exited")]  # bob's entry, and the recompute's exit kept for ann
    assert SegmentSnapshot.objects.filter(segment=segment, trigger="real_time").count() == 0


def test_deleting_contacts_in_the_admin_is_an_erasure_too(api, client, workspace):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("op", "op@example.com", "pw"))
    ann, bob, cid = poles(workspace, "ann", "bob", "cid")
    segment = make_segment(workspace)

    one = client.post(f"/admin/contacts/contact/{ann.pk}/delete/", {"post": "yes"})
    many = client.post(
        "/admin/contacts/contact/",
        {"action": "delete_selected", "_selected_action": [bob.pk, cid.pk], "post": "yes"},
    )

    assert (one.status_code, many.status_code) == (302, 302)
    assert not Contact.objects.filter(workspace=workspace).exists()
    exits = [(c["contact"], c["change"]) for c in feed(api, segment)["results"]]
    assert exits == [("ann", "exited"), ("bob", "exited"), ("cid", "exited")]
    assert Segment.objects.get(pk=segment.pk).size == 0
