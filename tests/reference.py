"""A deliberately simple reference for two obligation rules, written apart from the fold
(shared/obligations.py) and the timeline (shared/timeline.py) and sharing no code with them:
the oracle of the fold's property tests and of the evaluation's obligation counts (issue 16).

It walks a case day by day, keeps counters, and lists each occurrence the rules require as an
`Occurrence` (rule, due date, deadline, done date or None, the trial that waived it or None, the
municipality responsible on the due date). Parameters, trial periods and municipalities are read
from the catalog's YAML files with plain `yaml`, not through `shared.catalog`.

Covered:
- LAS-74c (LAS § 74 c; rules/LAS-74c.yaml): due the day after a citizen has had 12 months
  (365 days; a month is 365.25/12 days) of ledighedsydelse within the last 18 (548 days),
  counting only days from the last due date on (waived ones too); to be done by the day before
  due + 6 calendar months (the window's end); a re-assessment held from 6 calendar months
  before the due date on counts, each for one occurrence, in date order. T11 (trials/T11.yaml)
  waives an occurrence due while the case is in one of its municipalities within its period.
  On the day T11 stops applying (a move out, the day after its end), the re-assessment is due
  that day if the citizen is on ledighedsydelse and had 12 months of it within the 18 months
  before, counting from the last re-assessment that was required (not waived): the ordinary
  rule applies again from that day, and owes what T11 waived, not what was already required.
  Lists the occurrences known as of a day (the next one included) or, for the evaluation, all
  up to a horizon.
- LAB-jobsamtale for dagpenge under the 2015 parameters (rules/LAB-jobsamtale.yaml): a talk
  due 1, 2, ..., 6 calendar months after the spell starts, then 3 calendar months after the last
  talk held (or, when it was missed, after its due date); none due after the spell ends. The
  k-th conversation held from the spell's start on satisfies the k-th talk. In the worklist's
  view (`complete=False`) a missed talk stops the rolling part: the next depends on when it is
  held; the full count (`complete=True`, the evaluation's) goes on as if it was held on its due
  date. A rolling talk counted from talks held early can fall before the sixth fixed one; the
  talks are listed by due date, each once. No trial changes this rule without a
  `cadence.agreed` event, which the reference does not model.

- The medical certificates, once per benefit spell (rules/SDP-LAE285.yaml, REV-LAE265.yaml):
  LÆ285 due 8 weeks after a sygedagpenge spell starts, if the spell still runs that day and the
  due date is before 2020-01-01 (the certificate is optional from then); LÆ265 due the day
  revalidering starts and the day it ends. Either is done by the first certificate of its form
  obtained from the spell's start (LÆ285) or from 3 calendar months before the due date
  (LÆ265) on, and not already used for an earlier occurrence that was required; due and
  deadline the same day. T6 (trials/T6.yaml) waives LÆ285, T10 (trials/T10.yaml) LÆ265, for a
  case in one of the trial's municipalities on the due date within its period; each is the only
  trial touching its rule, and both are for everyone (checked from the YAML).

Simplifications (what the generated inputs must respect):
- the events are case.opened, case.moved, case.closed, benefit.started/ended of
  ledighedsydelse or dagpenge, assessment.completed (revurdering-ledighedsydelse),
  conversation.held (jobsamtale); others are ignored;
- dates from 2015-01-01 on (both rules in force); the 2020 parameters are modelled only as
  "nothing due from 2020-01-01 on", which holds for a dagpenge spell started more than 182 days
  before 2020 (the 2020 version's last fixed talk): the generated spells start before mid-2019;
- one dagpenge spell per case; at most one completion of a kind per day; no benefit ends and
  starts again on the same day;
- a benefit started while it runs, or ended while it does not, is ignored; a closed case has no
  benefit days after its closing day;
- T11 is the only trial touching LAS-74c, and its target group is everyone (as in the catalog).
"""

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import yaml

CATALOG = Path(__file__).resolve().parent.parent / "shared" / "catalog"
DUE_WINDOW = 14  # days before the due date from which an open occurrence is `due` (shared/obligations.py DUE_SOON)


def _yaml(path: str) -> dict:
    return yaml.safe_load((CATALOG / path).read_text(encoding="utf-8"))


