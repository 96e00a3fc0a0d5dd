"""What the operator page reads of each API, from the endpoints operators' tools read too:
`/readyz` (its failing checks), `/metrics` (the relay's or the consumer group's lag), `GET /status`
(the projection's cases, stale and failed ones, listed for an admin) and `GET /audit` (admin)."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

AUDIT_LISTED = 10  # the latest records shown per service
LAG = {"case": "frisag_relay_lag", "obligations": "frisag_consumer_lag", "reporting": "frisag_consumer_lag"}


class SignedOut(Exception):
    """An API refused the user's token (401): the page signs the user out."""


@dataclass
class ServiceState:
    service: str
    ready: str  # "Klar", "Ikke klar: ..." or "Svarer ikke"
    lag: int | None = None  # events behind; None: not known
    counts: dict[str, int] | None = None  # cases, stale, failed; None: no projection, or not known
    failed_cases: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # what the service did not answer, in Danish


def gauge_total(exposition: str, name: str) -> int | None:
    """The sum of a gauge's samples over its labels in Prometheus' text format; None when the
    service reports no such gauge."""
    values = [s.value for family in text_string_to_metric_families(exposition) for s in family.samples
              if s.name == name]
    return round(sum(values)) if values else None


async def service_state(http: httpx.AsyncClient, service: str, url: str, token: str) -> ServiceState:
    """One service's state as the operator page shows it; what it does not answer is said, not fatal."""
    headers = {"Authorization": f"Bearer {token}"}
    asks = {"readyz": http.get(f"{url}/readyz"), "metrics": http.get(f"{url}/metrics"),
            "audit": http.get(f"{url}/audit", params={"order": "newest", "limit": AUDIT_LISTED}, headers=headers)}
    if service != "case":  # the case service keeps no projection
        asks["status"] = http.get(f"{url}/status", headers=headers)
    answers = dict(zip(asks, await asyncio.gather(*asks.values(), return_exceptions=True)))
    for answer in answers.values():
        if isinstance(answer, BaseException) and not isinstance(answer, httpx.HTTPError):
            raise answer
        if isinstance(answer, httpx.Response) and answer.status_code == 401:
            raise SignedOut
    readyz = answers["readyz"]
    if isinstance(readyz, httpx.HTTPError) or readyz.status_code not in (200, 503):
        return ServiceState(service, "Svarer ikke")
    state = ServiceState(service, "Klar" if readyz.status_code == 200 else "Ikke klar: " + "; ".join(
        f"{e['field']}: {e['reason']}" for e in readyz.json().get("errors", [])))
    metrics, status, audit = answers["metrics"], answers.get("status"), answers["audit"]
    if answered(metrics):
        state.lag = gauge_total(metrics.text, LAG[service])
    else:
        state.unanswered.append("målinger (/metrics)")
    if answered(status):
        body = status.json()
        state.counts = {name: body[name] for name in ("cases", "stale", "failed")}
        state.failed_cases = body.get("failed_cases", [])
    elif status is not None:
        state.unanswered.append("status (/status)")
    if answered(audit):
        state.audit = audit.json()["records"]
    else:
        state.unanswered.append("revisionslog (/audit)")
    return state


def answered(answer: httpx.Response | BaseException | None) -> bool:
    return isinstance(answer, httpx.Response) and answer.status_code == 200
