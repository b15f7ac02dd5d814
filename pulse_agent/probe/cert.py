"""The expiry of a TLS peer certificate, read from its DER bytes (verified or not).

`getpeercert()` is empty when verification is off, so the expiry comes from the DER form,
like blackbox_exporter. A few lines of DER walking instead of `cryptography`: importing it
adds several MB to every agent and probe worker for one date.
"""

from __future__ import annotations

import calendar
from typing import Any

_SEQUENCE, _UTC_TIME, _GENERALIZED_TIME, _VERSION = 0x30, 0x17, 0x18, 0xA0


def peer_cert_not_after(transport: Any) -> float | None:
    """Expiry (epoch seconds) of the TLS peer certificate of a connection; None for plain http."""
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return der_not_after(der) if der else None


def der_not_after(der: bytes) -> float | None:
    """notAfter of a DER X.509 certificate as epoch seconds; None when the bytes are not one."""
    try:
        cert, _ = _element(der, 0, _SEQUENCE)
        tbs, _ = _element(der, cert, _SEQUENCE)
        at = tbs
        if der[at] == _VERSION:
            at = _skip(der, at)
        for _ in range(3):  # serialNumber, signature, issuer
            at = _skip(der, at)
        validity, _ = _element(der, at, _SEQUENCE)
        not_after = _skip(der, validity)  # past notBefore
        tag = der[not_after]
        start, end = _content(der, not_after)
        text = der[start:end].decode("ascii")
    except (IndexError, ValueError):
        return None
    return _time(tag, text)


def _content(der: bytes, at: int) -> tuple[int, int]:
    """Start and end of the content of the element whose tag is at `at`."""
    length = der[at + 1]
    start = at + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(der[start : start + count], "big")
        start += count
    if start + length > len(der):
        raise ValueError("truncated DER")
    return start, start + length


def _element(der: bytes, at: int, tag: int) -> tuple[int, int]:
    if der[at] != tag:
        raise ValueError("unexpected DER tag")
    return _content(der, at)


def _skip(der: bytes, at: int) -> int:
    return _content(der, at)[1]


def _time(tag: int, text: str) -> float | None:
    """UTCTime (YYMMDDHHMMSSZ, 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ) as epoch seconds."""
    if not text.endswith("Z") or not text[:-1].isdigit():
        return None
    digits = text[:-1]
    if tag == _UTC_TIME and len(digits) == 12:
        year = int(digits[:2])
        year += 1900 if year >= 50 else 2000
        rest = digits[2:]
    elif tag == _GENERALIZED_TIME and len(digits) == 14:
        year, rest = int(digits[:4]), digits[4:]
    else:
        return None
    month, day, hour, minute, second = (int(rest[i : i + 2]) for i in range(0, 10, 2))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))
