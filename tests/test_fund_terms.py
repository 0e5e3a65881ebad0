"""The versioned fund terms: the shipped catalog, the version in force on a day, the
subscription rules (invitation-only included) and the checks on the terms file."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backend.errors import FundCatalogInvalid, FundMinimumNotMet, InvalidData, InvitationRequired
from backend.funds import CATALOG_PATH, FundCatalog, FundKind, FundTerms, default_catalog
from backend.money.schedule import build_schedule


def core_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "code": "CORE", "name": "Fidus Core Fund", "currency": "USD", "minimum": "10000.00",
        "kind": "fixed_interest", "monthly_rate_percent": "1.5",
        "performance_share_percent": None, "payout_period_months": 1, "incubation_months": 2,
        "commitment_months": 12, "invitation_only": False, "terms_version": 1,
        "effective_date": "2020-01-01",
    }
    row.update(overrides)
    return row


def two_core_versions() -> FundCatalog:
    """CORE at 1.5 % from 2020, then at 1.25 % with a 20,000.00 minimum from 2026-01-01."""
    return FundCatalog.from_document({"terms": [
        core_row(),
        core_row(terms_version=2, effective_date="2026-01-01", monthly_rate_percent="1.25",
                 minimum="20000.00"),
    ]})


def invalid_problems(document: Any) -> list[str]:
    with pytest.raises(FundCatalogInvalid) as caught:
        FundCatalog.from_document(document)
    assert caught.value.code == "FUND_CATALOG_INVALID"
    problems: list[str] = caught.value.details["problems"]
    return problems


# --- the shipped catalog --------------------------------------------------------------------


def test_the_shipped_catalog_holds_the_four_funds_of_the_terms_table() -> None:
    catalog = FundCatalog.load(CATALOG_PATH)
    rows = {
        (t.code, t.minimum, t.kind, t.monthly_rate_percent, t.performance_share_percent,
         t.payout_period_months, t.incubation_months, t.commitment_months, t.invitation_only,
         t.currency, t.terms_version, t.effective_date)
        for t in catalog.all(on=date(2025, 6, 1))
    }
    first = date(2020, 1, 1)
    assert rows == {
        ("CORE", Decimal("10000.00"), FundKind.FIXED_INTEREST, Decimal("1.5"), None,
         1, 2, 12, False, "USD", 1, first),
        ("BALANCE", Decimal("50000.00"), FundKind.FIXED_INTEREST, Decimal("2.5"), None,
         3, 2, 12, False, "USD", 1, first),
        ("DYNAMIC", Decimal("250000.00"), FundKind.FIXED_INTEREST, Decimal("3.5"), None,
         6, 2, 12, True, "USD", 1, first),
        ("UNLIMITED", Decimal("250000.00"), FundKind.PERFORMANCE_SHARE, None, Decimal("50"),
         3, 2, 12, False, "USD", 1, first),
    }
    assert catalog.codes() == ["CORE", "BALANCE", "DYNAMIC", "UNLIMITED"]


def test_get_and_all_keep_the_fund_fields_the_services_read() -> None:
    core = default_catalog().get("CORE")
    assert (core.code, core.name, core.minimum, core.currency) == (
        "CORE", "Fidus Core Fund", Decimal("10000.00"), "USD")
    assert [fund.code for fund in default_catalog().all()] == [
        "CORE", "BALANCE", "DYNAMIC", "UNLIMITED"]


def test_an_unknown_fund_is_refused_with_the_known_codes() -> None:
    with pytest.raises(InvalidData) as caught:
        default_catalog().versions("GROWTH")
    assert caught.value.code == "UNKNOWN_FUND"
    assert caught.value.details["known"] == ["BALANCE", "CORE", "DYNAMIC", "UNLIMITED"]
    with pytest.raises(InvalidData, match="no fund 'GROWTH'"):
        default_catalog().check_subscription("GROWTH", Decimal("10000.00"), "USD")


# --- versions -------------------------------------------------------------------------------


def test_the_version_in_force_is_the_latest_effective_on_or_before_the_day() -> None:
    catalog = two_core_versions()
    assert [t.terms_version for t in catalog.versions("CORE")] == [1, 2]
    assert catalog.terms_on("CORE", date(2020, 1, 1)).terms_version == 1
    assert catalog.terms_on("CORE", date(2025, 12, 31)).terms_version == 1
    assert catalog.terms_on("CORE", date(2026, 1, 1)).terms_version == 2
    assert catalog.terms_on("CORE", date(2031, 7, 9)).monthly_rate_percent == Decimal("1.25")
    assert catalog.get("CORE", on=date(2025, 12, 31)).minimum == Decimal("10000.00")
    assert catalog.all(on=date(2026, 1, 1))[0].minimum == Decimal("20000.00")


def test_a_day_before_the_first_version_has_no_terms_in_force() -> None:
    with pytest.raises(InvalidData) as caught:
        two_core_versions().terms_on("CORE", date(2019, 12, 31))
    assert caught.value.code == "FUND_TERMS_NOT_IN_FORCE"
    assert caught.value.http_status == 422
    assert caught.value.details == {"fund_code": "CORE", "day": "2019-12-31",
                                    "first_effective_date": "2020-01-01"}


def test_a_fund_not_yet_in_force_is_not_offered() -> None:
    catalog = FundCatalog.from_document({"terms": [
        core_row(), core_row(code="GROWTH", effective_date="2027-01-01")]})
    assert [f.code for f in catalog.all(on=date(2026, 12, 31))] == ["CORE"]
    assert [f.code for f in catalog.all(on=date(2027, 1, 1))] == ["CORE", "GROWTH"]


def test_an_investment_keeps_the_terms_of_its_deposit_date_and_a_new_version_binds_new_ones(
) -> None:
    before = FundCatalog.from_document({"terms": [core_row()]})
    after = two_core_versions()
    deposit = date(2025, 12, 31)
    kept = build_schedule(after.terms_on("CORE", deposit), principal=Decimal("100000.00"),
                          deposit_date=deposit)
    assert kept == build_schedule(before.terms_on("CORE", deposit),
                                  principal=Decimal("100000.00"), deposit_date=deposit)
    assert kept.terms_version == 1
    assert {item.amount for item in kept.payouts} == {Decimal("1500.00")}

    new = build_schedule(after.terms_on("CORE", date(2026, 1, 1)),
                         principal=Decimal("100000.00"), deposit_date=date(2026, 1, 1))
    assert new.terms_version == 2
    assert {item.amount for item in new.payouts} == {Decimal("1250.00")}


def test_a_subscription_is_checked_against_the_version_in_force_on_its_deposit_date() -> None:
    catalog = two_core_versions()
    accepted = catalog.check_subscription("CORE", Decimal("15000.00"), "USD",
                                          on=date(2025, 12, 31))
    assert accepted.terms_version == 1
    with pytest.raises(FundMinimumNotMet) as caught:
        catalog.check_subscription("CORE", Decimal("15000.00"), "USD", on=date(2026, 1, 1))
    assert caught.value.details["minimum"] == "20000.00"
    with pytest.raises(InvalidData) as early:
        catalog.check_subscription("CORE", Decimal("15000.00"), "USD", on=date(2019, 1, 1))
    assert early.value.code == "FUND_TERMS_NOT_IN_FORCE"


# --- subscriptions --------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   \t"])
def test_an_invitation_only_fund_refuses_a_subscription_without_a_reason(
    reason: str | None,
) -> None:
    with pytest.raises(InvitationRequired) as caught:
        default_catalog().check_subscription("DYNAMIC", Decimal("250000.00"), "USD",
                                             on=date(2025, 6, 1), invitation_reason=reason)
    assert caught.value.code == "INVITATION_REQUIRED"
    assert caught.value.http_status == 422
    assert caught.value.details == {"fund_code": "DYNAMIC", "terms_version": 1}


def test_an_invitation_reason_opens_the_invitation_only_fund() -> None:
    terms = default_catalog().check_subscription(
        "DYNAMIC", Decimal("250000.00"), "USD", on=date(2025, 6, 1),
        invitation_reason="introduced by the board, minutes of 2025-05-28")
    assert (terms.code, terms.invitation_only, terms.terms_version) == ("DYNAMIC", True, 1)


def test_open_funds_need_no_invitation_reason() -> None:
    catalog = default_catalog()
    for code, amount in (("CORE", "10000.00"), ("BALANCE", "50000.00"),
                         ("UNLIMITED", "250000.00")):
        assert catalog.check_subscription(code, Decimal(amount), "USD").code == code


def test_the_amount_rules_still_apply_before_the_invitation() -> None:
    catalog = default_catalog()
    with pytest.raises(FundMinimumNotMet):
        catalog.check_subscription("DYNAMIC", Decimal("249999.99"), "USD",
                                   invitation_reason="invited")
    with pytest.raises(InvalidData) as precision:
        catalog.check_subscription("CORE", Decimal("10000.001"), "USD")
    assert precision.value.code == "AMOUNT_PRECISION"
    with pytest.raises(InvalidData) as currency:
        catalog.check_subscription("CORE", Decimal("10000.00"), "EUR")
    assert currency.value.code == "CURRENCY_MISMATCH"


# --- checking the terms file ----------------------------------------------------------------


def test_a_malformed_file_is_refused_with_every_problem_in_one_error() -> None:
    problems = invalid_problems({"terms": [
        core_row(monthly_rate_percent=1.5, colour="blue"),
        {k: v for k, v in core_row(code="BALANCE").items() if k != "minimum"},
        core_row(code="DYNAMIC", performance_share_percent="50", invitation_only="yes"),
        core_row(code="UNLIMITED", kind="performance_share", effective_date="2020-02-30"),
        core_row(code="WIDE", payout_period_months=5, incubation_months=True),
    ]})
    assert problems == [
        "terms[0] (CORE version 1): unknown field 'colour'",
        'terms[0] (CORE version 1): monthly_rate_percent must be a decimal string such as '
        '"1.5" or null, not 1.5',
        "terms[1] (BALANCE version 1): minimum is missing",
        "terms[2] (DYNAMIC version 1): invitation_only must be true or false, not \"yes\"",
        'terms[3] (UNLIMITED version 1): effective_date must be an ISO date (YYYY-MM-DD), '
        'not "2020-02-30"',
        "terms[4] (WIDE version 1): incubation_months must be a whole number, not true",
    ]


def test_the_terms_must_agree_with_their_kind_and_their_periods() -> None:
    problems = invalid_problems({"terms": [
        core_row(performance_share_percent="50"),
        core_row(code="BALANCE", monthly_rate_percent=None),
        core_row(code="UNLIMITED", kind="performance_share", performance_share_percent="150"),
        core_row(code="WIDE", payout_period_months=5, minimum="100.005",
                 incubation_months=-1),
    ]})
    assert problems == [
        "terms[0] (CORE version 1): a fixed_interest fund has no performance_share_percent",
        "terms[1] (BALANCE version 1): a fixed_interest fund needs a positive "
        "monthly_rate_percent",
        "terms[2] (UNLIMITED version 1): a performance_share fund needs a "
        "performance_share_percent above 0 and at most 100",
        "terms[2] (UNLIMITED version 1): a performance_share fund has no monthly_rate_percent",
        "terms[3] (WIDE version 1): minimum 100.005 has more than two decimal places",
        "terms[3] (WIDE version 1): incubation_months is negative",
        "terms[3] (WIDE version 1): commitment of 12 months is not a whole number of 5-month "
        "payout periods",
    ]


def test_versions_of_a_fund_must_strictly_increase_in_number_and_effective_date() -> None:
    problems = invalid_problems({"terms": [
        core_row(terms_version=2, effective_date="2024-01-01"),
        core_row(terms_version=2, effective_date="2025-01-01"),
        core_row(terms_version=3, effective_date="2025-01-01", currency="EUR"),
        core_row(code="BALANCE", terms_version=1, effective_date="2019-01-01"),
    ]})
    assert problems == [
        "CORE version 2 does not follow version 2: versions must strictly increase",
        "CORE version 3 takes effect 2025-01-01, not after version 2 (2025-01-01)",
        "CORE version 3 changes the fund's currency from USD to EUR",
    ]


def test_a_file_that_is_not_the_catalog_is_refused_readably(tmp_path: Path) -> None:
    broken = tmp_path / "funds.json"
    broken.write_text('{"terms": [', encoding="utf-8")
    with pytest.raises(FundCatalogInvalid, match="cannot be read as JSON"):
        FundCatalog.load(broken)
    with pytest.raises(FundCatalogInvalid, match="cannot be read as JSON"):
        FundCatalog.load(tmp_path / "missing.json")
    assert invalid_problems({"funds": []}) == [
        'the document must be an object with a "terms" list']
    assert invalid_problems({"terms": []}) == ["the catalog has no fund"]
    assert invalid_problems({"terms": [core_row()], "extra": 1}) == [
        "unknown top-level field 'extra'"]


def test_the_shipped_file_round_trips_through_a_copy(tmp_path: Path) -> None:
    document = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    amended = copy.deepcopy(document)
    amended["terms"].append(
        dict(document["terms"][0], terms_version=2, effective_date="2027-01-01",
             monthly_rate_percent="1.4"))
    path = tmp_path / "funds.json"
    path.write_text(json.dumps(amended), encoding="utf-8")
    catalog = FundCatalog.load(path)
    assert catalog.terms_on("CORE", date(2027, 1, 1)).monthly_rate_percent == Decimal("1.4")
    assert catalog.terms_on("BALANCE", date(2027, 1, 1)) == default_catalog().get("BALANCE")


def test_inconsistent_terms_cannot_be_built_in_code_either() -> None:
    with pytest.raises(FundCatalogInvalid) as caught:
        FundTerms(code="CORE", name="Fidus Core Fund", currency="USD",
                  minimum=Decimal("10000.00"), kind=FundKind.PERFORMANCE_SHARE,
                  monthly_rate_percent=Decimal("1.5"), performance_share_percent=None,
                  payout_period_months=1, incubation_months=2, commitment_months=12,
                  invitation_only=False, terms_version=1, effective_date=date(2020, 1, 1))
    assert caught.value.details["problems"] == [
        "a performance_share fund needs a performance_share_percent above 0 and at most 100",
        "a performance_share fund has no monthly_rate_percent",
    ]
