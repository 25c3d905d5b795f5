"""Feature extraction throughput: the batch API against a per-message loop, in one run.

Usage: python bench/feature_throughput.py [--messages N]. Prints messages/s for each and their
ratio, plus the share of time each feature block takes in the batch.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from features import FeatureExtractor
from features.linguistic import linguistic_counts, load_pipeline
from features.sentiment import sentiment
from features.text_stats import text_stats

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_texts(count: int) -> list[str]:
    """`count` Banking77 training messages (BANKING77_DIR or the shared folder)."""
    folder = Path(os.environ.get("BANKING77_DIR", REPO_ROOT.parent / "shared/data/banking77"))
    frame = pd.read_csv(folder / "train.csv")
    return frame["text"].sample(n=min(count, len(frame)), random_state=0).tolist()


def timed(label: str, work) -> float:
    """Seconds taken by `work()`."""
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    print(f"  {label:<34} {seconds:7.2f} s")
    return seconds


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    texts = load_texts(args.messages)
    extractor = FeatureExtractor()
    load_pipeline(extractor.settings.spacy_model)  # load once, outside both timings
    extractor.extract_array(texts[:50])  # warm up

    print(f"{len(texts)} Banking77 messages")
    batch = timed("batch extract(texts)", lambda: extractor.extract_array(texts))
    loop = timed(
        "per-message extract([text])",
        lambda: [extractor.extract_array([text]) for text in tqdm(texts, leave=False)],
    )
    print("  blocks inside the batch:")
    stats = timed("    text statistics", lambda: text_stats(texts))
    polarity = timed("    TextBlob sentiment", lambda: sentiment(texts))
    spacy_s = timed(
        "    spaCy nlp.pipe counts",
        lambda: linguistic_counts(texts, extractor.settings.spacy_model),
    )
    print()
    print("| path | messages/s |")
    print("|---|---:|")
    print(f"| batch `extract(texts)` | {len(texts) / batch:,.0f} |")
    print(f"| per-message loop | {len(texts) / loop:,.0f} |")
    print(f"| text statistics only | {len(texts) / stats:,.0f} |")
    print(f"| TextBlob sentiment only | {len(texts) / polarity:,.0f} |")
    print(f"| spaCy counts only | {len(texts) / spacy_s:,.0f} |")
    print(f"\nbatch / per-message throughput ratio: {loop / batch:.2f}x")


if __name__ == "__main__":
    main()
