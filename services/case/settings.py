from shared.settings import ServiceSettings


class CaseSettings(ServiceSettings):
    relay_batch_size: int = 5000
    # Each case-service process runs a relay; an advisory lock lets one publish at a time.
    # Set false to run the relay only as its own process (`python -m services.case.run_relay`).
    run_relay: bool = True
    max_batch_events: int = 5000  # a larger batch is refused (413)
