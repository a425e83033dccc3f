"""Helpers of the campaign tests: segments by tag, campaigns with sensible defaults, a local SMTP server."""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from campaigns.models import Campaign
from campaigns.services import create_campaign
from contacts.models import Workspace
from segments_app.membership import recompute_membership
from segments_app.models import Segment
from tests.factories import make_contact


def tagged(tag: str) -> dict:
    return {"match": "all", "conditions": [{"type": "tag", "op": "has_any", "value": [tag]}]}


def make_segment(workspace: Workspace, tag: str, *, name: str | None = None, compute: bool = True) -> Segment:
    """A segment of the contacts tagged `tag`, with its stored membership computed."""
    segment = Segment.objects.create(workspace=workspace, name=name or tag.title(), definition=tagged(tag))
    if compute:
        recompute_membership(segment_id=segment.pk, trigger="manual")
    return segment


def people(workspace: Workspace, count: int, *, tags=(), prefix: str = "p", **fields) -> list:
    return [
        make_contact(workspace, external_id=f"{prefix}{i}", email=f"{prefix}{i}@example.com", tags=list(tags), **fields)
        for i in range(count)
    ]


def email_campaign(workspace: Workspace, segments, **data) -> Campaign:
    values = {
        "name": "Spring sale",
        "subject": "Hello {{ first_name|default:'friend' }}",
        "body": "<p>Hi {{ first_name }}, 20% off.</p>",
        "segments": [s.pk for s in segments],
        **data,
    }
    return create_campaign(workspace=workspace, data=values)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    """A real SMTP server on a free local port (aiosmtpd) that keeps every message it accepted."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list = []
        self.refuse: set[str] = set()
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=_free_port())

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd hook
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook
        with self._lock:
            self.envelopes.append(envelope)
            self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted"

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    @property
    def port(self) -> int:
        return self.controller.port

    def stop(self) -> None:
        self.controller.stop()

    def recipients(self) -> list[str]:
        return sorted(address for envelope in self.envelopes for address in envelope.rcpt_tos)


class HttpReceiver:
    """A real local HTTP server standing in for an ESP: answers with the next status code, keeps each request."""

    def __init__(self, codes=()) -> None:
        self.codes = list(codes)
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server hook
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((dict(self.headers), body))
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/esp"

    def start(self) -> HttpReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]
