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
from collections.abc import Callable
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


def wrk_script(body: str) -> Path:
    """A wrk Lua script that POSTs `body` as JSON."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = '{body}'\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    return Path(script.name)


def parse_args() -> argparse.Namespace:
    """The command line (module docstring)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="1,8,32,64")
    parser.add_argument("--only", default="", help="comma-separated server names to measure")
    parser.add_argument(
        "--recording-rounds", type=int, default=2, help="prediction log on/off rounds; 0: skip"
    )
    parser.add_argument(
        "--recording-block",
        type=int,
        default=0,
        help="rounds a start-up of both servers; the start order swaps every block "
        "(default: half the rounds, so two blocks)",
    )
    parser.add_argument(
        "--recording-only",
        action="store_true",
        help="only the recording on/off rounds (no in-process rates, no server table)",
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
    return parser.parse_args()


def bench_env() -> dict[str, str]:
    """The servers' environment: the registry, a fresh store, the chat tier off."""
    tracking = os.environ.get(
        "MLFLOW_TRACKING_URI", f"sqlite:///{REPO_ROOT / '.mlflow' / 'mlflow.db'}"
    )
    return os.environ | {
        "BENCH_MLFLOW_TRACKING_URI": tracking,
        "SERVING_MLFLOW_TRACKING_URI": tracking,
        "SERVING_STORE_URL": f"sqlite:///{tempfile.mkdtemp()}/bench-store.db",
        "SERVING_POLL_INTERVAL_S": "0",
        # /predict is measured; the chat tier would refuse to start without CHAT_JWT_SECRET.
        "CHAT_ENABLED": os.environ.get("CHAT_ENABLED", "false"),
    }


def service(port: int) -> list[str]:
    """This service, one worker."""
    bentoml = str(Path(PY).with_name("bentoml"))
    return [bentoml, "serve", "serving.service:IntentService", "--port", str(port)]


def server_commands() -> dict[str, Callable[[int], list[str]]]:
    """Every server compared, by name: its command line for a port."""
    uvicorn = [PY, "-m", "uvicorn", "--log-level", "warning", "--no-access-log", "--port"]
    bentoml = str(Path(PY).with_name("bentoml"))
    adaptive = "bench.bento_adaptive:AdaptiveBatching"
    return {
        "bare ASGI constant": lambda p: [*uvicorn, str(p), "bench.servers:bare_app"],
        "lean FastAPI": lambda p: [*uvicorn, str(p), "bench.servers:lean_app"],
        "design baseline": lambda p: [*uvicorn, str(p), "bench.servers:design_app"],
        "BentoML adaptive batching": lambda p: [bentoml, "serve", adaptive, "--port", str(p)],
        "this service (BentoML)": service,
    }


def measure_servers(
    servers: dict[str, Callable[[int], list[str]]],
    env: dict[str, str],
    levels: list[int],
    duration: int,
    scripts: dict[str, Path],
) -> dict[str, dict[int, Load]]:
    """Each server alone, one after the other, at every level."""
    results: dict[str, dict[int, Load]] = {}
    for name, command in servers.items():
        port = free_port()
        body = BATCHABLE_BODY if "adaptive" in name else BODY
        process = start(command(port), port, env, "/predict", body)
        try:
            run_wrk(f"http://127.0.0.1:{port}/predict", 8, 2, scripts[body])  # warm up
            results[name] = {
                c: run_wrk(f"http://127.0.0.1:{port}/predict", c, duration, scripts[body])
                for c in levels
            }
        finally:
            stop(process, port)
        print(f"measured {name}", flush=True)
    return results


def main() -> None:
    """Measure every server at every concurrency and print the table, then recording on/off."""
    args = parse_args()
    sys.path.insert(0, str(REPO_ROOT))  # `python bench/serve.py`: the `bench` package
    levels = [int(c) for c in args.connections.split(",")]
    env = bench_env()
    os.environ.update(env)
    servers = server_commands()
    if args.only:
        wanted = {name.strip() for name in args.only.split(",")}
        servers = {name: command for name, command in servers.items() if name in wanted}
    scripts = {body: wrk_script(body) for body in (BODY, BATCHABLE_BODY)}
    if not args.recording_only:
        from bench.serve_table import in_process, print_table  # it imports this module

        service_rate, proba_rate = in_process(3.0)
        print(
            f"in-process: IntentInference.predict_documents {service_rate:,.0f} calls/s; "
            f"predict_proba alone {proba_rate:,.0f} calls/s"
        )
        results = measure_servers(servers, env, levels, args.duration, scripts)
        print_table(results, levels, service_rate, proba_rate)
    if "this service (BentoML)" in servers and args.recording_rounds > 0:
        from bench.recording_cost import Plan, recording_cost  # it imports this module

        plan = Plan(
            levels,
            args.duration,
            args.recording_rounds,
            args.recording_block,
            not args.recording_turns,
            args.recording_aa,
        )
        recording_cost(service, env, plan, scripts[BODY])


if __name__ == "__main__":
    main()
