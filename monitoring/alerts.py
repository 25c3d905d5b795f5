"""Alerts on drift, degradation and gate failures: log, SMTP email, webhook POST.

Notifiers are chosen by MONITORING_NOTIFIERS (e.g. `["log", "smtp", "webhook"]`). A notifier
that fails is logged and the others still run: an alert outage never fails a monitoring run.
`deliver` sends to explicit `AlertTargets`: the Dagster notifier resource (pipelines/resources.py)
hands them over, so no asset reads the environment to alert; `notify` takes them from settings.
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
    from models.gate_records import GateDecision
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


def gate_failure_alert(decision: GateDecision) -> Alert:
    """The alert for a challenger the gate refused: one line per failing check."""
    failing = [f"{check.name}: {check.reason}" for check in decision.checks if not check.passed]
    return Alert("gate_failed", f"Challenger v{decision.version} refused by the gate", failing)


@dataclass(frozen=True)
class AlertTargets:
    """Which notifiers to use and where each one sends (MONITORING_NOTIFIERS, _SMTP_*, ...)."""

    notifiers: tuple[str, ...]
    smtp_host: str
    smtp_port: int
    smtp_from: str
    smtp_to: tuple[str, ...]
    smtp_user: str | None
    smtp_password: str | None = field(repr=False)  # never in a log line
    webhook_url: str | None

    @classmethod
    def from_settings(cls, settings: MonitoringSettings) -> AlertTargets:
        """The targets the monitoring settings name."""
        password = settings.smtp_password
        return cls(
            notifiers=tuple(settings.notifiers),
            smtp_host=settings.smtp_host,
            smtp_port=settings.smtp_port,
            smtp_from=settings.smtp_from,
            smtp_to=tuple(settings.smtp_to),
            smtp_user=settings.smtp_user,
            smtp_password=password.get_secret_value() if password else None,
            webhook_url=settings.webhook_url,
        )


def log_notifier(targets: AlertTargets, alert: Alert) -> None:
    """Write the alert to the log (always safe)."""
    link = f" | report: {alert.link}" if alert.link else ""
    logger.warning("ALERT %s: %s | %s%s", alert.kind, alert.title, "; ".join(alert.lines), link)


def smtp_notifier(targets: AlertTargets, alert: Alert) -> None:
    """Send the alert as an email."""
    message = EmailMessage()
    message["Subject"] = f"[supportloop] {alert.title}"
    message["From"] = targets.smtp_from
    message["To"] = ", ".join(targets.smtp_to)
    message.set_content(alert.text())
    with smtplib.SMTP(targets.smtp_host, targets.smtp_port, timeout=10) as client:
        if targets.smtp_user and targets.smtp_password:
            client.starttls()
            client.login(targets.smtp_user, targets.smtp_password)
        client.send_message(message)


def webhook_notifier(targets: AlertTargets, alert: Alert) -> None:
    """POST the alert as JSON (Slack-style `text` plus the structured fields)."""
    assert targets.webhook_url is not None
    response = httpx.post(
        targets.webhook_url, json={"text": alert.text(), **asdict(alert)}, timeout=10
    )
    response.raise_for_status()


NOTIFIERS: dict[str, Callable[[AlertTargets, Alert], None]] = {
    "log": log_notifier,
    "smtp": smtp_notifier,
    "webhook": webhook_notifier,
}


def notify(settings: MonitoringSettings, alert: Alert) -> dict[str, str]:
    """Send through the notifiers the settings name; returns `sent` or the error per notifier."""
    return deliver(AlertTargets.from_settings(settings), alert)


def deliver(targets: AlertTargets, alert: Alert) -> dict[str, str]:
    """Send through every notifier of `targets`; returns `sent` or the error per notifier."""
    outcome: dict[str, str] = {}
    for name in targets.notifiers:
        try:
            NOTIFIERS[name](targets, alert)
            outcome[name] = "sent"
        except Exception as exc:
            logger.exception("alert through %s failed", name)
            outcome[name] = f"failed: {exc}"
    return outcome
