"""Memory of the chat tier's serve tree: RSS, and what one held WebSocket costs (bench/chat.py)."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from serving.chat.auth import issue_token
from serving.chat.client import ChatClient


def server_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (the serve workers), in MB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        child = int(entry.name)
        children.setdefault(int(fields["PPid"]), []).append(child)
        rss[child] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        stack.extend(children.get(current, []))
    return total / 1024


async def settled_rss_mb(pid: int, still_s: float = 1.5, timeout_s: float = 20.0) -> float:
    """The serve tree's RSS once it has held still (within 0.5 MB) for `still_s`, in MB.

    After the warm-up request the worker keeps allocating for a moment on its own (~20 MB within
    half a second at e1ede3a, no socket open): measured from before that, the first held sockets
    were charged with it (bench/README.md, "Step 8").
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    last, still_since = server_rss_mb(pid), asyncio.get_running_loop().time()
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.25)
        now, rss = asyncio.get_running_loop().time(), server_rss_mb(pid)
        if abs(rss - last) > 0.5:
            last, still_since = rss, now
        elif now - still_since >= still_s:
            break
    return last


async def held_kb(ws_url: str, secret: str, count: int, process_pid: int) -> tuple[float, float]:
    """Serve-tree memory per held idle socket, in KB: the first `count`, then `count` more.

    Measured with the sockets open (welcomed, presence announced) and nothing sent: what a held
    connection costs, not what the turns of a run leave behind in the heap. The first figure
    includes what the worker allocates once, on first use (its store threads and their SQLite
    caches, the allocator's arenas); the second, with the first `count` still held, is the
    cost of one more connection.
    """
    run_id = secrets.token_hex(3)
    release = asyncio.Event()
    await settled_rss_mb(process_pid)

    async def hold(index: int, connected: list[int], all_in: asyncio.Event) -> None:
        token = issue_token(secret, f"held-{run_id}-{index}", "customer", 3600)
        async with ChatClient.connect(ws_url, token, max_queue=None):
            connected.append(index)
            if len(connected) == count:
                all_in.set()
            await release.wait()

    figures: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    for first in (0, count):
        connected: list[int] = []
        before, all_in = server_rss_mb(process_pid), asyncio.Event()
        tasks += [
            asyncio.create_task(hold(i, connected, all_in)) for i in range(first, first + count)
        ]
        await asyncio.wait_for(all_in.wait(), timeout=300)
        await asyncio.sleep(2)  # the last presence writes settle
        figures.append(round((server_rss_mb(process_pid) - before) * 1024 / count, 1))
    release.set()
    await asyncio.gather(*tasks)
    return figures[0], figures[1]
