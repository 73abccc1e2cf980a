"""Silences: an operator mutes a rule (or one group key of it) until a time, with a reason.

A silenced alert still fires, is stored and shown; it is only not notified, so the
history stays complete and the silence is visible in it.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, Field

from rules.base import StrictModel


class Silence(StrictModel):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
    rule_id: str = Field(min_length=1, description="a rule id, or * for every rule")
    group_key: str | None = Field(default=None, description="only this group key (e.g. a camera id)")
    until: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)
    created_by: str = Field(min_length=1)

    def mutes(self, rule_id: str, group_key: str, moment: datetime) -> bool:
        return (moment < self.until and self.rule_id in ("*", rule_id)
                and (self.group_key is None or self.group_key == group_key))
