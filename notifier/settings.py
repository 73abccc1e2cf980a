"""The notifier's settings: the channels' providers and how notifications are retried,
escalated and bundled. The channels take them as they are (notifier/email.py, sms.py,
webhook.py); citywatch/settings.py puts them under `channels` and `notify`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ingest.settings_base import Secret, SigningKey, Strict
from notifier.oncall import OnCallSchedule
from notifier.people import EscalationPolicy, Team


class SmtpSettings(Strict):
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    from_addr: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    username: str | None = None
    password: Secret = None
    use_tls: bool = False
    start_tls: bool | None = None
    timeout_s: float = Field(default=10.0, gt=0)


class SmsSenderSettings(Strict):
    number: str = Field(pattern=r"^\+[1-9][0-9]{6,14}$")
    segments_per_s: float = Field(default=1.0, gt=0)


class TwilioAccountSettings(Strict):
    """What every Twilio channel needs: the account, its number, and where its API is."""

    required_secrets: ClassVar[tuple[str, ...]] = ("auth_token",)
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: Secret = None
    from_number: str = Field(pattern=r"^\+[1-9][0-9]{6,14}$")
    api_base_url: str | None = Field(default=None, description="a Twilio-compatible endpoint")
    timeout_s: float = Field(default=10.0, gt=0,
                             description="a provider that hangs must not hold the alert queue")


class TwilioSettings(TwilioAccountSettings):
    status_callback: str | None = Field(default=None, description="URL Twilio posts delivery statuses to")
    segments_per_s: float = Field(default=1.0, gt=0,
                                  description="from_number's rate (long code 1, toll-free 3)")
    more_senders: list[SmsSenderSettings] = Field(default_factory=list, description="a pool shares the load")
    max_segments: int = Field(default=1, ge=1, le=10, description="longer texts are cut, keeping the start")
    validity_period_s: int | None = Field(default=None, ge=1, le=36000,
                                          description="Twilio drops a message still queued after this")


class VoiceSettings(TwilioAccountSettings):
    """Phone calls through Twilio: the alert read out, and a key to acknowledge it (1)."""

    language: str = Field(default="en-GB", pattern=r"^[a-z]{2}(-[A-Z]{2})?$", description="of the voice")
    gather_timeout_s: int = Field(default=8, ge=1, le=60, description="how long the call waits for the key")


class WebhookSettings(Strict):
    required_secrets: ClassVar[tuple[str, ...]] = ("secret",)
    secret: SigningKey = Field(default=None,
                                     description="HMAC key (CITYWATCH_CHANNELS__WEBHOOK__SECRET)")
    timeout_s: float = Field(default=10.0, gt=0)


class ChannelsSettings(Strict):
    """One key per channel (notifier/people.py CHANNEL_ADDRESSES names the same ones); a
    channel's settings list the secrets it cannot run without (`required_secrets`)."""

    email: SmtpSettings | None = None
    sms: TwilioSettings | None = None
    voice: VoiceSettings | None = None
    webhook: WebhookSettings | None = None


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
