"""The dates Frisag accepts: from `EARLIEST` to `LATEST`, both included.

One range for the effective dates of posted events and for every date a query asks about
(`as_of`, `due_before`, `from`, ...): nothing outside it can be stored, so nothing outside it is
worth asking about, and every date inside it stays a valid date after the calendar arithmetic
the rules do (months and years added or taken away), which a date near year 1 or 9999 does not.
"""

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator

EARLIEST = date(1900, 1, 1)
LATEST = date(2999, 12, 31)
RANGE = f"from {EARLIEST} to {LATEST}"


def within_range(day: date) -> date:
    if not EARLIEST <= day <= LATEST:
        raise ValueError(f"must be a date {RANGE}: Frisag keeps no cases outside those dates")
    return day


def moment_within_range(moment: datetime) -> datetime:
    within_range(moment.date())  # its own date: within the range, a time zone moves it nowhere it cannot go
    return moment


QueryDate = Annotated[date, AfterValidator(within_range)]
QueryMoment = Annotated[datetime, AfterValidator(moment_within_range)]
