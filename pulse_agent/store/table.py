"""A report's rows column by column, or as each row's JSON text written by DuckDB.

100,000 rows as Python dicts, and a `json.dumps` per row, cost seconds; DuckDB writes the same
JSON text per row in a fraction of that (docs/performance.md, "Reports at 100,000 checks"). The
text is byte for byte what `json.dumps(row)` writes: DuckDB's DOUBLE to VARCHAR is Python's float
repr (NaN and the infinities spelled as json spells them), integers and booleans are the same,
and a line whose strings DuckDB escapes otherwise (non-ASCII, DEL, control characters in upper
case hex) is written again by json itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, cast

import duckdb

Form = Literal["values", "lines"]  # what a query's answer is fetched as: Python values, or JSON text per row

_INTEGERS = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"})
# DuckDB types whose Python values are already JSON-ready: their columns are taken as they come.
PLAIN_TYPES = _INTEGERS | {"VARCHAR", "BOOLEAN", "FLOAT", "DOUBLE"}


def plain(kind: str) -> bool:
    """Whether values of this DuckDB type come to Python JSON-ready (a map of text to plain values does)."""
    if kind.startswith("MAP(VARCHAR, ") and kind.endswith(")"):
        return kind[len("MAP(VARCHAR, ") : -1] in PLAIN_TYPES
    return kind in PLAIN_TYPES


class Table(Sequence[dict[str, Any]]):
    """Rows of one answer, kept column by column (JSON-ready values) or as JSON text per row;
    each form is made from the other on demand. A sequence of row dicts to whoever iterates it."""

    __slots__ = ("_columns", "_count", "_known", "_lines", "names")

    def __init__(
        self,
        names: Sequence[str],
        columns: list[list[Any]] | None = None,
        lines: list[str] | None = None,
        known: dict[str, list[Any]] | None = None,
    ) -> None:
        self.names = tuple(names)
        self._columns = columns
        self._lines = lines
        self._known = known or {}  # some columns' values beside the JSON text (fetched with it)
        self._count = len(lines) if lines is not None else len(columns[0]) if columns else 0

    @classmethod
    def from_rows(cls, names: Sequence[str], rows: Sequence[dict[str, Any]]) -> Table:
        """From row dicts (an agent's answer, a --sql query's rows)."""
        names = tuple(names)
        table = cls(names, [[row.get(n) for row in rows] for n in names])
        table._count = len(rows)
        return table

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = self.names
        return (dict(zip(names, values, strict=True)) for values in zip(*self.columns(), strict=True)) if names else iter(())

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return list(self)[index]
        return {name: column[index] for name, column in zip(self.names, self.columns(), strict=True)}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Table | list | tuple):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Table({list(self)!r})"

    def columns(self) -> list[list[Any]]:
        """Each column's values in row order (parsed from the JSON text when that is all there is)."""
        if self._columns is None:
            rows = json.loads("[" + ",".join(self._lines or ()) + "]")
            self._columns = [[row[n] for row in rows] for n in self.names]
        return self._columns

    def column(self, name: str) -> list[Any]:
        """One column's values (ValueError for a name the table does not have)."""
        if name in self._known:
            return self._known[name]
        return self.columns()[self.names.index(name)]

    def lines(self) -> list[str]:
        """Each row's JSON text, as `json.dumps(row)` writes it."""
        if self._lines is None:
            self._lines = [json.dumps(row) for row in self]
        return self._lines

    def joined(self, names: Sequence[str], columns: list[list[Any]]) -> Table:
        """This table with columns added at its end (each row's JSON text extended, not rewritten)."""
        if self._lines is None:
            return Table((*self.names, *names), [*self.columns(), *columns])
        keys = [", " + json.dumps(n) + ": " for n in names]
        nulls = "".join(k + "null" for k in keys) + "}"

        def tail(values: tuple[Any, ...]) -> str:
            if all(v is None for v in values):
                return nulls
            return "".join(k + json.dumps(v) for k, v in zip(keys, values, strict=True)) + "}"

        if all(column.count(None) == len(column) == len(self._lines) for column in columns):  # no SLOs: one tail for every row
            lines = [line[:-1] + nulls for line in self._lines]
        else:
            rows = zip(*columns, strict=True) if columns else [()] * len(self._lines)
            lines = [line[:-1] + tail(values) for line, values in zip(self._lines, rows, strict=True)]
        table = Table((*self.names, *names), None, lines, {**self._known, **dict(zip(names, columns, strict=True))})
        if self._columns is not None:
            table._columns = [*self._columns, *columns]
        return table


