"""The per-check part of /metrics in pieces of bounded work: /metrics is served on the event loop
with a pause between two pieces, so runs due during a scrape of many checks start on time (a render
in a thread holds the GIL for most of it and slows every run due meanwhile)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol

PHASES = ("dns", "connect", "tls", "first_byte", "total")
UP, DURATION, STATUS, SUCCESS, FAILURE, SKIPPED, DEGRADED, CERT, LAST_RUN, NEXT_RUN, CONSECUTIVE = range(11)
PHASE0 = 11  # then one slot per phase

# Series in one piece (of one family): about a millisecond of work (docs/performance.md), the longest a
# scrape keeps the event loop from due runs (5,000 were several ms, and a run due then started that late).
SLICE = 1000


class CheckValues(Protocol):
    """What the exposition reads of one check (web/metrics.py keeps it)."""

    @property
    def label(self) -> str: ...  # escaped label text: check, and location when set
    @property
    def info(self) -> str: ...  # pulse_check_info's labels: these and the check's own labels
    @property
    def values(self) -> Sequence[float]: ...  # by slot; NaN: no series
    @property
    def kinds(self) -> Mapping[str, float]: ...  # failed runs by error_kind
    @property
    def protocol(self) -> str: ...  # pulse_check_protocol_info's extra labels, "" for none


Lines = Callable[[Sequence[CheckValues]], list[str]]  # one family's lines of some checks


def _gauge(family: str, slot: int) -> Lines:
    return lambda items: [f"{family}{{{s.label}}} {x!r}\n" for s in items if (x := s.values[slot]) == x]  # x != x: NaN, no series


def _runs(items: Sequence[CheckValues]) -> list[str]:
    return [f'pulse_check_runs_total{{{s.label},result="success"}} {s.values[SUCCESS]!r}\n'
            f'pulse_check_runs_total{{{s.label},result="failure"}} {s.values[FAILURE]!r}\n' for s in items]  # fmt: skip


def _phases(items: Sequence[CheckValues]) -> list[str]:
    return [f'pulse_check_phase_duration_seconds{{{s.label},phase="{p}"}} {x!r}\n'
            for s in items for i, p in enumerate(PHASES) if (x := s.values[PHASE0 + i]) == x]  # fmt: skip


def _family(family: str, text: str, lines: Lines, kind: str = "gauge", per_check: int = 1) -> tuple[str, str, Lines, int]:
    return family, f"# HELP {family} {text}\n# TYPE {family} {kind}\n", lines, max(1, SLICE // per_check)


# Every per-check family in exposition order: (name, its HELP and TYPE lines, the lines of some checks,
# checks in one piece: SLICE series at most, or about that for failures_total, a series per error_kind seen).
FAMILIES: tuple[tuple[str, str, Lines, int], ...] = (
    _family("pulse_check_info", "Always 1: a configured check, with its labels.",
            lambda items: [f"pulse_check_info{{{s.info}}} 1.0\n" for s in items]),
    *(_family(family, text, _gauge(family, slot)) for family, text, slot in (
        ("pulse_check_up", "1 if the last run of the check succeeded, else 0.", UP),
        ("pulse_check_duration_seconds", "Response time of the last run.", DURATION),
        ("pulse_check_status_code", "HTTP status code of the last run (0: none).", STATUS),
        ("pulse_check_degraded", "1 if the last run was ok but slower than degraded_response_time.", DEGRADED),
        ("pulse_check_consecutive_failures", "Failed runs in a row, up to the last run (0 after a success).", CONSECUTIVE),
        ("pulse_check_last_run_timestamp_seconds", "When the last finished run started (Unix time).", LAST_RUN),
        ("pulse_check_next_run_timestamp_seconds", "When the next scheduled run is due (Unix time).", NEXT_RUN),
    )),
    _family("pulse_check_runs_total", "Finished runs by result.", _runs, "counter", per_check=2),
    _family("pulse_check_skipped_runs_total", "Runs skipped because the previous run was still going.",
            lambda items: [f"pulse_check_skipped_runs_total{{{s.label}}} {s.values[SKIPPED]!r}\n" for s in items], "counter"),
    _family("pulse_check_failures_total", "Failed runs by error_kind (series appear with the first failure of a kind).",
            lambda items: [f'pulse_check_failures_total{{{s.label},error_kind="{k}"}} {n!r}\n' for s in items for k, n in s.kinds.items()],
            "counter"),
    _family("pulse_check_phase_duration_seconds",
            "Time spent in each phase of the last run (dns, connect, tls, first_byte, total).", _phases, per_check=len(PHASES)),
    _family("pulse_check_certificate_expiry_timestamp_seconds",
            "Expiry (Unix time) of the peer certificate seen by the last https or tls run.",
            _gauge("pulse_check_certificate_expiry_timestamp_seconds", CERT)),
    _family("pulse_check_protocol_info", "Always 1: the HTTP and TLS versions of the last run's final response.",
            lambda items: [f"pulse_check_protocol_info{{{s.label}{s.protocol}}} 1.0\n" for s in items if s.protocol]),
)  # fmt: skip


def check_pieces(states: Mapping[str, CheckValues], omit: frozenset[str] = frozenset()) -> Iterator[bytes]:
    """The per-check families but those in omit, in Prometheus text format 0.0.4, as pieces of about
    SLICE series of one family at most (a caller may pause between two)."""
    items = list(states.values())  # a snapshot: checks may come and go between pieces
    for family, header, lines, checks in FAMILIES:
        if family in omit:
            continue
        out = [header]
        for start in range(0, len(items), checks):
            out.extend(lines(items[start : start + checks]))
            yield "".join(out).encode()
            out = []
        if out:  # no checks: the header alone
            yield header.encode()
