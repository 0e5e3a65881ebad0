"""Conversion between UTC and the broker's server time.

MT5 reports times as seconds since 1970 on the broker's wall clock (commonly EET, UTC+2, or
UTC+3 in summer), not as true UTC timestamps, and reads the bounds of history queries the same
way. A fixed offset is right for a server that never changes its clock; an IANA time zone
(`BRIDGE_BROKER_TIMEZONE`) is right across daylight-saving changes, old deals included.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class BrokerClock(Protocol):
    def to_utc(self, broker_ms: int) -> datetime: ...

    def to_broker_seconds(self, moment: datetime) -> int: ...

    def offset_seconds(self, moment: datetime) -> int: ...


class FixedOffsetClock:
    def __init__(self, offset_seconds: int) -> None:
        self._offset = offset_seconds

    def to_utc(self, broker_ms: int) -> datetime:
        return datetime.fromtimestamp(broker_ms / 1000, UTC) - timedelta(seconds=self._offset)

    def to_broker_seconds(self, moment: datetime) -> int:
        return calendar.timegm(moment.astimezone(UTC).timetuple()) + self._offset

    def offset_seconds(self, moment: datetime) -> int:
        return self._offset


class ZoneClock:
    """Broker time in an IANA zone. In the repeated hour of an autumn change, the earlier
    of the two readings is taken (fold=0); MT5 itself records no fold."""

    def __init__(self, zone: str) -> None:
        self._zone = ZoneInfo(zone)

    def to_utc(self, broker_ms: int) -> datetime:
        wall = datetime.fromtimestamp(broker_ms / 1000, UTC).replace(tzinfo=None)
        return wall.replace(tzinfo=self._zone).astimezone(UTC)

    def to_broker_seconds(self, moment: datetime) -> int:
        wall = moment.astimezone(self._zone).replace(tzinfo=None)
        return calendar.timegm(wall.timetuple())

    def offset_seconds(self, moment: datetime) -> int:
        offset = moment.astimezone(self._zone).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0


def observed_offset_seconds(tick_broker_seconds: int, now: datetime) -> int:
    """The broker offset implied by a fresh tick, rounded to the nearest 30 minutes.

    A tick's time is broker wall-clock; its difference from UTC now is the offset plus the
    tick's age, and rounding removes an age of up to a quarter of an hour. A stale tick (a
    closed market) gives a wrong answer, so this is only a cross-check of the configuration.
    """
    difference = tick_broker_seconds - now.timestamp()
    return round(difference / 1800) * 1800
