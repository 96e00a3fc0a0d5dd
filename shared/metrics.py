"""Prometheus text exposition (format 0.0.4) of what an operator watches: requests, events
stored and published, each consumer's position and lag per partition, stale cases. Written
by hand: a handful of gauges and one counter need no client library."""

from collections import Counter
from collections.abc import Callable
from threading import Lock
from typing import Any, NamedTuple


class Sample(NamedTuple):
    name: str
    help: str
    kind: str  # counter | gauge
    value: float
    labels: dict[str, str] = {}


def render(samples: list[Sample]) -> str:
    lines, described = [], set()
    for s in samples:
        if s.name not in described:
            lines += [f"# HELP {s.name} {s.help}", f"# TYPE {s.name} {s.kind}"]
            described.add(s.name)
        labels = ",".join(f'{k}="{_escaped(str(v))}"' for k, v in s.labels.items())
        lines.append(f"{s.name}{{{labels}}} {s.value:g}" if labels else f"{s.name} {s.value:g}")
    return "\n".join(lines) + "\n"


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Requests:
    """Requests answered, by method, route template and status."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, int]] = Counter()
        self._lock = Lock()

    def count(self, method: str, route: str, status: int) -> None:
        with self._lock:
            self.counts[(method, route, status)] += 1

    def samples(self) -> list[Sample]:
        with self._lock:
            counts = dict(self.counts)
        return [Sample("frisag_http_requests_total", "HTTP requests answered", "counter", n,
                       {"method": m, "route": r, "status": str(s)}) for (m, r, s), n in sorted(counts.items())]


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
