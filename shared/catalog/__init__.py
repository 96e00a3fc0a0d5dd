"""The rule and trial catalogs: the law and its exemptions as data, OpenFisca-style.

One YAML file per rule (`rules/`) and per trial (`trials/`). Every parameter value carries the
date it takes effect and its legal reference; a value of `null` ends it. The schema below
validates the files when they are loaded (and in CI, by the catalog tests). A lawyer corrects
a number by editing a file; no code changes.
"""

import hashlib
import json
import re
from bisect import bisect_right
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache, cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.dates import QueryDate
from shared.events import Benefit
from shared.municipalities import municipalities

CATALOG_DIR = Path(__file__).parent
MAX_MINUTES = 10_000  # a week of a caseworker's time: more is a typo, not an estimate
_DURATION = re.compile(r"^(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?$")


@cache
def parse_duration(text: str) -> tuple[int, int]:
    """'3m' -> (3 months, 0 days); '8w' -> (0, 56); '1m15d' -> (1, 15)."""
    m = _DURATION.match(text)
    if not text or not m:
        raise ValueError(f"{text!r} is not a duration like 7d, 8w, 3m or 1m15d")
    months, weeks, days = (int(g) if g else 0 for g in m.groups())
    return months, weeks * 7 + days


@lru_cache(maxsize=8192)  # a fold adds the same offsets to a spell's start for each occurrence
def add_duration(start: date, text: str, sign: int = 1) -> date:
    """`start` plus (or, with sign=-1, minus) a duration; months are calendar months."""
    months, days = parse_duration(text)
    if months:
        month_index = start.month - 1 + sign * months
        year, month = start.year + month_index // 12, month_index % 12 + 1
        start = _clamped(year, month, start.day)
    return start + sign * timedelta(days=days)


def _clamped(year: int, month: int, day: int) -> date:
    """The day in that month, or its last day (31 January + 1 month is 28 or 29 February); a
    year outside 1..9999 is a ValueError."""
    return date(year, month, min(day, monthrange(year, month)[1]))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterValue(_Strict):
    value: Any = None  # None: the parameter no longer applies from this date
    reference: str


class Parameter(_Strict):
    description: str
    values: dict[QueryDate, ParameterValue]

    @cached_property
    def _dates(self) -> list[date]:
        return sorted(self.values)

    def at(self, when: date) -> Any:
        """The value in force on `when` (None before the first date or after a null)."""
        i = bisect_right(self._dates, when)
        return self.values[self._dates[i - 1]].value if i else None

    def entry_at(self, when: date) -> tuple[date, ParameterValue] | None:
        i = bisect_right(self._dates, when)
        return (self._dates[i - 1], self.values[self._dates[i - 1]]) if i else None

    def changes(self) -> list[date]:
        return self._dates


class CompletedBy(_Strict):
    event: str  # the event type (without dk.frisag.) that fulfils an occurrence
    kind: str | None = None  # data.kind, data.form, ... must equal this when set
    field: str | None = None


class Rule(_Strict):
    id: str
    title: str
    kind: Literal["obligation", "permission"]
    legal_reference: str
    confidence: Literal["H", "M", "S", "M-H", "H / M"]
    # how occurrences arise; the algorithms live in shared.obligations
    schedule: Literal["recurring", "cumulative", "once_per_spell", "unobserved"] | None = None
    applies_to: list[Benefit | str] = Field(default_factory=list)  # benefits, or offers for offer-based rules
    while_receiving: Benefit | None = None  # only while this benefit runs too (e.g. førtidspension)
    completed_by: CompletedBy | None = None
    # caseworker time one occurrence takes (evaluation estimate)
    minutes_per_obligation: int | None = Field(None, ge=0, le=MAX_MINUTES)
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    note: str | None = None

    @model_validator(mode="after")
    def _obligations_have_a_schedule(self) -> "Rule":
        if self.kind == "obligation" and self.schedule is None:
            raise ValueError(f"{self.id}: an obligation needs a schedule")
        return self

    def parameter(self, name: str, when: date) -> Any:
        p = self.parameters.get(name)
        return p.at(when) if p else None

    @cached_property
    def in_force_from(self) -> date | None:
        """The first date any of its parameters has a value: the rule did not exist before,
        so nothing before it counts (None: no dated parameters, always in force)."""
        return min((p.changes()[0] for p in self.parameters.values() if p.values), default=None)


Effect = Literal["waive", "modify", "suspend", "permit"]


