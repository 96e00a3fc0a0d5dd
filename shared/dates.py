"""The dates Frisag accepts: from `EARLIEST` to `LATEST`, both included.

One range for the effective dates of posted events and for every date a query asks about
(`as_of`, `due_before`, `from`, ...): nothing outside it can be stored, so nothing outside it is
worth asking about, and every date inside it stays a valid date after the calendar arithmetic
the rules do (months and years added or taken away), which a date near year 1 or 9999 does not.
No real case history goes back before 1900 (a back-dated history reaches years, not a century,
before the oldest rule in the catalog, 2013-01-01); the fold works up to 400 days plus a
schedule's months past a case's last date, so a ceiling millennia before the calendar's end
keeps that arithmetic in range whatever the catalog's rules and horizons become.
"""

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator

EARLIEST = date(1900, 1, 1)
LATEST = date(2999, 12, 31)
RANGE = f"from {EARLIEST} to {LATEST}"


def within_range(day: date) -> date:
    if not EARLIEST <= day <= LATEST:
        raise ValueError(f"must be a date {RANGE}: no case history is older, and obligations are worked out "
                         "years past a date, which must stay far from the calendar's end")
    return day


def moment_within_range(moment: datetime) -> datetime:
    within_range(moment.date())  # its own date: within the range, a time zone moves it nowhere it cannot go
    return moment


QueryDate = Annotated[date, AfterValidator(within_range)]
QueryMoment = Annotated[datetime, AfterValidator(moment_within_range)]
