"""Money from terminal doubles, and broker time to UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mt5_bridge_service.clock import FixedOffsetClock, ZoneClock, observed_offset_seconds
from mt5_bridge_service.models import exact, money


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (99511.4, 2, "99511.40"),
        (0.1 + 0.2, 2, "0.30"),
        (-0.0, 2, "0.00"),
        (-227.5, 2, "-227.50"),
        (1178.935, 2, "1178.94"),
        (12.5, 0, "12"),
        (1e-9, 2, "0.00"),
    ],
)
def test_money_is_exact_in_the_currency_digits(value: float, digits: int, expected: str) -> None:
    assert str(money(value, digits)) == expected


def test_prices_and_volumes_keep_their_shortest_exact_form() -> None:
    assert str(exact(1.17264)) == "1.17264"
    assert str(exact(0.01)) == "0.01"


def test_fixed_offset_clock_round_trips() -> None:
    clock = FixedOffsetClock(2 * 3600)
    moment = datetime(2025, 7, 1, 12, 0, 30, tzinfo=UTC)
    broker = clock.to_broker_seconds(moment)
    assert datetime.fromtimestamp(broker, UTC) == datetime(2025, 7, 1, 14, 0, 30, tzinfo=UTC)
    assert clock.to_utc(broker * 1000 + 250) == datetime(2025, 7, 1, 12, 0, 30, 250_000, tzinfo=UTC)


def test_zone_clock_follows_daylight_saving_for_old_and_new_deals() -> None:
    clock = ZoneClock("Europe/Athens")
    winter = datetime(2025, 1, 15, 10, tzinfo=UTC)
    summer = datetime(2025, 7, 15, 10, tzinfo=UTC)

    assert clock.offset_seconds(winter) == 2 * 3600
    assert clock.offset_seconds(summer) == 3 * 3600
    for moment in (winter, summer):
        assert clock.to_utc(clock.to_broker_seconds(moment) * 1000) == moment


def test_observed_offset_rounds_a_fresh_tick_to_half_hours() -> None:
    now = datetime(2025, 7, 15, 10, 0, tzinfo=UTC)
    tick = int(now.timestamp()) + 3 * 3600 - 40
    assert observed_offset_seconds(tick, now) == 3 * 3600
    assert observed_offset_seconds(int(now.timestamp()) + 5 * 3600 + 1800, now) == 5.5 * 3600
