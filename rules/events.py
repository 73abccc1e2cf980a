"""The Alert event: a rule fired or resolved for one group key."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ingest.events import Event
from rules.model import NotifyTarget, Severity


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_ids: list[UUID] = Field(default_factory=list)
    values: dict[str, Any] = Field(default_factory=dict)
    snapshot: str | None = None


class Alert(Event):
    alert_id: UUID
    rule_id: str
    title: str
    severity: Severity
    state: Literal["fired", "resolved"]
    group_key: str
    started_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    evidence: Evidence = Field(default_factory=Evidence)
    notify: list[NotifyTarget] = Field(default_factory=list)

    @property
    def kafka_key(self) -> str:
        return f"{self.rule_id}|{self.group_key}"
