"""HTML for people who do not read code: a summary page per run and an index of all runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from upath import UPath

from models.location import refreshed
from monitoring.new_intents_page import new_intents_section
from monitoring.page_sections import calibration_section, rule_section
from monitoring.shadow_section import shadow_section

if TYPE_CHECKING:
    from models.registry_records import GateRecord
    from models.shadow_sample import ShadowStatus
    from monitoring.metrics import IntentShift, SupportKpis
    from monitoring.new_intents import NewIntentsFinding
    from monitoring.summary import MonitoringSummary

VERDICT_WORDS = {
    "ok": ("All clear", "#11693a", "#d8f5e2"),
    "drift": ("Customers' messages have changed", "#7a5400", "#fff3d6"),
    "degraded": ("The model is getting answers wrong", "#b3261e", "#fde2e0"),
    # Grey, never green: a quiet day proves nothing either way.
    "insufficient_data": ("Too little traffic to judge", "#3d4555", "#e3e6ec"),
}
# A verdict this code does not know (a newer run's) is shown as unknown, never as all clear.
UNKNOWN_VERDICT = ("Unknown verdict", "#3d4555", "#e3e6ec")
KPI_LABELS = {
    "conversations": ("Support conversations", "{:,.0f}", 0),
    "conversations_per_day": ("Conversations per day", "{:,.1f}", 0),
    "containment_rate": ("Solved by the bot alone", "{:.1%}", 1),
    "escalation_rate": ("Handed to a human", "{:.1%}", -1),
    "resolution_rate": ("Resolved", "{:.1%}", 1),
    "fallback_rate": ("Bot unsure (fallback)", "{:.1%}", -1),
    "mean_sentiment": ("Mean customer sentiment (−1…1)", "{:+.2f}", 1),
    "mean_rating": ("Mean satisfaction rating (1-5)", "{:.2f}", 1),
}
STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
main{max-width:980px;margin:0 auto;padding:24px}
.verdict{padding:18px 22px;border-radius:12px;margin-bottom:18px}
.verdict h1{margin:0 0 6px;font-size:24px}
section{background:#fff;border-radius:12px;padding:16px 22px;margin-bottom:16px}
h2{font-size:17px;margin:0 0 10px}
table{border-collapse:collapse;width:100%;font-size:14px}
td,th{padding:6px 8px;border-bottom:1px solid #eceff5;text-align:left}
.up{color:#11693a}.down{color:#b3261e}.flat{color:#6b7385}
.note{font-size:13px;color:#6b7385}
iframe{width:100%;height:1400px;border:0;background:#fff;border-radius:12px}
"""


def _arrow(value: float | None, previous: float | None, good_direction: int) -> str:
    if value is None or previous is None or value == previous:
        return '<span class="flat">→</span>'
    rising = value > previous
    good = (rising and good_direction > 0) or (not rising and good_direction < 0)
    css = "flat" if good_direction == 0 else ("up" if good else "down")
    return f'<span class="{css}">{"↑" if rising else "↓"}</span>'


def _kpi_rows(kpis: SupportKpis, previous: SupportKpis | None) -> str:
    rows = []
    for key, (label, fmt, direction) in KPI_LABELS.items():
        value = getattr(kpis, key)
        before = getattr(previous, key) if previous else None
        shown = fmt.format(value) if value is not None else "n/a"
        was = fmt.format(before) if before is not None else "—"
        rows.append(
            f"<tr><td>{label}</td><td><b>{shown}</b> {_arrow(value, before, direction)}</td>"
            f"<td class='note'>previous report: {was}</td></tr>"
        )
    return "\n".join(rows)


def _intent_rows(shifts: Sequence[IntentShift]) -> str:
    return (
        "\n".join(
            f"<tr><td>{escape(s.intent)}</td><td>{s.reference_share:.1%}</td>"
            f"<td>{s.current_share:.1%}</td><td>{s.change:+.1%}</td></tr>"
            for s in shifts
        )
        or "<tr><td colspan=4 class='note'>none</td></tr>"
    )


def _gate_section(decision: GateRecord | None) -> str:
    if decision is None:
        return "<p class='note'>No promotion decision recorded yet.</p>"
    outcome = "promoted" if decision.passed else "refused"
    if decision.promotion == "held":  # only its live sample was too small: judged again later
        outcome = "held until it has answered more live messages (not refused)"
    rows = "".join(
        f"<tr><td>{'✓' if check.passed else '✗'} {escape(check.name)}</td>"
        f"<td>{escape(check.reason)}</td></tr>"
        for check in decision.checks
    )
    return (
        f"<p>Version {escape(decision.version)} was <b>{outcome}</b> "
        f"({escape(decision.decided_at or '')}).</p><table>{rows}</table>"
    )


