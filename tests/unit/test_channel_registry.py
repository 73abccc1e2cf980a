"""The channel registry is the one list: settings keys, address fields, secrets, forms and
the rule schema all follow the kinds the channel modules declare."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from citywatch.settings import Settings
from ingest.settings_base import secret_paths
from notifier.channel_kinds import LONG_FORM
from notifier.channel_registry import CHANNEL_ADDRESSES, CHANNEL_KINDS
from notifier.people import Person
from notifier.settings import ChannelsSettings
from rules.events import Alert
from rules.schema import rule_file_schema


def make_alert(title: str) -> Alert:
    now = datetime.now(UTC)
    return Alert(source_id="cam-1", time=now, alert_id=uuid4(), rule_id="crowd", title=title,
                 severity="warning", state="fired", group_key="cam-1", started_at=now)


def test_every_kind_has_its_settings_key_its_address_field_and_its_secrets() -> None:
    assert set(ChannelsSettings.model_fields) == set(CHANNEL_KINDS)
    secrets = secret_paths(Settings)
    for name, kind in CHANNEL_KINDS.items():
        assert kind.name == name
        assert ChannelsSettings.model_fields[name].annotation == kind.settings | None
        assert kind.address in Person.model_fields, f"{name}: Person has no {kind.address!r} field"
        for secret in kind.required_secrets:
            assert ("channels", name, secret) in secrets, f"{name}.{secret} is not a secret field"


def test_channels_settings_are_typed_by_kind_and_unknown_keys_refused() -> None:
    import pytest
    from pydantic import ValidationError

    sms = CHANNEL_KINDS["sms"]
    channels = ChannelsSettings.model_validate(
        {"sms": {"account_sid": "AC" + "0" * 32, "from_number": "+15550001111", "max_segments": 3}})
    configured = channels.of(sms)
    assert isinstance(configured, sms.settings) and channels.of(CHANNEL_KINDS["email"]) is None
    assert [kind.name for kind, _ in channels.configured()] == ["sms"]
    assert sms.form(configured).max_segments == 3
    with pytest.raises(ValidationError, match="telegram"):
        ChannelsSettings.model_validate({"telegram": {}})


def test_the_forms_follow_the_kind_not_the_name() -> None:
    from notifier.templates import render

    alert = make_alert(title="x" * 400)
    assert CHANNEL_KINDS["email"].form(None) is LONG_FORM
    short, spoken = render("sms", alert).text, render("voice", alert).text
    assert len(short) <= 160 and len(spoken) > 160  # a text is cut to its segment, a call is not
    assert render("webhook", alert).data["alert_id"] == str(alert.alert_id)


def test_the_rule_schema_names_every_registered_channel() -> None:
    schema = json.dumps(rule_file_schema(list(CHANNEL_ADDRESSES)))
    for name in CHANNEL_KINDS:
        assert f'"{name}"' in schema


def test_notify_preview_shows_each_channel_as_its_kind_renders_it(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from citywatch.cli import main

    config = tmp_path / "citywatch.yaml"
    config.write_text("channels:\n  sms: {account_sid: AC" + "0" * 32 + ", from_number: '+15550001111',"
                      " max_segments: 2}\n")
    rule = tmp_path / "rule.yaml"
    rule.write_text("id: crowd\ntitle: Crowd\ncondition: {type: detection, classes: [person], min_count: 3}\n"
                    "templates: {sms: 'Crowd of {{ values.count }} at {{ alert.source_id }}'}\n")

    def preview(channel: str) -> str:
        answer = CliRunner().invoke(main, ["--config", str(config), "notify", "preview", str(rule),
                                           "--channel", channel, "--value", "count=7"])
        assert answer.exit_code == 0, answer.output
        return answer.output

    assert "Crowd of 7 at cam-example\n[25 characters, 1 segment(s)]" in preview("sms")
    assert "<Say language=\"en-GB\">Crowd of 7 at cam-example</Say>" in preview("voice")
    assert "Subject: " in preview("email")
    assert json.loads(preview("webhook").split("\n", 1)[1])["rule_id"] == "crowd"
