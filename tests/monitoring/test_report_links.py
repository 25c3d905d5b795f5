"""Links people follow to a report: a web URL when MONITORING_REPORTS_URL publishes the reports.

An `s3://…/index.html` in a chat alert or in Dagster's UI opens nothing; the folder published
behind a web server, a bucket website or a CDN does.
"""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError
from upath import UPath

from models.location import public_link
from monitoring.settings import MonitoringSettings
from tests.monitoring.conftest import replay


def test_a_link_below_the_published_base_url():
    root = UPath("s3://bucket/reports")
    page = root / "20261130T060000Z" / "index.html"
    base = "https://reports.example.com/drift/"
    assert public_link(page, root, base) == (
        "https://reports.example.com/drift/20261130T060000Z/index.html"
    )
    assert public_link(page, root, None) == "s3://bucket/reports/20261130T060000Z/index.html"
    with pytest.raises(ValueError, match="not below"):
        public_link(UPath("s3://elsewhere/x.html"), root, base)


@pytest.mark.parametrize("url", ["s3://bucket/reports", "reports.example.com", "https://"])
def test_a_reports_url_that_is_not_a_web_address_is_refused(monkeypatch, url):
    monkeypatch.setenv("MONITORING_REPORTS_URL", url)
    with pytest.raises(ValidationError, match="MONITORING_REPORTS_URL"):
        MonitoringSettings()


@pytest.mark.slow
def test_the_alert_links_to_the_published_page(champion, known_split, tmp_path, caplog):
    from monitoring.job import run_monitoring
    from tests.monitoring.conftest import NOW, settings_for

    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    replay(store_url, champion["model"], known_split["held_out"]["text"].head(3).tolist(), NOW)
    base = "https://reports.example.com/drift"
    settings = settings_for(
        champion, store_url, tmp_path / "reports", window_end=NOW, reports_url=base
    )
    with caplog.at_level(logging.WARNING, logger="monitoring.alerts"):
        result = run_monitoring(settings, now=NOW, log_to_mlflow=False)
    link = f"{base}/{result.run_dir.name}/index.html"
    assert result.report_link == link
    # The link names the page the run wrote, relative to the published folder.
    assert (tmp_path / "reports" / result.run_dir.name / "index.html").is_file()
    (alert,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT")]
    assert alert.endswith(f"| report: {link}")
