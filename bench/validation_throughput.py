"""Row validation throughput: the column-wise validator against a baseline revision's, same run.

Validates the same synthetic rows (mostly valid, mixed timestamp formats and time zones, some of
every bad kind, repeated ids) with `conversations/validation.py` as it is and as it was at
`--baseline` (read with `git show`), checks both give the same kept and quarantined frames, and
prints rows/s of each and their ratio.

    .venv/bin/python bench/validation_throughput.py --rows 50000 --baseline cd0e795
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conversations.raw_rows import raw_frame  # noqa: E402
from conversations.validation import quarantine_reasons, validate_messages  # noqa: E402

log = logging.getLogger("bench.validation")
MAX_TEXT_CHARS = 2000
TIMES = [
    "2026-11-01T10:00:00Z",
    "2026-11-01T15:30:00+05:30",
    "2026-11-01 10:00:00",
    "2026-11-01T02:00:00.123456-08:00",
    "2026-11-01",
    None,
]
# (share of rows, fields that make the row bad)
BAD: list[tuple[float, dict[str, Any]]] = [
    (0.01, {"ts": "yesterday"}),
    (0.01, {"text": "   "}),
    (0.005, {"text": "nul\x00here"}),
    (0.005, {"text": "x" * (MAX_TEXT_CHARS + 1)}),
    (0.005, {"speaker": "robot"}),
    (0.005, {"label_source": "human"}),
    (0.005, {"context": "{not json"}),
    (0.005, {"conversation_id": None}),
    (0.005, {"read_error_code": "unparseable_line", "read_error": "unparseable JSON"}),
]


def synthetic_rows(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """`count` raw rows as the readers hand them over; about 1 in 20 is bad, 1 in 100 repeats."""
    rng = random.Random(seed)
    rows = []
    for line in range(1, count + 1):
        row: dict[str, Any] = {
            "source": "log.jsonl",
            "source_line": line,
            "message_id": f"m-{rng.randrange(count * 50) if rng.random() < 0.01 else line}",
            "conversation_id": f"c-{line // 6}",
            "turn": str(line % 6),
            "ts": rng.choice(TIMES),
            "speaker": rng.choice(["customer", "bot", "agent"]),
            "user_id": f"u-{line % 997}",
            "channel": "web",
            "text": f"message {line}: my card has not arrived yet, what should I do?",
            "intent": rng.choice(["card_arrival", None]),
            "label_source": rng.choice(["agent", "feedback", None]),
            "context": json.dumps({"session": {"message_count": line % 6, "duration_s": line}}),
        }
        for share, fields in BAD:
            if rng.random() < share:
                row |= fields
        rows.append(row)
    return rows


def baseline_module(revision: str) -> ModuleType:
    """conversations/validation.py as it was at `revision`."""
    source = subprocess.run(
        ["git", "show", f"{revision}:conversations/validation.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_validation.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_validation", path)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def timed(validate: Callable[[pd.DataFrame, int], Any], raw: pd.DataFrame, repeat: int) -> Any:
    """The result of `validate(raw, MAX_TEXT_CHARS)` and the best of `repeat` times, seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = validate(raw, MAX_TEXT_CHARS)
        best = min(best, time.perf_counter() - start)
    return result, best


def row_by_row(baseline: ModuleType) -> Callable[[pd.DataFrame, int], list[Any]]:
    """The baseline's checks alone: `quarantine_reason` on each row (no duplicates, no output)."""
    return lambda raw, limit: [
        baseline.quarantine_reason(row, limit) for row in raw.to_dict("records")
    ]


def main() -> None:
    """Validate the synthetic rows both ways, check the outcomes match, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--baseline", default="cd0e795", help="git revision to compare with")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs each")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raw = raw_frame(synthetic_rows(args.rows))
    baseline = baseline_module(args.baseline)
    before, before_s = timed(baseline.validate_messages, raw, args.repeat)
    after, after_s = timed(validate_messages, raw, args.repeat)
    _, checks_before_s = timed(row_by_row(baseline), raw, args.repeat)
    _, checks_after_s = timed(quarantine_reasons, raw, args.repeat)
    pd.testing.assert_frame_equal(before.quarantined, after.quarantined)
    pd.testing.assert_frame_equal(before.kept, after.kept)
    reasons = after.quarantined["reason_code"].value_counts().to_dict()
    log.info("%d rows: %d kept, %d quarantined", len(raw), len(after.kept), len(after.quarantined))
    log.info("reasons: %s", reasons)
    log.info("baseline %s: %.1f s, %.0f rows/s", args.baseline, before_s, len(raw) / before_s)
    log.info("column-wise: %.2f s, %.0f rows/s", after_s, len(raw) / after_s)
    log.info("same outcome for every row; speed-up %.1fx", before_s / after_s)
    log.info(
        "the checks alone (no duplicates, no canonical output): %.0f -> %.0f rows/s, %.1fx",
        len(raw) / checks_before_s,
        len(raw) / checks_after_s,
        checks_before_s / checks_after_s,
    )


if __name__ == "__main__":
    main()
