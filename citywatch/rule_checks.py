"""What a rule must satisfy where it will run: recipients, channels, escalation policies and
models that exist in the settings. `rules check`, `rules publish`, `rules sync` and the
console's editor refuse a rule that names anything else, at its line; a worker that meets
one anyway (published with other settings) logs it (runtime.report_rules)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from citywatch.settings import Settings
from notifier.channel_registry import CHANNEL_ADDRESSES
from notifier.settings import ChannelsSettings
from rules.conditions import located
from rules.loader import Problem, RuleCheck
from rules.model import Rule


def configured_channels(settings: Settings) -> set[str]:
    """The channels whose provider the settings configure (each is a `channels` key)."""
    return {name for name in ChannelsSettings.model_fields if getattr(settings.channels, name) is not None}


def against(settings: Settings) -> RuleCheck:
    channels = configured_channels(settings)
    models = {model.name for model in settings.models}

    def check(rule: Rule) -> Iterator[Problem]:
        for index, target in enumerate(rule.notify):
            person = settings.recipients.get(target.recipient)
            if person is None:
                yield (("notify", index, "recipient"),
                       f"unknown recipient {target.recipient!r} (the settings' recipients: "
                       f"{_listed(settings.recipients)})")
            for at, channel in enumerate(target.channels):
                place = ("notify", index, "channels", at)
                if channel not in CHANNEL_ADDRESSES:
                    yield place, f"unknown channel {channel!r} (channels: {_listed(CHANNEL_ADDRESSES)})"
                elif channel not in channels:
                    yield place, f"channel {channel!r} is not configured (channels.{channel} in the settings)"
                elif person is not None and person.address(channel) is None:
                    yield place, f"recipient {target.recipient!r} has no {channel} address"
        if rule.route is not None and rule.route not in settings.notify.policies:
            yield (("route",), f"unknown escalation policy {rule.route!r} (notify.policies: "
                   f"{_listed(settings.notify.policies)})")
        for where, condition in located(rule.condition):
            need = condition.detection_need()
            if need is not None and need.model is not None and need.model not in models:
                yield ((*where, "model"),
                       f"unknown model {need.model!r} (the settings' models: {_listed(models)})")

    return check


def _listed(names: Iterable[str]) -> str:
    found = sorted(names)
    return ", ".join(found) if found else "none"
