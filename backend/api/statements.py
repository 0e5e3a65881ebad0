"""What the client's and the admin's statement routes share: the period and format asked for,
and the answer in that format (JSON, CSV or PDF, each with its content type)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Query, Response

from backend.api.deps import ServicesDep
from backend.reports.statements import StatementRead, statement_csv, statement_pdf
from backend.services.statements import Period, parse_period


class StatementFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    PDF = "pdf"


def _period(
    services: ServicesDep,
    period: Annotated[str | None, Query(
        max_length=20, description="a month (2026-10), a quarter (2026-Q3) or a year (2026)",
        examples=["2026-10"])] = None,
    start: Annotated[date | None, Query(alias="from", description="first day, with `to`")] = None,
    end: Annotated[date | None, Query(alias="to", description="last day, with `from`")] = None,
) -> Period:
    return parse_period(period=period, start=start, end=end,
                        today=services.statements.today())


PeriodDep = Annotated[Period, Depends(_period)]
FormatQuery = Annotated[StatementFormat, Query(description="json (default), csv or pdf")]

#: The OpenAPI description of the CSV and PDF forms of a statement (JSON is its model).
STATEMENT_CONTENT: dict[int | str, dict[str, Any]] = {200: {
    "description": "The statement as `format` asks: JSON, CSV or PDF",
    "content": {"text/csv": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}}},
}}


def statement_response(read: StatementRead, form: StatementFormat) -> Response:
    name = f"statement-{read.period.label}-{read.client_id}"
    if form is StatementFormat.CSV:
        return Response(statement_csv(read), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if form is StatementFormat.PDF:
        return Response(statement_pdf(read), media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{name}.pdf"'})
    return Response(read.model_dump_json(), media_type="application/json")
