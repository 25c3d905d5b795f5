"""Alerts on drift, degradation and gate failures: log, SMTP email, webhook POST.

Notifiers are chosen by MONITORING_NOTIFIERS (e.g. `["log", "smtp", "webhook"]`). A notifier
that fails is logged and the others still run: an alert outage never fails a monitoring run.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from monitoring.settings import MonitoringSettings

logger = logging.getLogger("monitoring.alerts")


@dataclass(frozen=True)
class Alert:
    """Something a person should look at."""

    kind: str  # drift | degraded | gate_failed
    title: str
    lines: list[str]
    link: str | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def text(self) -> str:
        """Plain-text body."""
        body = "\n".join(f"- {line}" for line in self.lines)
        return f"{self.title}\n\n{body}\n" + (f"\nReport: {self.link}\n" if self.link else "")


def log_notifier(settings: MonitoringSettings, alert: Alert) -> None:
    """Write the alert to the log (always safe)."""
    logger.warning("ALERT %s: %s | %s", alert.kind, alert.title, "; ".join(alert.lines))


def smtp_notifier(settings: MonitoringSettings, alert: Alert) -> None:
    """Send the alert as an email."""
    message = EmailMessage()
    message["Subject"] = f"[supportloop] {alert.title}"
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(settings.smtp_to)
    message.set_content(alert.text())
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as client:
        if settings.smtp_user and settings.smtp_password:
            client.starttls()
            client.login(settings.smtp_user, settings.smtp_password.get_secret_value())
        client.send_message(message)


def webhook_notifier(settings: MonitoringSettings, alert: Alert) -> None:
    """POST the alert as JSON (Slack-style `text` plus the structured fields)."""
    assert settings.webhook_url is not None
    response = httpx.post(
        settings.webhook_url, json={"text": alert.text(), **asdict(alert)}, timeout=10
    )
    response.raise_for_status()


NOTIFIERS: dict[str, Callable[[MonitoringSettings, Alert], None]] = {
    "log": log_notifier,
    "smtp": smtp_notifier,
    "webhook": webhook_notifier,
}


def notify(settings: MonitoringSettings, alert: Alert) -> dict[str, str]:
    """Send through every configured notifier; returns `sent` or the error per notifier."""
    outcome: dict[str, str] = {}
    for name in settings.notifiers:
        try:
            NOTIFIERS[name](settings, alert)
            outcome[name] = "sent"
        except Exception as exc:
            logger.exception("alert through %s failed", name)
            outcome[name] = f"failed: {exc}"
    return outcome
