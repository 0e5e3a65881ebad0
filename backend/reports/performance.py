"""A client's performance as the API gives it: per investment and in total, the contractual and
actual values, the gain, the time- and money-weighted returns and the value at each month's
end."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from backend.funds import CENT
from backend.models._types import SignedMoney
from backend.money.performance import as_percent
from backend.services.statements import InvestmentPerformance

__all__ = ["PerformanceRead", "performance_read"]


class MonthValueRead(BaseModel):
    month: str = Field(examples=["2026-10"])
    value: SignedMoney = Field(description="actual value at the month's last close (today's "
                                           "for this month)")


class PerformanceLineRead(BaseModel):
    investment_id: str | None = Field(description="null for the client's total")
    fund_code: str | None
    status: str | None
    currency: str | None
    contractual_value: SignedMoney = Field(description="principal owed + interest accrued - "
                                                       "interest paid")
    actual_value: SignedMoney = Field(description="units x the latest value per unit (at "
                                                  "cost while the deposit is awaited)")
    subscribed: SignedMoney
    received: SignedMoney = Field(description="payouts and principal returned")
    gain: SignedMoney = Field(description="actual value + received - subscribed")
    time_weighted_return: str | None = Field(description="a fraction, since inception")
    time_weighted_return_percent: str | None
    money_weighted_return: str | None = Field(description="annual (XIRR), to today")
    money_weighted_return_percent: str | None
    awaiting_deposit: bool
    monthly_values: list[MonthValueRead]


class PerformanceRead(BaseModel):
    investments: list[PerformanceLineRead]
    total: PerformanceLineRead


def _rate(rate: Decimal | None) -> tuple[str | None, str | None]:
    return (None, None) if rate is None else (format(rate, "f"), format(as_percent(rate), "f"))


def _line(line: InvestmentPerformance) -> PerformanceLineRead:
    twr, twr_percent = _rate(line.time_weighted_return)
    mwr, mwr_percent = _rate(line.money_weighted_return)
    investment = line.investment
    return PerformanceLineRead(
        investment_id=investment.investment_id if investment else None,
        fund_code=investment.fund_code if investment else None,
        status=investment.status.value if investment else None,
        currency=investment.currency if investment else None,
        contractual_value=line.contractual_value.quantize(CENT),
        actual_value=line.actual_value.quantize(CENT), subscribed=line.subscribed.quantize(CENT),
        received=line.received.quantize(CENT), gain=line.gain.quantize(CENT),
        time_weighted_return=twr, time_weighted_return_percent=twr_percent,
        money_weighted_return=mwr, money_weighted_return_percent=mwr_percent,
        awaiting_deposit=line.awaiting_deposit,
        monthly_values=[MonthValueRead(month=f"{m.year:04d}-{m.month:02d}",
                                       value=m.value.quantize(CENT))
                        for m in line.monthly_values])


def performance_read(lines: list[InvestmentPerformance],
                     total: InvestmentPerformance) -> PerformanceRead:
    return PerformanceRead(investments=[_line(line) for line in lines], total=_line(total))
