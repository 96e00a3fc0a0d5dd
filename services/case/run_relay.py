"""Run the outbox relay as its own process (`python -m services.case.run_relay`), until SIGTERM."""

import signal
import threading

from services.case.bootstrap import build_cases, build_relay
from services.case.settings import CaseSettings
from shared import logs, tracing


def main() -> None:
    logs.configure()
    settings = CaseSettings()
    tracing.configure(settings, "frisag-relay")
    cases = build_cases(settings)
    relay = build_relay(settings, cases)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        relay.run(stop)
    finally:
        relay.close()
        cases.close()


if __name__ == "__main__":
    main()
