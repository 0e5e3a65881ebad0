"""Contract dates: a deposit date plus whole calendar months.

The rule, for every date of a contract (incubation end, each payout, maturity):

- the date is the deposit date plus a whole number of calendar months: same day of the month,
  `months` months later;
- when that month is shorter, the day is clamped to the month's last day
  (2025-01-31 + 1 month = 2025-02-28; 2024-01-31 + 1 month = 2024-02-29; 2024-02-29 + 12 months
  = 2025-02-28);
- every date is computed from the deposit date itself, never chained from an earlier (possibly
  clamped) contract date and never from a count of days. So 2025-01-31 + 2 months is 2025-03-31,
  even though 2025-01-31 + 1 month + 1 month would be 2025-03-28.

The standard library's month lengths (leap years included) are the whole dependency.
"""

from __future__ import annotations

import calendar
from datetime import date

__all__ = ["add_months"]


def add_months(start: date, months: int) -> date:
    """`start` plus `months` whole calendar months, clamped to the last day of the month.

    `months` may be zero or negative. A result outside the years 1..9999 raises ValueError.
    """
    month_index = start.year * 12 + (start.month - 1) + months
    year, month_zero_based = divmod(month_index, 12)
    month = month_zero_based + 1
    if not 1 <= year <= 9999:
        raise ValueError(f"{start.isoformat()} plus {months} months is outside the calendar")
    last_day = calendar.monthrange(year, month)[1]
    return date(year, month, min(start.day, last_day))
