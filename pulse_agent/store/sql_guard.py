"""Which user SQL may run: one SELECT that touches only the database, never files, the network,
settings or the environment. The same guard serves the CLI and the agent's API. Pure."""

from __future__ import annotations

import json
import re

import duckdb

# Functions that reach outside the database (files, network, other databases, secrets, the
# process environment) or run SQL text of their own.
DENIED_PREFIXES = ("read_", "parquet_", "sniff_", "iceberg_", "delta_", "postgres_", "mysql_", "sqlite_", "http", "duckdb_secret")
DENIED_NAMES = frozenset(
    {"glob", "query", "query_table", "getenv", "current_setting", "which_secret", "load", "json_execute_serialized_sql",
     "read_text", "read_blob", "csv_scan", "parquet_scan", "arrow_scan"}
)  # fmt: skip
_FUNCTION = re.compile(r'"function_name":"([^"]+)"')
_STRING_TABLE = re.compile(r'"type":"BASE_TABLE"[^{}]*"table_name":"([^"]*[/.][^"]*)"')


class QueryRefused(ValueError):
    """The SQL is not a single read-only query of the database; the message says why."""


def check_sql(sql: str) -> None:
    """Raise QueryRefused unless sql is one SELECT over the database's own tables."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"cannot parse the query: {_first_line(str(exc))}") from None
    if len(statements) != 1:
        raise QueryRefused(f"give exactly one statement, not {len(statements)}")
    kind = statements[0].type.name
    if kind != "SELECT":
        raise QueryRefused(f"{kind} statements are refused: only read-only SELECT queries run (results are never changed here)")
    with duckdb.connect() as scratch:  # parse only: nothing of the user's runs here
        [(tree,)] = scratch.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()
    if json.loads(tree).get("error"):
        raise QueryRefused("only read-only SELECT queries run")
    compact = json.dumps(json.loads(tree), separators=(",", ":"))
    for name in _FUNCTION.findall(compact):
        lowered = name.lower()
        if lowered in DENIED_NAMES or lowered.startswith(DENIED_PREFIXES):
            raise QueryRefused(f"{name}() is refused: queries may read the database's tables, not files, the network or the environment")
    for table in _STRING_TABLE.findall(compact):
        raise QueryRefused(f"reading {table!r} is refused: queries may read the database's tables, not files")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
