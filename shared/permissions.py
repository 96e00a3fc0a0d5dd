"""Actions the law forbids unless a trial permits them. The case service refuses such events
with the rule and the reason; the catalogs decide, so a new trial needs no code change."""

from collections.abc import Sequence
from datetime import date, timedelta

from shared.catalog import Catalog
from shared.problems import FieldError, Problem
from shared.timeline import CaseEvent, Timeline, applying

UNEMPLOYMENT_BENEFITS = ("dagpenge", "kontanthjaelp", "uddannelseshjaelp", "integrationsydelse")
CHECKED = frozenset({"offer-duty.suspended", "offer-duty.resumed", "cadence.agreed", "offer.started"})


def refusal(history: Sequence[CaseEvent], event: CaseEvent, catalog: Catalog, birth_date: date | None) -> Problem | None:
    """Why `event` is not permitted for the case with this history, or None if it is."""
    if event.name not in CHECKED:
        return None
    day = date.fromisoformat(event.data["date"])
    timeline = Timeline.build(history, as_of=day)
    name, data = event.name, event.data

    def permitted(rule: str, effect: str, *, individually_agreed: bool = False, offer: str | None = None) -> bool:
        found = applying(catalog, rule, timeline, day)
        return (
            found is not None
            and found.effect.effect == effect
            and (not individually_agreed or found.effect.individually_agreed)
            and (offer is None or offer in (found.effect.for_offers or []))
        )

    def refuse(rule: str, field: str, reason: str) -> Problem:
        trials = ", ".join(t.id for t in catalog.trials_touching(rule)) or "none"
        return Problem(422, "not-permitted", "Not permitted for this case",
                       errors=[FieldError(field, f"{reason} ({catalog.rules[rule].legal_reference}; "
                                                 f"trials that permit it: {trials})")],
                       extra={"rule": rule})

    if name in ("offer-duty.suspended", "offer-duty.resumed") and not permitted("LAB-tilbud", "suspend"):
        return refuse("LAB-tilbud", "type", f"no trial lets this case's right-and-duty offers be suspended on {day}")
    if name == "cadence.agreed":
        rule = data["rule"]
        if rule not in catalog.rules:
            return Problem(422, "invalid-event", "Invalid event", errors=[FieldError("data.rule", "is not a rule in the catalog")])
        if not permitted(rule, "modify", individually_agreed=True):
            return refuse(rule, "data.rule", f"no trial lets {rule}'s cadence be agreed individually for this case on {day}")
    if name == "offer.started":
        offer = data["offer"]
        age = _age(birth_date, day)
        if offer == "igu" and age is not None:
            limit = catalog.rules["IGU-alder"].parameter("max_age", day)
            if limit is not None and age > limit and not permitted("IGU-alder", "permit"):
                return refuse("IGU-alder", "data.offer", f"the citizen is {age} at the start; IGU is for ages up to {limit}")
        if offer in ("loentilskud", "jobrotation"):
            problem = _wage_subsidy(catalog, timeline, day, age, offer)
            if problem and not permitted("LAB-loentilskud-26uger", "permit"):
                return refuse("LAB-loentilskud-26uger", "data.offer", problem)
        if offer == "psykologbehandling" and not permitted("LAB-tilbudstyper", "permit", offer=offer):
            return refuse("LAB-tilbudstyper", "data.offer", "psychologist treatment is not an offer the law knows")
    return None


def _wage_subsidy(catalog: Catalog, timeline: Timeline, day: date, age: int | None, offer: str) -> str | None:
    rule = catalog.rules["LAB-loentilskud-26uger"]
    weeks, exempt_age = rule.parameter("unemployed_weeks", day), rule.parameter("exempt_from_age", day)
    if weeks is None or (age is not None and exempt_age is not None and age >= exempt_age):
        return None
    spells = [s for b in UNEMPLOYMENT_BENEFITS for s in timeline.spells(b) if s.covers(day)]
    if not spells:
        return None  # not unemployed on a benefit: the waiting time does not apply
    unemployed_since = min(s.start for s in spells)
    if day - unemployed_since >= timedelta(weeks=weeks):
        return None
    return f"{offer} needs {weeks} weeks of unemployment; the citizen has been unemployed since {unemployed_since}"


def _age(birth_date: date | None, day: date) -> int | None:
    if birth_date is None:
        return None
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))
