"""Run a service's stream consumer without its HTTP API:
`python -m services.run_consumer obligations` (or `reporting`). Several in one consumer group
share the topic's partitions."""

import signal
import sys
import threading

from services.obligations.bootstrap import bootstrap as obligations
from services.obligations.settings import ObligationsSettings
from services.reporting.bootstrap import bootstrap as reporting
from services.reporting.settings import ReportingSettings
from shared import logs

SERVICES = {
    "obligations": lambda: obligations(ObligationsSettings(run_consumer=True)),
    "reporting": lambda: reporting(ReportingSettings(run_consumer=True)),
}


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in SERVICES:
        raise SystemExit(f"usage: python -m services.run_consumer {{{'|'.join(SERVICES)}}}")
    logs.configure()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    service = SERVICES[sys.argv[1]]()
    stop.wait()
    service.close()


if __name__ == "__main__":
    main()
