"""Embedded stream: consumers follow the case store's notification log, no broker needed."""

import time
from collections.abc import Callable, Sequence

from shared.events import StreamEvent
from shared.stream import Delivery, ResumeFrom

# (after position, limit) -> the stored events after that position, in log order
ReadLog = Callable[[int, int], Sequence[StreamEvent]]


class LogSubscription:
    IDLE_WAIT = 0.05  # seconds between looks at the log when it has nothing new

    def __init__(self, read_log: ReadLog, resume_from: ResumeFrom) -> None:
        self._read_log = read_log
        start = resume_from(0)
        self._after = (start - 1) if start is not None else 0

    def poll(self, timeout: float = 1.0, max_records: int = 1000) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while True:
            events = self._read_log(self._after, max_records)
            if events:
                self._after = events[-1].position
                return [Delivery(0, e.position, e) for e in events]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            time.sleep(min(self.IDLE_WAIT, remaining))

    def assignment(self) -> set[int]:
        return {0}

    def invalid_positions(self) -> dict[int, str]:
        return {}  # the case store's log keeps everything

    def close(self) -> None:
        pass


class LogStream:
    topic = "case-store-log"

    def __init__(self, read_log: ReadLog, last_position: Callable[[], int]) -> None:
        self._read_log = read_log
        self._last_position = last_position

    def lag(self, positions: dict[int, int]) -> dict[int, int]:
        consumed = positions.get(0, 1) - 1  # log positions start at 1
        return {0: self._last_position() - consumed}

    def subscribe(self, group: str | None, resume_from: ResumeFrom) -> LogSubscription:
        # One reader per process; the group name matters only to a broker.
        return LogSubscription(self._read_log, resume_from)
