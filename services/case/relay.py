"""The outbox relay: publishes the case store's log to the stream, in order, from where it left off.

Its position is a tracking record in the case store, one per topic, written after the broker
has acknowledged a batch: a relay pointed at a new topic publishes the whole log into it (to
replay the stream with more partitions or a new pseudonym key; deploy/OPERATIONS.md). A crash
between the two republishes at most that batch; consumers drop an event whose case sequence
they have already applied, so nothing is lost and nothing is applied twice.

When the broker lost the topic's data, `request_republish` (`python -m services.admin
republish`) starts the relay's position for the topic over: the relay creates the topic again,
empty, publishes the whole case store into it in order, then keeps it current. A relay that cannot publish (the broker
gone, its producer fenced or unknown to a broker that lost its state, the topic refused) closes
its producer, gives up the leadership so that a standby relay may try, and makes a new producer
before it publishes again, waiting longer after each failure.
"""

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from eventsourcing.persistence import Tracking, TrackingRecorder

from services.case.cases import Cases
from services.case.stream_events import stream_events
from shared.stream import Publisher

log = logging.getLogger(__name__)


def tracking_name(topic: str, epoch: int = 0) -> str:
    """The relay's position in the case store is recorded per topic, under this name; each
    republishing of the whole store (epoch) starts a position of its own from 0."""
    return f"relay {topic}" if not epoch else f"relay {topic} #{epoch}"


def republish_name(topic: str) -> str:
    """How many times the whole store was asked to be published into the topic again (the epoch).
    Tracking records only move forward, so starting over is a new record, not a reset one: a
    relay recording the batch it was publishing when asked cannot undo the request."""
    return f"relay {topic} republish"


def published(recorder: TrackingRecorder, topic: str) -> int:
    """How far the relay has published into `topic` (since the last request to republish)."""
    epoch = recorder.max_tracking_id(republish_name(topic)) or 0
    return recorder.max_tracking_id(tracking_name(topic, epoch)) or 0


def request_republish(recorder: TrackingRecorder, topic: str) -> int:
    """Make the relay publish the whole store into `topic` again, from the start; the new epoch."""
    epoch = (recorder.max_tracking_id(republish_name(topic)) or 0) + 1
    recorder.insert_tracking(Tracking(republish_name(topic), epoch))
    return epoch


class Relay:
    MAX_BACKOFF = 30.0  # seconds at most between attempts when publishing keeps failing

    def __init__(
        self,
        cases: Cases,
        connect: Callable[[], Publisher],
        batch_size: int = 5000,
        leadership: Callable[[], AbstractContextManager[bool]] = lambda: nullcontext(True),
        empty_stream: Callable[[], None] = lambda: None,
    ) -> None:
        self.cases = cases
        self.connect = connect  # a new publisher, the topic checked: at start and after a failure
        self.empty_stream = empty_stream  # before a republish: the topic created again, empty
        self._emptied_for = 0  # the republish epoch this process emptied the stream for
        self.publisher: Publisher | None = connect()
        self.topic = self.publisher.topic
        self.batch_size = batch_size
        self.leadership = leadership  # only one relay of several replicas publishes at a time
        self.tracking = cases.factory.tracking_recorder()
        self.wake = threading.Event()

    def position(self) -> int:
        return published(self.tracking, self.topic)

    def publish_pending(self) -> int:
        """Publish everything stored since the last position; return how many events."""
        epoch = self.tracking.max_tracking_id(republish_name(self.topic)) or 0
        name = tracking_name(self.topic, epoch)
        count, position = 0, self.tracking.max_tracking_id(name) or 0
        if epoch and not position and self._emptied_for != epoch:
            # A republish starts. What was published since the loss would come before the case's
            # earlier events, which consumers would then drop as old: the stream starts empty.
            self._drop_publisher()
            self.empty_stream()
            self._emptied_for = epoch
        if self.publisher is None:
            self.publisher = self.connect()
        while events := stream_events(self.cases, position, self.batch_size):
            self.publisher.publish(events)
            position = events[-1].position
            self.tracking.insert_tracking(Tracking(name, position))
            count += len(events)
        return count

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.close()

    def run(self, stop: threading.Event, idle_wait: float = 0.5) -> None:
        """Publish until `stop` is set; stand by while another relay holds the leadership."""
        failures = 0
        while not stop.is_set():
            try:
                with self.leadership() as leading:
                    while leading and not stop.is_set():
                        self.publish_pending()
                        failures = 0
                        self.wake.wait(idle_wait)
                        self.wake.clear()
            except Exception:
                # leaving the leadership's context released it: a standby relay may take over
                failures += 1
                log.exception("relay cannot publish to %s (failure %d in a row); gave up the leadership, "
                              "making a new producer", self.topic, failures)
                self._drop_publisher()
            stop.wait(min(self.MAX_BACKOFF, idle_wait * 2 ** failures))

    def _drop_publisher(self) -> None:
        """Close a producer that failed: it may be fenced, or unknown to a broker that lost its state."""
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            try:
                publisher.close()
            except Exception:
                log.exception("closing the failed producer failed")
