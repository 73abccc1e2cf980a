"""Rules checked against the settings they will run with (citywatch/rule_checks.py): every
recipient, channel, escalation policy and model a rule names must exist there, and each
problem is reported at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from citywatch.rule_checks import against
from citywatch.settings import Settings, load_settings
from rules.loader import parse_rules
from rules.yaml_source import YamlFileError

SETTINGS = """
channels:
  email: {host: 127.0.0.1, from_addr: citywatch@localhost}
recipients:
  ops: {email: ops@example.org}
models:
  - {type: opencv-hog, name: people}
notify:
  policies:
    night: {steps: [{notify: ["person:ops"], channels: [email]}]}
"""

RULES = """\
- id: fine
  title: Fine
  sources: {ids: [cam-1]}
  condition: {type: detection, model: people, classes: [person]}
  route: night
  notify: [{recipient: ops, channels: [email]}]
- id: wrong
  title: Wrong
  sources: {ids: [cam-1]}
  condition:
    type: all
    conditions:
      - {type: detection, model: peeple, classes: [person]}
      - {type: detection, classes: [car]}
  route: nigth
  notify:
    - {recipient: opps, channels: [email]}
    - {recipient: ops, channels: [sms, emial]}
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    path = tmp_path / "citywatch.yaml"
    path.write_text(SETTINGS)
    return load_settings(path, environ={})


def test_what_the_settings_lack_is_refused_at_its_line(settings: Settings) -> None:
    with pytest.raises(YamlFileError) as refused:
        parse_rules(RULES, "rules.yaml", against(settings))
    found = sorted((e.line, e.message) for e in refused.value.errors)
    assert found == [
        (13, "rule wrong: unknown model 'peeple' (the settings' models: people)"),
        (15, "rule wrong: unknown escalation policy 'nigth' (notify.policies: night)"),
        (17, "rule wrong: unknown recipient 'opps' (the settings' recipients: ops)"),
        (18, "rule wrong: channel 'sms' is not configured (channels.sms in the settings)"),
        (18, "rule wrong: unknown channel 'emial' (channels: email, sms, voice, webhook)"),
    ]


def test_the_rule_language_alone_accepts_them(settings: Settings) -> None:
    assert [r.id for r in parse_rules(RULES, "rules.yaml")] == ["fine", "wrong"]
    fine = RULES.split("- id: wrong")[0]
    assert [r.id for r in parse_rules(fine, "rules.yaml", against(settings))] == ["fine"]


def test_a_recipient_without_an_address_for_the_channel_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "citywatch.yaml"
    path.write_text(SETTINGS.replace("channels:\n", "channels:\n  webhook: {}\n"))  # a rule can name webhook
    rule = "id: r\ntitle: t\nsources: {ids: [cam-1]}\ncondition: {type: detection, classes: [x]}\n"
    with pytest.raises(YamlFileError, match="recipient 'ops' has no webhook address"):
        parse_rules(rule + "notify: [{recipient: ops, channels: [webhook]}]\n", "r.yaml",
                    against(load_settings(path, environ={})))
