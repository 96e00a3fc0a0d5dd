"""Feeds the obligations projection from the stream until stopped."""

import logging
import threading
import time

from services.obligations.projection import ObligationsProjection
from shared.stream import EventStream

log = logging.getLogger(__name__)


class Consumer:
    REFRESH_EVERY = 10.0  # seconds: while replaying a long history, re-fold at least this often

    def __init__(self, projection: ObligationsProjection, stream: EventStream, group: str = "obligations",
                 batch_size: int = 5000) -> None:
        self.projection = projection
        self.stream = stream
        self.group = group
        self.batch_size = batch_size

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._consume(stop)
            except Exception:
                log.exception("obligations consumer failed; restarting")
                stop.wait(1.0)

    def _consume(self, stop: threading.Event) -> None:
        subscription = self.stream.subscribe(self.group, self.projection.resume_from)
        try:
            refreshed = time.monotonic()
            while not stop.is_set():
                deliveries = subscription.poll(timeout=0.2, max_records=self.batch_size)
                self.projection.store(deliveries)
                caught_up = len(deliveries) < self.batch_size
                if caught_up or time.monotonic() - refreshed > self.REFRESH_EVERY:
                    self.projection.refresh()
                    refreshed = time.monotonic()
        finally:
            subscription.close()
