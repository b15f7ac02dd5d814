"""iso(): the ISO-8601 text of every stored, exported and streamed time, made once per second."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest

from pulse_agent.result import iso


def _datetime_text(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


EDGES = [0.0, -0.0005, -1.5, 1.9999995, 1.9999994999, 1e9 + 0.9995, 1e9 + 0.0005, 1764661200.9999996, 253402300799.999, -62135596800.0]


def test_iso_is_datetimes_text_at_rounding_edges_and_anywhere_in_its_range():
    rng = random.Random(23)
    values = EDGES + [rng.uniform(-6e10, 2.5e11) for _ in range(20_000)]
    values += [math.floor(v) + us / 1e6 for v in values[:500] for us in (999_999, 999_500, 500)]  # rounding carries
    assert [iso(v) for v in values if v < 253402300799.9995] == [_datetime_text(v) for v in values if v < 253402300799.9995]
    assert iso(1764661200.25) == "2025-12-02T07:40:00.250Z"


@pytest.mark.parametrize("ts", [253402300799.9999995, float("nan"), float("inf"), 1e300])
def test_iso_refuses_what_datetime_refuses(ts: float):
    with pytest.raises((ValueError, OverflowError)):
        _datetime_text(ts)
    with pytest.raises((ValueError, OverflowError)):
        iso(ts)
