"""Client statements and performance on the demo seed, synced with the simulated terminal:
every client's figures reconcile for every kind of period; client1's statement says the same
in JSON, CSV and PDF (read back through its text layer); who may see what."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pypdf import PdfReader

from backend.money.calendar import add_months
from backend.ops.seed import DEMO_PASSWORD
from backend.ops.statements import main as statements_main
from backend.reports.statements import money_text, statement_read
from backend.services import Services
from backend.services.statements import parse_period
from backend.settings import Settings
from tests.api_support import API, assert_error, bearer, login
from tests.demo_support import seeded_and_synced

MONEY_FIELDS = ("opening_contractual_balance", "subscriptions", "payouts", "interest_paid",
                "performance_share_paid", "principal_returned", "interest_accrued",
                "closing_contractual_balance", "interest_accrued_unpaid",
                "opening_actual_value", "closing_actual_value")


@pytest.fixture
async def demo(app: FastAPI, tmp_path: Path) -> Services:
    return await seeded_and_synced(app, tmp_path)


async def clients(services: Services) -> dict[str, Any]:
    return {user.email.split("@")[0]: user for user in await services.statements.clients()}


def periods(today: date) -> list[dict[str, Any]]:
    last_month = add_months(today.replace(day=1), -1)
    quarter = (today.month - 1) // 3 + 1
    return [{"period": f"{today:%Y-%m}"}, {"period": f"{last_month:%Y-%m}"},
            {"period": f"{today.year}-Q{quarter}"}, {"period": str(today.year)},
            {"period": str(today.year - 1)}, {"period": str(today.year - 2)},
            {"start": date(2024, 6, 1), "end": today},
            {"start": today - timedelta(days=45), "end": today - timedelta(days=10)}]


async def test_every_demo_clients_statement_reconciles_for_every_kind_of_period(
        demo: Services) -> None:
    today = demo.statements.today()
    seen = 0
    for name, client in sorted((await clients(demo)).items()):
        for asked in periods(today):
            statement = await demo.statements.statement(client.id, parse_period(
                today=today, **asked))
            read = statement_read(statement)
            assert read.reconciles, (name, asked)
            for line in (read.total, *read.investments):
                assert (line.opening_contractual_balance + line.subscriptions - line.payouts
                        - line.principal_returned + line.interest_accrued
                        == line.closing_contractual_balance), (name, asked, line)
                assert line.payouts == line.interest_paid + line.performance_share_paid
            for name_ in MONEY_FIELDS:
                assert getattr(read.total, name_) == sum(
                    (getattr(line, name_) for line in read.investments), Decimal("0.00"))
            seen += len(read.investments)
    assert seen > 0
    # The whole history, to date: nothing was owed before the first deposit.
    client1 = (await clients(demo))["client1"]
    whole = statement_read(await demo.statements.statement(client1.id, parse_period(
        start=date(2000, 1, 1), end=today, today=today)))
    assert whole.total.opening_contractual_balance == 0
    assert whole.total.subscriptions == sum(
        (i.principal_amount for i in await demo.repos.investments.of_client(client1.id)
         if i.status.value != "pending"), Decimal("0.00"))


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


async def test_client1_reads_the_same_figures_in_json_csv_and_pdf(
        demo: Services, client: httpx.AsyncClient, settings: Settings) -> None:
    today = demo.statements.today()
    headers = bearer(await login(client, "client1@fidus.example", DEMO_PASSWORD))
    period = f"{today.year}"
    answer = await client.get(f"{API}/client/statement", headers=headers,
                              params={"period": period})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["reconciles"] is True and body["fund_manager"] == "Fidus Capital"
    assert body["period"] == {"label": period, "start": f"{today.year}-01-01",
                              "end": today.isoformat()}
    assert len(body["investments"]) == 2 and body["overdue_payouts"]
    lines = [body["total"], *body["investments"]]

    as_csv = await client.get(f"{API}/client/statement", headers=headers,
                              params={"period": period, "format": "csv"})
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    header = rows.index(["line", *body["total"].keys()])
    csv_lines = [dict(zip(rows[header][1:], row[1:], strict=True))
                 for row in rows[header + 1:header + 1 + len(lines)]]
    for line, from_csv in zip(lines, csv_lines, strict=True):
        assert {k: from_csv[k] for k in MONEY_FIELDS} == {k: line[k] for k in MONEY_FIELDS}

    as_pdf = await client.get(f"{API}/client/statement", headers=headers,
                              params={"period": period, "format": "pdf"})
    assert as_pdf.status_code == 200 and as_pdf.headers["content-type"] == "application/pdf"
    assert as_pdf.content.startswith(b"%PDF-")
    text = pdf_text(as_pdf.content)
    assert "Fidus Capital" in text and body["client_name"] in text
    assert f"{today.year}-01-01 to {today.isoformat()}" in text
    for field in MONEY_FIELDS:
        assert money_text(Decimal(body["total"][field])) in text, field
    for line in body["investments"]:
        assert line["investment_id"] in text
        for field in ("opening_contractual_balance", "subscriptions", "payouts",
                      "principal_returned", "interest_accrued", "closing_contractual_balance"):
            assert money_text(Decimal(line[field])) in text, (line["investment_id"], field)
    for payout in body["next_payouts"] + body["overdue_payouts"]:
        assert payout["due_date"] in text and money_text(Decimal(payout["amount"])) in text
    if body["total"]["time_weighted_return_percent"] is not None:
        assert f"{body['total']['time_weighted_return_percent']} %" in text

    # The admin's route gives the same statement.
    admin = bearer(await login(client, "admin@fidus.example", DEMO_PASSWORD))
    same = await client.get(f"{API}/admin/clients/{body['client_id']}/statement",
                            headers=admin, params={"period": period})
    assert same.json() == body
    # Another client's statement is missing, whoever asks; a client never reaches the route.
    admin_id = (await demo.repos.users.by_login("admin@fidus.example")).id  # type: ignore[union-attr]
    for missing in (str(admin_id), "0" * 24):
        assert_error(await client.get(f"{API}/admin/clients/{missing}/statement",
                                      headers=admin, params={"period": period}), 404)
    assert_error(await client.get(f"{API}/admin/clients/{body['client_id']}/statement",
                                  headers=headers, params={"period": period}), 403)
    for bad in ({"period": "2026-13"}, {"period": "2026-Q5"}, {"from": "2026-10-01"},
                {"period": f"{today.year + 1}"},
                {"period": "2026", "from": "2026-01-01", "to": "2026-02-01"},
                {"from": "2026-10-02", "to": "2026-10-01"}):
        assert_error(await client.get(f"{API}/client/statement", headers=headers,
                                      params=bad), 422, "PERIOD_INVALID")


async def test_client1_performance_per_investment_and_in_total(
        demo: Services, client: httpx.AsyncClient) -> None:
    today = demo.statements.today()
    headers = bearer(await login(client, "client1@fidus.example", DEMO_PASSWORD))
    answer = await client.get(f"{API}/client/performance", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    lines, total = body["investments"], body["total"]
    assert len(lines) == 2
    for name in ("contractual_value", "actual_value", "gain", "subscribed", "received"):
        assert Decimal(total[name]) == sum(Decimal(line[name]) for line in lines), name
    for line in [*lines, total]:
        assert Decimal(line["gain"]) == (Decimal(line["actual_value"])
                                         + Decimal(line["received"])
                                         - Decimal(line["subscribed"]))
        assert line["monthly_values"][-1] == {"month": f"{today:%Y-%m}",
                                              "value": line["actual_value"]}
    closed = next(line for line in lines if line["status"] == "closed")
    assert (closed["actual_value"], closed["contractual_value"]) == ("0.00", "0.00")
    # The whole history to date says the same as the statement of it.
    whole = await client.get(f"{API}/client/statement", headers=headers,
                             params={"from": "2000-01-01", "to": today.isoformat()})
    assert whole.json()["total"]["closing_contractual_balance"] == total["contractual_value"]
    assert whole.json()["total"]["closing_actual_value"] == total["actual_value"]
    stored = {i.investment_id: i for i in await demo.repos.investments.of_client(
        (await clients(demo))["client1"].id)}
    for line in lines:
        if stored[line["investment_id"]].status.value == "matured":
            assert line["actual_value"] == format(stored[line["investment_id"]].current_value,
                                                  "f"), "the sync wrote the same value"


def run_statements(settings: Settings, *args: str) -> tuple[int, dict[str, Any]]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = statements_main(["--json", *args], settings=settings)
    return code, json.loads(buffer.getvalue())


async def test_make_statements_writes_every_clients_pdf_and_json_once(
        demo: Services, settings: Settings, tmp_path: Path) -> None:
    today = demo.statements.today()
    period = f"{add_months(today.replace(day=1), -1):%Y-%m}"
    code, first = await asyncio.to_thread(run_statements, settings, "--period", period,
                                          "--dir", str(tmp_path))
    assert code == 0, first
    every = await clients(demo)
    assert (first["clients"], first["written"], first["unchanged"]) == (
        len(every), 2 * len(every), 0)
    folder = tmp_path / period
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{c.id}.{ext}" for c in every.values() for ext in ("json", "pdf"))
    client1 = every["client1"]
    stored = json.loads((folder / f"{client1.id}.json").read_text(encoding="utf-8"))
    expected = statement_read(await demo.statements.statement(
        client1.id, parse_period(period=period, today=today)))
    assert stored == expected.model_dump(mode="json")
    assert expected.client_name in pdf_text((folder / f"{client1.id}.pdf").read_bytes())

    code, again = await asyncio.to_thread(run_statements, settings, "--period", period,
                                          "--dir", str(tmp_path))
    assert code == 0 and (again["written"], again["unchanged"]) == (0, 2 * len(every))
    code, refused = await asyncio.to_thread(run_statements, settings, "--period", "2026-13",
                                            "--dir", str(tmp_path))
    assert code == 2 and refused["ok"] is False
