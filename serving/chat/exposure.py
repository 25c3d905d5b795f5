"""Dev login only on loopback: where does this process serve, and is that reachable by others?

How `bentoml serve --host H --port P` (BentoML 1.4) tells its processes where they listen:
- the CLI process resolves H from `--host`, else `BENTOML_HOST`, else the config's `http.host`
  (`0.0.0.0` by default), imports the service (so this module runs there first), and only then
  has its circus arbiter bind the socket;
- each worker is started with the bound socket as `--fd N` and nothing else: no host or port in
  its arguments or environment (`BENTOML_RUNNER_MAP` writes `localhost` for `0.0.0.0`, so it
  cannot be trusted). The worker's truth is the listening socket it holds, read from the kernel.

So the check reads the listening sockets of this process first (a worker), then the host the
`serve` command resolved (the CLI process, which then exits with the message before binding).
When neither is known, dev login is refused: it fails closed.

Bound to loopback is not enough on its own: a web page the developer opens can rebind its own
name to 127.0.0.1 (DNS rebinding) and then call the dev login as a same-origin page, minting an
agent token that reads every conversation. Its requests still carry the page's name in the Host
header, so dev login answers only requests addressed to a loopback host.
"""

from __future__ import annotations

import ipaddress
import logging

import psutil

logger = logging.getLogger("serving.chat")


class DevLoginExposed(RuntimeError):
    """CHAT_DEV_LOGIN=true where people other than this machine's users could reach it."""


def listening_addresses() -> list[str]:
    """The addresses of the TCP sockets this process listens on (a BentoML worker's `--fd`)."""
    connections = psutil.Process().net_connections(kind="inet")
    return sorted({c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN and c.laddr})


def serve_command_host() -> str | None:
    """The host `bentoml serve` will bind, when this code runs inside that command; else None."""
    import click  # BentoML's CLI is click; imported here because only this check needs it

    context = click.get_current_context(silent=True)
    if context is None or "host" not in context.params or "port" not in context.params:
        return None
    host = context.params["host"]
    if host:
        return str(host)
    from bentoml._internal.container import BentoMLContainer

    # No --host and no BENTOML_HOST: serve_http binds the configured http.host.
    return str(BentoMLContainer.http.host.get())


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`; False for 0.0.0.0 and ::."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


def serving_hosts() -> list[str] | None:
    """Where this process serves (or is about to): listening sockets, else the serve host."""
    addresses = listening_addresses()
    if addresses:
        return addresses
    host = serve_command_host()
    return [host] if host is not None else None


def refuse_exposed_dev_login(dev_login: bool) -> None:
    """Raise DevLoginExposed when dev login is on and the service is not on loopback only."""
    if not dev_login:
        return
    hosts = serving_hosts()
    if hosts is None:
        raise DevLoginExposed(
            "CHAT_DEV_LOGIN=true, but the address this process serves on cannot be determined "
            "(it is not running under `bentoml serve`), so dev login is refused: set "
            "CHAT_DEV_LOGIN=false, or serve with `bentoml serve --host 127.0.0.1`"
        )
    exposed = [host for host in hosts if not is_loopback(host)]
    if exposed:
        raise DevLoginExposed(
            f"CHAT_DEV_LOGIN=true while the service is bound to {', '.join(exposed)}, which is "
            "not a loopback address: anyone who reaches the port could mint a token for any "
            "customer or agent. Bind to loopback (`bentoml serve --host 127.0.0.1`, "
            "BENTOML_HOST=127.0.0.1, `make serve HOST=127.0.0.1`) or set CHAT_DEV_LOGIN=false "
            "and hand out tokens with `make token`."
        )
    logger.warning("CHAT_DEV_LOGIN is on (loopback %s only): a local demo", ", ".join(hosts))


def addressed_to_loopback(hostname: str | None) -> bool:
    """Whether a request's Host names this machine's loopback (not a name that resolves to it)."""
    return hostname is not None and is_loopback(hostname)
