"""What the obligations and reporting services have in common: a projection of the stream
and, unless turned off, the consumer that feeds it in a thread of the service's process."""

import threading
from concurrent.futures import Executor
from dataclasses import dataclass, field

from services.case.application import Cases
from services.case.bootstrap import open_stream
from shared.consumer import Consumer, worker_pool
from shared.projection import CaseProjection
from shared.settings import ServiceSettings


@dataclass
class ConsumingService:
    projection: CaseProjection
    consumer: Consumer | None = None
    case_store: Cases | None = None  # embedded: the case store whose log is the stream
    pool: Executor | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "ConsumingService":
        if self.consumer is not None:
            self._thread = threading.Thread(target=self.consumer.run, args=(self._stop,),
                                            name=f"{self.consumer.group}-consumer", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=20)
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        self.projection.engine.dispose()
        if self.case_store is not None:
            self.case_store.close()


def consuming(service: type[ConsumingService], projection: CaseProjection, settings: ServiceSettings, *,
              run: bool, group: str, batch_size: int, workers: int | None, **extra) -> ConsumingService:
    """`service` over `projection`, fed from the stream when `run`."""
    if not run:
        return service(projection, **extra).start()
    pool = worker_pool(workers, settings.database_url)
    stream, case_store = open_stream(settings)
    consumer = Consumer(projection, stream, group, batch_size, pool)
    return service(projection, consumer, case_store, pool, **extra).start()
