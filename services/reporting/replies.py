"""The reporting service's replies as its OpenAPI document describes them (`shared.openapi`)."""

from datetime import date
from typing import Any

from pydantic import BaseModel, Field


class Span(BaseModel):
    from_: date = Field(alias="from")
    to: date


class Periods(BaseModel):
    baseline: Span
    trial: Span


class Groups(BaseModel):
    trial: list[str]
    comparison: list[str]


class Number(BaseModel):
    """One number (`services.reporting.evaluation.Row`); a suppressed one has neither `value` nor `n`."""

    metric: str
    group: str = Field(description="`trial` or `comparison`")
    period: str = Field(description="`baseline` or `trial`; in a series the month, `YYYY-MM`")
    municipality: str | None = Field(description="null: the group as a whole")
    value: float | None
    n: int | None = Field(description="citizens")
    suppressed: bool
    rule: str | None
    of: str | None = Field(None, description="`did_estimate`: the metric it compares")
    ci95: list[float] | None = Field(None, description="`did_estimate`: the 95 % bootstrap interval, low and high")
    other_trials_active: list[str]
    shared_with: dict[str, int | None] = Field(description="the other trials whose effects change some of the "
                                                          "row's obligations too, each with how many")


class Evaluation(BaseModel):
    trial: str
    periods: Periods
    groups: Groups
    comparison_basis: dict[str, Any] = Field(description="how the comparison group was chosen")
    warnings: list[str]
    rows: list[Number]


class Series(Evaluation):
    metric: str
    span: Span
