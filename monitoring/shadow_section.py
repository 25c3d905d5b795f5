"""The report's "candidate model on live traffic" section: the shadow comparison, in words.

The numbers are models/shadow_sample.py's (the same as `make status`'s `shadow`); this module
only says them for a support manager, beside the checks the gate would apply to them now.
"""

from __future__ import annotations

from html import escape

from models.shadow_checks import ShadowComparison
from models.shadow_sample import ShadowStatus


def _rate(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "—"


def _figures(comparison: ShadowComparison) -> str:
    rows = [
        ("Gives the live model's answer", _rate(comparison.agreement), "—"),
        (
            "Unsure, hands over (fallback)",
            _rate(comparison.shadow_fallback_rate),
            _rate(comparison.served_fallback_rate),
        ),
        (
            "Mean confidence",
            f"{comparison.shadow_mean_confidence:.2f}"
            if comparison.shadow_mean_confidence is not None
            else "—",
            f"{comparison.served_mean_confidence:.2f}"
            if comparison.served_mean_confidence is not None
            else "—",
        ),
        (
            f"Right on the {comparison.labelled} messages labelled since",
            _rate(comparison.shadow_accuracy),
            _rate(comparison.served_accuracy),
        ),
    ]
    cells = "".join(
        f"<tr><td>{escape(name)}</td><td>{candidate}</td><td>{live}</td></tr>"
        for name, candidate, live in rows
    )
    return (
        "<table><tr><th></th><th>candidate (version "
        f"{escape(comparison.challenger_version)})</th><th>live model (version "
        f"{escape(str(comparison.served_version))})</th></tr>{cells}</table>"
    )


def shadow_section(status: ShadowStatus | None) -> str:
    """The section's HTML; empty when no candidate model is being tried on live traffic."""
    if status is None:
        return ""
    if status.comparison is None:
        return (
            "<section id='shadow'><h2>Candidate model on live traffic</h2>"
            f"<p class='note'>Could not read its answers: {escape(status.error or '')}</p>"
            "</section>"
        )
    comparison = status.comparison
    head = (
        f"<p>Candidate version {escape(comparison.challenger_version)} answered "
        f"{comparison.samples:,} live customer messages in the background, beside the live "
        "model; customers only ever saw the live model's answers.</p>"
    )
    if comparison.samples == 0:
        head = (
            f"<p>Candidate version {escape(comparison.challenger_version)} has not answered "
            "any live message yet: serving tries it on a share of traffic once it runs "
            "(SERVING_SHADOW_SHARE).</p>"
        )
    failing = [check for check in status.checks if not check.passed]
    verdict = (
        "<p>The promotion gate would <b>refuse</b> it on this traffic: "
        + "; ".join(escape(check.reason) for check in failing)
        + ".</p>"
        if failing
        else "<p class='note'>Nothing in this traffic would stop its promotion.</p>"
    )
    figures = _figures(comparison) if comparison.samples else ""
    return (
        f"<section id='shadow'><h2>Candidate model on live traffic</h2>{head}{figures}"
        f"{verdict}</section>"
    )
