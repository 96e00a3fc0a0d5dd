"""The case service's replies as its OpenAPI document describes them (`shared.openapi`)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Stored(BaseModel):
    """A posted event, as the store took it."""

    id: str
    source: str
    subject: str = Field(description="the case")
    status: Literal["stored", "duplicate"] = Field(description="`duplicate`: stored before (the same `source` and `id`)")
    sequence: int = Field(description="its place in the case's history")
    position: int | None = Field(description="its place in the store's log; null for a duplicate")


class RecordedEvent(BaseModel):
    """One event of a case's history, as posted (CPR number masked), with its place and when it was stored."""

    model_config = ConfigDict(extra="allow")  # the other CloudEvents attributes it came with, e.g. `traceparent`
    sequence: int
    recorded: datetime
    specversion: Literal["1.0"]
    id: str
    source: str
    type: str
    subject: str
    time: datetime | None = None
    data: dict[str, Any]


class CaseHistory(BaseModel):
    case_id: str
    events: list[RecordedEvent]