def _only_value(rule: dict, parameter: str):
    (value,) = rule["parameters"][parameter]["values"].values()
    return value["value"]


_LAS = _yaml("rules/LAS-74c.yaml")
_T11 = _yaml("trials/T11.yaml")
_JOBSAMTALE = _yaml("rules/LAB-jobsamtale.yaml")
LAS_REQUIRED_DAYS = round(_only_value(_LAS, "required_months") * 365.25 / 12)  # 365
LAS_WINDOW_DAYS = round(_only_value(_LAS, "window_months") * 365.25 / 12)  # 548
LAS_MARGIN_MONTHS = _only_value(_LAS, "window_months") - _only_value(_LAS, "required_months")  # 6
T11_MUNICIPALITIES = set(_T11["municipalities"])
T11_START, T11_END = date.fromisoformat(_T11["period"]["start"]), date.fromisoformat(_T11["period"]["end"])
_DAGPENGE_2015 = _JOBSAMTALE["parameters"]["schedule"]["values"][date(2015, 1, 1)]["value"]["dagpenge"]
# from 2020-01-01 dagpenge talks fall due within 182 days of the spell's start, then as agreed:
# for a spell started earlier than that, none is due any more (the reference covers only those)
TALKS_2015_END = min(d for d in _JOBSAMTALE["parameters"]["schedule"]["values"] if d > date(2015, 1, 1))
TALK_MONTHS = [int(offset.removesuffix("m")) for offset in _DAGPENGE_2015["first"]]  # 1..6
TALK_EVERY_MONTHS = int(_DAGPENGE_2015["then_every"].removesuffix("m"))  # 3
MINUTES = {"LAS-74c": _LAS["minutes_per_obligation"], "LAB-jobsamtale": _JOBSAMTALE["minutes_per_obligation"]}


@dataclass(frozen=True)
class Occurrence:
    rule: str
    due: date
    deadline: date
    done_on: date | None
    waived_by: str | None
    municipality: str

    def status(self, as_of: date) -> str:
        if self.waived_by:
            return "waived"
        if self.done_on is not None and self.done_on <= as_of:
            return "done"
        if as_of > self.deadline:
            return "overdue"
        if (self.due - as_of).days <= DUE_WINDOW:
            return "due"
        return "upcoming"


def months_later(day: date, months: int) -> date:
    """Calendar months; a day past the month's end becomes its last day (31 Jan + 1 = 28/29 Feb)."""
    year = day.year + (day.month - 1 + months) // 12
    month = (day.month - 1 + months) % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class Case:
    """A case's events as plain per-day facts: who is responsible, which benefits run."""

    def __init__(self, events) -> None:
        dated = sorted(((date.fromisoformat(e.data["date"]), i, e.name, e.data) for i, e in enumerate(events)),
                       key=lambda d: (d[0], d[1]))
        self.by_day: dict[date, list[tuple[str, dict]]] = {}
        for day, _, name, data in dated:
            self.by_day.setdefault(day, []).append((name, data))
        self.first = dated[0][0]
        self.last = dated[-1][0]
        self.assessments = [d for d, _, n, data in dated
                            if n == "assessment.completed" and data.get("kind") == "revurdering-ledighedsydelse"]
        self.talks = [d for d, _, n, data in dated if n == "conversation.held" and data.get("kind") == "jobsamtale"]

    def days(self, until: date):
        """(day, municipality, benefits running that day), from the first event to `until`."""
        municipality, running, closed = None, set(), False
        day = self.first
        while day <= until:
            ending = set()
            for name, data in self.by_day.get(day, []):
                if name in ("case.opened", "case.moved"):
                    municipality = data["municipality"]
                elif name == "case.closed":
                    closed = True
                elif name == "benefit.started" and not closed:
                    running.add(data["benefit"])
                elif name == "benefit.ended" and data["benefit"] in running:
                    ending.add(data["benefit"])  # the end day is the spell's last day
            yield day, municipality, frozenset(running)
            running -= ending
            if closed:
                running = set()
            day += timedelta(days=1)


def t11_waives(day: date, municipality: str | None, end: date = T11_END) -> bool:
    return T11_START <= day <= end and municipality in T11_MUNICIPALITIES


