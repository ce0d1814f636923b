"""Instants, HTTP dates and FHIR date/dateTime values as time ranges.

A FHIR date or dateTime has a precision and so denotes a range (R4 search.html
3.1.1.4.2.1): `2024` is the whole year, `2024-03-05` the whole day. `parse_range`
returns that range as [low, high) in UTC.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime

UTC = timezone.utc
_DT = re.compile(
    r"^(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})(T(?P<H>\d{2})(:(?P<M>\d{2})(:(?P<S>\d{2})(?P<f>\.\d+)?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def now() -> datetime:
    """The current instant, truncated to milliseconds (BSON dates hold milliseconds)."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond - t.microsecond % 1000)


def format_instant(t: datetime) -> str:
    """FHIR instant with milliseconds and an explicit offset, as HAPI writes it."""
    return t.astimezone(UTC).isoformat(timespec="milliseconds")


def http_date(t: datetime) -> str:
    return format_datetime(t.astimezone(UTC), usegmt=True)


def parse_http_date(value: str) -> datetime | None:
    try:
        t = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _add_months(t: datetime, months: int) -> datetime:
    y, m = divmod(t.month - 1 + months, 12)
    return t.replace(year=t.year + y, month=m + 1)


def parse_range(value: str) -> tuple[datetime, datetime] | None:
    """[low, high) of a FHIR date/dateTime/instant string, or None when malformed."""
    m = _DT.match(value)
    if not m:
        return None
    g = m.groupdict()
    try:
        tz = UTC
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hh, mm = int(g["tz"][1:3]), int(g["tz"][4:6])
            tz = timezone(sign * timedelta(hours=hh, minutes=mm))
        year = int(g["y"])
        if g["m"] is None:
            low = datetime(year, 1, 1, tzinfo=tz)
            return low.astimezone(UTC), datetime(year + 1, 1, 1, tzinfo=tz).astimezone(UTC)
        month = int(g["m"])
        if g["d"] is None:
            low = datetime(year, month, 1, tzinfo=tz)
            return low.astimezone(UTC), _add_months(low, 1).astimezone(UTC)
        day = int(g["d"])
        if g["H"] is None:
            low = datetime(year, month, day, tzinfo=tz)
            return low.astimezone(UTC), (low + timedelta(days=1)).astimezone(UTC)
        if g["M"] is None:
            return None  # hours without minutes is not a FHIR dateTime
        hour, minute = int(g["H"]), int(g["M"])
        if g["S"] is None:
            low = datetime(year, month, day, hour, minute, tzinfo=tz)
            return low.astimezone(UTC), (low + timedelta(minutes=1)).astimezone(UTC)
        second = int(g["S"])
        frac = g["f"] or ""
        micro = int((frac[1:] + "000000")[:6]) if frac else 0
        low = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
        digits = len(frac) - 1 if frac else 0
        step = timedelta(microseconds=10 ** (6 - min(digits, 6))) if digits else timedelta(seconds=1)
        return low.astimezone(UTC), (low + step).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
