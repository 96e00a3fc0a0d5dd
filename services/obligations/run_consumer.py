"""Run the obligations consumer without the HTTP API (`python -m services.obligations.run_consumer`):
several in one consumer group share the topic's partitions."""

import logging
import signal
import threading

from services.obligations.bootstrap import bootstrap
from services.obligations.settings import ObligationsSettings


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    service = bootstrap(ObligationsSettings(run_consumer=True))
    stop.wait()
    service.close()


if __name__ == "__main__":
    main()