def las_74c(events, as_of: date, *, trials: bool = True, every: bool = False, t11_end: date = T11_END) -> list[Occurrence]:
    """The LAS-74c occurrences known as of `as_of` (events after it unknown): every one due up
    to `as_of` and the next one after it, as the worklist lists them; with `every`, all up to
    `as_of` and none after (the evaluation's full count up to its horizon). `t11_end`: T11's
    last day, if it were another (a what-if)."""
    known = [e for e in events if date.fromisoformat(e.data["date"]) <= as_of]
    if not any(e.data.get("benefit") == "ledighedsydelse" for e in known):
        return []  # never on ledighedsydelse: nothing to walk through
    case = Case(known)
    on_ly = [0]  # on_ly[i]: days on ledighedsydelse before case.first + i
    dues: list[tuple[date, str | None, str]] = []  # due, waived by, municipality
    counted_from = 0  # index of the last due date: days before it are not counted
    required_from = 0  # index of the last due date of a required one (not waived)
    waived_yesterday = False
    for day, municipality, running in case.days(as_of + timedelta(days=2 * LAS_WINDOW_DAYS)):
        i = len(on_ly) - 1
        if dues and dues[-1][0] > as_of:
            break
        due = on_ly[i] - on_ly[max(counted_from, i - LAS_WINDOW_DAYS)] >= LAS_REQUIRED_DAYS
        waived_today = trials and t11_waives(day, municipality, t11_end)
        if not due and waived_yesterday and not waived_today and "ledighedsydelse" in running \
                and on_ly[i] - on_ly[max(required_from, i - LAS_WINDOW_DAYS)] >= LAS_REQUIRED_DAYS:
            due = True  # T11 stopped applying: what it waived is due again today
        if due:
            dues.append((day, "T11" if waived_today else None, municipality))
            counted_from = i
            required_from = i if not waived_today else required_from
        on_ly.append(on_ly[i] + ("ledighedsydelse" in running))
        waived_yesterday = waived_today
    if every:
        dues = [d for d in dues if d[0] <= as_of]
    # each re-assessment held counts for the first required occurrence still open whose window
    # (from 6 months before its due date) it has reached
    done: dict[int, date] = {}
    for held in case.assessments:
        open_ = [k for k, (due, waived, _) in enumerate(dues)
                 if waived is None and k not in done and months_later(due, -LAS_MARGIN_MONTHS) <= held]
        if open_:
            done[open_[0]] = held
    return [Occurrence("LAS-74c", due, months_later(due, LAS_MARGIN_MONTHS) - timedelta(days=1), done.get(k),
                       waived, municipality)
            for k, (due, waived, municipality) in enumerate(dues)]


def jobsamtale_dagpenge(events, as_of: date, *, complete: bool = False) -> list[Occurrence]:
    """The dagpenge talks known as of `as_of` (events after it unknown): every one due up to
    `as_of` and the next one after it, as the worklist lists them."""
    known = [e for e in events if date.fromisoformat(e.data["date"]) <= as_of]
    if not known:
        return []
    case = Case(known)
    start = end = None
    municipality_on: dict[date, str] = {}
    for day, municipality, running in case.days(max(as_of, case.last) + timedelta(days=800)):
        municipality_on[day] = municipality
        if "dagpenge" in running:
            start = start or day
            end = day
        elif start is not None:
            break
    if start is None:
        return []
    talks = [d for d in case.talks if d >= start]
    out: list[Occurrence] = []
    while True:
        k = len(out)
        done = talks[k] if k < len(talks) else None
        if k < len(TALK_MONTHS):
            due = months_later(start, TALK_MONTHS[k])
        else:
            last = out[-1]
            if last.done_on is None and not complete:
                break  # the next rolling talk depends on when this one is held
            due = months_later(last.done_on or last.due, TALK_EVERY_MONTHS)
        if due > end or due >= TALKS_2015_END:
            break
        out.append(Occurrence("LAB-jobsamtale", due, due, done, None, municipality_on[due]))
        if due > as_of:
            break
    return sorted(out, key=lambda o: o.due)  # a rolling talk counted from an early one may come before a fixed one


_CERTIFICATES = {rule: _yaml(f"rules/{rule}.yaml") for rule in ("SDP-LAE285", "REV-LAE265")}
_WAIVED_BY = {"SDP-LAE285": "T6", "REV-LAE265": "T10"}
_TRIALS = {trial: _yaml(f"trials/{trial}.yaml") for trial in _WAIVED_BY.values()}
for _trial in _TRIALS.values():
    assert _trial["target_group"] == "all", _trial["id"]
