"""What each conversation source gave, and the one message when none gave a labelled example.

Banking77 is one optional source among the labelled CSVs, the conversation JSONL files and the
chat store; a run on any non-empty combination trains. When no source yields a labelled
customer message, training stops with one line naming each source as read and what to set.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from conversations.schema import Speaker

# How conversations.store_reader.store_source names the chat store's rows.
STORE_PREFIX = "store:"


@dataclass(frozen=True)
class SourceConfig:
    """The sources as configured: the setting behind each and the files it names."""

    banking77_dir: str | None
    banking77_files: tuple[str, ...]  # lineage names (`folder/file`) of its CSV files
    csv_files: tuple[str, ...]
    jsonl_dir: str | None
    jsonl_files: tuple[str, ...]
    store: str | None  # the store's lineage name (password hidden), None when not configured


@dataclass(frozen=True)
class SourceYield:
    """Rows kept from one source and how many are labelled customer messages."""

    setting: str  # the variable that configures the source
    where: str  # its folder, files or URL as configured ("off" when not configured)
    files: int | None  # files read (None for the store)
    rows_kept: int
    labelled_customer_rows: int

    def summary(self) -> str:
        """`SETTING 1 file, 2 rows, 0 labelled`, `SETTING off`, `SETTING 0 files` (short: the
        CLI shows the cause in one line of at most 300 characters)."""
        if self.where == "off":
            return f"{self.setting} off"
        if self.files == 0:
            return f"{self.setting} 0 files"
        files = "" if self.files is None else f"{self.files} file{'s' * (self.files != 1)}, "
        if not self.rows_kept:
            return f"{self.setting} {files}0 rows"
        return (
            f"{self.setting} {files}{self.rows_kept} rows, {self.labelled_customer_rows} labelled"
        )


def source_yields(config: SourceConfig, conversations: pd.DataFrame) -> list[SourceYield]:
    """Per configured source, its kept rows and labelled customer rows in `conversations`."""
    source = conversations["source"].astype(str)
    labelled = (conversations["speaker"] == Speaker.CUSTOMER.value) & conversations[
        "intent"
    ].notna()
    groups = (
        ("BANKING77_DIR", config.banking77_dir, config.banking77_files),
        ("LABELLED_CSV_PATHS", ", ".join(config.csv_files), config.csv_files),
        ("CONVERSATION_JSONL_DIR", config.jsonl_dir, config.jsonl_files),
    )
    yields = [
        _yield(setting, where, len(files), source.isin(files), labelled)
        for setting, where, files in groups
    ]
    store_rows = source.str.startswith(STORE_PREFIX)
    yields.append(_yield("CONVERSATION_STORE_URL", config.store, None, store_rows, labelled))
    return yields


def _yield(
    setting: str, where: str | None, files: int | None, rows: pd.Series, labelled: pd.Series
) -> SourceYield:
    return SourceYield(
        setting, where or "off", files, int(rows.sum()), int((rows & labelled).sum())
    )


def no_labelled_data_message(yields: list[SourceYield]) -> str:
    """One line: every source as read, and the settings that bring labelled data."""
    read = "; ".join(item.summary() for item in yields)
    return (
        f"no labelled customer messages in any source ({read}): point one at labelled data "
        "(data/README.md)"
    )
