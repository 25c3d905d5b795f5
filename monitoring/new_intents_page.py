"""The report's "New intents, found" section: what customers ask that the bot cannot answer."""

from __future__ import annotations

from html import escape

from monitoring.new_intents import IntentCluster, NewIntentsFinding, Trend

TREND_WORDS = {
    Trend.NEW: "new this window",
    Trend.RISING: "rising",
    Trend.STEADY: "steady",
    Trend.FALLING: "falling",
}


def _trend(cluster: IntentCluster) -> str:
    words = TREND_WORDS[cluster.trend]
    if cluster.trend is Trend.NEW:
        return words
    return f"{words} (previous window: {cluster.previous_size})"


def _row(cluster: IntentCluster) -> str:
    samples = "".join(f"<li>{escape(text)}</li>" for text in cluster.samples)
    terms = ", ".join(cluster.top_terms) or "—"
    return (
        f"<tr class='cluster' data-cluster='{escape(cluster.key)}'><td>{cluster.size}</td>"
        f"<td>{escape(_trend(cluster))}</td><td>{escape(terms)}</td>"
        f"<td><ul class='samples'>{samples}</ul></td></tr>"
    )


def new_intents_section(finding: NewIntentsFinding | None) -> str:
    """An HTML <section>: the clusters of fallback messages, largest first, with what they
    leave out; empty when the run did not look (older callers)."""
    if finding is None:
        return ""
    notes = "".join(f"<p class='note'>{escape(note)}</p>" for note in finding.notes())
    intro = (
        f"<p>The bot fell back on {finding.fallbacks:,} customer messages in this window. "
        f"{finding.clustered:,} of them fall into {len(finding.clusters)} groups of similar "
        "requests: each may be an intent the bot does not know yet. Agents can name them in "
        "the agent console (<i>Label these</i>); the next training run learns them.</p>"
    )
    if not finding.clusters:
        intro = (
            f"<p>The bot fell back on {finding.fallbacks:,} customer messages in this window; "
            "no group of similar requests stands out among them.</p>"
        )
    table = ""
    if finding.clusters:
        rows = "\n".join(_row(cluster) for cluster in finding.clusters)
        table = (
            "<table><tr><th>messages</th><th>trend</th><th>top terms</th>"
            f"<th>sample messages</th></tr>\n{rows}</table>"
        )
    return (
        f"<section id='new-intents'><h2>New intents, found</h2>{intro}{notes}{table}"
        "<p class='note'>Every cluster is in <a href='new_intents.json'>new_intents.json</a>."
        "</p></section>"
    )