for _path in sorted((CATALOG / "trials").glob("*.yaml")):  # no other trial touches these rules
    _other = yaml.safe_load(_path.read_text(encoding="utf-8"))
    assert all(_WAIVED_BY.get(e["rule"], _other["id"]) == _other["id"] for e in _other["effects"]), _path
MINUTES.update({rule: r["minutes_per_obligation"] for rule, r in _CERTIFICATES.items()})


def _days_of(text: str) -> int:
    """A duration of days or weeks ("8w", "0d")."""
    return int(text[:-1]) * {"d": 1, "w": 7}[text[-1]]


def _versions(rule: dict, parameter: str) -> list[tuple[date, object]]:
    values = rule["parameters"][parameter]["values"]
    return sorted((d if isinstance(d, date) else date.fromisoformat(d), v["value"]) for d, v in values.items())


def _in_force(rule: dict, parameter: str, day: date):
    found = None
    for since, value in _versions(rule, parameter):
        if since <= day:
            found = value
    return found


def _trial_waives(trial: str, day: date, municipality: str | None) -> bool:
    t = _TRIALS[trial]
    start = date.fromisoformat(str(t["period"]["start"]))
    end = date.fromisoformat(str(t["period"]["end"])) if t["period"].get("end") else date.max
    return start <= day <= end and municipality in t["municipalities"]


def spells(events, benefit: str) -> list[tuple[date, date | None]]:
    """(first day, last day or None while it runs) of each spell of the benefit, cut off on the
    day the case closed."""
    dated = sorted(((date.fromisoformat(e.data["date"]), i, e) for i, e in enumerate(events)), key=lambda d: d[:2])
    out, start, closed = [], None, None
    for day, _, e in dated:
        if e.name == "case.closed" and closed is None:
            closed = day
        elif e.data.get("benefit") != benefit or (closed is not None and day > closed):
            continue
        elif e.name == "benefit.started" and start is None:
            start = day
        elif e.name == "benefit.ended" and start is not None:
            out.append((start, day))
            start = None
    if start is not None:
        out.append((start, closed))
    return [(a, b if closed is None or b is None else min(b, closed)) for a, b in out]


def certificate(events, rule: str, *, trials: bool = True) -> list[Occurrence]:
    """The occurrences of SDP-LAE285 or REV-LAE265 in the case's history, all of them (a once-
    per-spell rule has nothing left to know about the future)."""
    spec = _CERTIFICATES[rule]
    benefit = next(iter(spec["applies_to"]))
    form = spec["completed_by"]["kind"]
    obtained = sorted(date.fromisoformat(e.data["date"]) for e in events
                      if e.name == "medical-certificate.obtained" and e.data.get("form") == form)
    out, used = [], None
    for start, end in spells(events, benefit):
        due_after = (_in_force(spec, "due_after", start) or {}).get(benefit)
        moments = [] if due_after is None else [start + timedelta(days=_days_of(due_after))]
        if end is not None and "also_at_end" in spec["parameters"] and _in_force(spec, "also_at_end", end):
            moments.append(end)
        lookback = _in_force(spec, "lookback", start) if "lookback" in spec["parameters"] else None
        for due in moments:
            if (end is not None and due > end) or _in_force(spec, "due_after", due) is None:
                continue
            where = _municipality_on(events, due)
            waived = _WAIVED_BY[rule] if trials and _trial_waives(_WAIVED_BY[rule], due, where) else None
            not_before = months_later(due, -int(lookback.removesuffix("m"))) if lookback else start
            done = None if waived else next((d for d in obtained if d >= not_before and (used is None or d > used)), None)
            used = done or used
            out.append(Occurrence(rule, due, due, done, waived, where))
    return out


def _municipality_on(events, day: date) -> str | None:
    """The municipality of the latest opening or move on or before the day."""
    moves = sorted((date.fromisoformat(e.data["date"]), i, e.data["municipality"]) for i, e in enumerate(events)
                   if e.name in ("case.opened", "case.moved"))
    return next((m for d, _, m in reversed(moves) if d <= day), None)
