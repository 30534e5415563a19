"""Dates and times as pydantic 2 reads them from Python values and writes them to JSON."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone


class BadMoment(ValueError):
    """`kind` is pydantic's error type; `reason` its wording (its `ctx.error`)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(
    r"[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$"
)
NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_unix(number: float) -> datetime:
    seconds = number / 1000 if abs(number) > 2e10 else number
    if seconds > 253402300799:
        raise BadMoment("datetime_parsing", "dates after 9999 are not supported as unix timestamps")
    micros = round(seconds * 1_000_000)
    return _EPOCH + timedelta(microseconds=micros)


def from_text(text: str) -> datetime:
    def bad(reason: str) -> BadMoment:
        return BadMoment("datetime_from_date_parsing", reason)

    if len(text) < 10:
        raise bad("input is too short")
    for span, part in (((0, 4), "year"), ((5, 7), "month"), ((8, 10), "day")):
        if not text[span[0] : span[1]].isdigit():
            raise bad(f"invalid character in {part}")
        if part != "day" and text[span[1]] != "-":
            raise bad("invalid date separator, expected `-`")
    date = _DATE.match(text)
    assert date is not None
    year, month, day = (int(g) for g in date.groups())
    if not 1 <= month <= 12:
        raise bad("month value is outside expected range of 1-12")
    try:
        midnight = datetime(year, month, day)
    except ValueError:
        raise bad("day value is outside expected range") from None
    rest = text[10:]
    if not rest:
        return midnight
    moment = _TIME.match(rest)
    if moment is None:
        raise bad("unexpected extra characters at the end of the input")
    hour, minute, second, fraction, zulu, sign, off_h, off_m = moment.groups()
    tz: timezone | None = None
    if zulu:
        tz = UTC
    elif sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if offset >= timedelta(hours=24):
            raise bad("unexpected extra characters at the end of the input")
        tz = UTC if not offset else timezone(-offset if sign == "-" else offset)
    try:
        return midnight.replace(
            hour=int(hour),
            minute=int(minute),
            second=int(second or 0),
            microsecond=int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError:
        raise bad("unexpected extra characters at the end of the input") from None


def iso(moment: datetime) -> str:
    """A datetime as pydantic writes it to JSON: `T`, microseconds only when there are some,
    `Z` for UTC."""
    text = moment.replace(tzinfo=None).isoformat()
    offset = moment.utcoffset()
    if offset is None:
        return text
    if not offset:
        return text + "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"