def _quality(summary: MonitoringSummary) -> str:
    performance = summary.performance
    if performance.judged and performance.accuracy is not None:
        return (
            f"On {performance.labels} messages that agents or customers labelled in this "
            f"window the bot was right {performance.accuracy:.1%} of the time "
            f"(macro-F1 {performance.macro_f1:.3f})."
        )
    return (
        f"Only {performance.labels} labelled messages in this window "
        f"({performance.min_labels} needed to judge accuracy)."
    )


def _few_note(summary: MonitoringSummary) -> str:
    if summary.verdict != "insufficient_data":
        return ""
    return (
        f"<p class='note'><b>Read with care:</b> these figures come from only "
        f"{summary.current_messages} customer messages; one conversation more or less changes "
        "them a lot.</p>"
    )


def summary_page(
    summary: MonitoringSummary,
    previous: SupportKpis | None,
    new_intents: NewIntentsFinding | None = None,
    shadow: ShadowStatus | None = None,
) -> str:
    """The run's page: verdict, reasons, intents that grew or shrank, KPIs, then Evidently."""
    title, ink, paper = VERDICT_WORDS.get(summary.verdict, UNKNOWN_VERDICT)
    reasons = "".join(f"<li>{escape(reason)}</li>" for reason in summary.reasons) or (
        "<li>Nothing changed beyond the thresholds.</li>"
    )
    predictions, quality = summary.predictions, _quality(summary)
    drifted = ", ".join(summary.drifted_columns) or "none"
    sampling = summary.sampling
    version = escape(summary.model_version)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Model health report {escape(summary.run_id)}</title>
<style>{STYLE}</style></head><body><main>
<div class="verdict" id="verdict" style="color:{ink};background:{paper}">
<h1>{title} — verdict: {summary.verdict.value}</h1>
<div>{escape(summary.window.label())} · model version {version}
 · {summary.current_messages:,} customer messages</div></div>
<section id="summary"><h2>What changed</h2><ul>{reasons}</ul>
<p class="note">Columns whose distribution moved: {escape(drifted)}.</p></section>
<section><h2>Which requests grew or shrank</h2>
<table><tr><th>intent</th><th>on test data</th><th>in this window</th><th>change</th></tr>
{_intent_rows(predictions.grew + predictions.shrank)}</table></section>
{new_intents_section(new_intents)}
<section><h2>Support KPIs</h2>{_few_note(summary)}
<table>{_kpi_rows(summary.kpis, previous)}</table></section>
<section><h2>Is the bot still right?</h2><p>{quality}</p></section>
{calibration_section(summary)}
<section id="gate"><h2>Latest promotion decision</h2>
{_gate_section(summary.latest_gate_decision)}</section>
{shadow_section(shadow)}
{rule_section(summary)}
<section class="note"><h2>How this was measured</h2>
<p>Reference: the training data of model version {version}
({sampling.reference_rows:,} of {sampling.reference_total:,} messages). Current:
{sampling.current_rows:,} of {sampling.current_total:,} customer messages in the window.
{escape(sampling.note)} Full statistics from Evidently are below and in
<a href="evidently.html">evidently.html</a>; every figure is in
<a href="summary.json">summary.json</a>.</p></section>
<iframe src="evidently.html" title="Evidently drift report"></iframe>
</main></body></html>"""


def index_page(reports_dir: UPath) -> str:
    """A list of links to every run's report under REPORTS_DIR (a folder or an object-store
    URL), newest first, each labelled with its verdict.

    Only links: trends across runs are Evidently's UI (monitoring/trends.py). This page stays
    for readers of a static copy of REPORTS_DIR (a static host, an object store), who have no
    Evidently server to open.
    """
    links = []
    found = refreshed(reports_dir).glob("*/summary.json")
    for summary_file in sorted(found, key=lambda path: path.parent.name, reverse=True):
        verdict = json.loads(summary_file.read_text()).get("verdict", "unknown")
        name = escape(summary_file.parent.name)
        links.append(f"<li><a href='{name}/index.html'>{name} ({escape(str(verdict))})</a></li>")
    body = "\n".join(links) or "<li>No reports yet.</li>"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Model health reports</title><style>{STYLE}</style></head><body><main>
<h1>Model health reports</h1><p class="note">Each run's report. Trends across runs:
<code>make monitor-ui</code> (Evidently's UI, project <code>intent-monitoring</code>).</p>
<ul id="runs">
{body}</ul></main></body></html>"""
