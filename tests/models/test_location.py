"""models/location.py: a local path stays a pathlib path; a URL is checked when settings load.

A protocol fsspec does not know, or one whose package is not installed (gcsfs for `gs://` is
not in the lock), fails `load_settings` with one line naming the variable that was set, as
every other bad setting does; before, LAKE_DIR and REPORTS_DIR were plain paths that took
`s3://bucket/x` for the relative folder `s3:/bucket/x`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from upath import UPath

from models.location import local_folder, location, read_parquet, remove_tree, write_parquet
from models.settings_errors import SettingsProblem, load_settings
from monitoring.settings import MonitoringSettings
from pipelines.settings import PipelineSettings


def test_a_local_path_is_still_a_pathlib_path(tmp_path: Path):
    settings = PipelineSettings(lake_dir=tmp_path / "lake")
    assert isinstance(settings.lake_dir, Path) and settings.lake_dir == tmp_path / "lake"
    assert isinstance(PipelineSettings().lake_dir, Path)  # the default too
    assert isinstance(MonitoringSettings().reports_dir, Path)


def test_a_url_keeps_its_protocol(monkeypatch):
    monkeypatch.setenv("LAKE_DIR", "memory://bucket/lake")
    monkeypatch.setenv("REPORTS_DIR", "file:///srv/reports")
    assert str(load_settings(PipelineSettings).lake_dir) == "memory://bucket/lake"
    monitoring = load_settings(MonitoringSettings)
    assert str(monitoring.lake_dir) == "memory://bucket/lake"
    assert str(monitoring.reports_dir) == "file:///srv/reports"


@pytest.mark.parametrize(
    ("settings_cls", "variable", "value", "reason"),
    [
        (PipelineSettings, "LAKE_DIR", "nope://bucket/lake", "unknown protocol"),
        (PipelineSettings, "LAKE_DIR", "gs://bucket/lake", "gcsfs"),
        (MonitoringSettings, "REPORTS_DIR", "nope://bucket/reports", "unknown protocol"),
        (MonitoringSettings, "MONITORING_REPORTS_DIR", "gs://bucket/reports", "gcsfs"),
        (MonitoringSettings, "LAKE_DIR", "gs://bucket/lake", "gcsfs"),
    ],
)
def test_an_unusable_url_is_one_line_naming_its_variable(
    monkeypatch, settings_cls, variable: str, value: str, reason: str
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsProblem) as problem:
        load_settings(settings_cls)
    message = str(problem.value)
    assert message.startswith(f"bad setting {variable}: ") and "\n" not in message
    assert reason in message


def test_files_round_trip_and_copy_out_of_an_object_store():
    folder = location("memory://location-test/run")
    frame = pd.DataFrame({"text": ["a", "b"]})
    write_parquet(frame, folder / "frame.parquet")
    (folder / "page.html").write_text("<p>hi</p>")
    assert read_parquet(folder / "frame.parquet").equals(frame)
    with local_folder(folder) as copy:
        assert isinstance(copy, Path) and copy.is_dir()
        assert sorted(path.name for path in copy.iterdir()) == ["frame.parquet", "page.html"]
        assert (copy / "page.html").read_text() == "<p>hi</p>"
    assert not copy.exists()  # the copy is temporary; the store keeps the files
    remove_tree(folder)
    assert not UPath("memory://location-test/run/page.html").exists()
    remove_tree(folder)  # absent: nothing to do
