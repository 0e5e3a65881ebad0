"""A client statement in its three forms: the JSON read model, CSV and PDF.

The CSV and the PDF are rendered from the read model, never from the figures directly, so each
shows exactly the JSON's amounts: two-decimal strings (the PDF groups thousands with commas)
and returns in percent, half-up to two places (the JSON gives the exact fraction as well).

The PDF uses the core Helvetica font (Latin-1): a character outside it is shown as "?". Its
creation date is the period's end, so the same statement renders to the same bytes (the batch
command leaves unchanged files alone).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time
from decimal import Decimal

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from pydantic import BaseModel, Field

from backend.funds import CENT
from backend.models._types import SignedMoney
from backend.money.performance import as_percent
from backend.money.statement import StatementLine, UpcomingPayout
from backend.services.statements import ClientStatement

__all__ = ["StatementRead", "statement_csv", "statement_pdf", "statement_read"]


class PeriodRead(BaseModel):
    label: str
    start: date
    end: date


class StatementLineRead(BaseModel):
    """One investment's figures, or (investment_id null) the client's total."""

    investment_id: str | None
    fund_code: str | None
    opening_contractual_balance: SignedMoney
    subscriptions: SignedMoney
    payouts: SignedMoney = Field(description="interest and performance share paid")
    interest_paid: SignedMoney
    performance_share_paid: SignedMoney
    principal_returned: SignedMoney
    interest_accrued: SignedMoney = Field(description="earned in the period")
    closing_contractual_balance: SignedMoney
    interest_accrued_unpaid: SignedMoney = Field(description="at the closing")
    opening_actual_value: SignedMoney
    closing_actual_value: SignedMoney
    time_weighted_return: str | None = Field(description="a fraction: 0.0179 is 1.79 %")
    time_weighted_return_percent: str | None
    money_weighted_return: str | None = Field(description="annual, as XIRR gives it")
    money_weighted_return_percent: str | None
    awaiting_deposit: bool | None = Field(
        default=None, description="valued at cost: its money is not seen in MT5 yet")


class PayoutRead(BaseModel):
    due_date: date
    investment_id: str
    fund_code: str
    number: int
    kind: str
    amount: SignedMoney | None = Field(description="null for a performance share not yet "
                                                   "known")
    currency: str


class StatementRead(BaseModel):
    fund_manager: str
    client_id: str
    client_name: str
    period: PeriodRead
    currency: str | None
    total: StatementLineRead
    investments: list[StatementLineRead]
    next_payouts: list[PayoutRead]
    overdue_payouts: list[PayoutRead]
    reconciles: bool = Field(description="opening + subscriptions - payouts - principal "
                                         "returned + interest accrued = closing, every line")


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT)


def _rate(rate: Decimal | None) -> tuple[str | None, str | None]:
    if rate is None:
        return None, None
    return format(rate, "f"), format(as_percent(rate), "f")


def _line(line: StatementLine, *, fund_code: str | None,
          awaiting: bool | None) -> StatementLineRead:
    twr, twr_percent = _rate(line.time_weighted_return)
    mwr, mwr_percent = _rate(line.money_weighted_return)
    return StatementLineRead(
        investment_id=line.investment_id, fund_code=fund_code,
        opening_contractual_balance=_cents(line.opening_contractual_balance),
        subscriptions=_cents(line.subscriptions), payouts=_cents(line.payouts),
        interest_paid=_cents(line.interest_paid),
        performance_share_paid=_cents(line.performance_share_paid),
        principal_returned=_cents(line.principal_returned),
        interest_accrued=_cents(line.interest_accrued),
        closing_contractual_balance=_cents(line.closing_contractual_balance),
        interest_accrued_unpaid=_cents(line.interest_accrued_unpaid),
        opening_actual_value=_cents(line.opening_actual_value),
        closing_actual_value=_cents(line.closing_actual_value),
        time_weighted_return=twr, time_weighted_return_percent=twr_percent,
        money_weighted_return=mwr, money_weighted_return_percent=mwr_percent,
        awaiting_deposit=awaiting)


def _payout(payout: UpcomingPayout) -> PayoutRead:
    return PayoutRead(due_date=payout.due_date, investment_id=payout.investment_id,
                      fund_code=payout.fund_code, number=payout.number,
                      kind=payout.kind.value,
                      amount=None if payout.amount is None else _cents(payout.amount),
                      currency=payout.currency)


def statement_read(statement: ClientStatement) -> StatementRead:
    figures = statement.figures
    lines = [_line(line, fund_code=statement.investments[line.investment_id].investment.fund_code
                   if line.investment_id else None,
                   awaiting=statement.investments[line.investment_id].awaiting_deposit
                   if line.investment_id else None)
             for line in figures.investments]
    return StatementRead(
        fund_manager=statement.fund_manager, client_id=str(statement.client.id),
        client_name=statement.client_name,
        period=PeriodRead(label=statement.period.label, start=figures.start, end=figures.end),
        currency=figures.currency,
        total=_line(figures.total, fund_code=None, awaiting=None), investments=lines,
        next_payouts=[_payout(p) for p in figures.next_payouts],
        overdue_payouts=[_payout(p) for p in figures.overdue_payouts],
        reconciles=figures.total.reconciles and all(
            line.reconciles for line in figures.investments))


# --- CSV ---------------------------------------------------------------------------------

_LINE_FIELDS = list(StatementLineRead.model_fields)
_PAYOUT_FIELDS = list(PayoutRead.model_fields)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def statement_csv(read: StatementRead) -> str:
    """Three tables one after the other, a blank row between: the statement's heading, its
    lines (the total first), then the next and the overdue payouts."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["fund_manager", "client_id", "client_name", "period", "start", "end",
                     "currency", "reconciles"])
    writer.writerow([read.fund_manager, read.client_id, read.client_name, read.period.label,
                     read.period.start.isoformat(), read.period.end.isoformat(),
                     read.currency or "", _text(read.reconciles)])
    writer.writerow([])
    writer.writerow(["line", *_LINE_FIELDS])
    for kind, line in [("total", read.total), *(("investment", i) for i in read.investments)]:
        writer.writerow([kind, *(_text(getattr(line, name)) for name in _LINE_FIELDS)])
    writer.writerow([])
    writer.writerow(["payout", *_PAYOUT_FIELDS])
    for kind, payouts in (("next", read.next_payouts), ("overdue", read.overdue_payouts)):
        for payout in payouts:
            writer.writerow([kind, *(_text(getattr(payout, name)) for name in _PAYOUT_FIELDS)])
    return out.getvalue()


