"""Webhooks: batches of entries and exits, signed, retried until confirmed, driven by a cursor."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from contacts.models import Contact
from segments_app import tasks, webhooks
from segments_app.membership import recompute_membership
from segments_app.models import Segment, SegmentChange, WebhookCursor, WebhookDelivery
from tests.factories import make_contact

POLISH = {"match": "all", "conditions": [{"type": "attribute", "field": "country", "op": "eq", "value": "PL"}]}


class FakeReceiver:
    """Stands in for the HTTP call: answers with the next status code and keeps what was sent."""

    def __init__(self, monkeypatch, codes=()):
        self.codes = list(codes)
        self.bodies: list[dict] = []
        monkeypatch.setattr(webhooks, "post_signed", self.post)

    def post(self, endpoint, delivery, body, sent_at):
        self.bodies.append(json.loads(body))
        code = self.codes.pop(0) if self.codes else 200
        return code, "" if 200 <= code < 300 else f"HTTP {code}"

    def cursors(self) -> list[str]:
        return [change["cursor"] for body in self.bodies for change in body["changes"]]


@pytest.fixture
def poles(workspace) -> Segment:
    return Segment.objects.create(workspace=workspace, name="Poles", definition=POLISH)


def add_poles(workspace, segment, names) -> None:
    for name in names:
        make_contact(workspace, external_id=name, country="PL", email=f"{name}@example.com")
    recompute_membership(segment_id=segment.pk, trigger="manual")


def change_ids(segment) -> list[str]:
    return [str(pk) for pk in SegmentChange.objects.filter(segment=segment).order_by("pk").values_list("pk", flat=True)]


def test_signature_is_hmac_sha256_of_the_body():
    # RFC 4231, test case 2
    body = b"what do ya want for nothing?"
    expected = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

    assert webhooks.sign("Jefe", body) == expected
    assert webhooks.verify_signature("Jefe", body, expected)
    assert not webhooks.verify_signature("other", body, expected)
    assert not webhooks.verify_signature("Jefe", body + b" ", expected)


def test_changes_are_sent_in_order_in_batches(workspace, poles, monkeypatch, settings):
    settings.WEBHOOK_BATCH_SIZE = 2
    endpoint = webhooks.create_endpoint(workspace=workspace, url="http://receiver.test/hook", segments=[poles])
    add_poles(workspace, poles, ["a", "b", "c", "d", "e"])
    receiver = FakeReceiver(monkeypatch)

    outcome = webhooks.deliver_pending(endpoint_id=endpoint.pk, segment_id=poles.pk)

    assert outcome.delivered == 5
    assert [len(body["changes"]) for body in receiver.bodies] == [2, 2, 1]
    assert receiver.cursors() == change_ids(poles)
    first = receiver.bodies[0]
    assert first["segment"] == {"id": poles.pk, "name": "Poles"}
    assert first["changes"][0] == {
        "cursor": change_ids(poles)[0],
        "contact": "a",
        "email": "a@example.com",
        "change": "entered",
        "at": first["changes"][0]["at"],
    }
    assert WebhookCursor.objects.get(endpoint=endpoint, segment=poles).last_change_id == int(change_ids(poles)[-1])
    assert list(WebhookDelivery.objects.order_by("pk").values_list("status", "change_count", "attempts")) == [
        ("succeeded", 2, 1),
        ("succeeded", 2, 1),
        ("succeeded", 1, 1),
    ]
    assert webhooks.deliver_pending(endpoint_id=endpoint.pk, segment_id=poles.pk).delivered == 0


def test_a_failed_batch_is_sent_again_unchanged_after_a_growing_delay(workspace, poles, monkeypatch, settings):
    settings.WEBHOOK_RETRY_BASE_S = 30
    endpoint = webhooks.create_endpoint(workspace=workspace, url="http://receiver.test/hook")
    add_poles(workspace, poles, ["a", "b"])
    receiver = FakeReceiver(monkeypatch, codes=[500, 503])

    first = webhooks.deliver_pending(endpoint_id=endpoint.pk, segment_id=poles.pk)
    assert (first.delivered, first.retry_in.total_seconds()) == (0, 30)
    # Waiting out the backoff: nothing is sent before it.
    assert webhooks.deliver_pending(endpoint_id=endpoint.pk, segment_id=poles.pk).retry_in is None
    assert len(receiver.bodies) == 1

    later = timezone.now() + first.retry_in
    second = webhooks.deliver_pending(endpoint_id=endpoint.pk, segment_id=poles.pk, now=later)
    assert second.retry_in.total_seconds() == 60
    add_poles(workspace, poles, ["c"])  # new changes wait behind the unconfirmed batch
    third = webhooks.deliver_pending(endpoint_id=endpoint.pk, segment_id=poles.pk, now=later + second.retry_in)

    assert third.delivered == 3
    assert [body["delivery_id"] for body in receiver.bodies[:3]] == [receiver.bodies[0]["delivery_id"]] * 3
    assert receiver.bodies[0]["changes"] == receiver.bodies[2]["changes"]
    assert receiver.cursors()[-3:] == change_ids(poles)
    delivery = WebhookDelivery.objects.order_by("pk").first()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("succeeded", 3, 200)
    cursor = WebhookCursor.objects.get(endpoint=endpoint, segment=poles)
    assert (cursor.failures, cursor.next_attempt_at) == (0, None)


def test_an_endpoint_receives_only_changes_after_it_was_registered(workspace, poles, monkeypatch):
    add_poles(workspace, poles, ["before"])
    endpoint = webhooks.create_endpoint(workspace=workspace, url="http://receiver.test/hook")
    add_poles(workspace, poles, ["after"])
    receiver = FakeReceiver(monkeypatch)

    webhooks.deliver_pending(endpoint_id=endpoint.pk, segment_id=poles.pk)

    assert [c["contact"] for body in receiver.bodies for c in body["changes"]] == ["after"]


def test_endpoints_get_the_segments_they_chose(workspace, other_workspace, poles):
    other = Segment.objects.create(workspace=workspace, name="Other", definition=POLISH)
    everything = webhooks.create_endpoint(workspace=workspace, url="http://a.test/")
    chosen = webhooks.create_endpoint(workspace=workspace, url="http://b.test/", segments=[poles])
    webhooks.create_endpoint(workspace=workspace, url="http://c.test/", segments=[poles], active=False)
    webhooks.create_endpoint(workspace=other_workspace, url="http://d.test/")

    assert list(webhooks.endpoints_for_segment(segment_id=poles.pk)) == [everything, chosen]
    assert list(webhooks.endpoints_for_segment(segment_id=other.pk)) == [everything]


def test_a_recompute_with_changes_enqueues_delivery(workspace, poles, monkeypatch, django_capture_on_commit_callbacks):
    endpoint = webhooks.create_endpoint(workspace=workspace, url="http://receiver.test/hook")
    sent = []
    monkeypatch.setattr(tasks.deliver_segment_webhooks_task, "delay", lambda *args: sent.append(args))

    with django_capture_on_commit_callbacks(execute=True):
        add_poles(workspace, poles, ["a"])
        recompute_membership(segment_id=poles.pk, trigger="manual")  # nothing changed: nothing to send

    assert sent == [(endpoint.pk, poles.pk)]


def test_the_sweep_retries_due_pairs_only(workspace, poles, monkeypatch):
    endpoint = webhooks.create_endpoint(workspace=workspace, url="http://receiver.test/hook")
    add_poles(workspace, poles, ["a"])
    sent = []
    monkeypatch.setattr(tasks.deliver_segment_webhooks_task, "delay", lambda *args: sent.append(args))

    assert webhooks.enqueue_due_deliveries() == [(endpoint.pk, poles.pk)]
    FakeReceiver(monkeypatch, codes=[500])
    webhooks.deliver_pending(endpoint_id=endpoint.pk, segment_id=poles.pk)
    assert webhooks.enqueue_due_deliveries() == []  # backing off
    cursor = WebhookCursor.objects.get(endpoint=endpoint, segment=poles)
    assert webhooks.enqueue_due_deliveries(now=cursor.next_attempt_at) == [(endpoint.pk, poles.pk)]


def test_deliveries_of_an_inactive_endpoint_stop(workspace, poles, monkeypatch):
    endpoint = webhooks.create_endpoint(workspace=workspace, url="http://receiver.test/hook", active=False)
    add_poles(workspace, poles, ["a"])
    receiver = FakeReceiver(monkeypatch)

    assert webhooks.deliver_pending(endpoint_id=endpoint.pk, segment_id=poles.pk).delivered == 0
    assert receiver.bodies == []


# --- a real receiver --------------------------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 that checks signatures and fails while `down` is set."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.down = threading.Event()
        self.accepted: list[dict] = []
        self.refused = 0
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signed = webhooks.verify_signature(receiver.secret, body, self.headers[webhooks.SIGNATURE_HEADER])
                payload = json.loads(body)
                if not signed or self.headers[webhooks.TIMESTAMP_HEADER] is None:
                    receiver.bad_signatures += 1
                    self.send_response(401)
                elif receiver.down.is_set():
                    receiver.refused += 1
                    self.send_response(503)
                else:
                    assert self.headers[webhooks.DELIVERY_HEADER] == str(payload["delivery_id"])
                    receiver.accepted.append(payload)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_a_real_receiver_gets_every_change_once_with_valid_signatures_despite_an_outage(workspace, poles, settings):
    settings.WEBHOOK_RETRY_BASE_S = 0  # retry at once: the outage is simulated, not waited for
    settings.WEBHOOK_BATCH_SIZE = 3
    secret = "whsec_test_secret_1234567890"
    with Receiver(secret) as receiver:
        endpoint = webhooks.create_endpoint(workspace=workspace, url=receiver.url, secret=secret)

        def deliver():
            return webhooks.deliver_pending(endpoint_id=endpoint.pk, segment_id=poles.pk)

        add_poles(workspace, poles, ["a", "b", "c", "d"])
        assert deliver().delivered == 4

        receiver.down.set()  # the ESP is down while people enter and leave
        add_poles(workspace, poles, ["e", "f"])
        assert deliver().retry_in is not None
        Contact.objects.filter(external_id__in=["a", "b"]).update(country="DE")
        recompute_membership(segment_id=poles.pk, trigger="schedule")
        assert deliver().retry_in is not None
        add_poles(workspace, poles, ["g", "h", "i", "j", "k"])
        assert deliver().retry_in is not None

        receiver.down.clear()
        while deliver().delivered:
            pass

    received = [(c["cursor"], c["contact"], c["change"]) for body in receiver.accepted for c in body["changes"]]
    logged = [
        (str(pk), external_id, change)
        for pk, external_id, change in SegmentChange.objects.filter(segment=poles)
        .order_by("pk")
        .values_list("pk", "contact__external_id", "change")
    ]
    assert received == logged  # every change, once, in order
    assert ("a", "exited") in {(contact, change) for _, contact, change in received}
    assert receiver.refused == 3
    assert receiver.bad_signatures == 0
    failed_then_ok = WebhookDelivery.objects.filter(attempts__gt=1).get()
    assert (failed_then_ok.status, failed_then_ok.attempts) == ("succeeded", 4)
