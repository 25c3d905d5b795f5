"""Sections of the run's page: its one drift rule and the champion's calibration over time."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitoring.drift_report import ColumnDrift
    from monitoring.summary import MonitoringSummary


def _column_test(column: ColumnDrift) -> str:
    # Text drift is a domain classifier's ROC AUC; the other columns are distances.
    measure = "ROC AUC" if column.column == "text" else "distance"
    return f"{escape(column.column)}: {measure} ≥ {column.threshold:.3g}"


def rule_section(summary: MonitoringSummary) -> str:
    """The page's one drift rule, with the thresholds this run applied.

    The embedded Evidently report shows each column's test with the same thresholds and no
    dataset-level verdict of its own (monitoring/evidently_preset.py), so nothing below can
    contradict the verdict above.
    """
    rules = summary.rules
    columns = "; ".join(_column_test(column) for column in summary.columns)
    column_rule = (
        f"the distribution of a column moved past its test ({columns}; the Evidently tables "
        "below show each test with these same thresholds)"
        if columns
        else "the distribution of a column moved past its test (not run: too few messages)"
    )
    conditions = [
        column_rule,
        f"the mix of requests moved: Jensen-Shannon distance ≥ {rules.intent_js_threshold}, "
        f"or ≥ {summary.predictions.intent_js_floor:.3g} where that is higher (how far "
        f"{summary.current_messages:,} messages from an unchanged mix move by chance)",
        f"the bot fell back at least {rules.fallback_rate_increase:.0%} points more often than "
        "on its held-out test data",
        f"its mean confidence fell by at least {rules.confidence_drop:.2f}",
    ]
    items = "".join(f"<li>{condition}</li>" for condition in conditions)
    return f"""<section id="rule"><h2>How the verdict is decided</h2>
<p>One rule for the whole page. <b>degraded</b>: on at least {summary.performance.min_labels}
labelled messages the bot is right more than {rules.max_accuracy_drop:.0%} less often than on
its test data. Otherwise <b>insufficient_data</b> below {rules.min_messages} customer messages.
Otherwise <b>drift</b> when any one of these holds, else <b>ok</b>:</p><ul>{items}</ul></section>"""


def _training(ece: float | None) -> str:
    if ece is None:
        return "no calibration error was logged for this version at training time"
    return f"at training time, on its held-out test data, it was {ece:.3f}"


def calibration_section(summary: MonitoringSummary) -> str:
    """Can the bot's confidence be trusted: ECE on this window's labels against training time."""
    calibration = summary.calibration
    if calibration is None:
        return ""
    if calibration.judged and calibration.ece is not None:
        trend = ""
        if calibration.training_ece is not None:
            worse = calibration.ece > calibration.training_ece
            trend = " Worse than at training." if worse else " As good as at training or better."
        measured = (
            f"On {calibration.labels} messages that agents or customers labelled in this window, "
            f"the bot's confidence was off by {calibration.ece:.1%} on average (expected "
            f"calibration error {calibration.ece:.3f}); {_training(calibration.training_ece)}."
            f"{trend} Agents mostly label wrong answers, so read this figure as a trend."
        )
    else:
        measured = (
            f"Too few labels to measure: {calibration.labels} labelled messages with the "
            f"confidence the bot answered with ({calibration.min_labels} needed); "
            f"{_training(calibration.training_ece)}."
        )
    diagram = (
        f"<figure><img src='{escape(calibration.diagram)}' style='max-width:520px;width:100%' "
        f"alt='Reliability diagram of model version {escape(summary.model_version)}'>"
        "<figcaption class='note'>At training time: how often the bot was right against how "
        "sure it was, on its test data (on the diagonal: confidence means what it says)."
        "</figcaption></figure>"
        if calibration.diagram
        else "<p class='note'>No reliability diagram was logged for this version.</p>"
    )
    return f"""<section id="calibration"><h2>Can the bot's confidence be trusted?</h2>
<p>{measured}</p>{diagram}</section>"""