class TrialEffect(_Strict):
    rule: str
    effect: Effect
    parameter: str | None = None  # modify: which parameter
    value: Any = None  # modify: its value under the trial
    individually_agreed: bool = False  # modify: the cadence is agreed per citizen (cadence.agreed)
    for_offers: list[str] | None = None  # permit: which offers it allows (rules about offer types)
    in_a_row: int | None = Field(None, ge=1)  # waive: at most this many in a row; the next one is required
    note: str | None = None

    @model_validator(mode="after")
    def _what_the_fold_applies(self) -> "TrialEffect":
        """Only what shared.obligations reads: a modify changes the schedule (or lets it be agreed
        per citizen), and each option belongs to its one effect."""
        if self.parameter is not None and (self.effect != "modify" or self.parameter != "schedule"):
            raise ValueError(f"{self.rule}: only a modify names a parameter, and the one it can change is schedule")
        if self.parameter is not None and not isinstance(self.value, dict):
            raise ValueError(f"{self.rule}: a schedule is a mapping from benefit to its offsets")
        if self.value is not None and self.parameter is None:
            raise ValueError(f"{self.rule}: a value needs the parameter it is for")
        if self.individually_agreed and self.effect != "modify":
            raise ValueError(f"{self.rule}: only a modify lets the cadence be agreed per citizen")
        if self.in_a_row is not None and self.effect != "waive":
            raise ValueError(f"{self.rule}: in_a_row limits a waive")
        if self.for_offers is not None and self.effect != "permit":
            raise ValueError(f"{self.rule}: for_offers belongs to a permit")
        return self


class Period(_Strict):
    start: QueryDate
    end: QueryDate | None = None  # None: runs until further notice

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> "Period":
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    def contains(self, when: date) -> bool:
        return self.start <= when and (self.end is None or when <= self.end)


class TrialForm(_Strict):
    purpose: str | None = None
    goals: str | None = None
    design: str | None = None
    compliance: str | None = None


class Trial(_Strict):
    id: str
    title: str
    seeds: list[str]
    municipalities: list[str]
    period: Period
    target_group: Literal["all", "assessed"]
    target_group_description: str | None = None
    effects: list[TrialEffect] = Field(default_factory=list)
    note: str | None = None
    # the Ministry's evaluation form (seed 002), fields 2-5, where a seed gives them
    form: "TrialForm | None" = None
    headline_metric: str = "exits_to_job_share"  # charted month by month on the form

    @field_validator("municipalities")
    @classmethod
    def _known_municipalities(cls, codes: list[str]) -> list[str]:
        unknown = [c for c in codes if c not in municipalities()]
        if unknown:
            raise ValueError(f"unknown kommunekoder {unknown}")
        return codes

    def effect_on(self, rule: str) -> TrialEffect | None:
        return self._effect_by_rule.get(rule)

    @cached_property
    def _effect_by_rule(self) -> dict[str, TrialEffect]:
        """The first effect on each rule: the fold asks for every occurrence."""
        return {e.rule: e for e in reversed(self.effects)}


@dataclass(frozen=True)
class Catalog:
    rules: dict[str, Rule]
    trials: dict[str, Trial]
    _touching: dict[str, list[Trial]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        touching: dict[str, list[Trial]] = {rule: [] for rule in self.rules}
        for trial in self.trials.values():
            for effect in trial.effects:
                touching.setdefault(effect.rule, []).append(trial)
        object.__setattr__(self, "_touching", touching)

    @classmethod
    def load(cls, directory: Path = CATALOG_DIR) -> "Catalog":
        """The catalog in `directory`; a file that does not validate raises a ValueError that
        names it."""
        files: dict[str, dict[Path, Any]] = {"rules": {}, "trials": {}}
        for model, folder in ((Rule, "rules"), (Trial, "trials")):
            for path in sorted((directory / folder).glob("*.yaml")):
                document = _read(path)  # its YAML and mapping errors name the file already
                try:
                    files[folder][path] = model.model_validate(document)
                except ValueError as exc:  # pydantic's ValidationError names only the model
                    raise ValueError(f"{path}: {exc}") from None
        rules = {r.id: r for r in files["rules"].values()}
        for path, trial in files["trials"].items():
            for effect in trial.effects:
                if effect.rule not in rules:
                    raise ValueError(f"{path}: {trial.id} names unknown rule {effect.rule}")
        return cls(rules, {t.id: t for t in files["trials"].values()})

    def trials_touching(self, rule: str) -> list[Trial]:
        return self._touching.get(rule, [])

    def fingerprint(self) -> bytes:
        """The same for catalogs with the same rules and trials."""
        content = {"rules": {k: r.model_dump(mode="json") for k, r in self.rules.items()},
                   "trials": {k: t.model_dump(mode="json") for k, t in self.trials.items()}}
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).digest()


def _read(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        document = yaml.safe_load(f)
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a mapping")
    return document
