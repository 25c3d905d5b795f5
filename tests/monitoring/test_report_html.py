"""Customer text in the Evidently report is data, never markup, in a real browser (Chromium)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from monitoring.drift_report import run_drift_report
from monitoring.report_html import ReportTemplateChanged, safe_report_html

# Ends Evidently's <script> element, then runs as HTML wherever the page is opened.
HOSTILE = "</script><img src=x onerror=window.__xss=1> crypto wallet"


def _frame(texts: list[str], intent: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"text": texts, "predicted_intent": intent, "confidence": 0.9, "fallback": False}
    )


@pytest.fixture(scope="module")
def hostile_report(banking77_train, tmp_path_factory):
    """A report whose current window is customer text (and an intent name) built to break out."""
    reference = banking77_train.sample(300, random_state=0)["text"].tolist()
    current = [f"{HOSTILE} {text}" for text in banking77_train.sample(300, random_state=1)["text"]]
    path = tmp_path_factory.mktemp("report") / "evidently.html"
    report = run_drift_report(
        _frame(reference, "card_arrival"),
        _frame(current, "<script>window.__xss=2</script>"),
        0.3,  # abs_text_content_drift: |ROC AUC - 0.5|
        path,
    )
    assert "text" in report.drifted  # so the text widget shows the customer's messages
    return path


def test_customer_text_in_the_report_runs_no_script(hostile_report, browser):
    page = browser.new_page()
    try:
        page.goto(hostile_report.as_uri())
        page.wait_for_load_state("load")
        assert page.evaluate("window.__xss") is None
        # The data is still whole: Evidently drew its dashboard from it.
        assert page.evaluate("document.querySelector('[id^=root_metric_]').childElementCount") > 0
    finally:
        page.close()


def test_the_escaped_data_is_the_same_data(hostile_report):
    html = hostile_report.read_text(encoding="utf-8")
    data = re.search(r"var metric_[0-9a-f]{32} = (.*);\n", html)
    assert data is not None
    assert "</" not in data.group(1)
    assert HOSTILE in json.dumps(json.loads(data.group(1)), ensure_ascii=False)


def test_a_page_without_the_data_element_is_refused():
    with pytest.raises(ReportTemplateChanged):
        safe_report_html("<html><script>var x = 1;\n</script></html>")
