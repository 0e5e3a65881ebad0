"""Prometheus metrics: requests and latency by route template and status, and the database
pool figures, at `GET /metrics`.

Each app has its own registry, so several apps in one process (the tests) never collide.
Routes are labelled by their template (`/api/v1/admin/users/{user_id}`), never the raw path, so
ids cannot blow up the number of series; unmatched paths share one label.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

UNMATCHED = "<unmatched>"


class _PoolCollector(Collector):
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        manager = getattr(self.app.state, "connection", None)
        if manager is None:
            return
        figures = manager.monitor.figures()
        for name, value, text in (
            ("open", figures.open, "connections open in the pool"),
            ("in_use", figures.in_use, "connections checked out"),
            ("waiting", figures.waiting, "operations waiting for a connection"),
            ("max", figures.max, "largest pool size allowed"),
        ):
            yield GaugeMetricFamily(f"fidus_db_pool_{name}", f"Database {text}", value=value)
        monitor = manager.monitor
        yield GaugeMetricFamily("fidus_db_commands_failed", "Database commands that failed",
                                value=monitor.commands_failed)


def _route_template(request: Request) -> str:
    """The matched route's template, rebuilt from the path and its parameters (routers
    included with a prefix do not keep the full template on the matched route)."""
    if request.scope.get("route") is None:
        return UNMATCHED
    by_value = {str(value): name for name, value in request.path_params.items()}
    segments = request.url.path.split("/")
    return "/".join("{" + by_value[s] + "}" if s in by_value else s for s in segments)


def install_metrics(app: FastAPI) -> CollectorRegistry:
    registry = CollectorRegistry()
    requests = Counter("fidus_http_requests", "HTTP requests answered",
                       ("method", "route", "status"), registry=registry)
    latency = Histogram("fidus_http_request_duration_seconds", "Time to answer a request",
                        ("method", "route"), registry=registry,
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
    registry.register(_PoolCollector(app))
    app.state.metrics_registry = registry

    @app.middleware("http")
    async def measure(request: Request,
                      call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = _route_template(request)
            requests.labels(request.method, route, str(status)).inc()
            latency.labels(request.method, route).observe(time.perf_counter() - started)

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                         "description": "Prometheus text format"}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return registry
