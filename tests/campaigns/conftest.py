from __future__ import annotations

import logging

import pytest

from tests.campaigns.support import HttpReceiver, SmtpServer

# aiosmtpd logs every SMTP command at INFO.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@pytest.fixture
def smtp(settings):
    """Django's SMTP backend pointed at a real local SMTP server."""
    server = SmtpServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 5
    yield server
    server.stop()


@pytest.fixture
def receiver():
    """A local HTTP server that answers 200 unless given other codes (`receiver.codes = [500]`)."""
    server = HttpReceiver().start()
    yield server
    server.stop()
