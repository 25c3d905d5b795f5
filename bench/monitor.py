"""Monitoring cost: time, peak memory and HTML size of a drift report on 10k × 10k messages.

Usage: python bench/monitor.py [--rows 10000]
The frames are built (and a model fitted) in the parent; each report runs in a fresh process, so
its peak RSS is the report's own (imports included). The baseline, measured in
the same run, is the same report without sampling: the ratio shows what sampling to
MONITORING_SAMPLE_SIZE (5,000 per side) saves. Targets: under 60 s and under 10 MB.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO_ROOT = Path(__file__).resolve().parents[1]
BANKING77 = REPO_ROOT.parent / "shared" / "data" / "banking77"


def frames(rows: int) -> tuple:
    """Reference and current frames (text, predicted_intent, confidence, fallback) of `rows`."""
    import pandas as pd

    from models.candidates import resolve
    from models.inputs import model_input

    data = pd.concat([pd.read_csv(BANKING77 / name) for name in ("train.csv", "test.csv")])
    data = data.rename(columns={"category": "intent"}).assign(context="{}")
    pipeline = resolve(["tfidf_logreg"])[0].build()
    held_out = sorted(data["intent"].unique())[:8]
    pipeline.fit(
        model_input(data[~data["intent"].isin(held_out)]),
        data.loc[~data["intent"].isin(held_out), "intent"],
    )

    def predicted(frame: pd.DataFrame) -> pd.DataFrame:
        probabilities = pipeline.predict_proba(model_input(frame))
        best = probabilities.max(axis=1)
        return pd.DataFrame(
            {
                "text": frame["text"].to_numpy(),
                "predicted_intent": pipeline.classes_[probabilities.argmax(axis=1)],
                "confidence": best,
                "fallback": best < 0.35,
            }
        )

    reference = predicted(
        data[~data["intent"].isin(held_out)].sample(rows, replace=True, random_state=0)
    )
    shifted = data.sample(rows, replace=True, random_state=1)
    shifted = shifted.assign(text=[t.lower() + " please" for t in shifted["text"]])
    return reference, predicted(shifted)


def measure(folder: str, sample: int, queue: multiprocessing.Queue) -> None:
    """One report in this (fresh) process: seconds, peak RSS and HTML size."""
    import pandas as pd

    from monitoring.drift_report import run_drift_report

    reference = pd.read_parquet(Path(folder) / "reference.parquet")
    current = pd.read_parquet(Path(folder) / "current.parquet")
    rows = len(current)

    started = time.perf_counter()
    import evidently  # noqa: F401 - its import is part of a monitoring run's cost

    imported = time.perf_counter() - started
    html = Path(tempfile.mkdtemp()) / "evidently.html"
    report = run_drift_report(
        reference.sample(min(sample, len(reference)), random_state=0),
        current.sample(min(sample, len(current)), random_state=0),
        0.55,
        html,
    )
    queue.put(
        {
            "rows_per_side": rows,
            "sampled_to": min(sample, rows),
            "seconds": round(time.perf_counter() - started, 1),
            "import_seconds": round(imported, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "html_mb": round(html.stat().st_size / 1e6, 2),
            "drifted": report.drifted,
            "text_auc": next(c.score for c in report.columns if c.column == "text"),
        }
    )


def run(folder: str, sample: int) -> dict:
    """Measure in a fresh process."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=measure, args=(folder, sample, queue))
    process.start()
    result = queue.get(timeout=1800)
    process.join()
    return result


def main() -> None:
    """Sampled (the default) and unsampled, with the ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=5_000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-monitor-")
    reference, current = frames(args.rows)  # the model is fitted here, not in the measured runs
    reference.to_parquet(Path(folder) / "reference.parquet")
    current.to_parquet(Path(folder) / "current.parquet")
    sampled = run(folder, args.sample)
    full = run(folder, args.rows)
    print("| report | rows per side | seconds | peak RSS MB | HTML MB | drifted columns |")
    print("|---|---|---|---|---|---|")
    for name, result in (("sampled (default)", sampled), ("unsampled (baseline)", full)):
        print(
            f"| {name} | {result['sampled_to']:,} of {result['rows_per_side']:,} | "
            f"{result['seconds']} | {result['peak_rss_mb']} | {result['html_mb']} | "
            f"{', '.join(result['drifted'])} |"
        )
    print(
        f"sampled/unsampled: time {sampled['seconds'] / full['seconds']:.2f}×, "
        f"HTML {sampled['html_mb'] / full['html_mb']:.2f}×, "
        f"memory {sampled['peak_rss_mb'] / full['peak_rss_mb']:.2f}×"
    )
    print(f"targets: < 60 s → {sampled['seconds'] < 60}; < 10 MB HTML → {sampled['html_mb'] < 10}")
    out = REPO_ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "monitor.json").write_text(json.dumps({"sampled": sampled, "unsampled": full}, indent=2))


if __name__ == "__main__":
    main()
