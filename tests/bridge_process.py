"""The simulated MT5 bridge in a process of its own, as it is deployed (beside the terminal on
the VPS, not inside the sync's process): the sync benchmark and the bridge client's network
tests talk to it over a real socket.

In process (`httpx.ASGITransport`) the bridge's own work (FastAPI, the simulated terminal,
serializing thousands of deals) runs on the sync's event loop, so the sync pays for both sides
and the benchmark measures the two programs sharing one core. Here the parent starts
`python -m tests.bridge_process PORT FIRST_LOGIN COUNT LATENCY` and waits for
`/health/live`; the child generates the accounts' histories before it listens, then sleeps
`LATENCY` seconds in every terminal call.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from pydantic import SecretStr

from backend.settings import DEV_BRIDGE_API_KEY
from mt5_bridge_service import BridgeSettings, create_app
from tests.support import free_port
from tests.sync_factories import simulator

STARTUP_SECONDS = 120.0
ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def bridge_process(first_login: int, count: int, latency_seconds: float) -> Iterator[str]:
    """The base URL of a bridge process serving `count` simulated accounts."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.bridge_process", str(port), str(first_login),
             str(count), str(latency_seconds)], cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=errors)
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            with httpx.Client() as probe:
                while True:
                    if child.poll() is not None:
                        errors.seek(0)
                        raise RuntimeError(
                            f"the bridge process exited with {child.returncode}: "
                            f"{errors.read().decode(errors='replace')[-2000:]}")
                    try:
                        if probe.get(f"{url}/health/live").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError("the bridge process did not start in time")
                    time.sleep(0.2)
            yield url
        finally:
            child.terminate()
            child.wait(timeout=30)


def main() -> int:
    port, first_login, count = (int(arg) for arg in sys.argv[1:4])
    sim = simulator(latency_seconds=0.0)
    for login in range(first_login, first_login + count):
        sim.raw_deals(login)  # the histories exist before anything is timed
    sim.latency_seconds = float(sys.argv[4])
    settings = BridgeSettings(env="test", api_keys=[SecretStr(DEV_BRIDGE_API_KEY)])
    uvicorn.run(create_app(settings, sim), host="127.0.0.1", port=port, log_level="warning",
                proxy_headers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
