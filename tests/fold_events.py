"""Case events as the fold and the timeline see them (the stream's form), for tests."""

from types import SimpleNamespace


def ev(name: str, date: str, **data) -> SimpleNamespace:
    return SimpleNamespace(name=name, data={"date": date, **data})


def opened(municipality: str, date: str = "2017-01-01") -> SimpleNamespace:
    return ev("case.opened", date, municipality=municipality, citizen="pseudonym")


def started(benefit: str, date: str) -> SimpleNamespace:
    return ev("benefit.started", date, benefit=benefit)


def ended(benefit: str, date: str, reason: str = "other") -> SimpleNamespace:
    return ev("benefit.ended", date, benefit=benefit, reason=reason)
