"""No GET operation's round trips grow with the data.

Every GET operation of the OpenAPI document is called once with 10 rows of every kind it lists
or aggregates, and again with 100 (`tests/round_trip_support.py` fills them and says how each
operation is called). For each, the commands the driver sent for that one request must be the
same at both sizes, and within the route's budget (`Call.most`): a list endpoint reads its
page in at most `LIST_BUDGET` commands. A signed-in request first resolves its token in
`AUTH_COMMANDS` (two `find`s: the session, the user); they are checked to be the first two and
counted apart from the route's budget, so a list endpoint costs at most 2 + 2 commands.

Counted: every command the driver sends while the request runs, from the request's own tasks;
not counted: the driver's handshake and monitoring, the audit relay's timer running beside
the request, and a cursor's next batch (`getMore`, which continues a read already counted; a
real MongoDB sends one after 101 documents, the embedded server none).

The data is filled and every operation measured once per module (a module-scoped fixture);
each operation is then its own test.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
import pytest_asyncio

from backend.api.app import create_app
from tests.api_support import API, api_settings, assert_error
from tests.factories import ADMIN, mt5_create
from tests.round_trip_support import (
    AUTH_COMMANDS,
    CALLS,
    LIST_BUDGET,
    SIZES,
    Caller,
    Measure,
    RequestCommands,
    measure_sizes,
    measured_app,
    start,
)

SMALL, LARGE = SIZES


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def measured(mongo_uri: str) -> dict[int, dict[str, Measure]]:
    return await measure_sizes(mongo_uri)


def test_every_get_operation_of_the_document_has_a_call() -> None:
    """A new GET operation fails here until `CALLS` says how to call it. The documentation's
    own pages (/docs, /redoc, /openapi.json and their assets) are not operations of the
    document (`include_in_schema=False`), so nothing is left out."""
    app = create_app(api_settings("mongodb://127.0.0.1:1", "unused"), configure_logs=False)
    document = app.openapi()
    gets = {path for path, operations in document["paths"].items() if "get" in operations}
    assert gets == set(CALLS), {"without a call": sorted(gets - set(CALLS)),
                                "no longer in the document": sorted(set(CALLS) - gets)}
    for path in gets:
        names = {p["name"] for p in document["paths"][path]["get"].get("parameters", [])
                 if p["in"] == "path"}
        assert names <= {"user_id", "client_id", "investment_id", "account_id", "prospect_id",
                         "document_id"}, (path, names)


@pytest.mark.parametrize("path", sorted(CALLS))
def test_round_trips_do_not_grow_with_the_rows(
        path: str, measured: dict[int, dict[str, Measure]]) -> None:
    call = CALLS[path]
    small, large = measured[SMALL][path], measured[LARGE][path]
    for size, found in ((SMALL, small), (LARGE, large)):
        assert found.ok, (size, found.status, found.answer)
        if call.caller is not Caller.PUBLIC:
            assert found.commands[:len(AUTH_COMMANDS)] == AUTH_COMMANDS, found.commands
    if call.seen is not None:
        # The answer shows the route read the rows added between the sizes.
        assert small.seen is not None and large.seen is not None
        assert large.seen > small.seen, (small.seen, large.seen)

    assert Counter(small.commands) == Counter(large.commands), (
        f"{len(small.commands)} commands at {SMALL} rows, {len(large.commands)} at {LARGE}; "
        f"added at {LARGE}: {dict(Counter(large.commands) - Counter(small.commands))}, "
        f"gone: {dict(Counter(small.commands) - Counter(large.commands))}", large.commands)
    route = large.route_commands(call.caller)
    assert len(route) <= call.most, (f"{len(route)} commands, budget {call.most} "
                                     f"({call.reads})", route)
    if call.lists:
        assert call.most <= LIST_BUDGET


async def test_an_empty_page_costs_the_count_alone(mongo_uri: str) -> None:
    """An MT5 account never synced answers an empty history page (200), one that does not
    exist 404; a page past the last item answers the total and no items. None of them reads
    a page the count says is empty."""
    recorder = RequestCommands()
    async with measured_app(mongo_uri, f"fidus_test_{uuid.uuid4().hex[:12]}",
                            recorder) as (app, http):
        world = await start(app, http)
        account = await world.services.mt5.create_mapping(mt5_create(world.client),
                                                          actor=ADMIN)
        for history, collection in (("deals", "mt5_deals"), ("equity", "mt5_equity_history")):
            with recorder.recording() as sent:
                answer = await http.get(f"{API}/admin/mt5/accounts/{account.id}/{history}",
                                        headers=world.admin_headers)
            assert answer.status_code == 200, answer.text
            assert (answer.json()["total"], answer.json()["items"]) == (0, [])
            assert sent[len(AUTH_COMMANDS):] == [("aggregate", collection),
                                                 ("find", "mt5_accounts")]
            assert_error(await http.get(f"{API}/admin/mt5/accounts/{'0' * 24}/{history}",
                                        headers=world.admin_headers), 404)

        with recorder.recording() as sent:
            past = await http.get(f"{API}/admin/users", params={"page": 3, "page_size": 1},
                                  headers=world.admin_headers)
        assert past.status_code == 200, past.text
        assert (past.json()["total"], past.json()["items"]) == (2, [])
        assert sent[len(AUTH_COMMANDS):] == [("aggregate", "users")]
