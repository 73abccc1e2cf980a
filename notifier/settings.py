"""The notifier's settings: the channels' providers and how notifications are retried,
escalated and bundled. Each channel's settings live in its own module (notifier/email.py,
sms.py, voice.py, webhook.py) and are composed here from the registry; citywatch/settings.py
puts them under `channels` and `notify`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, Field, create_model

from ingest.settings_base import Strict
from notifier.channel_kinds import ChannelKind
from notifier.channel_registry import CHANNEL_KINDS
from notifier.oncall import OnCallSchedule
from notifier.people import EscalationPolicy, Team

S = TypeVar("S", bound=BaseModel)


class ChannelsBase(Strict):
    """One optional key per channel of the registry (notifier/channel_registry.py), holding
    that channel's own settings model; a channel's settings list the secrets it cannot run
    without (`required_secrets`)."""

    def of(self, kind: ChannelKind[S]) -> S | None:
        """This channel's settings, typed (None: not configured)."""
        configured = getattr(self, kind.name, None)
        return configured if isinstance(configured, kind.settings) else None

    def configured(self) -> list[tuple[ChannelKind[Any], BaseModel]]:
        return [(kind, value) for name, kind in CHANNEL_KINDS.items()
                if (value := getattr(self, name, None)) is not None]


if TYPE_CHECKING:
    ChannelsSettings = ChannelsBase
else:
    ChannelsSettings = create_model(
        "ChannelsSettings", __base__=ChannelsBase, __module__=__name__,
        **{name: (kind.settings | None, None) for name, kind in CHANNEL_KINDS.items()})


class NotifySettings(Strict):
    attempts: int = Field(default=3, ge=1, le=20)
    base_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=10.0, ge=0)
    failover_to_email_after: int | None = Field(
        default=None, ge=1, description="SMS attempts that failed before the email is tried instead")
    outbox_retry_every_s: float = Field(
        default=10.0, gt=0, description="after the quick retries, the outbox tries again this often")
    outbox_max_age_s: float = Field(default=3600.0, gt=0, description="and gives up after this long")
    outbox_max_attempts: int = Field(default=60, ge=1)
    dedup_retention_s: float = Field(
        default=7 * 86400.0, gt=0,
        description="how long a finished delivery is remembered, so a redelivered alert sends nothing twice")
    bundle_window_s: float = Field(
        default=0.0, ge=0, description="more alerts of a rule within this window go out as one message")
    teams: dict[str, Team] = Field(default_factory=dict)
    schedules: dict[str, OnCallSchedule] = Field(default_factory=dict)
    policies: dict[str, EscalationPolicy] = Field(default_factory=dict, description="by rule `route:`")
