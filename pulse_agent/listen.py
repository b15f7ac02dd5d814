"""agent.listen addresses: HOST:PORT apart, and the URL that reaches an agent listening there. Pure."""

from __future__ import annotations


def split_listen(listen: str) -> tuple[str, int]:
    """HOST:PORT (or [v6]:PORT) -> (host, port); an empty host means every address."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def agent_url(listen: str) -> str:
    """http://HOST:PORT of an agent listening on listen (an any-address becomes the loopback)."""
    host, port = split_listen(listen)
    host = "127.0.0.1" if host == "0.0.0.0" else "::1" if host == "::" else host
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"
