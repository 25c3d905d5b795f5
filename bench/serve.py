"""Serving throughput and latency: this BentoML service against baselines, in one run.

Usage: python bench/serve.py [--duration S] [--connections 1,8,32,64]
Needs a champion in the registry (`make pipeline`) and `wrk` (Debian package; `make bench`
installs it). Each server runs one worker; wrk uses one thread so the server keeps a core.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from serving.process_tree import ServerStartError, stop_tree, wait_ready

REPO_ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TEXT = "I am still waiting on my card, when will it arrive?"
BODY = json.dumps({"text": TEXT})
BATCHABLE_BODY = json.dumps({"texts": [TEXT]})


@dataclass
class Load:
    """One wrk measurement."""

    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    requests: int = 0  # answered in the run (wrk's "N requests in")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ms(value: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)$", value)
    if match is None:  # wrk prints nan when every request of a run timed out
        return float("nan")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _field(pattern: str, output: str) -> str:
    """The first group of `pattern` in wrk's report; a clear error when wrk did not print it."""
    found = re.search(pattern, output)
    if found is None:
        raise ValueError(f"wrk's report has no {pattern!r}:\n{output}")
    return found.group(1)


def run_wrk(url: str, connections: int, duration: int, script: Path) -> Load:
    """Drive `url` with wrk and parse its report."""
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(_field(r"Requests/sec:\s+([\d.]+)", output))
    p50 = _ms(_field(r"50%\s+(\S+)", output))
    p99 = _ms(_field(r"99%\s+(\S+)", output))
    requests = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Load(
        rps,
        p50,
        p99,
        int(non_2xx.group(1)) if non_2xx else 0,
        sum(int(g) for g in errors.groups()) if errors else 0,
        int(requests.group(1)) if requests else 0,
    )


def start(
    command: list[str], port: int, env: dict[str, str], ready_path: str, body: str = BODY
) -> subprocess.Popen:
    """Start a server and wait until `ready_path` answers, as long as it makes progress."""
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def ready() -> bool:
        try:
            response = httpx.post(
                f"http://127.0.0.1:{port}{ready_path}",
                content=body,
                headers={"content-type": "application/json"},
                timeout=5,
            )
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    try:
        wait_ready(process, ready)
    except ServerStartError:
        stop_tree(process, kill=True, port=port)
        raise
    return process


def stop(process: subprocess.Popen, port: int) -> None:
    """Stop a server and all its workers (BentoML's run in sessions of their own); port freed."""
    stop_tree(process, port=port)


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


def wrk_script(body: str) -> Path:
    """A wrk Lua script that POSTs `body` as JSON."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = '{body}'\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    return Path(script.name)


def main() -> None:
    """Measure every server at every concurrency and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="1,8,32,64")
    parser.add_argument("--only", default="", help="comma-separated server names to measure")
    parser.add_argument(
        "--recording-rounds", type=int, default=2, help="prediction log on/off rounds; 0: skip"
    )
    parser.add_argument(
        "--recording-turns",
        action="store_true",
        help="measure on and off one after the other (default: both at the same moment)",
    )
    parser.add_argument(
        "--recording-aa",
        action="store_true",
        help="both servers with recording off: the bench's own on/off spread (an A/A run)",
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.connections.split(",")]
    tracking = os.environ.get(
        "MLFLOW_TRACKING_URI", f"sqlite:///{REPO_ROOT / '.mlflow' / 'mlflow.db'}"
    )
    env = os.environ | {
        "BENCH_MLFLOW_TRACKING_URI": tracking,
        "SERVING_MLFLOW_TRACKING_URI": tracking,
        "SERVING_STORE_URL": f"sqlite:///{tempfile.mkdtemp()}/bench-store.db",
        "SERVING_POLL_INTERVAL_S": "0",
        # /predict is measured; the chat tier would refuse to start without CHAT_JWT_SECRET.
        "CHAT_ENABLED": os.environ.get("CHAT_ENABLED", "false"),
    }
    os.environ.update(env)
    service_rate, proba_rate = in_process(3.0)
    print(
        f"in-process: IntentInference.predict_documents {service_rate:,.0f} calls/s; "
        f"predict_proba alone {proba_rate:,.0f} calls/s"
    )
    uvicorn = [PY, "-m", "uvicorn", "--log-level", "warning", "--no-access-log", "--port"]

    def service(port: int) -> list[str]:
        bentoml = str(Path(PY).with_name("bentoml"))
        return [bentoml, "serve", "serving.service:IntentService", "--port", str(port)]

    servers = {
        "bare ASGI constant": lambda p: [*uvicorn, str(p), "bench.servers:bare_app"],
        "lean FastAPI": lambda p: [*uvicorn, str(p), "bench.servers:lean_app"],
        "design baseline": lambda p: [*uvicorn, str(p), "bench.servers:design_app"],
        "BentoML adaptive batching": lambda p: [
            str(Path(PY).with_name("bentoml")),
            "serve",
            "bench.bento_adaptive:AdaptiveBatching",
            "--port",
            str(p),
        ],
        "this service (BentoML)": service,
    }
    results: dict[str, dict[int, Load]] = {}
    if args.only:
        wanted = {name.strip() for name in args.only.split(",")}
        servers = {name: command for name, command in servers.items() if name in wanted}
    scripts = {body: wrk_script(body) for body in (BODY, BATCHABLE_BODY)}
    for name, command in servers.items():
        port = free_port()
        body = BATCHABLE_BODY if "adaptive" in name else BODY
        process = start(command(port), port, env, "/predict", body)
        try:
            run_wrk(f"http://127.0.0.1:{port}/predict", 8, 2, scripts[body])  # warm up
            results[name] = {
                c: run_wrk(f"http://127.0.0.1:{port}/predict", c, args.duration, scripts[body])
                for c in levels
            }
        finally:
            stop(process, port)
        print(f"measured {name}", flush=True)
    print_table(results, levels, service_rate, proba_rate)
    if "this service (BentoML)" in servers and args.recording_rounds > 0:
        # Imported here: bench.recording_cost imports this module.
        sys.path.insert(0, str(REPO_ROOT))  # `python bench/serve.py`
        from bench.recording_cost import recording_cost

        rounds, together = args.recording_rounds, not args.recording_turns
        recording_cost(
            service, env, levels, args.duration, rounds, scripts[BODY], together, args.recording_aa
        )


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


if __name__ == "__main__":
    main()
