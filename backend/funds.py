"""The fund catalog: one versioned table of fund terms, `backend/data/funds.json`.

Each row of the file is one version of one fund's terms: code, name, currency, minimum, kind,
monthly rate (percent), performance share (percent), payout period, incubation and commitment
(whole months), invitation-only, terms version and effective date. Terms change by adding a
row with a higher version and a later effective date; rows are never edited once an investment
may have been made under them, because an investment keeps the version in force on its deposit
date: the latest version whose effective date is on or before that date.

The file is checked completely when it is loaded, and every problem found is reported in one
`FundCatalogInvalid`:

- every field is present, of its type, and no unknown field is given; money and percentages
  are decimal strings ("10000.00", "1.5"), never JSON numbers, so no float ever reaches them;
- `fixed_interest` terms have a positive monthly rate and no performance share;
  `performance_share` terms have a share in (0, 100] and no monthly rate;
- the minimum is positive and in whole cents; the payout period and the commitment are at least
  one month, incubation at least zero, and the commitment is a whole number of payout periods
  (so the last payout falls on maturity and no month of the commitment goes unpaid);
- the versions of a fund appear in the file with strictly increasing version numbers and
  strictly later effective dates, and keep the fund's currency.

"Today" (when no day is given) is the current date in UTC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from backend.errors import FundCatalogInvalid, FundMinimumNotMet, InvalidData, InvitationRequired
from backend.models._types import CURRENCY_PATTERN, FUND_CODE_PATTERN

__all__ = [
    "CATALOG_PATH",
    "CENT",
    "Fund",
    "FundCatalog",
    "FundKind",
    "FundTerms",
    "default_catalog",
]

CENT = Decimal("0.01")
CATALOG_PATH = Path(__file__).with_name("data") / "funds.json"

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class FundKind(StrEnum):
    FIXED_INTEREST = "fixed_interest"
    PERFORMANCE_SHARE = "performance_share"


@dataclass(frozen=True, slots=True)
class FundTerms:
    """One version of one fund's terms. Constructing inconsistent terms raises
    `FundCatalogInvalid`, so every instance obeys the rules in the module docstring."""

    code: str
    name: str
    currency: str
    minimum: Decimal
    kind: FundKind
    #: Percent of the principal per month (1.5 means 1.5 %); None for a performance share.
    monthly_rate_percent: Decimal | None
    #: The client's percent of the gain above the high-water mark; None for fixed interest.
    performance_share_percent: Decimal | None
    payout_period_months: int
    incubation_months: int
    commitment_months: int
    invitation_only: bool
    terms_version: int
    effective_date: date

    def __post_init__(self) -> None:
        problems = _terms_problems(self)
        if problems:
            raise FundCatalogInvalid(
                f"fund {self.code} terms version {self.terms_version}: " + "; ".join(problems),
                details={"fund_code": self.code, "terms_version": self.terms_version,
                         "problems": problems},
            )

    @property
    def payouts_count(self) -> int:
        """How many payouts the commitment holds (the principal's return not counted)."""
        return self.commitment_months // self.payout_period_months


#: A fund as offered on a day is the version of its terms in force that day.
Fund = FundTerms


def _terms_problems(terms: FundTerms) -> list[str]:
    problems: list[str] = []
    if not re.match(FUND_CODE_PATTERN, terms.code):
        problems.append(f"code {terms.code!r} is not a fund code (A-Z, 0-9, _; 2 to 16)")
    if not terms.name.strip():
        problems.append("name is blank")
    if not re.match(CURRENCY_PATTERN, terms.currency):
        problems.append(f"currency {terms.currency!r} is not a three-letter code")
    if not terms.minimum.is_finite() or terms.minimum <= 0:
        problems.append(f"minimum {terms.minimum} is not a positive amount")
    elif terms.minimum != terms.minimum.quantize(CENT):
        problems.append(f"minimum {terms.minimum} has more than two decimal places")
    if terms.payout_period_months < 1:
        problems.append("payout_period_months is less than 1")
    if terms.incubation_months < 0:
        problems.append("incubation_months is negative")
    if terms.commitment_months < 1:
        problems.append("commitment_months is less than 1")
    if (terms.payout_period_months >= 1 and terms.commitment_months >= 1
            and terms.commitment_months % terms.payout_period_months):
        problems.append(f"commitment of {terms.commitment_months} months is not a whole number "
                        f"of {terms.payout_period_months}-month payout periods")
    if terms.terms_version < 1:
        problems.append("terms_version is less than 1")
    rate, share = terms.monthly_rate_percent, terms.performance_share_percent
    if terms.kind is FundKind.FIXED_INTEREST:
        if rate is None or not rate.is_finite() or rate <= 0:
            problems.append("a fixed_interest fund needs a positive monthly_rate_percent")
        if share is not None:
            problems.append("a fixed_interest fund has no performance_share_percent")
    elif terms.kind is FundKind.PERFORMANCE_SHARE:
        if share is None or not share.is_finite() or not 0 < share <= 100:
            problems.append("a performance_share fund needs a performance_share_percent "
                            "above 0 and at most 100")
        if rate is not None:
            problems.append("a performance_share fund has no monthly_rate_percent")
    else:
        problems.append(f"kind {terms.kind!r} is not one of {[k.value for k in FundKind]}")
    return problems


# --- reading the file ------------------------------------------------------------------------


class _RecordReader:
    """Reads one row of the file, collecting every problem instead of stopping at the first."""

    def __init__(self, record: dict[str, Any], problems: list[str]) -> None:
        self.record = record
        self.problems = problems

    def _present(self, key: str) -> bool:
        if key not in self.record:
            self.problems.append(f"{key} is missing")
            return False
        return True

    def _refuse(self, key: str, wanted: str) -> None:
        self.problems.append(f"{key} must be {wanted}, not {json.dumps(self.record[key])}")

    def text(self, key: str) -> str:
        if not self._present(key):
            return ""
        value = self.record[key]
        if not isinstance(value, str):
            self._refuse(key, "a string")
            return ""
        return value

    def whole(self, key: str) -> int:
        if not self._present(key):
            return 0
        value = self.record[key]
        # bool is an int in Python; `true` is not a number of months.
        if not isinstance(value, int) or isinstance(value, bool):
            self._refuse(key, "a whole number")
            return 0
        return value

    def flag(self, key: str) -> bool:
        if not self._present(key):
            return False
        value = self.record[key]
        if not isinstance(value, bool):
            self._refuse(key, "true or false")
            return False
        return value

    def decimal(self, key: str, *, nullable: bool = False) -> Decimal | None:
        if not self._present(key):
            return None
        value = self.record[key]
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            self._refuse(key, 'a decimal string such as "1.5"' + (" or null" if nullable else ""))
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            self._refuse(key, "a finite decimal number")
            return None
        return number

    def day(self, key: str) -> date | None:
        if not self._present(key):
            return None
        value = self.record[key]
        if isinstance(value, str) and _ISO_DATE.match(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self._refuse(key, "an ISO date (YYYY-MM-DD)")
        return None

    def kind(self, key: str) -> FundKind | None:
        if not self._present(key):
            return None
        value = self.record[key]
        if isinstance(value, str) and value in set(FundKind):
            return FundKind(value)
        self._refuse(key, f"one of {[k.value for k in FundKind]}")
        return None


_FIELDS = frozenset(FundTerms.__dataclass_fields__)


def _terms_from_record(record: Any) -> tuple[FundTerms | None, list[str]]:
    if not isinstance(record, dict):
        return None, ["must be an object"]
    problems = [f"unknown field {key!r}" for key in sorted(set(record) - _FIELDS)]
    read = _RecordReader(record, problems)
    values: dict[str, Any] = {
        "code": read.text("code"),
        "name": read.text("name"),
        "currency": read.text("currency"),
        "minimum": read.decimal("minimum"),
        "kind": read.kind("kind"),
        "monthly_rate_percent": read.decimal("monthly_rate_percent", nullable=True),
        "performance_share_percent": read.decimal("performance_share_percent", nullable=True),
        "payout_period_months": read.whole("payout_period_months"),
        "incubation_months": read.whole("incubation_months"),
        "commitment_months": read.whole("commitment_months"),
        "invitation_only": read.flag("invitation_only"),
        "terms_version": read.whole("terms_version"),
        "effective_date": read.day("effective_date"),
    }
    if problems or values["minimum"] is None or values["kind"] is None \
            or values["effective_date"] is None:
        return None, problems
    try:
        return FundTerms(**values), []
    except FundCatalogInvalid as invalid:
        return None, list(invalid.details["problems"])


def _label(index: int, record: Any) -> str:
    if isinstance(record, dict):
        return (f"terms[{index}] ({record.get('code', '?')} "
                f"version {record.get('terms_version', '?')})")
    return f"terms[{index}]"


def _catalog_problems(terms: list[FundTerms]) -> list[str]:
    problems: list[str] = []
    if not terms:
        problems.append("the catalog has no fund")
    last: dict[str, FundTerms] = {}
    for version in terms:
        previous = last.get(version.code)
        if previous is not None:
            label = f"{version.code} version {version.terms_version}"
            if version.terms_version <= previous.terms_version:
                problems.append(f"{label} does not follow version {previous.terms_version}: "
                                "versions must strictly increase")
            if version.effective_date <= previous.effective_date:
                problems.append(
                    f"{label} takes effect {version.effective_date.isoformat()}, not after "
                    f"version {previous.terms_version} ({previous.effective_date.isoformat()})")
            if version.currency != previous.currency:
                problems.append(f"{label} changes the fund's currency from {previous.currency} "
                                f"to {version.currency}")
        last[version.code] = version
    return problems


def _invalid(source: str, problems: list[str]) -> FundCatalogInvalid:
    return FundCatalogInvalid(
        f"the fund terms in {source} are invalid: " + "; ".join(problems),
        details={"source": source, "problems": problems},
    )


def _today() -> date:
    return datetime.now(UTC).date()


class FundCatalog:
    """Every version of every fund's terms, checked as a whole when built."""

    def __init__(self, terms: Iterable[FundTerms], *, source: str = "the fund catalog") -> None:
        ordered = list(terms)
        problems = _catalog_problems(ordered)
        if problems:
            raise _invalid(source, problems)
        self._versions: dict[str, tuple[FundTerms, ...]] = {}
        for version in ordered:
            self._versions[version.code] = (*self._versions.get(version.code, ()), version)

    @classmethod
    def load(cls, path: Path = CATALOG_PATH) -> FundCatalog:
        source = str(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise _invalid(source, [f"cannot be read as JSON: {error}"]) from error
        return cls.from_document(document, source=source)

    @classmethod
    def from_document(cls, document: Any, *, source: str = "the fund catalog") -> FundCatalog:
        """The catalog from the file's parsed JSON: `{"terms": [ {one version}, ... ]}`."""
        if not isinstance(document, dict) or not isinstance(document.get("terms"), list):
            raise _invalid(source, ['the document must be an object with a "terms" list'])
        problems = [f"unknown top-level field {key!r}"
                    for key in sorted(set(document) - {"terms", "description"})]
        parsed: list[FundTerms] = []
        for index, record in enumerate(document["terms"]):
            terms, record_problems = _terms_from_record(record)
            problems.extend(f"{_label(index, record)}: {p}" for p in record_problems)
            if terms is not None:
                parsed.append(terms)
        if problems:
            raise _invalid(source, problems)
        return cls(parsed, source=source)

    def codes(self) -> list[str]:
        """Every fund's code, in the order the catalog first lists them."""
        return list(self._versions)

    def all(self, *, on: date | None = None) -> list[FundTerms]:
        """The funds offered on `on` (default today), each as the version then in force."""
        day = on or _today()
        return [terms for code in self._versions
                if (terms := self._in_force(code, day)) is not None]

    def get(self, code: str, *, on: date | None = None) -> FundTerms:
        """The fund's terms in force on `on` (default today)."""
        return self.terms_on(code, on or _today())

    def versions(self, code: str) -> tuple[FundTerms, ...]:
        """Every version of the fund's terms, oldest first."""
        versions = self._versions.get(code)
        if versions is None:
            raise InvalidData(
                f"there is no fund {code!r}",
                code="UNKNOWN_FUND",
                details={"fund_code": code, "known": sorted(self._versions)},
            )
        return versions

    def terms_on(self, code: str, day: date) -> FundTerms:
        """The version in force on `day`: the latest whose effective date is on or before it."""
        versions = self.versions(code)
        terms = self._in_force(code, day)
        if terms is None:
            raise InvalidData(
                f"fund {code} has no terms in force on {day.isoformat()}; its first terms "
                f"take effect on {versions[0].effective_date.isoformat()}",
                code="FUND_TERMS_NOT_IN_FORCE",
                details={"fund_code": code, "day": day.isoformat(),
                         "first_effective_date": versions[0].effective_date.isoformat()},
            )
        return terms

    def _in_force(self, code: str, day: date) -> FundTerms | None:
        in_force = [terms for terms in self._versions[code] if terms.effective_date <= day]
        return in_force[-1] if in_force else None

    def check_subscription(
        self,
        code: str,
        amount: Decimal,
        currency: str,
        *,
        on: date | None = None,
        invitation_reason: str | None = None,
    ) -> FundTerms:
        """The terms a new investment of `amount` on `on` (its deposit date; default today)
        falls under, or the domain error that refuses it.

        An invitation-only fund needs a non-blank invitation reason; a reason given for an open
        fund is not an error (the caller may still record it).
        """
        fund = self.terms_on(code, on or _today())
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
        if fund.invitation_only and not (invitation_reason and invitation_reason.strip()):
            raise InvitationRequired(
                f"fund {fund.code} is by invitation only: give the invitation's reason",
                details={"fund_code": fund.code, "terms_version": fund.terms_version},
            )
        return fund


@lru_cache(maxsize=1)
def default_catalog() -> FundCatalog:
    return FundCatalog.load()
