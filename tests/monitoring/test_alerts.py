"""Alerts arrive at real local receivers: an aiosmtpd SMTP server and an HTTP webhook."""

from __future__ import annotations

import json
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from aiosmtpd.controller import Controller

from monitoring.alerts import Alert, notify
from monitoring.settings import MonitoringSettings
from tests.serving.conftest import free_port

ALERT = Alert("drift", "Intent model drift: version 3", ["fallback rate 40% against 4%"], "/r/1")


class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def test_email_alert_arrives(smtp_server):
    controller, inbox = smtp_server
    settings = MonitoringSettings(
        notifiers=["log", "smtp"],
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        smtp_to=["ml-team@example.com"],
    )
    assert notify(settings, ALERT) == {"log": "sent", "smtp": "sent"}
    ((recipients, message),) = inbox.messages
    assert recipients == ["ml-team@example.com"]
    assert message["Subject"] == "[supportloop] Intent model drift: version 3"
    assert "fallback rate 40% against 4%" in message.get_payload()


def test_webhook_alert_arrives():
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["content-length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings = MonitoringSettings(
            notifiers=["webhook"], webhook_url=f"http://127.0.0.1:{server.server_port}/hook"
        )
        assert notify(settings, ALERT) == {"webhook": "sent"}
    finally:
        server.shutdown()
    (body,) = received
    assert body["kind"] == "drift" and body["lines"] == ["fallback rate 40% against 4%"]
    assert "Intent model drift" in body["text"]


def test_a_failing_notifier_does_not_stop_the_others():
    settings = MonitoringSettings(
        notifiers=["smtp", "log"], smtp_host="127.0.0.1", smtp_port=free_port(), smtp_to=["x@y"]
    )
    outcome = notify(settings, ALERT)
    assert outcome["smtp"].startswith("failed") and outcome["log"] == "sent"


def test_settings_name_missing_alert_targets():
    with pytest.raises(ValueError, match="MONITORING_SMTP_TO"):
        MonitoringSettings(notifiers=["smtp"])
    with pytest.raises(ValueError, match="MONITORING_WEBHOOK_URL"):
        MonitoringSettings(notifiers=["webhook"])
    with pytest.raises(ValueError, match="MONITORING_NOTIFIERS"):
        MonitoringSettings(notifiers=["pager"])
