"""Actions the law forbids unless a trial permits them. The case service refuses such events
with the rule and the reason (`shared.refusals`); the catalogs decide, so a new trial needs no
code change."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from shared.catalog import Catalog
from shared.refusals import InvalidEvent, NotPermitted, Refusal
from shared.timeline import CaseEvent, Timeline, all_applying

UNEMPLOYMENT_BENEFITS = ("dagpenge", "kontanthjaelp", "uddannelseshjaelp", "integrationsydelse")
CHECKED = frozenset({"offer-duty.suspended", "offer-duty.resumed", "cadence.agreed", "offer.started"})


@dataclass(frozen=True)
class Decision:
    """Whether an event is permitted, and which trial's permission it needed, if any."""

    refusal: Refusal | None = None
    permitted_by: str | None = None


ALLOWED = Decision()


def decide(history: Sequence[CaseEvent], event: CaseEvent, catalog: Catalog, birth_date: date | None) -> Decision:
    """Whether `event` is permitted for the case with this history: a refusal saying why not,
    or the trial that permits it where the ordinary law would not."""
    if event.name not in CHECKED:
        return ALLOWED
    day = date.fromisoformat(event.data["date"])
    timeline = Timeline.build(history, as_of=day)
    name, data = event.name, event.data

    def needs(rule: str, effect: str, field: str, reason: str, *, individually_agreed: bool = False,
              offer: str | None = None) -> Decision:
        for found in all_applying(catalog.trials_touching(rule), rule, timeline, day):  # any of them may permit it
            if (found.effect.effect == effect
                    and (not individually_agreed or found.effect.individually_agreed)
                    and (offer is None or offer in (found.effect.for_offers or []))):
                return Decision(permitted_by=found.trial.id)
        trials = ", ".join(t.id for t in catalog.trials_touching(rule)) or "none"
        return refused(rule, field, f"{reason} ({catalog.rules[rule].legal_reference}; trials that permit it: {trials})")

    def refused(rule: str, field: str, reason: str) -> Decision:
        return Decision(NotPermitted(rule, field, reason))

    if name in ("offer-duty.suspended", "offer-duty.resumed"):
        return needs("LAB-tilbud", "suspend", "type", f"no trial lets this case's right-and-duty offers be suspended on {day}")
    if name == "cadence.agreed":
        rule = data["rule"]
        if rule not in catalog.rules:
            return Decision(InvalidEvent("data.rule", "is not a rule in the catalog"))
        return needs(rule, "modify", "data.rule",
                     f"no trial lets {rule}'s cadence be agreed individually for this case on {day}", individually_agreed=True)
    offer = data["offer"]  # offer.started
    age = _age(birth_date, day)
    if offer == "igu" and age is not None:
        youngest = catalog.rules["IGU-alder"].parameter("min_age", day)
        if youngest is not None and age < youngest:  # no trial lifts the lower limit (T15 lifts the upper)
            return refused("IGU-alder", "data.offer", f"the citizen is {age} at the start; IGU is for ages from {youngest} "
                                                      f"({catalog.rules['IGU-alder'].legal_reference}; no trial permits it)")
        limit = catalog.rules["IGU-alder"].parameter("max_age", day)
        if limit is not None and age > limit:
            return needs("IGU-alder", "permit", "data.offer", f"the citizen is {age} at the start; IGU is for ages up to {limit}")
    if offer in ("loentilskud", "jobrotation"):
        problem = _wage_subsidy(catalog, timeline, day, age, offer)
        if problem:
            return needs("LAB-loentilskud-26uger", "permit", "data.offer", problem)
    if offer == "psykologbehandling":
        return needs("LAB-tilbudstyper", "permit", "data.offer", "psychologist treatment is not an offer the law knows",
                     offer=offer)
    return ALLOWED


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
