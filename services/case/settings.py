from pydantic import Field, model_validator

from shared.settings import ServiceSettings


class CaseSettings(ServiceSettings):
    relay_batch_size: int = 5000
    # Each case-service process runs a relay; an advisory lock lets one publish at a time.
    # Set false to run the relay only as its own process (`python -m services.case.run_relay`).
    run_relay: bool = True
    max_batch_events: int = 5000  # a larger batch is refused (413)
    # erase a case (crypto-shredding) this many days after it was closed; 0 keeps cases for
    # ever, which only development allows: set it from the municipality's retention rules
    retention_after_close_days: int = Field(default=0, ge=0)
    retention_sweep_seconds: float = Field(default=3600, gt=0)  # how often to look for such cases

    @model_validator(mode="after")
    def _production_erases(self) -> "CaseSettings":
        if self.environment == "production" and not self.retention_after_close_days:
            raise ValueError("RETENTION_AFTER_CLOSE_DAYS: production needs a retention period after case close")
        return self
