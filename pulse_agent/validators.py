"""Shell: the config checks that look outside the config text, given to config building by its callers:
a ca_file must be a readable file now; a client certificate must load; a notifier URL must be one Apprise
can use (imported on first use)."""

from __future__ import annotations

from pathlib import Path

from pulse_agent.config import Validators


def readable_file(path: str) -> str | None:
    """Why path is not a readable file, or None."""
    return None if Path(path).is_file() else f"{path!r} is not a readable file"


def client_cert(cert_file: str, key_file: str | None) -> str | None:
    """Why ssl cannot load this client certificate (and key), or None when it can."""
    import ssl  # with the probes' TLS module (and asyncio under it), only for configs with client certificates

    from pulse_agent.probe.tlsconf import no_password

    for path in (cert_file, key_file):
        if path is not None and (problem := readable_file(path)) is not None:
            return problem
    try:
        ssl.create_default_context().load_cert_chain(cert_file, key_file, password=no_password)
    except (ssl.SSLError, OSError) as exc:
        return f"cannot load the client certificate and key: {getattr(exc, 'reason', None) or exc}"
    return None


def apprise_url(url: str) -> str | None:
    """Why Apprise cannot use url, or None; Apprise is imported only by configs with notifiers."""
    from pulse_agent.alerts.notify import url_problem

    return url_problem(url)


def icmp_socket(url: str) -> str | None:
    """Why this process cannot ping for an icmp:// check of url (no raw or ping socket), or None."""
    from pulse_agent.probe.icmp import socket_problem

    return socket_problem(url)


def rule_sql(sql: str) -> str | None:
    """Why a rule's SQL cannot run, or None: DuckDB's parser (one SELECT), then DuckDB binding and
    planning it (EXPLAIN: names, types, no rows) against the store's tables, empty, in memory,
    in a READ ONLY transaction."""
    import duckdb

    from pulse_agent.store.migrations import migrate
    from pulse_agent.store.sandbox import QueryRefused, lock_down, one_select
    from pulse_agent.store.sql_window import windowed_sql

    try:
        one_select(sql)
    except QueryRefused as exc:
        return str(exc)
    with duckdb.connect(":memory:") as con:
        migrate(con)
        lock_down(con, memory_limit=64 << 20)
        try:
            con.execute("BEGIN TRANSACTION READ ONLY")  # as at evaluation: the engine refuses a write (a data-modifying CTE)
            con.execute("EXPLAIN " + windowed_sql(sql, 0, 1))
        except duckdb.Error as exc:
            return f"DuckDB cannot run it: {next((line.strip() for line in str(exc).splitlines() if line.strip()), str(exc))}"
    return None


SHELL_VALIDATORS = Validators(
    file=readable_file, notifier_url=apprise_url, client_cert=client_cert, icmp=icmp_socket, rule_sql=rule_sql
)
