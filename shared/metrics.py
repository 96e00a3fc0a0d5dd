"""Prometheus exposition of what an operator watches: requests, events stored and published,
each consumer's position and lag per partition, stale cases. Written by `prometheus_client`, in
the classic text format or OpenMetrics as the scraper asks; every value is read when scraped
(a service's `metrics()` gives its metric families)."""

from collections import Counter
from collections.abc import Callable, Iterator
from threading import Lock
from typing import Any

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric


class Requests:
    """Requests answered, by method, route template and status."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, int]] = Counter()
        self._lock = Lock()

    def count(self, method: str, route: str, status: int) -> None:
        with self._lock:
            self.counts[(method, route, status)] += 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts = dict(self.counts)
        family = CounterMetricFamily("frisag_http_requests_total", "HTTP requests answered",
                                     labels=["method", "route", "status"])
        for (method, route, status), n in sorted(counts.items()):
            family.add_metric([method, route, str(status)], n)
        yield family


class Collected:
    """A collector over the metric families `metrics()` gives when scraped."""

    def __init__(self, metrics: Callable[[], list[Metric]]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics()


class CountRequests:
    """ASGI middleware feeding `Requests` (plain ASGI: cheap per request)."""

    def __init__(self, app: Any, requests: Requests) -> None:
        self.app, self.requests = app, requests

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def note_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, note_status)
        finally:
            route = scope.get("route")
            self.requests.count(scope["method"], route.path if route else "unmatched", status)
