"""/docs and /redoc work on a closed network: every asset is served by the API itself, and a real
headless Chromium renders the operations from a real uvicorn with no request leaving the host."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from backend.api.app import create_app
from backend.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO_ROOT / "var"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                  "--remote-debugging-port=0")
#: A bound on waiting for the browser, not a measure of speed: a first start can be slow.
BROWSER_PATIENCE_SECONDS = 90.0
_URL_ATTRIBUTE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
_URL_IN_SCRIPT = re.compile(r"""url:\s*['"]([^'"]+)['"]""")


def _referenced_urls(html: str) -> list[str]:
    return _URL_ATTRIBUTE.findall(html) + _URL_IN_SCRIPT.findall(html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_reference_only_assets_the_server_serves(
        client: httpx.AsyncClient, page: str) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "https://" not in html and "http://" not in html
    urls = _referenced_urls(html)
    assert urls, "the page references no script or stylesheet"
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url


async def test_swagger_ui_oauth2_redirect_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/oauth2-redirect")
    assert response.status_code == 200 and "oauth2" in response.text.lower()


# a real browser ------------------------------------------------------------------------------


def _install_chromium() -> str:
    """Debian's chromium, installed with apt-get when missing and apt can; else skip."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("chromium is not installed and apt-get cannot install it here "
                    "(needs Debian's apt-get as root): apt-get install chromium")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"],
                    ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        try:
            result = subprocess.run(command, env=environment, capture_output=True, text=True,
                                    timeout=900, check=False)
        except subprocess.TimeoutExpired:
            pytest.skip(f"chromium is not installed and `{' '.join(command)}` did not finish")
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"chromium is not installed and `{' '.join(command)}` failed: {last}")
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("apt-get installed chromium but no chromium command is on PATH")
    return found


@pytest.fixture(scope="session")
def chromium() -> str:
    return _install_chromium()


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    """The API under a real uvicorn on a free loopback port; yields its base URL."""
    app = create_app(settings, startup_steps=[], configure_logs=False)
    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(BROWSER_PATIENCE_SECONDS):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        host, port = sock.getsockname()
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def browser(executable: str) -> AsyncIterator[str]:
    """Headless Chromium with a new empty profile; yields its DevTools websocket URL."""
    with tempfile.TemporaryDirectory(prefix="fidus-chromium-") as directory:
        profile = Path(directory) / "profile"
        log_path = Path(directory) / "chromium.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdout=log, stderr=subprocess.STDOUT)
        try:
            # Chromium writes the port it chose, and the browser's path, into the profile.
            active = profile / "DevToolsActivePort"
            async with asyncio.timeout(BROWSER_PATIENCE_SECONDS):
                while not (active.exists() and len(active.read_text().split()) >= 2):
                    if process.poll() is not None:
                        raise AssertionError(f"chromium exited with {process.returncode}: "
                                             f"{log_path.read_text()[-2000:]}")
                    await asyncio.sleep(0.1)
            port, path = active.read_text().split()[:2]
            yield f"ws://127.0.0.1:{port}{path}"
        finally:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class DevTools:
    """Just enough of the Chrome DevTools protocol: commands on one page session, and the URL
    of every request the page makes."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.session: str | None = None
        self.requested: dict[str, str] = {}  # request id -> URL
        self.blocked: dict[str, str] = {}  # request id -> why the browser did not send it

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session is not None:
            message["sessionId"] = self.session
        await self.ws.send(json.dumps(message))
        while True:
            answer = json.loads(await self.ws.recv())
            event = answer.get("method")
            if event == "Network.requestWillBeSent":
                self.requested[answer["params"]["requestId"]] = answer["params"]["request"]["url"]
            elif event == "Network.loadingFailed" and answer["params"].get("blockedReason"):
                self.blocked[answer["params"]["requestId"]] = answer["params"]["blockedReason"]
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer["result"]
                return result

    async def open_page(self) -> None:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget",
                                   {"targetId": target["targetId"], "flatten": True})
        self.session = attached["sessionId"]
        await self.send("Network.enable")
        await self.send("Page.enable")

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate",
                                 {"expression": expression, "returnByValue": True})
        return result["result"].get("value")

    async def wait_for(self, expression: str, *, what: str) -> Any:
        try:
            async with asyncio.timeout(BROWSER_PATIENCE_SECONDS):
                while not (value := await self.evaluate(expression)):
                    await asyncio.sleep(0.25)
                return value
        except TimeoutError:
            body = await self.evaluate("document.body ? document.body.innerText.slice(0, 500) : ''")
            raise AssertionError(f"{what} never appeared; the page shows: {body!r}") from None

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", {"format": "png"})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


def _operations(openapi: dict[str, Any]) -> int:
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return sum(1 for item in openapi["paths"].values() for method in item if method in methods)


async def test_swagger_ui_renders_every_operation_in_headless_chromium_from_local_assets(
        chromium: str, settings: Settings) -> None:
    async with serving(settings) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as http:
            operations = _operations((await http.get("/openapi.json")).json())
        assert operations > 10
        async with browser(chromium) as devtools_url, connect(devtools_url, max_size=None) as ws:
            page = DevTools(ws)
            await page.open_page()
            await page.send("Page.navigate", {"url": f"{base_url}/docs"})
            rendered = await page.wait_for(
                f"document.querySelectorAll('.opblock').length >= {operations} && "
                "document.querySelectorAll('.opblock').length",
                what=f"{operations} Swagger UI operations")
            title = await page.evaluate("document.querySelector('.title').innerText")
            await page.screenshot(SCREENSHOTS / "docs-swagger-ui.png")

            await page.send("Page.navigate", {"url": f"{base_url}/redoc"})
            await page.wait_for("document.querySelectorAll('[data-section-id]').length > 10",
                                what="ReDoc sections")
            await page.screenshot(SCREENSHOTS / "docs-redoc.png")
    assert rendered == operations
    assert "Fidus API" in title
    assert (SCREENSHOTS / "docs-swagger-ui.png").stat().st_size > 10_000
    # ReDoc's bundle asks for its logo on a CDN; the pages' policy keeps the browser from sending
    # it. Nothing else may even be asked for.
    sent = [url for request_id, url in page.requested.items()
            if request_id not in page.blocked]
    external = [url for url in sent
                if not url.startswith((base_url + "/", "data:", "blob:", "about:"))]
    assert external == [], f"the docs pages reached beyond the server: {external}"
    refused = {page.requested[request_id] for request_id in page.blocked}
    assert refused <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}, refused
    assert any(url.endswith("/docs-assets/swagger-ui-bundle.js") for url in sent)
