"""The outbox relay: publishes the case store's log to the stream, in order, from where it left off.

Its position is a tracking record in the case store, one per topic, written after the broker
has acknowledged a batch: a relay pointed at a new topic publishes the whole log into it (to
replay the stream with more partitions or a new pseudonym key; deploy/OPERATIONS.md). A crash
between the two republishes at most that batch; consumers drop an event whose case sequence
they have already applied, so nothing is lost and nothing is applied twice.
"""

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

from eventsourcing.persistence import Tracking

from services.case.application import Cases
from shared.events import StreamEvent

log = logging.getLogger(__name__)


class Publisher(Protocol):
    topic: str

    def publish(self, events: Sequence[StreamEvent]) -> None: ...

    def close(self) -> None: ...


def tracking_name(topic: str) -> str:
    """The relay's position in the case store is recorded per topic, under this name."""
    return f"relay {topic}"


class Relay:
    def __init__(
        self,
        cases: Cases,
        publisher: Publisher,
        batch_size: int = 5000,
        leadership: Callable[[], AbstractContextManager[bool]] = lambda: nullcontext(True),
    ) -> None:
        self.cases = cases
        self.publisher = publisher
        self.batch_size = batch_size
        self.leadership = leadership  # only one relay of several replicas publishes at a time
        self.tracking = cases.factory.tracking_recorder()
        self.tracking_name = tracking_name(publisher.topic)
        self.wake = threading.Event()

    def position(self) -> int:
        return self.tracking.max_tracking_id(self.tracking_name) or 0

    def publish_pending(self) -> int:
        """Publish everything stored since the last position; return how many events."""
        published = 0
        position = self.position()
        while events := self.cases.stream_events(position, self.batch_size):
            self.publisher.publish(events)
            position = events[-1].position
            self.tracking.insert_tracking(Tracking(self.tracking_name, position))
            published += len(events)
        return published

    def close(self) -> None:
        self.publisher.close()

    def run(self, stop: threading.Event, idle_wait: float = 0.5) -> None:
        """Publish until `stop` is set; stand by while another relay holds the leadership."""
        while not stop.is_set():
            try:
                with self.leadership() as leading:
                    while leading and not stop.is_set():
                        self.publish_pending()
                        self.wake.wait(idle_wait)
                        self.wake.clear()
            except Exception:
                log.exception("relay failed; retrying")
            stop.wait(idle_wait)