def fetch(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object], form: Form,
          convert: Callable[[duckdb.DuckDBPyConnection], list[dict[str, Any]]], keep: Sequence[str] = ()) -> Table:  # fmt: skip
    """The answer of one read query (parameters by name) in form: its values column by column
    (convert(cursor) -> JSON-ready row dicts, when a type is not plain), or each row's JSON text
    from DuckDB when every column's type has a JSON form DuckDB writes as json does, with the
    values of the columns in keep beside it."""
    relation = con.sql(sql, params=params)
    names, kinds = list(relation.columns), [str(t) for t in relation.types]
    if form == "lines" and all(_json_sql('""', k) is not None for k in kinds):
        parts = ", ', ', ".join(f"{_literal(json.dumps(n) + ': ')}, {_json_sql(_ident(n), k)}" for n, k in zip(names, kinds, strict=True))
        kept = "".join(", " + _ident(n) for n in keep)
        written = cast(duckdb.DuckDBPyRelation, relation.query("report_rows", f"SELECT concat('{{', {parts}, '}}'){kept} FROM report_rows"))
        rows = written.fetchall()
        lines = [_as_json_writes(row[0]) for row in rows]
        known = {n: [row[i] for row in rows] for i, n in enumerate(keep, 1)}
        return Table(names, None, lines, known)
    if not all(plain(k) for k in kinds):
        return Table.from_rows(names, convert(con.execute(sql, params)))
    rows = relation.fetchall()
    return Table(names, [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in names])


def _json_sql(value: str, kind: str) -> str | None:
    """SQL writing value (of DuckDB type kind) as json.dumps writes its Python value; None when
    DuckDB cannot (that answer is converted in Python)."""
    if kind == "BOOLEAN":
        text = f"CASE WHEN {value} THEN 'true' WHEN NOT {value} THEN 'false' END"  # NULL stays NULL
    elif kind in _INTEGERS:
        text = f"{value}::VARCHAR"
    elif kind in ("DOUBLE", "FLOAT"):  # a FLOAT comes to Python as the double it is
        text = (f"CASE WHEN isfinite({value}) THEN {value}::DOUBLE::VARCHAR WHEN isnan({value}) THEN 'NaN' "
                f"WHEN {value} > 0 THEN 'Infinity' WHEN {value} < 0 THEN '-Infinity' END")  # fmt: skip
    elif kind == "VARCHAR":
        text = f"to_json({value})::VARCHAR"
    elif kind.startswith("MAP(VARCHAR, ") and kind.endswith(")"):
        inner = _json_sql("e.value", kind[len("MAP(VARCHAR, ") : -1])
        if inner is None:
            return None
        entry = f"concat(to_json(e.key)::VARCHAR, ': ', {inner})"
        text = f"concat('{{', array_to_string(list_transform(map_entries({value}), lambda e: {entry}), ', '), '}}')"
    else:
        return None
    return f"coalesce({text}, 'null')"


def _as_json_writes(line: str) -> str:
    """line as json.dumps writes it: DuckDB leaves non-ASCII text and DEL as they are and writes
    control characters as \\u001F where json writes \\u001f; such (rare) lines are written again."""
    if line.isascii() and "\\u" not in line and "\x7f" not in line:
        return line
    return json.dumps(json.loads(line))


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
