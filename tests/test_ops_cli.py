"""The --json contract every data script shares: one JSON object on stdout, errors included."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from backend.ops import backup, dedupe, migrations, seed, validate, verify
from backend.settings import Settings
from scripts import create_indexes
from tests.support import make_settings

Main = Callable[..., int]


@pytest.mark.parametrize(("main", "argv"), [
    (dedupe.main, ["--json", "--keep", "middle"]),
    (migrations.main, ["--json", "--lock-wait", "soon"]),
    (seed.main, ["--state", "nope", "--json"]),
    (validate.main, ["--json", "--bogus"]),
    (verify.main, ["--json", "extra"]),
    (backup.restore_main, ["--json"]),  # the file argument is missing
    (create_indexes.main, ["--json", "--bogus"]),
])
def test_usage_errors_under_json_answer_json_on_stdout(
        main: Main, argv: Sequence[str], settings: Settings,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv, settings=settings) == 2
    out = capsys.readouterr().out
    payload = json.loads(out)
    assert payload["ok"] is False and payload["exit_code"] == 2
    assert payload["error"]["code"] == "USAGE"
    message: Any = payload["error"]["message"]
    assert isinstance(message, str) and message and "\n" not in message


def test_usage_errors_without_json_stay_argparse(settings: Settings,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        dedupe.main(["--bogus"], settings=settings)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "usage:" in captured.err


def test_create_indexes_json_error_has_the_shared_shape(
        capsys: pytest.CaptureFixture[str]) -> None:
    unreachable = make_settings(
        "mongodb://127.0.0.1:9/?directConnection=true", "fidus_unreachable",
        mongodb_server_selection_timeout_ms=200, mongodb_connect_timeout_ms=200,
        mongodb_connect_attempts=1)
    assert create_indexes.main(["--json"], settings=unreachable) == 2
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) == {"ok", "exit_code", "error"}
    assert payload["ok"] is False and payload["exit_code"] == 2
    assert set(payload["error"]) == {"code", "message"}
    assert payload["error"]["code"] and "\n" not in payload["error"]["message"]
