"""The fund catalog: one data file, `backend/data/funds.json` (code, name, minimum, currency)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from backend.errors import FundMinimumNotMet, InvalidData

CENT = Decimal("0.01")
CATALOG_PATH = Path(__file__).with_name("data") / "funds.json"


@dataclass(frozen=True, slots=True)
class Fund:
    code: str
    name: str
    minimum: Decimal
    currency: str


class FundCatalog:
    def __init__(self, funds: list[Fund]) -> None:
        self._funds = {fund.code: fund for fund in funds}

    @classmethod
    def load(cls, path: Path = CATALOG_PATH) -> FundCatalog:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls([
            Fund(code=f["code"], name=f["name"], minimum=Decimal(f["minimum"]),
                 currency=f["currency"])
            for f in raw["funds"]
        ])

    def all(self) -> list[Fund]:
        return list(self._funds.values())

    def get(self, code: str) -> Fund:
        fund = self._funds.get(code)
        if fund is None:
            raise InvalidData(
                f"there is no fund {code!r}",
                code="UNKNOWN_FUND",
                details={"fund_code": code, "known": sorted(self._funds)},
            )
        return fund

    def check_subscription(self, code: str, amount: Decimal, currency: str) -> Fund:
        fund = self.get(code)
        if currency != fund.currency:
            raise InvalidData(
                f"fund {fund.code} takes {fund.currency}, not {currency}",
                code="CURRENCY_MISMATCH",
                details={"fund_code": fund.code, "currency": fund.currency},
            )
        if amount != amount.quantize(CENT):
            raise InvalidData(
                f"amounts in {fund.currency} have at most two decimal places",
                code="AMOUNT_PRECISION", details={"amount": str(amount)},
            )
        if amount < fund.minimum:
            raise FundMinimumNotMet(
                f"fund {fund.code} requires at least {fund.minimum} {fund.currency}",
                details={"fund_code": fund.code, "minimum": str(fund.minimum),
                         "currency": fund.currency, "amount": str(amount)},
            )
        return fund


@lru_cache(maxsize=1)
def default_catalog() -> FundCatalog:
    return FundCatalog.load()
