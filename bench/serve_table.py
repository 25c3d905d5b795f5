"""bench/serve.py's comparison table: in-process call rates and each server's wrk figures."""

from __future__ import annotations

import os
import time

from bench.serve import Load


def in_process(seconds: float) -> tuple[float, float]:
    """Calls/s of the service's own prediction function and of a bare predict_proba."""
    from models.registry import IntentRegistry, RegistryConfig

    registry = IntentRegistry(RegistryConfig(os.environ["BENCH_MLFLOW_TRACKING_URI"]))
    champion = registry.version_by_alias("champion")
    if champion is None:
        raise SystemExit("no champion in the registry: run `make pipeline` first")
    inference = registry.load_inference(str(champion.version))
    text = "I am still waiting on my card, when will it arrive?"
    rates = []
    for work in (
        lambda: inference.predict_documents([text], [None], 5),
        lambda: inference.predict_proba([text]),
    ):
        for _ in range(50):
            work()
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            work()
            count += 1
        rates.append(count / (time.perf_counter() - started))
    return rates[0], rates[1]


def print_table(
    results: dict[str, dict[int, Load]], levels: list[int], service_rate: float, proba_rate: float
) -> None:
    """Markdown table plus the ratios the targets are written in."""
    print(
        "\n| server | " + " | ".join(f"c={c} req/s (p50 / p99 ms)" for c in levels) + " | non-2xx |"
    )
    print("|---|" + "---:|" * (len(levels) + 1))
    print(f"| in-process service call | {service_rate:,.0f} calls/s |" + " |" * len(levels))
    print(f"| in-process predict_proba | {proba_rate:,.0f} calls/s |" + " |" * len(levels))
    for name, loads in results.items():
        cells = [
            f"{loads[c].rps:,.0f} ({loads[c].p50_ms:.1f} / {loads[c].p99_ms:.1f})" for c in levels
        ]
        bad = sum(load.non_2xx + load.errors for load in loads.values())
        print(f"| {name} | " + " | ".join(cells) + f" | {bad} |")
    reference = 32 if 32 in levels else levels[-1]
    if not {"this service (BentoML)", "lean FastAPI", "design baseline"} <= set(results):
        return
    service = results["this service (BentoML)"][reference]
    lean = results["lean FastAPI"][reference]
    design = results["design baseline"][reference]
    print(
        f"\nat c={reference}: service/lean throughput {service.rps / lean.rps:.2f}x, "
        f"service/lean p99 {service.p99_ms / lean.p99_ms:.2f}x, "
        f"service/design throughput {service.rps / design.rps:.1f}x, "
        f"service non-2xx {service.non_2xx + service.errors}"
    )
