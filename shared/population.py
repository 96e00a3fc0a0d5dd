"""A seeded synthetic population: citizens' cases with realistic benefit trajectories across
trial and non-trial municipalities, as the events a jobcenter system would post.

Trajectories: dagpenge (most find a job within a year), kontanthjælp and uddannelseshjælp
(some move on to ressourceforløb), sygedagpenge (most return to work), ledighedsydelse with
gaps (some get a flexjob), revalidering, and førtidspension in a wage-subsidy job. Caseworkers
hold most conversations, late or not at all now and then; some cases move; most close.

The benchmarks, the evaluation tests and `python -m services.admin load-demo` use it.
"""

import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

# trial municipalities (Aalborg, Jammerbugt, Thisted, Rebild, Vesthimmerland, Hillerød, Frederikshavn)
# and comparison ones (Aarhus, Odense, Esbjerg, Randers, Viborg, Horsens)
MUNICIPALITIES = ["851", "849", "787", "840", "820", "219", "813", "751", "461", "561", "730", "791", "615"]
SOURCE = "synthetic/momentum"


class Population:
    def __init__(self, seed: int = 42, start: date = date(2017, 1, 1), end: date = date(2022, 12, 31)) -> None:
        self.random = random.Random(seed)
        self.start, self.end = start, end

    def cases(self, count: int) -> Iterator[list[dict[str, Any]]]:
        for n in range(count):
            yield self.case(f"syn-{n}")

    def case(self, case_id: str) -> list[dict[str, Any]]:
        r = self.random
        day = self.start + timedelta(days=r.randrange((self.end - self.start).days - 200))
        born = date(r.randint(1957, 2002), r.randint(1, 12), r.randint(1, 28))
        municipality = r.choice(MUNICIPALITIES)
        events: list[tuple[str, dict[str, Any]]] = [
            ("case.opened", {"cpr": f"{born:%d%m%y}-{r.randint(0, 3) if born.year < 2000 else 4}{r.randint(0, 999):03d}",
                             "municipality": municipality}),
            ("case.assigned", {"caseworker": f"cw-{municipality}-{r.randint(1, 20)}"}),
        ]
        dated = [(day, e) for e in events]
        trajectory = r.choices(["dagpenge", "kontanthjaelp", "sygedagpenge", "ledighedsydelse", "revalidering", "fp-loentilskud"],
                               weights=[30, 20, 20, 18, 5, 7])[0]
        day, closed = self._trajectory(trajectory, day, dated, municipality)
        if r.random() < 0.06 and day < self.end:
            move_day = day - timedelta(days=r.randint(30, 200))
            if move_day > dated[0][0]:
                dated.append((move_day, ("case.moved", {"municipality": r.choice(MUNICIPALITIES)})))
        first, rest = dated[0], sorted(dated[1:], key=lambda d: d[0])  # case.opened is posted first
        if closed and day <= self.end:
            rest = [d for d in rest if d[0] <= day] + [(day, ("case.closed", {"reason": closed}))]
        return [self._document(case_id, i, when, name, data) for i, (when, (name, data)) in enumerate([first, *rest])]

    def _trajectory(self, kind: str, day: date, dated: list, municipality: str) -> tuple[date, str | None]:
        r = self.random
        if kind == "ledighedsydelse":
            for _ in range(r.randint(1, 3)):  # spells with gaps
                day = self._spell("ledighedsydelse", day, r.randint(60, 700), dated, talks="jobsamtale", every=91,
                                  assess_after=365 if r.random() < 0.5 else None)
                day += timedelta(days=r.randint(10, 120))
                if day > self.end:
                    return day, None
            return day, r.choice(["job", "job", "other_benefit", "other"])
        if kind == "sygedagpenge":
            day = self._spell("sygedagpenge", day, r.randint(20, 300), dated, talks="opfoelgningssamtale", every=28,
                              certificate="LÆ285" if r.random() < 0.6 else None)
            return day, "job" if r.random() < 0.8 else "other_benefit"
        if kind == "revalidering":
            dated.append((day - timedelta(days=r.randint(0, 40)), ("medical-certificate.obtained", {"form": "LÆ265"})))
            day = self._spell("revalidering", day, r.randint(120, 700), dated, talks="opfoelgningssamtale", every=120)
            return day, "job" if r.random() < 0.5 else "education"
        if kind == "fp-loentilskud":
            dated.append((day, ("benefit.started", {"benefit": "foertidspension"})))
            day = self._spell("loentilskud", day, r.randint(200, 1500), dated, talks="opfoelgningssamtale", every=365,
                              offer=True)
            return day, None  # førtidspension goes on
        benefit = kind
        length = r.randint(30, 500) if benefit == "dagpenge" else r.randint(60, 900)
        day = self._spell(benefit, day, length, dated, talks="jobsamtale", every=91 if benefit == "kontanthjaelp" else 30)
        if benefit == "kontanthjaelp" and r.random() < 0.3:
            day = self._spell("ressourceforloeb", day + timedelta(days=1), r.randint(180, 900), dated,
                              talks="jobsamtale", every=120, plans=True)
        return day, r.choices(["job", "education", "other_benefit", "other"], weights=[55, 15, 20, 10])[0]

    def _spell(self, benefit: str, start: date, length: int, dated: list, *, talks: str, every: int,
               assess_after: int | None = None, certificate: str | None = None, offer: bool = False,
               plans: bool = False) -> date:
        r = self.random
        end = start + timedelta(days=length)
        started, ended = ("offer.started", "offer.ended") if offer else ("benefit.started", "benefit.ended")
        key = "offer" if offer else "benefit"
        dated.append((start, (started, {key: benefit})))
        talk = start + timedelta(days=r.randint(5, every))
        while talk < end:
            if r.random() < 0.85:  # now and then a conversation is missed
                dated.append((talk, ("conversation.held", {"kind": talks})))
            talk += timedelta(days=every + r.randint(-5, 25))
        if assess_after and length > assess_after:
            dated.append((start + timedelta(days=assess_after + r.randint(0, 120)),
                          ("assessment.completed", {"kind": "revurdering-ledighedsydelse"})))
        if certificate:
            dated.append((start + timedelta(days=r.randint(10, 60)), ("medical-certificate.obtained", {"form": certificate})))
        if plans:
            for months in range(6, length // 30, 6):
                dated.append((start + timedelta(days=months * 30 + r.randint(-10, 20)), ("plan.updated", {})))
        if r.random() < 0.25 and not offer and benefit in ("dagpenge", "kontanthjaelp"):
            dated.append((start + timedelta(days=r.randint(60, max(61, length))), ("offer.started", {"offer": "virksomhedspraktik"})))
        if end <= self.end:
            dated.append((end, (ended, {key: benefit} if offer else {key: benefit, "reason": r.choice(["job", "other"])})))
        return end

    @staticmethod
    def _document(case_id: str, n: int, when: date, name: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"specversion": "1.0", "id": f"{case_id}-{n}", "source": SOURCE, "type": f"dk.frisag.{name}",
                "subject": case_id, "time": f"{when.isoformat()}T09:00:00Z", "data": {**data, "date": when.isoformat()}}
