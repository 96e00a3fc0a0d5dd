"""What the obligations and reporting services have in common: a projection of the stream
and, unless turned off, the consumer that feeds it in a thread of the service's process.
Every replica, consuming or not, reports the projection's lag: its stored positions (the
consumer group's, kept with the projection) against the stream's end."""

import threading
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from shared.audit import AuditLog
from shared.auth import Authenticator, authenticator
from shared.consumer import Consumer, worker_pool
from shared.projection import CaseProjection
from shared.settings import ServiceSettings
from shared.stream import EventStream
from shared.stream.connect import open_stream


FAILED_LISTED = 100  # failed cases GET /status lists at most (the admin command lists all)


@dataclass
class ConsumingService:
    projection: CaseProjection
    stream: EventStream
    authenticator: Authenticator
    audit: AuditLog
    consumer: Consumer | None = None  # None: an API replica; other processes consume
    pool: Executor | None = None
    max_lag: int = 10000  # readiness: at most this many events behind
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "ConsumingService":
        if self.consumer is not None:
            self._thread = threading.Thread(target=self.consumer.run, args=(self._stop,),
                                            name=f"{self.consumer.group}-consumer", daemon=True)
            self._thread.start()
        return self

    def lag(self) -> dict[int, int]:
        return self.stream.lag(self.projection.stored_positions())

    def readiness(self) -> dict[str, str]:
        """The checks that fail, with why: database reachable, consumer assigned and caught up."""
        try:
            self.projection.counts()
        except Exception as exc:  # noqa: BLE001 - any failure to reach it is the answer
            return {"database": f"unreachable: {type(exc).__name__}"}
        if self.consumer is None:
            return {}
        subscription = self.consumer.subscription
        if subscription is None or not subscription.assignment():
            return {"consumer": "holds no partitions (starting, or the group is rebalancing)"}
        if invalid := subscription.invalid_positions():
            return {"stream": "; ".join(f"{self.stream.topic} partition {partition}: {reason}"
                                        for partition, reason in sorted(invalid.items()))}
        behind = sum(self.lag().values())
        return {"consumer": f"{behind} events behind (READY_MAX_LAG {self.max_lag})"} if behind > self.max_lag else {}

    def metrics(self) -> list[Metric]:
        counts = self.projection.counts()
        families = [GaugeMetricFamily("frisag_projection_cases", "Cases in the projection", value=counts["cases"]),
                    GaugeMetricFamily("frisag_projection_stale_cases", "Cases a catalog change made stale, "
                                      "not derived again yet", value=counts["stale"]),
                    GaugeMetricFamily("frisag_projection_failed_cases", "Cases the derivation failed for "
                                      "(GET /status lists them)", value=counts["failed"])]
        positions = self.projection.stored_positions()
        lag = self.stream.lag(positions)
        labels = ["group", "partition"]
        position = GaugeMetricFamily("frisag_consumer_position", "Next offset the consumer group reads", labels=labels)
        behind = GaugeMetricFamily("frisag_consumer_lag", "Events on the stream the consumer group has not stored yet",
                                   labels=labels)
        for partition, events in sorted(lag.items()):
            position.add_metric([self.projection.group, str(partition)], positions.get(partition, 0))
            behind.add_metric([self.projection.group, str(partition)], events)
        return families + [position, behind, self._positions_invalid(lag)]

    def _positions_invalid(self, partitions) -> GaugeMetricFamily:
        """Per partition: 1 while this process holds it with a stored position outside it (the
        stream lost data; the partition is paused), else 0."""
        subscription = self.consumer.subscription if self.consumer is not None else None
        invalid = subscription.invalid_positions() if subscription is not None else {}
        family = GaugeMetricFamily(
            "frisag_consumer_position_invalid",
            "1 while the stored position lies outside the partition: the stream lost data, nothing is consumed",
            labels=["group", "partition"])
        for partition in sorted(set(partitions) | set(invalid)):
            family.add_metric([self.projection.group, str(partition)], int(partition in invalid))
        return family

    def status(self, with_failed_cases: bool) -> dict[str, Any]:
        """What `GET /status` answers: the projection's counts, and, for an admin, the cases the
        derivation failed for (the oldest `FAILED_LISTED`)."""
        status: dict[str, Any] = self.projection.counts()
        if with_failed_cases:
            status["failed_cases"] = self.projection.failed(FAILED_LISTED)
        return status

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=20)
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        self.projection.engine.dispose()


def consuming(service: type[ConsumingService], projection: CaseProjection, settings: ServiceSettings, *,
              run: bool, group: str, batch_size: int, workers: int | None, **extra) -> ConsumingService:
    """`service` over `projection`, fed from the stream when `run`."""
    stream = open_stream(settings)
    auth, audit = authenticator(settings), AuditLog(projection.engine, projection.prefix)
    if not run:
        return service(projection, stream, auth, audit, None, None, settings.ready_max_lag,
                       **extra).start()
    pool = worker_pool(workers, settings.database_url)
    consumer = Consumer(projection, stream, group, batch_size, pool)
    return service(projection, stream, auth, audit, consumer, pool, settings.ready_max_lag,
                   **extra).start()
