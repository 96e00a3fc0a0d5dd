"""The obligations service's replies as its OpenAPI document describes them (`shared.openapi`)."""

from datetime import date
from typing import Literal, get_args

from pydantic import BaseModel, Field, create_model

Status = Literal["upcoming", "due", "overdue", "done", "waived", "suspended"]


class Exemption(BaseModel):
    """The trial that waives, suspends or changes the obligation."""

    trial: str
    title: str
    effect: str
    note: str | None = None


class Obligation(BaseModel):
    case_id: str
    rule: str
    title: str
    legal_reference: str
    due: date
    deadline: date = Field(description="the last day it is on time")
    status: Status
    done_on: date | None
    municipality: str | None = Field(description="responsible on the due date")
    exemption: Exemption | None
    because: list[str] = Field(description="the events, rule values and trial effects it follows from")


class TrialPeriod(BaseModel):
    trial: str
    title: str
    from_: date = Field(alias="from")
    to: date | None = Field(description="the last day; null while it lasts")


class CaseObligations(BaseModel):
    case_id: str
    as_of: date
    obligations: list[Obligation]
    trials: list[TrialPeriod]


class WorklistItem(Obligation):
    caseworker: str | None
    cursor: str


class Worklist(BaseModel):
    as_of: date
    total: int
    items: list[WorklistItem]
    next_cursor: str | None = Field(description="`cursor` of the next page; null on the last")
    cases_not_derived: list[str] = Field(description="the municipality's cases whose obligations could not be "
                                                     "derived: none of theirs is listed")


StatusCounts = create_model("StatusCounts", **{status: (int, ...) for status in get_args(Status)})


class CaseworkerCounts(BaseModel):
    caseworker: str | None = Field(description="null: cases assigned to no one")
    statuses: StatusCounts


class Counts(BaseModel):
    as_of: date
    statuses: StatusCounts
    caseworkers: list[CaseworkerCounts]
