"""agent.listen addresses: HOST:PORT apart, and the URL that reaches an agent listening there. Pure."""

from __future__ import annotations

from typing import Literal

DEFAULT_LISTEN = "127.0.0.1:9108"  # agent.listen when the config does not say


def split_listen(listen: str) -> tuple[str, int]:
    """HOST:PORT (or [v6]:PORT) -> (host, port); an empty host means every address."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def agent_url(listen: str) -> str:
    """http://HOST:PORT of an agent listening on listen (an any-address becomes the loopback)."""
    host, port = split_listen(listen)
    host = "127.0.0.1" if host == "0.0.0.0" else "::1" if host == "::" else host
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class OpenApiRefused(ValueError):
    """The API would be open to the network without a token; the message says what to set."""


def is_loopback(listen: str) -> bool:
    """Whether listen only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    host, _ = split_listen(listen)
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def api_exposure(listen: str, token: str | None, insecure: bool) -> Literal["token", "loopback", "insecure"]:
    """How the mutating API is guarded on listen; OpenApiRefused when it would be open to the network."""
    if token:
        return "token"
    if is_loopback(listen):
        return "loopback"
    if insecure:
        return "insecure"
    raise OpenApiRefused(
        f"agent.listen {listen!r} is reachable from other machines and agent.api_token is not set: anyone reaching it could "
        "run queries, trigger runs, reload and export; set agent.api_token (api_token: ${PULSE_API_TOKEN}), listen on "
        "127.0.0.1, or set agent.insecure_api: true to allow an open API"
    )


def listen_problem(listen: str) -> str | None:
    """Why listen is not a HOST:PORT this agent can serve on, or None when it is one."""
    host, sep, port = listen.rpartition(":")
    if not sep:
        return f"{listen[:60]!r} is not HOST:PORT (e.g. 127.0.0.1:9108, [::1]:9108, 0.0.0.0:9108)"
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and int(port) <= 65535):
        return f"{listen[:60]!r}: port {port[:10]!r} is not a number from 0 to 65535"
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if "[" in bare or "]" in bare or (":" in bare and host == bare):
        return f"{listen[:60]!r}: write an IPv6 host in brackets, e.g. [::1]:9108"
    return None
