import io
import json
import logging

import httpx

from backend.log import configure_logging, request_id_var


def test_json_logs_carry_the_request_id() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", json=True)
    root = logging.getLogger()
    handler = next(h for h in root.handlers if getattr(h, "_fidus", False))
    handler.setStream(stream)  # type: ignore[attr-defined]
    token = request_id_var.set("req-42")
    try:
        logging.getLogger("fidus.test").info("investment recorded")
    finally:
        request_id_var.reset(token)
        root.removeHandler(handler)
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["message"] == "investment recorded"
    assert line["request_id"] == "req-42"
    assert line["level"] == "INFO" and line["logger"] == "fidus.test"


async def test_every_response_names_its_request_id(client: httpx.AsyncClient) -> None:
    given = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    fresh = await client.get("/health/live")
    assert len(fresh.headers["X-Request-ID"]) == 32
