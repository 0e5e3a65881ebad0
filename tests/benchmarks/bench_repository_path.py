"""Client-side cost per document of the repository path, against raw PyMongo dicts and Beanie.

The same 10,000 investments go through each path in process, without a server round trip:
- raw PyMongo: dict -> BSON -> dict;
- Fidus: what `InvestmentRepository` runs around the driver: `prepare()` (the model's stored
  form: Decimal128 money, timestamps, version) -> BSON -> dict -> `_load()` (`from_stored`: the
  model built from a document the server's validator accepted, Decimal128 back to Decimal,
  enums, aware UTC dates; no second validation);
- Beanie 2: its encoder -> BSON -> dict -> `model_validate` of a `Document` with the same fields.

The money conversions alone (every amount Decimal -> Decimal128 on the way in and back on the
way out, with the product's converters, and with bson's own for comparison) are timed in the
same rounds: they are the floor of the repository path while money is `Decimal` in
Python and `Decimal128` in MongoDB and the conversion runs in Python. For the frames behind the
figures: `.venv/bin/python -m tests.benchmarks.profile_repository_path`.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import bson
from bson import Decimal128, ObjectId

from backend.db.connection import CODEC_OPTIONS
from backend.models._types import bson_to_decimal, decimal_to_bson
from backend.models.investments import Investment, InvestmentStatus
from backend.repositories.investments import InvestmentRepository
from tests.benchmarks._table import Row

N = 10_000
REPEATS = 5
ROUNDS = 5
CODEC = CODEC_OPTIONS  # the product's: aware UTC dates


def _investments() -> list[Investment]:
    rng = random.Random(7)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    items = []
    for i in range(N):
        principal = Decimal(rng.randint(10_000, 500_000)) + Decimal(rng.randint(0, 99)) / 100
        created = base + timedelta(minutes=i)
        items.append(Investment(
            id=ObjectId(), investment_id=f"INV-20260101-{i:08X}", client_id=ObjectId(),
            fund_code=rng.choice(["CORE", "BALANCE", "DYNAMIC"]), principal_amount=principal,
            currency="USD", deposit_date=base + timedelta(days=rng.randint(0, 300)),
            status=InvestmentStatus.ACTIVE, current_value=principal * Decimal("1.0312"),
            gain_amount=principal * Decimal("0.0312"), return_pct=Decimal("3.12"),
            performance_updated_at=created, mt5_account_id=ObjectId(),
            idempotency_key=f"key-{i:010d}", created_by=ObjectId(), created_at=created,
            updated_at=created, version=1,
        ))
    return items


def _best_of(fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


async def _beanie_model() -> tuple[type[Any], Any, Callable[[], None]]:
    from beanie import DecimalAnnotation, Document, PydanticObjectId, init_beanie
    from pymongo import AsyncMongoClient

    from backend.db.embedded import EmbeddedMongoServer

    class BeanieInvestment(Document):
        investment_id: str
        client_id: PydanticObjectId
        fund_code: str
        principal_amount: DecimalAnnotation
        currency: str
        deposit_date: datetime
        status: InvestmentStatus
        status_reason: str | None = None
        current_value: DecimalAnnotation
        gain_amount: DecimalAnnotation | None = None
        return_pct: DecimalAnnotation | None = None
        performance_updated_at: datetime | None = None
        mt5_account_id: PydanticObjectId | None = None
        idempotency_key: str | None = None
        redeemed_at: datetime | None = None
        cancelled_at: datetime | None = None
        created_by: PydanticObjectId
        created_at: datetime
        updated_at: datetime
        version: int

        class Settings:
            name = "investments"

    # init_beanie needs a database to bind the model to; nothing is timed against it.
    server = EmbeddedMongoServer()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server.start())
    await init_beanie(database=client["bench_beanie"], document_models=[BeanieInvestment],
                      skip_indexes=True)

    def close() -> None:
        server.close()

    return BeanieInvestment, client, close


async def run() -> list[Row]:
    from beanie.odm.utils.encoder import Encoder

    models = _investments()
    raw_dicts = [m.to_document() for m in models]
    raw_bson = [bson.encode(d) for d in raw_dicts]

    def raw_path() -> None:
        for d in raw_dicts:
            bson.decode(bson.encode(d), codec_options=CODEC)

    beanie_cls, client, close = await _beanie_model()
    # Never sent to the server: only the conversions around the driver are timed.
    repository = InvestmentRepository(client.get_database("bench_repository",
                                                          codec_options=CODEC_OPTIONS))

    def fidus_path() -> None:
        for m in models:
            repository._load(bson.decode(bson.encode(repository.prepare(m)),
                                         codec_options=CODEC))

    amounts = [value for d in raw_dicts for value in d.values() if isinstance(value, Decimal128)]
    decimals = [bson_to_decimal(value) for value in amounts]

    def conversions() -> None:
        for amount in decimals:
            decimal_to_bson(amount)
        for value in amounts:
            bson_to_decimal(value)

    def bson_conversions() -> None:
        for amount in decimals:
            Decimal128(amount)
        for value in amounts:
            value.to_decimal()

    try:
        beanie_docs = [beanie_cls.model_validate(bson.decode(b, codec_options=CODEC))
                       for b in raw_bson]
        encoder = Encoder()

        def beanie_path() -> None:
            for doc in beanie_docs:
                beanie_cls.model_validate(
                    bson.decode(bson.encode(encoder.encode(doc)), codec_options=CODEC))

        # Interleave the paths so machine noise hits them alike, and take each round's ratios
        # (measured back to back) rather than a ratio of times taken minutes apart.
        raw_t, fidus_t, beanie_t, money_t, bson_money_t = [], [], [], [], []
        for _ in range(ROUNDS):
            raw_t.append(_best_of(raw_path))
            fidus_t.append(_best_of(fidus_path))
            beanie_t.append(_best_of(beanie_path))
            money_t.append(_best_of(conversions))
            bson_money_t.append(_best_of(bson_conversions))
    finally:
        await client.close()
        close()
    raw_s, fidus_s, beanie_s = (statistics.median(t) for t in (raw_t, fidus_t, beanie_t))
    fidus_ratio = statistics.median(f / r for f, r in zip(fidus_t, raw_t, strict=True))
    beanie_ratio = statistics.median(b / r for b, r in zip(beanie_t, raw_t, strict=True))
    ratios = sorted(f / r for f, r in zip(fidus_t, raw_t, strict=True))
    money_s = statistics.median(money_t)
    bson_factor = statistics.median(b / m for b, m in zip(bson_money_t, money_t, strict=True))
    money_ratio = statistics.median(m / r for m, r in zip(money_t, raw_t, strict=True))
    rest_ratio = statistics.median((f - m) / r
                                   for f, m, r in zip(fidus_t, money_t, raw_t, strict=True))

    def per_doc(seconds: float) -> str:
        return f"{seconds / N * 1e6:.1f} µs/doc"

    bench = "repository path (10,000 investments, in process)"
    return [
        Row(bench, "raw PyMongo dicts (BSON encode+decode)", "client-side cost", per_doc(raw_s),
            "1.00x"),
        Row(bench, "Fidus repository (prepare, BSON, from_stored)", "client-side cost",
            per_doc(fidus_s), f"{fidus_ratio:.2f}x of raw",
            f"goal <= 1.3x of raw; {beanie_ratio / fidus_ratio:.2f}x faster than Beanie; "
            f"median of {ROUNDS} rounds (from {ratios[0]:.2f}x to {ratios[-1]:.2f}x)"),
        Row(bench, "  of which money conversions", "client-side cost", per_doc(money_s),
            f"+{money_ratio:.2f}x of raw",
            f"{len(amounts) / N:g} amounts per document, Decimal -> Decimal128 and back, with "
            f"the product's converters in pure Python (bson's own take {bson_factor:.1f}x as "
            "long): the floor while money is Decimal in Python and Decimal128 in MongoDB"),
        Row(bench, "  Fidus less the money conversions", "client-side cost",
            per_doc(fidus_s - money_s), f"{rest_ratio:.2f}x of raw"),
        Row(bench, "Beanie 2 document path", "client-side cost", per_doc(beanie_s),
            f"{beanie_ratio:.2f}x of raw"),
        Row(bench, "end to end with the server", "not timed", "-", "",
            "the embedded server's insert cost grows with collection size; timing it would "
            "measure it, not the product"),
    ]