# --- PDF ---------------------------------------------------------------------------------


def money_text(amount: Decimal | None) -> str:
    """An amount as the PDF prints it: thousands grouped, two places ('81,430.89')."""
    return "-" if amount is None else f"{amount:,.2f}"


def _percent(text: str | None) -> str:
    return "n/a" if text is None else f"{text} %"


def _latin(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


_SUMMARY = (
    ("Opening contractual balance", "opening_contractual_balance"),
    ("+ Subscriptions", "subscriptions"),
    ("- Payouts (interest and performance share)", "payouts"),
    ("- Principal returned", "principal_returned"),
    ("+ Interest accrued in the period", "interest_accrued"),
    ("= Closing contractual balance", "closing_contractual_balance"),
    ("Interest accrued but unpaid at the closing", "interest_accrued_unpaid"),
    ("Actual value at the opening", "opening_actual_value"),
    ("Actual value at the closing", "closing_actual_value"),
)
_COLUMNS = (("Investment", 38), ("Fund", 20), ("Opening", 25), ("Subscribed", 22),
            ("Payouts", 20), ("Principal back", 22), ("Accrued", 20), ("Closing", 25),
            ("Actual value", 25), ("TWR", 17), ("IRR", 17))


class _StatementPdf(FPDF):
    def __init__(self, read: StatementRead) -> None:
        super().__init__(orientation="landscape", unit="mm", format="A4")
        self.read = read
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title(_latin(f"Statement {read.period.label} - {read.client_name}"))
        self.set_author(_latin(read.fund_manager))
        self.set_creation_date(datetime.combine(read.period.end, time.min, tzinfo=UTC))

    def header(self) -> None:
        self.set_font("Helvetica", "B", 14)
        self.cell(0, 8, _latin(self.read.fund_manager), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font("Helvetica", "", 9)
        self.cell(0, 5, "Client statement", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", "", 7)
        self.cell(0, 5, _latin(f"{self.read.client_name} - {self.read.period.label} - page "
                               f"{self.page_no()}"), align="C")

    def row(self, label: str, value: str, *, bold: bool = False) -> None:
        self.set_font("Helvetica", "B" if bold else "", 9)
        self.cell(110, 5.5, _latin(label), border="B")
        self.cell(45, 5.5, value, border="B", align="R", new_x=XPos.LMARGIN,
                  new_y=YPos.NEXT)

    def heading(self, text: str) -> None:
        self.ln(3)
        self.set_font("Helvetica", "B", 11)
        self.cell(0, 7, _latin(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def statement_pdf(read: StatementRead) -> bytes:
    pdf = _StatementPdf(read)
    pdf.add_page()
    pdf.set_font("Helvetica", "", 10)
    currency = read.currency or "-"
    for label, value in (("Client", read.client_name),
                         ("Period", f"{read.period.start.isoformat()} to "
                                    f"{read.period.end.isoformat()} ({read.period.label})"),
                         ("Currency", currency)):
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(30, 6, label)
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(0, 6, _latin(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    pdf.heading(f"Summary ({currency})")
    for label, name in _SUMMARY:
        pdf.row(label, money_text(getattr(read.total, name)),
                bold=name == "closing_contractual_balance")
    pdf.row("Time-weighted return for the period",
            _percent(read.total.time_weighted_return_percent))
    pdf.row("Money-weighted return (IRR, annual)",
            _percent(read.total.money_weighted_return_percent))

    pdf.heading("Investments")
    pdf.set_font("Helvetica", "B", 8)
    for title, width in _COLUMNS:
        pdf.cell(width, 6, title, border="B", align="L" if width == 38 else "R")
    pdf.ln()
    pdf.set_font("Helvetica", "", 8)
    for line in read.investments:
        cells = [line.investment_id or "", line.fund_code or "",
                 money_text(line.opening_contractual_balance), money_text(line.subscriptions),
                 money_text(line.payouts), money_text(line.principal_returned),
                 money_text(line.interest_accrued), money_text(line.closing_contractual_balance),
                 money_text(line.closing_actual_value) + (" *" if line.awaiting_deposit else ""),
                 _percent(line.time_weighted_return_percent),
                 _percent(line.money_weighted_return_percent)]
        for (_, width), text in zip(_COLUMNS, cells, strict=True):
            pdf.cell(width, 5.5, _latin(text), border="B", align="L" if width == 38 else "R")
        pdf.ln()
    if any(line.awaiting_deposit for line in read.investments):
        pdf.set_font("Helvetica", "I", 7)
        pdf.cell(0, 5, "* valued at cost: its deposit is not yet seen in its MT5 account",
                 new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    for title, payouts in (("Next payouts", read.next_payouts),
                           ("Overdue payouts", read.overdue_payouts)):
        if not payouts and title == "Overdue payouts":
            continue
        pdf.heading(title)
        pdf.set_font("Helvetica", "", 8)
        if not payouts:
            pdf.cell(0, 5, "none in the next twelve months", new_x=XPos.LMARGIN,
                     new_y=YPos.NEXT)
        for payout in payouts:
            pdf.cell(25, 5, payout.due_date.isoformat(), border="B")
            pdf.cell(45, 5, payout.investment_id, border="B")
            pdf.cell(22, 5, payout.fund_code, border="B")
            pdf.cell(35, 5, f"{payout.kind.replace('_', ' ')} #{payout.number}", border="B")
            pdf.cell(30, 5, money_text(payout.amount), border="B", align="R",
                     new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    pdf.ln(4)
    pdf.set_font("Helvetica", "I", 7)
    pdf.multi_cell(0, 4, "Contractual balance: principal owed plus interest accrued (incubation "
                         "honoured, the running period pro rata) less interest paid. Actual "
                         "value: the investment's units of its MT5 account at the latest value "
                         "per unit. Returns: time-weighted for the period; money-weighted as an "
                         "annual rate (XIRR).")
    return bytes(pdf.output())
