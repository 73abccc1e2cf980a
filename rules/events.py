"""The Alert event: a rule fired, reminded or resolved for one group key."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ingest.events import Event
from rules.keys import group_key_of
from rules.model import NotifyTarget, Severity, Templates


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
    reminder: int = Field(default=0, ge=0, description="0: the first firing; n: the n-th realert")
    muted: str | None = Field(default=None, description="why nobody is notified (silence, inhibition)")
    labels: dict[str, str] = Field(default_factory=dict)
    evidence: Evidence = Field(default_factory=Evidence)
    route: str | None = None
    notify: list[NotifyTarget] = Field(default_factory=list)
    templates: Templates | None = None

    @property
    def kafka_key(self) -> str:
        return group_key_of(self.rule_id, self.group_key)

    @property
    def delivery_round(self) -> str:
        """What one notification is for: the firing, the n-th reminder, or the resolution.
        Notifications deduplicate on it, so each round reaches each recipient once."""
        return f"fired+{self.reminder}" if self.state == "fired" and self.reminder else self.state


class ResolveRequest(Event):
    """An operator closes an alert by hand. It travels on the telemetry topic keyed by the
    alert's source, so it reaches the worker that holds that source's rule state."""

    kind: Literal["resolve"] = "resolve"
    alert_id: UUID
    rule_id: str
    group_key: str
    by: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)
